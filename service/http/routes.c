/* The route table: every endpoint of the service in one screen.  The
 * dispatcher (server.c) answers 404, 405 with Allow, 413, 414, 415 and 401
 * from it, so handlers never re-check those. */
#include "handlers/handlers.h"

const struct route routes[] = {
    /* method, path, handler, body, auth, body cap (0: 64 KiB), stream handlers */
    {HTTP_GET, "/healthz", health_live, BODY_NONE, AUTH_NONE, 0, NULL},
    {HTTP_GET, "/readyz", health_ready, BODY_NONE, AUTH_NONE, 0, NULL},
    {HTTP_GET, "/metrics", metrics_get, BODY_NONE, AUTH_NONE, 0, NULL},

    {HTTP_GET, "/v1/services", services_list, BODY_NONE, AUTH_NONE, 0, NULL},

    {HTTP_POST, "/v1/mandates", mandates_create, BODY_JSON, AUTH_CITIZEN, 0, NULL},
    {HTTP_GET, "/v1/mandates", mandates_list, BODY_NONE, AUTH_CITIZEN, 0, NULL},
    {HTTP_GET, "/v1/mandates/{}", mandates_get, BODY_NONE, AUTH_CITIZEN, 0, NULL},
    {HTTP_POST, "/v1/mandates/{}/accept", mandates_accept, BODY_JSON_OPTIONAL, AUTH_CITIZEN, 0,
     NULL},
    {HTTP_POST, "/v1/mandates/{}/decline", mandates_decline, BODY_JSON_OPTIONAL, AUTH_CITIZEN, 0,
     NULL},
    {HTTP_POST, "/v1/mandates/{}/revoke", mandates_revoke, BODY_JSON_OPTIONAL, AUTH_CITIZEN, 0,
     NULL},
    {HTTP_GET, "/v1/me/activity", activity_list, BODY_NONE, AUTH_CITIZEN, 0, NULL},

    {HTTP_POST, "/v1/admin/clients", admin_clients_create, BODY_JSON, AUTH_ADMIN, 0, NULL},
    {HTTP_POST, "/v1/admin/mandates/{}/suspend", admin_mandates_suspend, BODY_JSON_OPTIONAL,
     AUTH_ADMIN, 0, NULL},
    {HTTP_POST, "/v1/admin/mandates/{}/resume", admin_mandates_resume, BODY_JSON_OPTIONAL,
     AUTH_ADMIN, 0, NULL},

    {HTTP_POST, "/oauth2/token", oauth_token, BODY_FORM, AUTH_CLIENT, 0, NULL},
    {HTTP_POST, "/oauth2/introspect", oauth_introspect, BODY_FORM, AUTH_CLIENT, 0, NULL},
    {HTTP_GET, "/.well-known/jwks.json", wellknown_jwks, BODY_NONE, AUTH_NONE, 0, NULL},
    {HTTP_GET, "/.well-known/oauth-authorization-server", wellknown_metadata, BODY_NONE, AUTH_NONE,
     0, NULL},
};

const size_t route_count = sizeof routes / sizeof routes[0];

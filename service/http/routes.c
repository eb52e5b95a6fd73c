/* The route table: every endpoint of the service in one screen.  The
 * dispatcher (server.c) answers 404, 405 with Allow, 413, 414, 415 and 401
 * from it, so handlers never re-check those. */
#include "handlers/handlers.h"
#include "handlers/web.h"

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
    {HTTP_POST, "/v1/admin/imports", NULL, BODY_STREAM, AUTH_ADMIN, 0, &imports_stream},
    {HTTP_GET, "/v1/admin/imports/{}", imports_get, BODY_NONE, AUTH_ADMIN, 0, NULL},
    {HTTP_GET, "/v1/admin/imports/{}/rejects", imports_rejects, BODY_NONE, AUTH_ADMIN, 0, NULL},

    {HTTP_POST, "/oauth2/token", oauth_token, BODY_FORM, AUTH_CLIENT, 0, NULL},
    {HTTP_POST, "/oauth2/introspect", oauth_introspect, BODY_FORM, AUTH_CLIENT, 0, NULL},
    {HTTP_GET, "/.well-known/jwks.json", wellknown_jwks, BODY_NONE, AUTH_NONE, 0, NULL},
    {HTTP_GET, "/.well-known/oauth-authorization-server", wellknown_metadata, BODY_NONE, AUTH_NONE,
     0, NULL},

    /* The citizen web forms: session cookie, CSRF token on every POST, HTML. */
    {HTTP_GET, "/", web_home, BODY_NONE, AUTH_WEB, 0, NULL},
    {HTTP_GET, "/login", web_login, BODY_NONE, AUTH_WEB, 0, NULL},
    {HTTP_GET, "/login/callback", web_login_callback, BODY_NONE, AUTH_WEB, 0, NULL},
    {HTTP_POST, "/logout", web_logout, BODY_FORM, AUTH_WEB, 0, NULL},
    {HTTP_GET, "/mandates/new", web_grant_form, BODY_NONE, AUTH_WEB_USER, 0, NULL},
    {HTTP_POST, "/mandates/new", web_grant_submit, BODY_FORM, AUTH_WEB_USER, 0, NULL},
    {HTTP_GET, "/mandates/{}", web_mandate_show, BODY_NONE, AUTH_WEB_USER, 0, NULL},
    {HTTP_POST, "/mandates/{}/accept", web_mandate_accept, BODY_FORM, AUTH_WEB_USER, 0, NULL},
    {HTTP_POST, "/mandates/{}/decline", web_mandate_decline, BODY_FORM, AUTH_WEB_USER, 0, NULL},
    {HTTP_GET, "/mandates/{}/revoke", web_revoke_confirm, BODY_NONE, AUTH_WEB_USER, 0, NULL},
    {HTTP_POST, "/mandates/{}/revoke", web_revoke_submit, BODY_FORM, AUTH_WEB_USER, 0, NULL},
    {HTTP_GET, "/activity", web_activity, BODY_NONE, AUTH_WEB_USER, 0, NULL},
    {HTTP_GET, "/represented", web_represented, BODY_NONE, AUTH_WEB_USER, 0, NULL},
    {HTTP_POST, "/represented", web_represented, BODY_FORM, AUTH_WEB_USER, 0, NULL},
    {HTTP_GET, "/oauth2/authorize", web_authorize, BODY_NONE, AUTH_WEB, 0, NULL},
    {HTTP_POST, "/oauth2/authorize", web_authorize_choose, BODY_FORM, AUTH_WEB_USER, 0, NULL},
    {HTTP_GET, "/static/{}", web_static_file, BODY_NONE, AUTH_NONE, 0, NULL},
};

const size_t route_count = sizeof routes / sizeof routes[0];

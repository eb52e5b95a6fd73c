/* One function per endpoint; the route table (http/routes.c) binds them. */
#ifndef MACHTIGEN_HANDLERS_H
#define MACHTIGEN_HANDLERS_H

#include "http/server.h"

enum MHD_Result health_live(struct request *rq);
enum MHD_Result health_ready(struct request *rq);
enum MHD_Result metrics_get(struct request *rq);

enum MHD_Result services_list(struct request *rq);

enum MHD_Result mandates_create(struct request *rq);
enum MHD_Result mandates_list(struct request *rq);
enum MHD_Result mandates_get(struct request *rq);
enum MHD_Result mandates_accept(struct request *rq);
enum MHD_Result mandates_decline(struct request *rq);
enum MHD_Result mandates_revoke(struct request *rq);

enum MHD_Result activity_list(struct request *rq);

enum MHD_Result oauth_token(struct request *rq);
enum MHD_Result oauth_introspect(struct request *rq);
enum MHD_Result wellknown_jwks(struct request *rq);
enum MHD_Result wellknown_metadata(struct request *rq);

enum MHD_Result admin_clients_create(struct request *rq);
enum MHD_Result admin_mandates_suspend(struct request *rq);
enum MHD_Result admin_mandates_resume(struct request *rq);

/* Bulk imports: POST streams (imports_stream), the rest are plain GETs. */
extern const struct stream_ops imports_stream;
enum MHD_Result imports_get(struct request *rq);
enum MHD_Result imports_rejects(struct request *rq);

#endif

/* The citizen web forms: one function per page or form (web_*.c). */
#ifndef MACHTIGEN_WEB_HANDLERS_H
#define MACHTIGEN_WEB_HANDLERS_H

#include "http/server.h"

enum MHD_Result web_home(struct request *rq);
enum MHD_Result web_login(struct request *rq);
enum MHD_Result web_login_callback(struct request *rq);
enum MHD_Result web_logout(struct request *rq);

enum MHD_Result web_grant_form(struct request *rq);
enum MHD_Result web_grant_submit(struct request *rq);
enum MHD_Result web_mandate_show(struct request *rq);
enum MHD_Result web_mandate_accept(struct request *rq);
enum MHD_Result web_mandate_decline(struct request *rq);
enum MHD_Result web_revoke_confirm(struct request *rq);
enum MHD_Result web_revoke_submit(struct request *rq);

enum MHD_Result web_activity(struct request *rq);
enum MHD_Result web_represented(struct request *rq);

enum MHD_Result web_authorize(struct request *rq);
enum MHD_Result web_authorize_choose(struct request *rq);

/* GET /static/{name} (web/page.c). */
enum MHD_Result web_static_file(struct request *rq);

#endif

/* Shared by the import handlers (imports.c posts, imports_report.c reads). */
#ifndef MACHTIGEN_IMPORTS_H
#define MACHTIGEN_IMPORTS_H

#include "http/server.h"

/* Answers status (201 after an import, 200 for GET) with the stored
 * report of import id, read on the worker connection; 404 when there is
 * none. */
enum MHD_Result import_reply_report(struct request *rq, unsigned status, const char *id);

#endif

/* Error registry: see errors.def. */
#ifndef MACHTIGEN_ERRORS_H
#define MACHTIGEN_ERRORS_H

enum err {
  ERR_NONE = 0,
#define ERR(name, status, code, title) ERR_##name,
#include "http/errors.def"
#undef ERR
  ERR_COUNT
};

unsigned err_status(enum err e);
const char *err_code(enum err e);
const char *err_title(enum err e);

#endif

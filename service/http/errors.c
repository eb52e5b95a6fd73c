#include "http/errors.h"

struct err_info {
  unsigned status;
  const char *code;
  const char *title;
};

static const struct err_info registry[ERR_COUNT] = {
    [ERR_NONE] = {200, "ok", "OK"},
#define ERR(name, status, code, title) [ERR_##name] = {status, code, title},
#include "http/errors.def"
#undef ERR
};

unsigned err_status(enum err e) { return registry[e].status; }
const char *err_code(enum err e) { return registry[e].code; }
const char *err_title(enum err e) { return registry[e].title; }

/* Fuzzes the declarative body parser with the specs the handlers use. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "http/json_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  if (body == NULL)
    return 0;
  struct party principal, representative;
  bool has_p, has_r;
  const char *service = NULL, *reason = NULL;
  usec_t from = 0, until = 0;
  long long n = 0;
  bool flag = false;
  const struct json_field create[] = {
      {"principal", SPEC_PARTY, &principal, false, 0, &has_p},
      {"representative", SPEC_PARTY, &representative, false, 0, &has_r},
      {"service", SPEC_STRING, &service, true, 64, NULL},
      {"valid_from", SPEC_TIME_START, &from, true, 0, NULL},
      {"valid_until", SPEC_TIME_END, &until, true, 0, NULL},
      JSON_FIELD_END,
  };
  const struct json_field other[] = {
      {"reason", SPEC_STRING, &reason, false, 500, NULL},
      {"count", SPEC_INTEGER, &n, false, 0, NULL},
      {"flag", SPEC_BOOLEAN, &flag, false, 0, NULL},
      JSON_FIELD_END,
  };
  struct spec_error e;
  if (json_spec_parse(body, create, &e)) {
    /* A success must have filled every required field sensibly. */
    if (service == NULL || (has_p && principal.id[3] != ':') ||
        (has_r && representative.id[3] != ':'))
      abort();
  } else if (e.err == ERR_NONE) {
    abort();
  }
  if (!json_spec_parse(body, other, &e) && e.err == ERR_NONE)
    abort();
  json_decref(body);
  return 0;
}

/* Declarative JSON body parsing: a handler describes the fields it takes
 * in a table; json_spec_parse() checks types, required fields and unknown
 * fields, converts values, and names the field at fault. */
#ifndef MACHTIGEN_JSON_SPEC_H
#define MACHTIGEN_JSON_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "domain/domain.h"
#include "http/errors.h"

enum spec_type {
  SPEC_STRING,     /* out: const char * (borrowed from the json_t) */
  SPEC_PARTY,      /* out: struct party */
  SPEC_TIME_START, /* out: usec_t; a full date is the start of that day */
  SPEC_TIME_END,   /* out: usec_t; a full date is the end of that day */
  SPEC_INTEGER,    /* out: long long */
  SPEC_BOOLEAN,    /* out: bool */
  SPEC_ARRAY,      /* out: const json_t * (borrowed) */
  SPEC_OBJECT,     /* out: const json_t * (borrowed) */
};

struct json_field {
  const char *name;
  enum spec_type type;
  void *out;
  bool required;
  size_t max_len; /* strings: maximum length in bytes (0: 256) */
  bool *present;  /* optional: set to whether the field was given */
};

#define JSON_FIELD_END                                                                             \
  { NULL, SPEC_STRING, NULL, false, 0, NULL }

struct spec_error {
  enum err err;
  const char *field; /* static or borrowed from the spec */
};

/* obj must be a JSON object (else ERR_MALFORMED_JSON with field NULL);
 * null counts as a wrong type, not as an absent field.
 * Returns true when every field is valid. */
bool json_spec_parse(const json_t *obj, const struct json_field *spec, struct spec_error *e);

#endif

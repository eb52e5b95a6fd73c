#include "http/json_spec.h"

#include <string.h>

static const struct json_field *find_field(const struct json_field *spec, const char *name) {
  for (; spec->name != NULL; spec++)
    if (strcmp(spec->name, name) == 0)
      return spec;
  return NULL;
}

static enum err party_error_to_err(enum party_error pe) {
  switch (pe) {
  case PARTY_OK:
    return ERR_NONE;
  case PARTY_BAD_BSN:
    return ERR_INVALID_BSN;
  case PARTY_BAD_FORMAT:
  case PARTY_BAD_KVK:
    break;
  }
  return ERR_INVALID_PARTY;
}

static enum err convert(const struct json_field *f, const json_t *v) {
  switch (f->type) {
  case SPEC_INTEGER:
    if (!json_is_integer(v))
      return ERR_WRONG_TYPE;
    *(long long *)f->out = json_integer_value(v);
    return ERR_NONE;
  case SPEC_BOOLEAN:
    if (!json_is_boolean(v))
      return ERR_WRONG_TYPE;
    *(bool *)f->out = json_is_true(v);
    return ERR_NONE;
  case SPEC_ARRAY:
  case SPEC_OBJECT:
    if (f->type == SPEC_ARRAY ? !json_is_array(v) : !json_is_object(v))
      return ERR_WRONG_TYPE;
    *(const json_t **)f->out = v;
    return ERR_NONE;
  case SPEC_STRING:
  case SPEC_PARTY:
  case SPEC_TIME_START:
  case SPEC_TIME_END:
    break;
  }
  if (!json_is_string(v))
    return ERR_WRONG_TYPE;
  const char *s = json_string_value(v);
  size_t len = json_string_length(v);
  size_t max = f->max_len ? f->max_len : 256;
  /* An embedded NUL would make the C string differ from the JSON one. */
  if (strlen(s) != len)
    return f->type == SPEC_STRING ? ERR_WRONG_TYPE : ERR_INVALID_PARTY;
  switch (f->type) {
  case SPEC_STRING:
    if (len > max)
      return ERR_WRONG_TYPE;
    *(const char **)f->out = s;
    return ERR_NONE;
  case SPEC_PARTY:
    return party_error_to_err(party_parse(s, f->out));
  case SPEC_TIME_START:
  case SPEC_TIME_END:
    return time_parse(s, f->type == SPEC_TIME_START ? BOUND_START : BOUND_END, f->out)
               ? ERR_NONE
               : ERR_INVALID_DATE;
  case SPEC_INTEGER:
  case SPEC_BOOLEAN:
  case SPEC_ARRAY:
  case SPEC_OBJECT:
    break;
  }
  return ERR_WRONG_TYPE;
}

bool json_spec_parse(const json_t *obj, const struct json_field *spec, struct spec_error *e) {
  e->err = ERR_NONE;
  e->field = NULL;
  if (!json_is_object(obj)) {
    e->err = ERR_MALFORMED_JSON; /* JSON, but not the object we take */
    return false;
  }
  const char *key;
  const json_t *value;
  /* Unknown fields first: a typo should be named even if another field is
   * also missing. */
  json_object_foreach((json_t *)obj, key, value) {
    if (find_field(spec, key) == NULL) {
      e->err = ERR_UNKNOWN_FIELD;
      e->field = key;
      return false;
    }
  }
  for (const struct json_field *f = spec; f->name != NULL; f++) {
    const json_t *v = json_object_get(obj, f->name);
    if (f->present != NULL)
      *f->present = v != NULL;
    if (v == NULL) {
      if (f->required) {
        e->err = ERR_MISSING_FIELD;
        e->field = f->name;
        return false;
      }
      continue;
    }
    /* null is not "absent": a field is given with its type or left out. */
    if (json_is_null(v)) {
      e->err = ERR_WRONG_TYPE;
      e->field = f->name;
      return false;
    }
    enum err err = convert(f, v);
    if (err != ERR_NONE) {
      e->err = err;
      e->field = f->name;
      return false;
    }
  }
  return true;
}

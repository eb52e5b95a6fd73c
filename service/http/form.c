#include "http/form.h"

#include <stdlib.h>
#include <string.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes in place over [p, end) into out; returns the end of out or NULL. */
static char *decode(const char *p, const char *end, char *out) {
  while (p < end) {
    if (*p == '+') {
      *out++ = ' ';
      p++;
    } else if (*p == '%') {
      if (end - p < 3)
        return NULL;
      int hi = hexval(p[1]), lo = hexval(p[2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
        return NULL;
      *out++ = (char)(hi * 16 + lo);
      p += 3;
    } else if (*p == '\0') {
      return NULL;
    } else {
      *out++ = *p++;
    }
  }
  *out++ = '\0';
  return out;
}

enum form_error form_parse(const char *body, size_t len, struct form *f, const char **bad) {
  memset(f, 0, sizeof *f);
  *bad = NULL;
  /* Decoding never grows the text; one extra byte per field for NULs. */
  f->buf = malloc(len + 2 * FORM_MAX_FIELDS + 1);
  if (f->buf == NULL)
    return FORM_MALFORMED;
  char *out = f->buf;
  const char *p = body, *end = body + len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp ? amp : end;
    if (stop == p) { /* empty pair, e.g. "a=1&&b=2" */
      p = stop + 1;
      continue;
    }
    if (f->count == FORM_MAX_FIELDS)
      return FORM_TOO_MANY;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    const char *name_end = eq ? eq : stop;
    if (name_end == p)
      return FORM_MALFORMED;
    char *name = out;
    if ((out = decode(p, name_end, out)) == NULL)
      return FORM_MALFORMED;
    char *value = out;
    if ((out = decode(eq ? eq + 1 : stop, stop, out)) == NULL)
      return FORM_MALFORMED;
    for (size_t i = 0; i < f->count; i++) {
      if (strcmp(f->names[i], name) == 0) {
        *bad = f->names[i];
        return FORM_DUPLICATE;
      }
    }
    f->names[f->count] = name;
    f->values[f->count] = value;
    f->count++;
    p = amp ? amp + 1 : end;
  }
  return FORM_OK;
}

void form_free(struct form *f) {
  free(f->buf);
  f->buf = NULL;
  f->count = 0;
}

const char *form_get(const struct form *f, const char *name) {
  for (size_t i = 0; i < f->count; i++)
    if (strcmp(f->names[i], name) == 0)
      return f->values[i];
  return NULL;
}

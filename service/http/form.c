#include "http/form.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

int form_hexval(char c) {
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
      int hi = form_hexval(p[1]), lo = form_hexval(p[2]);
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

/* Percent-decodes [in, in+len) into out (NUL-terminated). */
static bool url_decode(const char *in, size_t len, char *out, size_t outlen) {
  if (len >= outlen)
    return false;
  const char *end = decode(in, in + len, out);
  return end != NULL;
}

bool form_basic_credentials(const char *authorization, char *id, size_t idlen, char *secret,
                            size_t secretlen) {
  if (strncasecmp(authorization, "Basic ", 6) != 0)
    return false;
  const char *b64 = authorization + 6;
  size_t len = strlen(b64);
  if (len == 0 || len > 512 || len % 4 != 0)
    return false;
  unsigned char raw[400];
  int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
  if (n < 0)
    return false;
  /* EVP_DecodeBlock counts padding as zero bytes. */
  for (size_t pad = 0; pad < 2 && len > 0 && b64[len - 1] == '='; pad++) {
    n--;
    len--;
  }
  const unsigned char *colon = memchr(raw, ':', (size_t)n);
  if (colon == NULL || memchr(raw, '\0', (size_t)n) != NULL)
    return false;
  return url_decode((const char *)raw, (size_t)(colon - raw), id, idlen) &&
         url_decode((const char *)colon + 1, (size_t)(n - (colon - raw) - 1), secret, secretlen);
}

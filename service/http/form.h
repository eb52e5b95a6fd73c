/* application/x-www-form-urlencoded bodies (OAuth endpoints). */
#ifndef MACHTIGEN_FORM_H
#define MACHTIGEN_FORM_H

#include <stdbool.h>
#include <stddef.h>

#define FORM_MAX_FIELDS 16

struct form {
  size_t count;
  char *names[FORM_MAX_FIELDS];
  char *values[FORM_MAX_FIELDS];
  char *buf; /* decoded storage, owned */
};

enum form_error {
  FORM_OK,
  FORM_MALFORMED, /* bad percent-escape, empty name, NUL byte */
  FORM_DUPLICATE, /* a name given twice (RFC 6749 §3.1) */
  FORM_TOO_MANY,  /* more than FORM_MAX_FIELDS */
};

/* Parses body[0..len) into f; on FORM_DUPLICATE *bad names the field. */
enum form_error form_parse(const char *body, size_t len, struct form *f, const char **bad);
void form_free(struct form *f);
/* NULL when absent. */
const char *form_get(const struct form *f, const char *name);

/* The value of a hexadecimal digit, or -1. */
int form_hexval(char c);

/* RFC 6749 §2.3.1: "Basic " + base64(urlencode(id) ":" urlencode(secret)).
 * Decodes both into the buffers (NUL-terminated); false when malformed or
 * too long. */
bool form_basic_credentials(const char *authorization, char *id, size_t idlen, char *secret,
                            size_t secretlen);

#endif

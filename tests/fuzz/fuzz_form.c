/* Fuzzes the OAuth endpoints' input parsers: form bodies and Basic
 * client credentials. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct form f;
  const char *bad;
  enum form_error e = form_parse((const char *)data, size, &f, &bad);
  if (e == FORM_OK) {
    /* Every parsed field must be found again by its name, NUL-free. */
    for (size_t i = 0; i < f.count; i++)
      if (form_get(&f, f.names[i]) != f.values[i] || f.names[i][0] == '\0')
        abort();
  } else if (e == FORM_DUPLICATE && bad == NULL) {
    abort();
  }
  form_free(&f);

  char *header = malloc(size + 7);
  memcpy(header, "Basic ", 6);
  memcpy(header + 6, data, size);
  header[size + 6] = '\0';
  char id[128], secret[128];
  if (form_basic_credentials(header, id, sizeof id, secret, sizeof secret) &&
      (strlen(id) >= sizeof id || strlen(secret) >= sizeof secret))
    abort();
  free(header);
  return 0;
}

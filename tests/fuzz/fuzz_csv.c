/* Fuzzes the bulk import's row reader (service/handlers/imports_parse.c):
 * CSV and NDJSON uploads cut into pieces at arbitrary places.  The first
 * byte picks the format and the piece size; the rest is the upload.  Every
 * row must come out as valid UTF-8 fields, a row that passed must have
 * every required column and a forward period, and its binary COPY tuple
 * must read back as exactly 18 fields, the nine columns as the row holds
 * them and a 16-byte id last, whatever the input held. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/imports_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct import_service services[] = {
    {"uwv-ww-aanvragen", 365, true, true, (1u << MK_VOLUNTARY) | (1u << MK_BEWIND)},
    {"uwv-wia-inzien", 730, true, false, (1u << MK_BEWIND) | (1u << MK_MENTORSCHAP)},
};

static char copy_line[IMPORT_COPY_LINE_MAX];

static bool utf8_ok(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    if (c == 0 || c > 0xF4 || (c >= 0x80 && c < 0xC2) || i + len > n)
      return false;
    for (size_t k = 1; k < len; k++)
      if ((s[i + k] & 0xC0) != 0x80)
        return false;
    i += len;
  }
  return true;
}

static bool on_row(void *ctx, struct import_row *row) {
  (void)ctx;
  for (int c = 0; c < IC_COUNT; c++) {
    if (row->field[c] == NULL || strlen(row->field[c]) != row->len[c] ||
        !utf8_ok((const unsigned char *)row->field[c], row->len[c]))
      abort();
  }
  if (row->code == NULL) {
    for (int c = 0; c <= IC_VALID_UNTIL; c++)
      if (row->len[c] == 0)
        abort();
    if (row->until <= row->from || !row->ref_known)
      abort();
  }
  static const struct import_id_base ids = {INT64_C(1780272000000), 0x89abcdefu};
  size_t n = import_row_copy_line(row, &ids, NULL, 0);
  if (n > sizeof copy_line || import_row_copy_line(row, &ids, copy_line, sizeof copy_line) != n)
    abort();
  const unsigned char *b = (const unsigned char *)copy_line, *end = b + n;
  if (n < 2 || ((b[0] << 8) | b[1]) != IMPORT_COPY_FIELDS)
    abort();
  b += 2;
  for (int f = 0; f < IMPORT_COPY_FIELDS; f++) {
    if (end - b < 4)
      abort();
    uint32_t len = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    b += 4;
    bool column = f >= 6 && f < 6 + IC_COUNT;
    if (f == IMPORT_COPY_FIELDS - 1 && len != 16)
      abort();
    if (len == UINT32_MAX) {
      if (column && row->len[f - 6] != 0)
        abort();
      continue;
    }
    if ((size_t)(end - b) < len ||
        (column && (len != row->len[f - 6] || memcmp(b, row->field[f - 6], len) != 0)))
      abort();
    b += len;
  }
  if (b != end)
    abort();
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  enum import_format format = (data[0] & 1) ? IMPORT_NDJSON : IMPORT_CSV;
  size_t piece = 1 + (data[0] >> 1) * 7;
  struct import_reader rd;
  /* 2026-06-01: a fixed "now" keeps runs repeatable. */
  if (!import_reader_init(&rd, format, services, 2, INT64_C(1780272000000000), (size_t)1 << 12,
                          on_row, NULL))
    return 0;
  const char *p = (const char *)data + 1;
  size_t left = size - 1;
  while (left > 0 && import_reader_feed(&rd, p, piece < left ? piece : left)) {
    size_t n = piece < left ? piece : left;
    p += n;
    left -= n;
  }
  import_reader_finish(&rd);
  if (rd.stopped && rd.error[0] == '\0' && rd.header_done)
    abort(); /* only a header problem (or on_row) stops the reader */
  import_reader_free(&rd);
  return 0;
}

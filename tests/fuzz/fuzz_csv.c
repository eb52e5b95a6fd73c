/* Fuzzes the bulk import's row reader (service/handlers/imports_parse.c):
 * CSV and NDJSON uploads cut into pieces at arbitrary places.  The first
 * byte picks the format and the piece size; the rest is the upload.  Every
 * row must come out as valid UTF-8 fields, a row that passed must have
 * every required column and a forward period, and its binary COPY tuple
 * must read back as exactly 18 fields, the nine columns as the row holds
 * them and a 16-byte id last, and its trail line (import_row_change_line)
 * must name that id and unescape to its fields, whatever the input held. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* A passing row's trail line: "c", the id, principal, service,
 * external_ref and kind as COPY text fields, \N, one line break at the
 * end; each field unescapes to the row's. */
static char change_line[IMPORT_CHANGE_LINE_MAX];

static void check_change_line(const struct import_row *row, const struct import_id_base *ids,
                              const unsigned char id[16]) {
  size_t n = import_row_change_line(row, ids, NULL, 0);
  if (n > sizeof change_line || import_row_change_line(row, ids, change_line, n) != n)
    abort();
  if (n < 44 || memcmp(change_line, "c\t", 2) != 0 || change_line[38] != '\t' ||
      memcmp(change_line + n - 3, "\\N\n", 3) != 0 || memchr(change_line, '\n', n - 1) != NULL)
    abort();
  /* The id the staged row has, as uuid_out prints it. */
  char text[37];
  snprintf(text, sizeof text,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1],
           id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13],
           id[14], id[15]);
  if (memcmp(change_line + 2, text, 36) != 0)
    abort();
  static const enum import_column cols[] = {IC_PRINCIPAL, IC_SERVICE, IC_EXTERNAL_REF, IC_KIND};
  const char *at = change_line + 39;
  for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
    char field[IMPORT_CHANGE_LINE_MAX];
    size_t len = 0;
    for (; *at != '\t'; at++) {
      char c = *at;
      if (c == '\\') {
        const char *esc = strchr("\\\\b\bf\fn\nr\rt\tv\v", *++at);
        if (*at == '\0' || esc == NULL)
          abort();
        c = esc[1];
      } else if ((c >= '\b' && c <= '\r') || c == '\0') {
        abort(); /* must have been escaped */
      }
      field[len++] = c;
    }
    at++;
    if (len != row->len[cols[i]] || memcmp(field, row->field[cols[i]], len) != 0)
      abort();
  }
  if (at != change_line + n - 3)
    abort();
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
  if (row->code == NULL)
    check_change_line(row, &ids, (const unsigned char *)end - 16);
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

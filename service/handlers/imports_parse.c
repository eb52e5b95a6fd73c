/* The bulk import's row reader (see imports_parse.h): lines, UTF-8, CSV
 * fields and the header, NDJSON objects, and the keys seen before.  What
 * becomes of each row is in imports_rules.c. */
#include "handlers/imports_parse.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <jansson.h>

const char *const import_column_names[IC_COUNT] = {
    [IC_EXTERNAL_REF] = "external_ref",
    [IC_PRINCIPAL] = "principal",
    [IC_REPRESENTATIVE] = "representative",
    [IC_SERVICE] = "service",
    [IC_KIND] = "kind",
    [IC_VALID_FROM] = "valid_from",
    [IC_VALID_UNTIL] = "valid_until",
    [IC_COURT_REF] = "court_ref",
    [IC_COURT] = "court",
};

/* Columns of a rejects file that a corrected upload may keep: ignored. */
static const char *const ignored_columns[] = {"line", "code", "message"};

#define SCRATCH_SIZE (3 * IMPORT_ROW_MAX + 64)
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"
/* A huge page (x86-64, arm64 with 4 KiB pages). */
#define BLOOM_ALIGN ((size_t)2 << 20)

bool import_reader_init(struct import_reader *rd, enum import_format format,
                        const struct import_service *services, int nservices, usec_t now,
                        size_t bloom_bits, import_row_fn on_row, void *ctx) {
  memset(rd, 0, sizeof *rd);
  rd->format = format;
  rd->services = services;
  rd->nservices = nservices;
  rd->now = now;
  rd->on_row = on_row;
  rd->ctx = ctx;
  rd->header_done = format == IMPORT_NDJSON;
  rd->buf = malloc(IMPORT_ROW_MAX);
  rd->scratch = malloc(SCRATCH_SIZE);
  rd->clean = malloc(3 * IMPORT_ROW_MAX);
  /* Mapped, not malloc'd: untouched pages cost nothing, and all of it goes
   * back to the system at the end (malloc would keep it in the thread's
   * arena).  On huge pages where the system allows (madvise): every row
   * looks at a random word of each filter, and with 4 KiB pages most of
   * those looks also missed the TLB. */
  rd->bloom_bits = bloom_bits;
  rd->bloom_map_len = 2 * (bloom_bits / 8) + BLOOM_ALIGN;
  void *map =
      mmap(NULL, rd->bloom_map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map != MAP_FAILED) {
    rd->bloom_map = map;
    uintptr_t at = ((uintptr_t)map + BLOOM_ALIGN - 1) & ~(uintptr_t)(BLOOM_ALIGN - 1);
    rd->bloom = (unsigned char *)at;
#ifdef MADV_HUGEPAGE
    madvise(rd->bloom, 2 * (bloom_bits / 8), MADV_HUGEPAGE); /* advice: failure is harmless */
#endif
  }
  if (rd->buf == NULL || rd->scratch == NULL || rd->clean == NULL || rd->bloom == NULL) {
    import_reader_free(rd);
    return false;
  }
  return true;
}

void import_reader_free(struct import_reader *rd) {
  free(rd->buf);
  free(rd->scratch);
  free(rd->clean);
  if (rd->bloom_map != NULL)
    munmap(rd->bloom_map, rd->bloom_map_len);
  rd->bloom_map = NULL;
  rd->bloom = NULL;
  rd->buf = NULL;
  rd->scratch = NULL;
  rd->clean = NULL;
}

/* ---- UTF-8 ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), or 0 when it is not one.  NUL is
 * refused too: PostgreSQL text cannot hold it. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c >= 0x01 && c < 0x80)
    return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return len;
}

static bool utf8_valid(const char *text, size_t n) {
  const unsigned char *s = (const unsigned char *)text;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_sequence(s + i, n - i);
    if (k == 0)
      return false;
    i += k;
  }
  return true;
}

/* Copies text to out with every invalid byte (and NUL) replaced by
 * U+FFFD; out holds 3 * n bytes. */
static size_t utf8_clean(const char *text, size_t n, char *out) {
  const unsigned char *s = (const unsigned char *)text;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_sequence(s + i, n - i);
    if (k == 0) {
      memcpy(out + o, UTF8_REPLACEMENT, 3);
      o += 3;
      i++;
    } else {
      memcpy(out + o, s + i, k);
      o += k;
      i += k;
    }
  }
  return o;
}

/* ---- CSV fields ------------------------------------------------------ */

enum csv_result { CSV_OK, CSV_UNTERMINATED_QUOTE, CSV_TEXT_AFTER_QUOTE, CSV_TOO_MANY };

/* Splits one line into at most max fields, unescaped and NUL-terminated
 * in out (which holds n + max bytes).  A field that starts with a quote
 * runs to the next lone quote ("" is a quote inside it); a quote inside
 * an unquoted field is kept as it is.  *count is the number of fields,
 * even past max (those are not stored). */
static enum csv_result csv_split(const char *line, size_t n, char *out, const char **fields,
                                 size_t *lens, int max, int *count) {
  size_t i = 0, o = 0;
  int k = 0;
  enum csv_result result = CSV_OK;
  for (;;) {
    size_t start = o;
    if (i < n && line[i] == '"') {
      i++;
      bool closed = false;
      while (i < n) {
        if (line[i] == '"') {
          if (i + 1 < n && line[i + 1] == '"') {
            out[o++] = '"';
            i += 2;
            continue;
          }
          closed = true;
          i++;
          break;
        }
        out[o++] = line[i++];
      }
      if (!closed && result == CSV_OK)
        result = CSV_UNTERMINATED_QUOTE;
      if (i < n && line[i] != ',') {
        if (result == CSV_OK)
          result = CSV_TEXT_AFTER_QUOTE;
        while (i < n && line[i] != ',')
          out[o++] = line[i++];
      }
    } else {
      while (i < n && line[i] != ',')
        out[o++] = line[i++];
    }
    if (k < max) {
      fields[k] = out + start;
      lens[k] = o - start;
    }
    out[o++] = '\0';
    k++;
    if (k > max) /* stop storing; keep counting */
      o = start;
    if (i >= n)
      break;
    i++; /* the comma */
  }
  *count = k;
  return k > max && result == CSV_OK ? CSV_TOO_MANY : result;
}

/* ---- The header ------------------------------------------------------ */

static bool stop(struct import_reader *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A header problem: the whole import stops with this message. */
static bool stop(struct import_reader *rd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rd->error, sizeof rd->error, fmt, ap);
  va_end(ap);
  rd->stopped = true;
  return false;
}

static int column_of(const char *name, size_t len) {
  for (int c = 0; c < IC_COUNT; c++)
    if (strlen(import_column_names[c]) == len && memcmp(import_column_names[c], name, len) == 0)
      return c;
  for (size_t i = 0; i < sizeof ignored_columns / sizeof ignored_columns[0]; i++)
    if (strlen(ignored_columns[i]) == len && memcmp(ignored_columns[i], name, len) == 0)
      return -1;
  return -2;
}

static bool read_header(struct import_reader *rd, const char *line, size_t n) {
  if (n >= 2 &&
      ((line[0] == '\xFF' && line[1] == '\xFE') || (line[0] == '\xFE' && line[1] == '\xFF')))
    return stop(rd, "The file is UTF-16: save it as UTF-8.");
  if (!utf8_valid(line, n))
    return stop(rd, "The first line is not valid UTF-8: save the file as UTF-8.");
  const char *names[16];
  size_t lens[16];
  int count;
  enum csv_result cr = csv_split(line, n, rd->scratch, names, lens, 16, &count);
  if (cr == CSV_TOO_MANY)
    return stop(rd, "The first line has more columns than an import takes.");
  if (cr != CSV_OK)
    return stop(rd, "The first line is not a valid CSV header.");
  if (count == 1 && memchr(line, ';', n) != NULL)
    return stop(rd, "Separate the columns with commas, not semicolons.");
  bool seen[IC_COUNT] = {false};
  for (int i = 0; i < count; i++) {
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(lens[i] < 60 ? lens[i] : 60), names[i]);
    int c = column_of(names[i], lens[i]);
    if (c == -2)
      return stop(rd,
                  "Unknown column \"%s\": the columns are external_ref, principal, representative, "
                  "service, kind, valid_from, valid_until, court_ref and court.",
                  name);
    if (c >= 0 && seen[c])
      return stop(rd, "The column \"%s\" appears twice.", name);
    if (c >= 0)
      seen[c] = true;
    rd->col[i] = (signed char)c;
  }
  for (int c = 0; c <= IC_VALID_UNTIL; c++)
    if (!seen[c])
      return stop(rd, "The first line must name the columns: \"%s\" is missing.",
                  import_column_names[c]);
  rd->ncols = count;
  rd->header_done = true;
  return true;
}

/* ---- Parsing one row ------------------------------------------------- */

static void parse_csv_row(struct import_reader *rd, const char *line, size_t n,
                          struct import_row *row) {
  const char *fields[16];
  size_t lens[16];
  int count;
  enum csv_result cr = csv_split(line, n, rd->scratch, fields, lens, rd->ncols, &count);
  for (int i = 0; i < count && i < rd->ncols; i++) {
    int c = rd->col[i];
    if (c >= 0) {
      row->field[c] = fields[i];
      row->len[c] = lens[i];
    }
  }
  row->ref_known = cr == CSV_OK && count == rd->ncols;
  if (cr == CSV_UNTERMINATED_QUOTE)
    import_row_reject(row, "malformed-row", "A quoted field has no closing quote on this line.");
  else if (cr == CSV_TEXT_AFTER_QUOTE)
    import_row_reject(row, "malformed-row", "There is text after the closing quote of a field.");
  else if (count != rd->ncols) {
    char counts[64];
    snprintf(counts, sizeof counts, "%d field%s; the header has %d", count, count == 1 ? "" : "s",
             rd->ncols);
    import_row_reject(row, "malformed-row", "This row has %s.", counts);
  }
}

/* An NDJSON object: the import's columns as strings (null or absent for
 * an empty one), plus the ignored ones of a rejects file. */
static void parse_json_row(struct import_reader *rd, const char *line, size_t n,
                           struct import_row *row) {
  json_error_t jerr;
  json_t *obj = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
  if (obj == NULL || !json_is_object(obj)) {
    if (obj == NULL)
      import_row_reject(row, "malformed-row", "This line is not valid JSON: %s.", jerr.text);
    else
      import_row_reject(row, "malformed-row", "This line is not a JSON object.");
    json_decref(obj);
    return;
  }
  size_t o = 0;
  const char *key;
  json_t *value;
  const char *unknown = NULL, *not_string = NULL;
  json_object_foreach(obj, key, value) {
    int c = column_of(key, strlen(key));
    if (c == -2 && unknown == NULL)
      unknown = key;
    if (c < 0)
      continue;
    if (json_is_null(value))
      continue;
    if (!json_is_string(value)) {
      if (not_string == NULL)
        not_string = key;
      continue;
    }
    /* json_string_length <= the line's length, so scratch has room. */
    size_t len = json_string_length(value);
    memcpy(rd->scratch + o, json_string_value(value), len);
    rd->scratch[o + len] = '\0';
    row->field[c] = rd->scratch + o;
    row->len[c] = len;
    o += len + 1;
  }
  row->ref_known = unknown == NULL && not_string == NULL;
  if (unknown != NULL)
    import_row_reject(row, "malformed-row", "Unknown field \"%.60s\".", unknown);
  else if (not_string != NULL)
    import_row_reject(row, "malformed-row", "The field \"%.60s\" must be a string.", not_string);
  json_decref(obj);
}

/* ---- Keys seen before ---------------------------------------------------- */

/* FNV-1a over a then b (b may be NULL), finished with a 64-bit mix so
 * that both halves are usable as independent hashes. */
static uint64_t key_hash(const char *a, size_t na, const char *b, size_t nb) {
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < na; i++)
    h = (h ^ (unsigned char)a[i]) * 0x100000001b3u;
  h = (h ^ 0xff) * 0x100000001b3u; /* a separator that text never holds */
  for (size_t i = 0; i < nb; i++)
    h = (h ^ (unsigned char)b[i]) * 0x100000001b3u;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdu;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53u;
  return h ^ (h >> 33);
}

/* Adds the key to filter (0 or 1); true when it may have been there.
 * Blocked: the three bits lie in one 64-bit word that h picks, so a row
 * costs one cache miss per filter instead of three (the filters are MiBs;
 * measured, the misses were a third of the upload's thread).  With about
 * one key per word a false positive stays near 1 in 5,000 rows at a
 * million, and a false positive only sends a row to the exact SQL check. */
static uint64_t *bloom_word(const struct import_reader *rd, int filter, uint64_t h) {
  uint64_t *words = (uint64_t *)(rd->bloom + (size_t)filter * (rd->bloom_bits / 8));
  return &words[(h >> 18) & (rd->bloom_bits / 64 - 1)];
}

static bool bloom_add(struct import_reader *rd, int filter, uint64_t h) {
  uint64_t *w = bloom_word(rd, filter, h);
  uint64_t mask = (UINT64_C(1) << (h & 63)) | (UINT64_C(1) << ((h >> 6) & 63)) |
                  (UINT64_C(1) << ((h >> 12) & 63));
  bool seen = (*w & mask) == mask;
  *w |= mask;
  return seen;
}

/* The row's two keys, hashed as soon as they are parsed, and their
 * filters' words fetched while the row is checked: the fetch is a cache
 * miss, and the checks give it time. */
struct row_keys {
  uint64_t ref, pair;
};

static struct row_keys hash_keys(const struct import_reader *rd, const struct import_row *row) {
  struct row_keys k = {
      key_hash(row->field[IC_EXTERNAL_REF], row->len[IC_EXTERNAL_REF], NULL, 0),
      key_hash(row->field[IC_PRINCIPAL], row->len[IC_PRINCIPAL], row->field[IC_SERVICE],
               row->len[IC_SERVICE]),
  };
  __builtin_prefetch(bloom_word(rd, 0, k.ref), 1);
  __builtin_prefetch(bloom_word(rd, 1, k.pair), 1);
  return k;
}

static void mark_seen(struct import_reader *rd, struct import_row *row, struct row_keys k) {
  if (row->ref_known && row->len[IC_EXTERNAL_REF] > 0 && bloom_add(rd, 0, k.ref)) {
    row->ref_seen = true;
    rd->ref_seen++;
  }
  if (row->code == NULL && bloom_add(rd, 1, k.pair)) {
    row->pair_seen = true;
    rd->pair_seen++;
  }
}

/* ---- Lines ----------------------------------------------------------- */

static bool blank(const char *line, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (line[i] != ' ' && line[i] != '\t')
      return false;
  return true;
}

/* One complete line (without its line break); cut bytes were dropped. */
static bool take_line(struct import_reader *rd, const char *line, size_t n,
                      unsigned long long cut) {
  rd->line_no++;
  if (cut == 0 && n > 0 && line[n - 1] == '\r')
    n--;
  /* A UTF-8 byte order mark may start the file. */
  if (rd->line_no == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
    line += 3;
    n -= 3;
  }
  if (!rd->header_done) {
    if (cut > 0)
      return stop(rd, "The first line is too long to be a header.");
    if (blank(line, n))
      return stop(rd, "The first line must name the columns.");
    return read_header(rd, line, n);
  }
  if (cut == 0 && blank(line, n))
    return true;
  rd->rows++;
  struct import_row row = {.line = rd->line_no};
  for (int c = 0; c < IC_COUNT; c++)
    row.field[c] = "";
  bool encoding_ok = utf8_valid(line, n);
  const char *text = line;
  size_t text_len = n;
  if (!encoding_ok) {
    /* Report the row with the bad bytes replaced. */
    text_len = utf8_clean(line, n, rd->clean);
    text = rd->clean;
  }
  if (rd->format == IMPORT_CSV)
    parse_csv_row(rd, text, text_len, &row);
  else
    parse_json_row(rd, text, text_len, &row);
  struct row_keys keys = hash_keys(rd, &row);
  if (cut > 0) {
    char size[48];
    snprintf(size, sizeof size, "%llu bytes long; a row may be at most %d",
             (unsigned long long)n + cut, IMPORT_ROW_MAX);
    import_row_reject(&row, "row-too-long", "This line is %s bytes.", size);
    row.ref_known = false;
  } else if (!encoding_ok) {
    import_row_reject(&row, "invalid-encoding",
                      "This line is not valid UTF-8: the bad bytes are shown as \xEF\xBF\xBD.");
    if (strstr(row.field[IC_EXTERNAL_REF], UTF8_REPLACEMENT) != NULL)
      row.ref_known = false;
  } else if (row.code == NULL) {
    import_row_check(&row, rd->services, rd->nservices, rd->now);
  }
  mark_seen(rd, &row, keys);
  if (!rd->on_row(rd->ctx, &row)) {
    rd->stopped = true;
    return false;
  }
  return true;
}

bool import_reader_feed(struct import_reader *rd, const char *data, size_t len) {
  while (len > 0 && !rd->stopped) {
    const char *nl = memchr(data, '\n', len);
    size_t piece = nl != NULL ? (size_t)(nl - data) : len;
    if (nl != NULL && rd->len == 0 && rd->cut == 0 && piece <= IMPORT_ROW_MAX) {
      /* The whole line is in this piece: no copy. */
      take_line(rd, data, piece, 0);
    } else {
      size_t room = IMPORT_ROW_MAX - rd->len;
      size_t keep = piece < room ? piece : room;
      memcpy(rd->buf + rd->len, data, keep);
      rd->len += keep;
      rd->cut += piece - keep;
      if (nl != NULL) {
        take_line(rd, rd->buf, rd->len, rd->cut);
        rd->len = 0;
        rd->cut = 0;
      }
    }
    if (nl == NULL)
      break;
    data += piece + 1;
    len -= piece + 1;
  }
  return !rd->stopped;
}

bool import_reader_finish(struct import_reader *rd) {
  if (rd->stopped)
    return false;
  if (rd->len > 0 || rd->cut > 0) {
    take_line(rd, rd->buf, rd->len, rd->cut);
    rd->len = 0;
    rd->cut = 0;
  }
  if (!rd->stopped && !rd->header_done)
    return stop(rd, "The file is empty: its first line must name the columns.");
  return !rd->stopped;
}

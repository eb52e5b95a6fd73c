/* What becomes of one row: the checks that need only the row and the
 * catalogue, with the same domain functions the API uses, in a fixed
 * order so that each bad row gets exactly one code (the checks that need
 * other rows or the database run in SQL afterwards, db/imports_db_checks.c),
 * and the row as a line of COPY text for the staging table. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "handlers/imports_parse.h"

void import_row_reject(struct import_row *row, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(row->message, sizeof row->message, fmt, ap);
  va_end(ap);
  row->code = code;
}

static const struct import_service *service_find(const struct import_service *services, int n,
                                                 const char *code) {
  for (int i = 0; i < n; i++)
    if (strcmp(services[i].code, code) == 0)
      return &services[i];
  return NULL;
}

static bool check_party(struct import_row *row, enum import_column c, struct party *out) {
  switch (party_parse(row->field[c], out)) {
  case PARTY_OK:
    return true;
  case PARTY_BAD_BSN:
    import_row_reject(row, "invalid-bsn", "The %s's BSN does not pass the 11-check.",
                      import_column_names[c]);
    return false;
  case PARTY_BAD_FORMAT:
  case PARTY_BAD_KVK:
    break;
  }
  import_row_reject(row, "invalid-party",
                    "Write the %s as bsn: and 9 digits, or kvk: and 8 digits.",
                    import_column_names[c]);
  return false;
}

/* YYYY-MM-DD only (no time: imports take whole days). */
static bool check_date(struct import_row *row, enum import_column c, enum period_bound bound,
                       usec_t *out) {
  const char *t = row->field[c];
  bool shape = row->len[c] == 10 && t[4] == '-' && t[7] == '-';
  for (int i = 0; shape && i < 10; i++)
    shape = i == 4 || i == 7 || (t[i] >= '0' && t[i] <= '9');
  if (shape && time_parse(t, bound, out))
    return true;
  import_row_reject(row, "invalid-date", "Write %s as a date like 2026-01-31 (year-month-day).",
                    import_column_names[c]);
  return false;
}

void import_row_check(struct import_row *row, const struct import_service *services, int nservices,
                      usec_t now) {
  for (int c = 0; c <= IC_VALID_UNTIL; c++) {
    if (row->len[c] == 0) {
      import_row_reject(row, "missing-field", "The column %s is empty.", import_column_names[c]);
      return;
    }
  }
  static const struct {
    enum import_column c;
    size_t max;
  } limits[] = {{IC_EXTERNAL_REF, IMPORT_EXTERNAL_REF_MAX},
                {IC_SERVICE, 63},
                {IC_COURT_REF, IMPORT_COURT_REF_MAX},
                {IC_COURT, IMPORT_COURT_MAX}};
  for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    if (row->len[limits[i].c] > limits[i].max) {
      char what[64];
      snprintf(what, sizeof what, "%s is longer than %zu characters",
               import_column_names[limits[i].c], limits[i].max);
      import_row_reject(row, "field-too-long", "The column %s.", what);
      return;
    }
  }
  struct party principal, representative;
  if (!check_party(row, IC_PRINCIPAL, &principal) ||
      !check_party(row, IC_REPRESENTATIVE, &representative))
    return;
  if (principal.kind != PARTY_PERSON) {
    import_row_reject(row, "principal-not-person", "The principal must be a person (bsn:…).");
    return;
  }
  if (strcmp(principal.id, representative.id) == 0) {
    import_row_reject(row, "self-mandate", "The principal and the representative are the same.");
    return;
  }
  enum mandate_kind kind;
  if (!mandate_kind_parse(row->field[IC_KIND], &kind)) {
    import_row_reject(row, "invalid-kind",
                      "The kind must be bewind, curatele, mentorschap or voluntary.");
    return;
  }
  if (mandate_kind_is_legal(kind) && row->len[IC_COURT_REF] == 0) {
    import_row_reject(row, "court-ref-required", "A %s needs the court's reference in court_ref.",
                      row->field[IC_KIND]);
    return;
  }
  if (!check_date(row, IC_VALID_FROM, BOUND_START, &row->from) ||
      !check_date(row, IC_VALID_UNTIL, BOUND_END, &row->until))
    return;
  if (row->until <= row->from) {
    import_row_reject(row, "period-inverted", "valid_until is before valid_from.");
    return;
  }
  const struct import_service *s = service_find(services, nservices, row->field[IC_SERVICE]);
  if (s == NULL) {
    import_row_reject(row, "unknown-service", "There is no service with this code.");
    return;
  }
  bool person = representative.kind == PARTY_PERSON;
  if ((person && !s->allow_person) || (!person && !s->allow_organisation)) {
    import_row_reject(row, "representative-type-not-allowed",
                      "This service does not take %s as representative.",
                      person ? "a person" : "an organisation");
    return;
  }
  if ((s->kinds & (1u << kind)) == 0) {
    import_row_reject(row, "kind-not-allowed",
                      "This service does not take mandates of the kind %s.", row->field[IC_KIND]);
    return;
  }
  switch (period_check(row->from, row->until, s->max_days, now)) {
  case PERIOD_TOO_LONG: {
    char days[32];
    snprintf(days, sizeof days, "%d", s->max_days);
    import_row_reject(row, "period-too-long",
                      "This service allows at most %s days from valid_from.", days);
    return;
  }
  case PERIOD_ALREADY_ENDED:
    import_row_reject(row, "already-ended", "valid_until has already passed.");
    return;
  case PERIOD_INVERTED: /* checked above */
  case PERIOD_OK:
    break;
  }
}

/* ---- COPY text --------------------------------------------------------- */

struct out {
  char *p;
  size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n) {
  if (o->len < o->cap)
    memcpy(o->p + o->len, s, o->len + n <= o->cap ? n : o->cap - o->len);
  o->len += n;
}

static void put_u16(struct out *o, uint16_t v) {
  unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
  put(o, (const char *)b, 2);
}

static void put_u32(struct out *o, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  put(o, (const char *)b, 4);
}

/* A field: its length, then its bytes; an empty text is NULL (-1). */
static void put_text(struct out *o, const char *s, size_t n) {
  if (s == NULL || n == 0) {
    put_u32(o, UINT32_MAX);
    return;
  }
  put_u32(o, (uint32_t)n);
  put(o, s, n);
}

static void put_int8(struct out *o, int64_t v) {
  put_u32(o, 8);
  put_u32(o, (uint32_t)((uint64_t)v >> 32));
  put_u32(o, (uint32_t)v);
}

/* A timestamptz as binary COPY has it: microseconds since 2000-01-01
 * UTC (946,684,800 s after the Unix epoch). */
static void put_timestamp(struct out *o, int64_t unix_usec) {
  put_int8(o, unix_usec - INT64_C(946684800000000));
}

static void put_bool(struct out *o, bool v) {
  put_u32(o, 1);
  put(o, v ? "\1" : "\0", 1);
}

/* import_mandate_id(started_ms, tail, line) of schema/0005: the high and
 * the low 64 bits. */
static void mandate_id(const struct import_id_base *ids, int64_t line, uint64_t id[2]) {
  id[0] = ((uint64_t)ids->started_ms << 16) | 0x7000u | (((uint64_t)line >> 30) & 4095u);
  id[1] = UINT64_C(0x8000000000000000) | (((uint64_t)line & 0x3fffffffu) << 32) | ids->tail;
}

static void put_mandate_id(struct out *o, const struct import_id_base *ids, int64_t line) {
  uint64_t id[2];
  mandate_id(ids, line, id);
  put_u32(o, 16);
  for (int half = 0; half < 2; half++) {
    put_u32(o, (uint32_t)(id[half] >> 32));
    put_u32(o, (uint32_t)id[half]);
  }
}

size_t import_row_copy_line(const struct import_row *row, const struct import_id_base *ids,
                            char *out, size_t cap) {
  struct out o = {out, out != NULL ? cap : 0, 0};
  put_u16(&o, IMPORT_COPY_FIELDS);
  put_int8(&o, row->line);
  put_bool(&o, row->ref_known);
  put_bool(&o, row->ref_seen);
  put_bool(&o, row->pair_seen);
  put_text(&o, row->code, row->code ? strlen(row->code) : 0);
  put_text(&o, row->code ? row->message : NULL, row->code ? strlen(row->message) : 0);
  for (int c = 0; c < IC_COUNT; c++)
    put_text(&o, row->field[c], row->len[c]);
  /* A good row's period and kind as the types the checks and the merge
   * compare and write, converted once here rather than in every scan. */
  if (row->code == NULL) {
    put_timestamp(&o, row->from);
    put_timestamp(&o, row->until);
  } else {
    put_u32(&o, UINT32_MAX);
    put_u32(&o, UINT32_MAX);
  }
  put_text(&o, row->code == NULL ? row->field[IC_KIND] : NULL, row->len[IC_KIND]);
  put_mandate_id(&o, ids, row->line);
  return o.len;
}

/* A field as COPY text prints it (copyto.c, CopyAttributeOutText): a
 * backslash doubled, \b \f \n \r \t \v as such, any other byte as it is. */
static void put_copy_text(struct out *o, const char *s, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    static const char letters[] = "btnvfr"; /* \b \t \n \v \f \r: 8 to 13 */
    unsigned char c = (unsigned char)s[i];
    char esc;
    if (c == '\\')
      esc = '\\';
    else if (c >= '\b' && c <= '\r')
      esc = letters[c - '\b'];
    else
      continue;
    put(o, s + start, i - start);
    put(o, (const char[]){'\\', esc}, 2);
    start = i + 1;
  }
  put(o, s + start, n - start);
}

size_t import_row_change_line(const struct import_row *row, const struct import_id_base *ids,
                              char *out, size_t cap) {
  struct out o = {out, out != NULL ? cap : 0, 0};
  uint64_t id[2];
  mandate_id(ids, row->line, id);
  /* c, tab, the id as uuid_out prints it (lower case), tab. */
  char text[39] = "c\t";
  size_t at = 2;
  for (int nibble = 0; nibble < 32; nibble++) {
    if (nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20)
      text[at++] = '-';
    text[at++] = "0123456789abcdef"[(id[nibble / 16] >> (60 - 4 * (nibble % 16))) & 15];
  }
  text[at++] = '\t';
  put(&o, text, at);
  static const enum import_column cols[] = {IC_PRINCIPAL, IC_SERVICE, IC_EXTERNAL_REF, IC_KIND};
  for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
    put_copy_text(&o, row->field[cols[i]], row->len[cols[i]]);
    put(&o, "\t", 1);
  }
  put(&o, "\\N\n", 3);
  return o.len;
}

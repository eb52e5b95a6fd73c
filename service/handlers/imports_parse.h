/* The bulk import's row reader: splits an upload into lines, reads the CSV
 * header or the NDJSON objects, and checks each row with the API's own
 * rules (domain/).  Pure: no I/O, so the fuzzer drives it directly and the
 * handler only moves bytes in and COPY lines out.
 *
 * A row is one physical line: a quoted CSV field may hold commas and
 * doubled quotes but no line break, so one bad quote costs one row, never
 * the rest of the file. */
#ifndef MACHTIGEN_IMPORTS_PARSE_H
#define MACHTIGEN_IMPORTS_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "domain/domain.h"

/* Longest line (row) kept, without its line break; a longer one is
 * rejected as row-too-long and skipped up to the next line break. */
#define IMPORT_ROW_MAX (64 * 1024)
#define IMPORT_EXTERNAL_REF_MAX 200
#define IMPORT_COURT_REF_MAX 100
#define IMPORT_COURT_MAX 200

enum import_format { IMPORT_CSV, IMPORT_NDJSON };

enum import_column {
  IC_EXTERNAL_REF,
  IC_PRINCIPAL,
  IC_REPRESENTATIVE,
  IC_SERVICE,
  IC_KIND,
  IC_VALID_FROM,
  IC_VALID_UNTIL,
  IC_COURT_REF,
  IC_COURT,
  IC_COUNT
};

/* "external_ref", "principal", … in enum order (also the rejects CSV's). */
extern const char *const import_column_names[IC_COUNT];

/* What a row needs to know of a service. */
struct import_service {
  char code[64];
  int max_days;
  bool allow_person, allow_organisation;
  unsigned kinds; /* bit (1u << enum mandate_kind) per kind allowed */
};

struct import_row {
  long long line;   /* the file's line number (CSV header = 1) */
  const char *code; /* reject code, NULL while the row passes */
  char message[240];
  bool ref_known; /* external_ref is what was sent: used for duplicates and sync */
  /* An earlier row may have had the same external_ref, or the same
   * principal and service (a Bloom filter: false positives only).  The
   * checks across rows look at these rows' keys only. */
  bool ref_seen, pair_seen;
  const char *field[IC_COUNT]; /* NUL-terminated, valid UTF-8; "" when absent */
  size_t len[IC_COUNT];
  usec_t from, until; /* set when code is NULL */
};

/* Called for every row; false stops the reader (the caller keeps why). */
typedef bool (*import_row_fn)(void *ctx, struct import_row *row);

struct import_reader {
  enum import_format format;
  const struct import_service *services;
  int nservices;
  usec_t now;
  import_row_fn on_row;
  void *ctx;

  bool header_done;       /* CSV: the header line has been read */
  int ncols;              /* CSV: columns in the header */
  signed char col[16];    /* CSV: header position -> enum import_column, -1 ignored */
  char *buf;              /* the line being collected (at most IMPORT_ROW_MAX bytes) */
  size_t len;             /* bytes in buf */
  unsigned long long cut; /* bytes of this line beyond IMPORT_ROW_MAX, dropped */
  char *scratch;          /* unescaped fields of the current row */
  char *clean;            /* a line with invalid UTF-8 replaced */
  long long line_no;      /* lines completed so far */
  long long rows;         /* data rows seen (blank lines are not rows) */
  long long ref_seen;     /* rows flagged ref_seen */
  long long pair_seen;    /* rows flagged pair_seen */
  unsigned char *bloom;   /* two filters: external_refs, principal + service */
  size_t bloom_bits;      /* bits in each */
  void *bloom_map;        /* the mapping that holds them, and its size */
  size_t bloom_map_len;
  bool stopped;    /* a header error, or on_row said stop */
  char error[200]; /* the header error, for the whole import's answer */
};

/* Bits in each Bloom filter: 2^26 (8 MiB) keeps false positives near
 * 1 in 5,000 rows for a million-row file. */
#define IMPORT_BLOOM_BITS ((size_t)1 << 26)

/* bloom_bits: a power of two of at least 64 (IMPORT_BLOOM_BITS).  false
 * when out of memory. */
bool import_reader_init(struct import_reader *rd, enum import_format format,
                        const struct import_service *services, int nservices, usec_t now,
                        size_t bloom_bits, import_row_fn on_row, void *ctx);
void import_reader_free(struct import_reader *rd);

/* Takes the next piece of the upload.  false once the reader stopped. */
bool import_reader_feed(struct import_reader *rd, const char *data, size_t len);

/* The upload is complete: a last line without a line break is a row; a
 * CSV upload without a header line is an error.  false when stopped. */
bool import_reader_finish(struct import_reader *rd);

/* imports_rules.c: the checks that need only the row and the catalogue;
 * sets row->code and row->message for the first rule it breaks, else
 * row->from and row->until. */
void import_row_check(struct import_row *row, const struct import_service *services, int nservices,
                      usec_t now);
/* Rejects the row with code and a plain-language message. */
void import_row_reject(struct import_row *row, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What the ids of an import's new mandates are made of: the import's
 * start in milliseconds and 32 random bits of its id, with the row's line
 * (the layout of import_mandate_id in schema/0005: UUID version 7,
 * time-ordered, so a million new ids go to the end of the primary key). */
struct import_id_base {
  int64_t started_ms;
  uint32_t tail;
};

/* The row as one tuple of PostgreSQL's binary COPY format for the
 * staging table (parsed faster than text: measured 18% less for the
 * staging COPY, which bounds the upload): line, ref_known, ref_seen,
 * pair_seen, code, message, the nine columns (an empty one NULL),
 * valid_from and valid_until in microseconds, and the id the row's
 * mandate gets if it is new.  Writes at most cap bytes
 * and returns the length the tuple needs (call again with a larger
 * buffer when it is larger than cap). */
size_t import_row_copy_line(const struct import_row *row, const struct import_id_base *ids,
                            char *out, size_t cap);

/* The audit trail's line for the new mandate of a row that passed (code
 * NULL): the columns change … old of import_changes (schema/0006) as
 * PostgreSQL's COPY text prints them, so that it digests as `audit
 * verify` reads it back: 'c', the id import_row_copy_line gives the row,
 * principal, service, external_ref, kind, no old values; ends in a line
 * break, and no line break is in it.  Written while the upload is read,
 * to be passed to the trail for each mandate the merge inserts
 * (db/imports_db_audit.c), instead of the merge sending the rows back.
 * Writes at most cap bytes and returns the length the line needs. */
size_t import_row_change_line(const struct import_row *row, const struct import_id_base *ids,
                              char *out, size_t cap);

/* Longest change line (the checks bound each field; escaping at most
 * doubles one). */
#define IMPORT_CHANGE_LINE_MAX (2 * (IMPORT_EXTERNAL_REF_MAX + 128) + 64)

#define IMPORT_COPY_FIELDS 19
/* The stream's header (signature, flags, no extension) and trailer. */
#define IMPORT_COPY_HEADER "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0"
#define IMPORT_COPY_HEADER_LEN 19
#define IMPORT_COPY_TRAILER "\377\377"
#define IMPORT_COPY_TRAILER_LEN 2

/* Longest tuple a row can produce (bad bytes shown as U+FFFD). */
#define IMPORT_COPY_LINE_MAX (6 * IMPORT_ROW_MAX + 1024)

#endif

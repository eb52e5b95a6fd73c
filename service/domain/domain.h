/* Pure domain rules: no I/O, no allocation beyond the caller's buffers. */
#ifndef MACHTIGEN_DOMAIN_H
#define MACHTIGEN_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Parties ------------------------------------------------------ */

enum party_kind { PARTY_PERSON, PARTY_ORGANISATION };

/* "bsn:" + 9 digits or "kvk:" + 8 digits, plus NUL. */
#define PARTY_MAX 16

struct party {
  enum party_kind kind;
  char id[PARTY_MAX]; /* canonical text form, e.g. "bsn:123456782" */
};

/* true when the 9 characters at digits are digits passing the 11-check
 * (and not 000000000). */
bool bsn_valid(const char *digits, size_t len);

enum party_error { PARTY_OK, PARTY_BAD_FORMAT, PARTY_BAD_BSN, PARTY_BAD_KVK };

/* Parses "bsn:<9 digits>" or "kvk:<8 digits>" exactly (no spaces). */
enum party_error party_parse(const char *text, struct party *out);

/* ---- Level of assurance ------------------------------------------ */

enum loa { LOA_NONE = 0, LOA_BASIS, LOA_MIDDEN, LOA_SUBSTANTIEEL, LOA_HOOG };

/* LOA_NONE for anything but the four names. */
enum loa loa_parse(const char *text);
const char *loa_name(enum loa loa); /* NULL for LOA_NONE */

/* ---- Time --------------------------------------------------------- */

/* Microseconds since the Unix epoch, UTC (PostgreSQL's resolution). */
typedef int64_t usec_t;
#define USEC_PER_SEC INT64_C(1000000)
#define USEC_PER_DAY (INT64_C(86400) * USEC_PER_SEC)

enum period_bound { BOUND_START, BOUND_END };

/* Parses an RFC 3339 date-time ("2026-01-31T10:00:00Z",
 * "2026-01-31T10:00:00.5+01:00") or a full date ("2026-01-31").  A date
 * means the start of that day in Europe/Amsterdam, or for BOUND_END the
 * end of that day (the last microsecond before the next day starts).
 * Returns false for anything else, including impossible dates. */
bool time_parse(const char *text, enum period_bound bound, usec_t *out);

/* Writes "YYYY-MM-DDTHH:MM:SSZ" (fraction only when non-zero,
 * 6 digits) into buf (at least 32 bytes). */
void time_format(usec_t t, char *buf, size_t len);

/* UTC offset of Europe/Amsterdam at instant t, in seconds (3600 or 7200). */
int amsterdam_offset(usec_t t);

/* ---- Mandates ----------------------------------------------------- */

enum mandate_status {
  MS_PENDING,
  MS_ACTIVE,
  MS_DECLINED,
  MS_REVOKED,
  MS_SUSPENDED,
};

enum mandate_kind { MK_VOLUNTARY, MK_BEWIND, MK_CURATELE, MK_MENTORSCHAP };

/* Who did what: the caller's side in a mandate. */
enum mandate_role { ROLE_NONE, ROLE_PRINCIPAL, ROLE_REPRESENTATIVE, ROLE_ADMIN };

enum mandate_action {
  MA_ACCEPT,
  MA_DECLINE,
  MA_REVOKE,
  MA_SUSPEND,
  MA_RESUME,
};

const char *mandate_status_name(enum mandate_status s);
bool mandate_status_parse(const char *text, enum mandate_status *out);
const char *mandate_kind_name(enum mandate_kind k);
bool mandate_kind_parse(const char *text, enum mandate_kind *out);
const char *mandate_action_name(enum mandate_action a);
bool mandate_kind_is_legal(enum mandate_kind k); /* bewind, curatele, mentorschap */

/* Requests (pending mandates) lapse after this long. */
#define MANDATE_REQUEST_LAPSE_USEC (INT64_C(21) * USEC_PER_DAY)
#define SERVICE_MAX_DURATION_DAYS 1827 /* 5 years incl. leap days */

/* Outcome of a state change check. */
enum transition_result {
  TR_OK,
  TR_FORBIDDEN, /* party may not do this (e.g. initiator accepting) -> 403 */
  TR_CONFLICT,  /* state forbids the action (accepting a revoked one) -> 409 */
  TR_LAPSED,    /* pending request older than 21 days -> 409 */
};

/* The mandate state machine.  initiator is the side that created the
 * mandate (pending mandates wait for the other side); actor is the caller.
 * On TR_OK *next holds the new status.  now/created decide lapse. */
enum transition_result mandate_transition(enum mandate_status current, enum mandate_role initiator,
                                          enum mandate_role actor, enum mandate_action action,
                                          usec_t created, usec_t now, enum mandate_status *next);

/* The status citizens see: "expired" (active past its end) and "lapsed"
 * (a request not accepted within 21 days) are derived from time. */
const char *mandate_effective_status(enum mandate_status status, usec_t valid_until, usec_t created,
                                     usec_t now);

/* Whether a mandate can be used to act right now, and if not why. */
enum mandate_use {
  MU_USABLE,
  MU_PENDING,
  MU_LAPSED,
  MU_DECLINED,
  MU_REVOKED,
  MU_SUSPENDED,
  MU_NOT_STARTED,
  MU_ENDED, /* also: ends within the next second */
};

enum mandate_use mandate_use_now(enum mandate_status status, usec_t valid_from, usec_t valid_until,
                                 usec_t created, usec_t now);

enum period_error {
  PERIOD_OK,
  PERIOD_INVERTED,      /* valid_until <= valid_from */
  PERIOD_TOO_LONG,      /* longer than the service's maximum */
  PERIOD_ALREADY_ENDED, /* valid_until <= now */
};

/* valid_until must be after valid_from, in the future, and at most
 * max_days days after valid_from, inclusive on a day basis: a full-date
 * valid_until (end of that day) counts as that day, so from 2026-01-01
 * until 2026-01-31 is 30 days.  Days are counted on the Amsterdam
 * clock, so a period across a DST switch neither gains nor loses one. */
enum period_error period_check(usec_t from, usec_t until, int max_days, usec_t now);

/* Where a page of activity starts: before the item at (seq, n); seq 0
 * for the newest.  An item is an event of the audit chain (n 0) or the
 * n-th change of the import its event seq sealed (schema/0006). */
struct activity_cursor {
  long long seq, n;
};

/* The cursor as clients see it: "<seq>" or "<seq>.<n>", each of 1 to 18
 * digits and at least 1.  false on anything else. */
bool activity_cursor_parse(const char *text, struct activity_cursor *c);

#endif

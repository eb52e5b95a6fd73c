/* Mandate names and the mandate state machine. */
#include "domain/domain.h"

#include <string.h>

static const char *const status_names[] = {
    [MS_PENDING] = "pending", [MS_ACTIVE] = "active",       [MS_DECLINED] = "declined",
    [MS_REVOKED] = "revoked", [MS_SUSPENDED] = "suspended",
};

static const char *const kind_names[] = {
    [MK_VOLUNTARY] = "voluntary",
    [MK_BEWIND] = "bewind",
    [MK_CURATELE] = "curatele",
    [MK_MENTORSCHAP] = "mentorschap",
};

static const char *const action_names[] = {
    [MA_ACCEPT] = "accept",   [MA_DECLINE] = "decline", [MA_REVOKE] = "revoke",
    [MA_SUSPEND] = "suspend", [MA_RESUME] = "resume",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Index of text in names, or -1. */
static int lookup(const char *const *names, size_t count, const char *text) {
  if (text == NULL) {
    return -1;
  }
  for (size_t i = 0; i < count; i++) {
    if (strcmp(text, names[i]) == 0) {
      return (int)i;
    }
  }
  return -1;
}

static const char *name_of(const char *const *names, size_t count, int value) {
  return value >= 0 && (size_t)value < count ? names[value] : NULL;
}

const char *mandate_status_name(enum mandate_status s) {
  return name_of(status_names, COUNT(status_names), (int)s);
}

bool mandate_status_parse(const char *text, enum mandate_status *out) {
  int i = lookup(status_names, COUNT(status_names), text);
  if (i < 0) {
    return false;
  }
  *out = (enum mandate_status)i;
  return true;
}

const char *mandate_kind_name(enum mandate_kind k) {
  return name_of(kind_names, COUNT(kind_names), (int)k);
}

bool mandate_kind_parse(const char *text, enum mandate_kind *out) {
  int i = lookup(kind_names, COUNT(kind_names), text);
  if (i < 0) {
    return false;
  }
  *out = (enum mandate_kind)i;
  return true;
}

const char *mandate_action_name(enum mandate_action a) {
  return name_of(action_names, COUNT(action_names), (int)a);
}

bool mandate_kind_is_legal(enum mandate_kind k) {
  return k == MK_BEWIND || k == MK_CURATELE || k == MK_MENTORSCHAP;
}

static bool is_party(enum mandate_role r) {
  return r == ROLE_PRINCIPAL || r == ROLE_REPRESENTATIVE;
}

/* May this role take this action at all, whatever the state?  Only the
 * side that did not initiate answers a request; either side and the
 * administrator may revoke; only the administrator suspends and resumes. */
static bool role_may(enum mandate_role initiator, enum mandate_role actor,
                     enum mandate_action action) {
  switch (action) {
  case MA_ACCEPT:
  case MA_DECLINE:
    return is_party(actor) && actor != initiator;
  case MA_REVOKE:
    return is_party(actor) || actor == ROLE_ADMIN;
  case MA_SUSPEND:
  case MA_RESUME:
    return actor == ROLE_ADMIN;
  }
  return false;
}

/* The state the action leads to from current, or false when the state
 * does not allow it.  Revoking a pending mandate is the initiator
 * withdrawing the request (or the other side turning it down). */
static bool next_state(enum mandate_status current, enum mandate_action action,
                       enum mandate_status *next) {
  switch (action) {
  case MA_ACCEPT:
    *next = MS_ACTIVE;
    return current == MS_PENDING;
  case MA_DECLINE:
    *next = MS_DECLINED;
    return current == MS_PENDING;
  case MA_REVOKE:
    *next = MS_REVOKED;
    return current == MS_PENDING || current == MS_ACTIVE || current == MS_SUSPENDED;
  case MA_SUSPEND:
    *next = MS_SUSPENDED;
    return current == MS_ACTIVE;
  case MA_RESUME:
    *next = MS_ACTIVE;
    return current == MS_SUSPENDED;
  }
  return false;
}

static bool request_lapsed(usec_t created, usec_t now) {
  /* Unsigned difference: no overflow for any pair with now >= created. */
  return now >= created &&
         (uint64_t)now - (uint64_t)created >= (uint64_t)MANDATE_REQUEST_LAPSE_USEC;
}

/* Checked in this order: the role (403), the state (409), then the lapse
 * of a pending request (409), which only stops answering it: the
 * initiator may still withdraw a lapsed request. */
enum transition_result mandate_transition(enum mandate_status current, enum mandate_role initiator,
                                          enum mandate_role actor, enum mandate_action action,
                                          usec_t created, usec_t now, enum mandate_status *next) {
  if (!role_may(initiator, actor, action)) {
    return TR_FORBIDDEN;
  }
  enum mandate_status to;
  if (!next_state(current, action, &to)) {
    return TR_CONFLICT;
  }
  if ((action == MA_ACCEPT || action == MA_DECLINE) && request_lapsed(created, now)) {
    return TR_LAPSED;
  }
  if (next != NULL) {
    *next = to;
  }
  return TR_OK;
}

enum mandate_use mandate_use_now(enum mandate_status status, usec_t valid_from, usec_t valid_until,
                                 usec_t created, usec_t now) {
  switch (status) {
  case MS_PENDING:
    return created + MANDATE_REQUEST_LAPSE_USEC <= now ? MU_LAPSED : MU_PENDING;
  case MS_DECLINED:
    return MU_DECLINED;
  case MS_REVOKED:
    return MU_REVOKED;
  case MS_SUSPENDED:
    return MU_SUSPENDED;
  case MS_ACTIVE:
    break;
  }
  if (valid_from > now)
    return MU_NOT_STARTED;
  if (valid_until <= now + USEC_PER_SEC)
    return MU_ENDED;
  return MU_USABLE;
}

const char *mandate_effective_status(enum mandate_status status, usec_t valid_until, usec_t created,
                                     usec_t now) {
  if (status == MS_ACTIVE && valid_until <= now)
    return "expired";
  if (status == MS_PENDING && created + MANDATE_REQUEST_LAPSE_USEC <= now)
    return "lapsed";
  return mandate_status_name(status);
}

/* ---- Activity cursor ---------------------------------------------------- */

static bool parse_count(const char *s, size_t len, long long min, long long *out) {
  long long v = 0;
  if (len == 0 || len > 18)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return v >= min;
}

bool activity_cursor_parse(const char *text, struct activity_cursor *c) {
  const char *dot = strchr(text, '.');
  size_t seq_len = dot ? (size_t)(dot - text) : strlen(text);
  c->n = 0;
  return parse_count(text, seq_len, 1, &c->seq) &&
         (dot == NULL || parse_count(dot + 1, strlen(dot + 1), 1, &c->n));
}

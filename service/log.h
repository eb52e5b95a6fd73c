/* JSON lines on stderr.  Never a raw BSN (log_pseudonym), token or secret. */
#ifndef MACHTIGEN_LOG_H
#define MACHTIGEN_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* fmt is a printf format for the "msg" field; the result is JSON-escaped. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs an HTTP request line. */
void log_request(const char *method, const char *path, unsigned status, const char *code, double ms,
                 const char *actor_pseudonym);

/* A keyed pseudonym of a party id ("bsn:..."): the first 16 hex characters
 * of HMAC-SHA256(MACHTIGEN_PSEUDONYM_KEY, party).  out >= 17 bytes. */
void log_pseudonym(const char *party, char *out, size_t len);

#endif

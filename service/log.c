#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"

static const char *level_name[] = {"debug", "info", "warn", "error"};

static void emit(json_t *line) {
  char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
  if (text != NULL) {
    /* One write per line so lines from threads do not interleave. */
    size_t n = strlen(text);
    text[n] = '\n';
    fwrite(text, 1, n + 1, stderr);
    free(text);
  }
  json_decref(line);
}

static json_t *line_start(enum log_level level) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  return json_pack("{s:s, s:s}", "ts", when, "level", level_name[level]);
}

void log_msg(enum log_level level, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *line = line_start(level);
  json_t *m = json_string(msg);
  json_object_set_new(line, "msg", m != NULL ? m : json_string("(not utf-8)"));
  emit(line);
}

void log_request(const char *method, const char *path, unsigned status, const char *code, double ms,
                 const char *actor_pseudonym) {
  json_t *line = line_start(status >= 500 ? LOG_ERROR : LOG_INFO);
  json_object_set_new(line, "method", json_string(method));
  /* Paths carry no BSN by design (parties go in bodies), only mandate ids. */
  json_t *p = json_string(path);
  json_object_set_new(line, "path", p ? p : json_string("(not utf-8)"));
  json_object_set_new(line, "status", json_integer(status));
  if (code != NULL)
    json_object_set_new(line, "code", json_string(code));
  json_object_set_new(line, "ms", json_real(ms));
  if (actor_pseudonym != NULL && actor_pseudonym[0] != '\0')
    json_object_set_new(line, "actor", json_string(actor_pseudonym));
  emit(line);
}

void log_pseudonym(const char *party, char *out, size_t len) {
  unsigned char mac[32];
  unsigned maclen = sizeof mac;
  HMAC(EVP_sha256(), config.pseudonym_key, sizeof config.pseudonym_key,
       (const unsigned char *)party, strlen(party), mac, &maclen);
  static const char hex[] = "0123456789abcdef";
  size_t i = 0;
  for (; i < 8 && 2 * i + 2 < len; i++) {
    out[2 * i] = hex[mac[i] >> 4];
    out[2 * i + 1] = hex[mac[i] & 15];
  }
  out[2 * i] = '\0';
}

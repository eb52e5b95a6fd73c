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

/* Appends text as the inside of a JSON string (ASCII only: anything else
 * is \u-escaped byte by byte, so a line is valid whatever a path holds). */
static size_t escape_into(char *out, size_t room, const char *text) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p != '\0' && n + 7 < room; p++) {
    if (*p == '"' || *p == '\\') {
      out[n++] = '\\';
      out[n++] = (char)*p;
    } else if (*p < 0x20 || *p >= 0x7f) {
      n += (size_t)snprintf(out + n, room - n, "\\u00%c%c", hex[*p >> 4], hex[*p & 15]);
    } else {
      out[n++] = (char)*p;
    }
  }
  out[n] = '\0';
  return n;
}

/* The access log is written for every request, so it is put together by
 * hand rather than through a JSON library. */
void log_request(const char *method, const char *path, unsigned status, const char *code, double ms,
                 const char *actor_pseudonym) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char esc_method[32], esc_path[600], esc_code[80], esc_actor[40];
  escape_into(esc_method, sizeof esc_method, method);
  escape_into(esc_path, sizeof esc_path, path);
  escape_into(esc_code, sizeof esc_code, code ? code : "");
  escape_into(esc_actor, sizeof esc_actor, actor_pseudonym ? actor_pseudonym : "");
  char line[1024];
  int n = snprintf(line, sizeof line,
                   "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                   "\"method\":\"%s\",\"path\":\"%s\",\"status\":%u%s%s%s,\"ms\":%.3f%s%s%s}\n",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, status >= 500 ? "error" : "info", esc_method, esc_path,
                   status, code ? ",\"code\":\"" : "", code ? esc_code : "", code ? "\"" : "", ms,
                   esc_actor[0] ? ",\"actor\":\"" : "", esc_actor, esc_actor[0] ? "\"" : "");
  if (n > 0)
    fwrite(line, 1, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, stderr);
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

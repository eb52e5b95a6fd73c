#include "client.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h, stddef.h and stdint.h first. */
#include <cmocka.h>

#include <curl/curl.h>

static const char *const required_env[] = {"MACHTIGEN_URL", "IDP_URL", "DATABASE_URL",
                                           "API_CAPTURE"};

static pthread_mutex_t capture_lock = PTHREAD_MUTEX_INITIALIZER;

void api_init(void) {
  /* First, so that stale lines never count, even when this run fails. */
  const char *fresh = getenv("API_CAPTURE_FRESH");
  const char *capture_path = getenv("API_CAPTURE");
  if (fresh != NULL && strcmp(fresh, "1") == 0 && capture_path != NULL && capture_path[0] != '\0') {
    int fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
      fprintf(stderr, "FAIL: cannot create the capture %s\n", capture_path);
      exit(1);
    }
    close(fd);
  }
  for (size_t i = 0; i < sizeof required_env / sizeof required_env[0]; i++) {
    const char *v = getenv(required_env[i]);
    if (v == NULL || v[0] == '\0') {
      fprintf(stderr,
              "FAIL: %s is not set. The API tests need the running server, dev-idp and "
              "PostgreSQL: run them through `tools/dev test` (or `meson test --suite api` "
              "with MACHTIGEN_URL, IDP_URL and DATABASE_URL set).\n",
              required_env[i]);
      exit(1);
    }
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "FAIL: libcurl initialisation failed\n");
    exit(1);
  }
}

const char *api_env(const char *name) {
  const char *v = getenv(name);
  return v != NULL ? v : "";
}

char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  return s;
}

/* ---- Capture ---------------------------------------------------------- */

static void capture(const struct api_response *r) {
  json_t *body;
  if (r->json != NULL)
    body = json_incref(r->json);
  else if (r->raw_len > 0)
    body = json_stringn(r->raw, r->raw_len); /* not JSON: the validator says so */
  else
    body = json_null();
  if (body == NULL)
    body = json_string("(a body that is not UTF-8)");
  json_t *line =
      json_pack("{s:s, s:s, s:I, s:s?, s:o}", "method", r->method, "path", r->path, "status",
                (json_int_t)r->status, "content_type", r->content_type, "body", body);
  char *text = line ? json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
  json_decref(line);
  if (text == NULL) {
    fprintf(stderr, "capture: cannot encode the response to %s %s\n", r->method, r->path);
    return;
  }
  pthread_mutex_lock(&capture_lock);
  FILE *f = fopen(api_env("API_CAPTURE"), "a");
  if (f != NULL) {
    fprintf(f, "%s\n", text);
    fclose(f);
  } else {
    fprintf(stderr, "capture: cannot open %s\n", api_env("API_CAPTURE"));
  }
  pthread_mutex_unlock(&capture_lock);
  free(text);
}

/* ---- Requests ----------------------------------------------------------- */

struct sink {
  char *data;
  size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct sink *s = userdata;
  size_t n = size * nmemb;
  char *grown = realloc(s->data, s->len + n + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + s->len, ptr, n);
  s->data = grown;
  s->len += n;
  s->data[s->len] = '\0';
  return n;
}

static char *trimmed_copy(const char *v, size_t len) {
  while (len > 0 && (*v == ' ' || *v == '\t')) {
    v++;
    len--;
  }
  while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
    len--;
  return strndup(v, len);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata) {
  struct api_response *r = userdata;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    /* A new status line (after 100 Continue): forget earlier headers. */
    char **all[] = {&r->content_type,     &r->etag,         &r->location, &r->allow,
                    &r->www_authenticate, &r->cache_control};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
      free(*all[i]);
      *all[i] = NULL;
    }
    return n;
  }
  static const struct {
    const char *name;
    size_t offset;
  } wanted[] = {
      {"content-type", offsetof(struct api_response, content_type)},
      {"etag", offsetof(struct api_response, etag)},
      {"location", offsetof(struct api_response, location)},
      {"allow", offsetof(struct api_response, allow)},
      {"www-authenticate", offsetof(struct api_response, www_authenticate)},
      {"cache-control", offsetof(struct api_response, cache_control)},
  };
  const char *colon = memchr(line, ':', n);
  if (colon == NULL)
    return n;
  size_t name_len = (size_t)(colon - line);
  for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
    if (strlen(wanted[i].name) == name_len && strncasecmp(line, wanted[i].name, name_len) == 0) {
      char **slot = (char **)((char *)r + wanted[i].offset);
      free(*slot);
      *slot = trimmed_copy(colon + 1, n - name_len - 1);
    }
  }
  return n;
}

static bool has_header(const char *const *headers, const char *name) {
  size_t len = strlen(name);
  for (; headers != NULL && *headers != NULL; headers++)
    if (strncasecmp(*headers, name, len) == 0 && (*headers)[len] == ':')
      return true;
  return false;
}

struct api_response *api_request(const char *method, const char *path, const char *const *headers,
                                 const char *body, size_t body_len) {
  struct api_response *r = calloc(1, sizeof *r);
  if (r == NULL)
    abort();
  snprintf(r->method, sizeof r->method, "%s", method);
  r->path = strdup(path);
  char *url = xasprintf("%s%s", api_env("MACHTIGEN_URL"), path);

  struct curl_slist *list = NULL;
  for (const char *const *h = headers; h != NULL && *h != NULL; h++)
    list = curl_slist_append(list, *h);
  /* Only what the test asks for: no default Content-Type, and Expect only
   * for large bodies (so a 413 can come before the body is sent). */
  if (!has_header(headers, "Content-Type"))
    list = curl_slist_append(list, "Content-Type:");
  if (!has_header(headers, "Expect"))
    list = curl_slist_append(list, body_len > 16384 ? "Expect: 100-continue" : "Expect:");

  CURL *curl = curl_easy_init();
  if (curl == NULL)
    abort();
  struct sink sink = {NULL, 0};
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, r->error);
  if (body != NULL) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
  } else {
    r->status = 0;
    if (r->error[0] == '\0')
      snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
  }
  curl_easy_cleanup(curl);
  curl_slist_free_all(list);
  free(url);

  r->raw = sink.data != NULL ? sink.data : strdup("");
  r->raw_len = sink.len;
  if (r->raw_len > 0)
    r->json = json_loadb(r->raw, r->raw_len, JSON_REJECT_DUPLICATES, NULL);
  if (r->status != 0)
    capture(r);
  return r;
}

struct api_response *api_call(const char *method, const char *path, const char *token,
                              const char *body) {
  char *auth = token != NULL ? xasprintf("Authorization: Bearer %s", token) : NULL;
  const char *headers[3] = {NULL, NULL, NULL};
  size_t n = 0;
  if (auth != NULL)
    headers[n++] = auth;
  if (body != NULL)
    headers[n++] = "Content-Type: application/json";
  struct api_response *r = api_request(method, path, headers, body, body ? strlen(body) : 0);
  free(auth);
  return r;
}

struct api_response *api_action(const char *action, const char *id, const char *token,
                                const char *if_match, const char *body) {
  char *path = xasprintf("/v1/mandates/%s/%s", id, action);
  char *auth = token != NULL ? xasprintf("Authorization: Bearer %s", token) : NULL;
  char *match = if_match != NULL ? xasprintf("If-Match: %s", if_match) : NULL;
  const char *headers[4] = {NULL, NULL, NULL, NULL};
  size_t n = 0;
  if (auth != NULL)
    headers[n++] = auth;
  if (match != NULL)
    headers[n++] = match;
  if (body != NULL)
    headers[n++] = "Content-Type: application/json";
  struct api_response *r = api_request("POST", path, headers, body, body ? strlen(body) : 0);
  free(path);
  free(auth);
  free(match);
  return r;
}

void api_response_free(struct api_response *r) {
  if (r == NULL)
    return;
  free(r->path);
  free(r->content_type);
  free(r->etag);
  free(r->location);
  free(r->allow);
  free(r->www_authenticate);
  free(r->cache_control);
  free(r->raw);
  json_decref(r->json);
  free(r);
}

const char *api_str(const struct api_response *r, const char *key) {
  return json_string_value(json_object_get(r->json, key));
}

const char *api_describe(const struct api_response *r) {
  static __thread char buf[1024];
  char path[120];
  size_t plen = strlen(r->path);
  if (plen < sizeof path)
    snprintf(path, sizeof path, "%s", r->path);
  else
    snprintf(path, sizeof path, "%.60s…(%zu bytes)", r->path, plen);
  if (r->status == 0)
    snprintf(buf, sizeof buf, "%s %s: no HTTP answer (%s)", r->method, path, r->error);
  else
    snprintf(buf, sizeof buf, "%s %s -> %ld %s: %.600s", r->method, path, r->status,
             r->content_type ? r->content_type : "(no Content-Type)", r->raw);
  return buf;
}

void api_expect_status(const struct api_response *r, long status) {
  if (r->status != status)
    fail_msg("expected status %ld: %s", status, api_describe(r));
}

static bool media_is(const char *content_type, const char *essence) {
  if (content_type == NULL)
    return false;
  size_t n = strlen(essence);
  return strncasecmp(content_type, essence, n) == 0 &&
         (content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ');
}

void api_expect_problem(const struct api_response *r, long status, const char *code,
                        const char *field) {
  const char *got_code = api_str(r, "code");
  if (r->status != status || got_code == NULL || strcmp(got_code, code) != 0)
    fail_msg("expected %ld %s: %s", status, code, api_describe(r));
  if (!media_is(r->content_type, "application/problem+json"))
    fail_msg("expected application/problem+json: %s", api_describe(r));
  json_t *st = json_object_get(r->json, "status");
  if (!json_is_integer(st) || json_integer_value(st) != status || api_str(r, "type") == NULL ||
      api_str(r, "title") == NULL || api_str(r, "detail") == NULL)
    fail_msg("not a complete problem (type, title, status, detail, code): %s", api_describe(r));
  if (field != NULL && (api_str(r, "field") == NULL || strcmp(api_str(r, "field"), field) != 0))
    fail_msg("expected field \"%s\": %s", field, api_describe(r));
  if (status == 401 &&
      (r->www_authenticate == NULL || strncasecmp(r->www_authenticate, "Bearer", 6) != 0))
    fail_msg("a 401 needs WWW-Authenticate: Bearer: %s", api_describe(r));
}

/* ---- Time ----------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i]))
      return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

bool parse_datetime(const char *s, int64_t *usec) {
  int y, mo, d, h, mi, se;
  if (s == NULL || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
      s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
      !digits(s + 17, 2, &se))
    return false;
  const char *p = s + 19;
  int64_t frac = 0;
  if (*p == '.') {
    int scale = 0;
    for (p++; isdigit((unsigned char)*p); p++, scale++)
      if (scale < 6)
        frac = frac * 10 + (*p - '0');
    if (scale == 0)
      return false;
    for (; scale < 6; scale++)
      frac *= 10;
  }
  int offset = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int oh, om;
    if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om))
      return false;
    offset = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    return false;
  }
  if (*p != '\0')
    return false;
  int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
  *usec = secs * 1000000 + frac;
  return true;
}

void date_from_today(int days, char out[11]) {
  time_t t = time(NULL) + (time_t)days * 86400;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 11, "%Y-%m-%d", &tm);
}

int current_year(void) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  return tm.tm_year + 1900;
}

#include "auth/http_fetch.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define CONNECT_TIMEOUT_MS 2000L
#define TOTAL_TIMEOUT_MS 5000L

struct sink {
  struct http_body *body;
  size_t max;
};

static size_t body_append(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct sink *s = userdata;
  struct http_body *b = s->body;
  size_t n = size * nmemb;
  if (n > s->max - b->len)
    return 0; /* aborts the transfer: over the size cap */
  char *grown = realloc(b->data, b->len + n + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + b->len, ptr, n);
  b->data = grown;
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

const char *http_fetch(const char *url, const char *form, const char *user, const char *password,
                       size_t max_body, struct http_body *out) {
  out->data = NULL;
  out->len = 0;
  CURL *curl = curl_easy_init();
  if (curl == NULL)
    return "curl init failed";
  struct sink sink = {out, max_body};
  struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, TOTAL_TIMEOUT_MS);
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "machtigen");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  if (form != NULL)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
  if (user != NULL) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, user);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, password ? password : "");
  }
  const char *why = NULL;
  long status = 0;
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_WRITE_ERROR || rc == CURLE_FILESIZE_EXCEEDED)
    why = "response too large";
  else if (rc != CURLE_OK)
    why = curl_easy_strerror(rc); /* static text, no URL in it */
  else if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200)
    why = "HTTP status not 200";
  else if (out->data == NULL)
    why = "empty response";
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(curl);
  if (why != NULL) {
    free(out->data);
    out->data = NULL;
    out->len = 0;
  }
  return why;
}

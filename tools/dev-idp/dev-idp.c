/* dev-idp: a small OpenID Connect provider for development and tests.
 *
 *   dev-idp serve                          discovery, JWKS, code flow with PKCE, /mint
 *   dev-idp mint --bsn B --loa L [...]     prints an identity token, no server needed
 *
 * It signs what the person at the keyboard types in: never run it where real people log in.
 * Loopback only; every input is bounded.  The daemon runs libmicrohttpd's single internal
 * polling thread, so the code store needs no lock. */
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "idtoken.h"

#define MAX_BODY (16 * 1024)
#define MAX_PARAMS 32
#define MAX_KEY 64
#define MAX_VALUE 2048
#define MAX_CODES 128
#define CODE_LIFETIME 60
#define TOKEN_TTL 600

/* --- growable text -----------------------------------------------------------------------------
 */

struct buf {
  char *p;
  size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t n) {
  if (b->len + n + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + n + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p)
    abort(); /* a development tool: out of memory ends it */
  b->p = p;
  b->cap = cap;
}

static void buf_addn(struct buf *b, const char *s, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void buf_add(struct buf *b, const char *s) { buf_addn(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void buf_addf(struct buf *b, const char *fmt, ...) {
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  if (n > 0) {
    buf_reserve(b, (size_t)n);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
    b->len += (size_t)n;
  }
  va_end(again);
  va_end(ap);
}

static void buf_html(struct buf *b, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&':
      buf_add(b, "&amp;");
      break;
    case '<':
      buf_add(b, "&lt;");
      break;
    case '>':
      buf_add(b, "&gt;");
      break;
    case '"':
      buf_add(b, "&quot;");
      break;
    case '\'':
      buf_add(b, "&#39;");
      break;
    default:
      buf_addn(b, s, 1);
    }
  }
}

static void buf_url(struct buf *b, const char *s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (isalnum(ch) || strchr("-._~", ch))
      buf_addn(b, s, 1);
    else
      buf_addf(b, "%%%02X", ch);
  }
}

/* --- query and form parameters ------------------------------------------------------------------
 */

struct params {
  int n;
  const char *error; /* first problem, for a 400 */
  struct {
    char *key, *value;
  } kv[MAX_PARAMS];
};

static const char *params_get(const struct params *p, const char *key) {
  for (int i = 0; i < p->n; i++)
    if (strcmp(p->kv[i].key, key) == 0)
      return p->kv[i].value;
  return NULL;
}

static void params_add(struct params *p, const char *key, size_t klen, const char *value,
                       size_t vlen) {
  if (p->error)
    return;
  if (klen == 0 || klen > MAX_KEY || vlen > MAX_VALUE || memchr(key, 0, klen) ||
      memchr(value, 0, vlen)) {
    p->error = "a parameter is empty, too long or contains NUL";
    return;
  }
  if (p->n == MAX_PARAMS) {
    p->error = "too many parameters";
    return;
  }
  char *k = strndup(key, klen), *v = strndup(value, vlen);
  if (!k || !v)
    abort();
  if (params_get(p, k)) { /* RFC 6749 §3.1: parameters must not repeat */
    p->error = "a parameter is repeated";
    free(k);
    free(v);
    return;
  }
  p->kv[p->n].key = k;
  p->kv[p->n].value = v;
  p->n++;
}

/* Copies a parameter that the checks have bounded already ("" if absent). */
static void copy_param(char *dst, size_t size, const struct params *p, const char *key) {
  const char *v = params_get(p, key);
  snprintf(dst, size, "%s", v ? v : "");
}

static void params_free(struct params *p) {
  for (int i = 0; i < p->n; i++) {
    free(p->kv[i].key);
    free(p->kv[i].value);
  }
  p->n = 0;
}

/* The first parameter not in known (a NULL-terminated list), or NULL. */
static const char *params_unknown(const struct params *p, const char *const *known) {
  for (int i = 0; i < p->n; i++) {
    const char *const *k = known;
    while (*k && strcmp(*k, p->kv[i].key) != 0)
      k++;
    if (!*k)
      return p->kv[i].key;
  }
  return NULL;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size) {
  params_add(cls, key, key_size, value ? value : "", value ? value_size : 0);
  return MHD_YES;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)tolower((unsigned char)c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* application/x-www-form-urlencoded decoding; out has room for n bytes. */
static bool form_decode(const char *s, size_t n, char *out, size_t *outlen) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') {
      out[o++] = ' ';
    } else if (s[i] == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return false;
      out[o++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  *outlen = o;
  return true;
}

static void parse_form(const char *body, size_t len, struct params *p) {
  char *key = malloc(len + 1), *value = malloc(len + 1);
  if (!key || !value)
    abort();
  const char *end = body + len;
  for (const char *s = body; s < end && !p->error;) {
    const char *amp = memchr(s, '&', (size_t)(end - s));
    const char *stop = amp ? amp : end;
    const char *eq = memchr(s, '=', (size_t)(stop - s));
    const char *kend = eq ? eq : stop;
    size_t klen, vlen = 0;
    if (stop > s) {
      if (!form_decode(s, (size_t)(kend - s), key, &klen) ||
          (eq && !form_decode(eq + 1, (size_t)(stop - eq - 1), value, &vlen)))
        p->error = "malformed percent-encoding";
      else
        params_add(p, key, klen, value, vlen);
    }
    s = stop + 1;
  }
  free(key);
  free(value);
}

/* --- configuration ------------------------------------------------------------------------------
 */

struct code_entry {
  bool in_use;
  struct timespec created;
  char code[B64URL_LEN(32) + 1];
  char client_id[257];
  char redirect_uri[MAX_VALUE + 1];
  char challenge[129];
  char nonce[257];
  struct subject subject;
};

struct app {
  struct idp_key key;
  char listen[128];
  struct sockaddr_in addr;
  char issuer[512];
  const char *audience;
  struct code_entry codes[MAX_CODES];
};

static struct app app;

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

/* host:port with a loopback IPv4 host or "localhost". */
static bool parse_listen(const char *s, struct sockaddr_in *out) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host)
    return false;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)port);
  if (strcmp(host, "localhost") == 0)
    strcpy(host, "127.0.0.1");
  return colon[1] && !*end && port > 0 && port < 65536 &&
         inet_pton(AF_INET, host, &out->sin_addr) == 1 &&
         (ntohl(out->sin_addr.s_addr) >> 24) == 127;
}

static bool load_config(char *err, size_t errlen) {
  const char *listen = env_or("DEV_IDP_LISTEN", "127.0.0.1:8081");
  if (strlen(listen) >= sizeof app.listen || !parse_listen(listen, &app.addr)) {
    snprintf(err, errlen, "DEV_IDP_LISTEN must be a loopback host:port, e.g. 127.0.0.1:8081");
    return false;
  }
  strcpy(app.listen, listen);
  const char *issuer = getenv("DEV_IDP_ISSUER");
  if (issuer && *issuer)
    snprintf(app.issuer, sizeof app.issuer, "%s", issuer);
  else
    snprintf(app.issuer, sizeof app.issuer, "http://%s", listen);
  size_t n = strlen(app.issuer);
  while (n > 0 && app.issuer[n - 1] == '/') /* endpoints are issuer + "/path" */
    app.issuer[--n] = '\0';
  if (n > 500 ||
      (strncmp(app.issuer, "http://", 7) != 0 && strncmp(app.issuer, "https://", 8) != 0)) {
    snprintf(err, errlen, "DEV_IDP_ISSUER must be an http(s) URL of at most 500 characters");
    return false;
  }
  app.audience = env_or("DEV_IDP_AUDIENCE", "machtigen");
  if (!token_string_ok(app.audience)) {
    snprintf(err, errlen, "DEV_IDP_AUDIENCE must be 1 to 256 visible ASCII characters");
    return false;
  }
  return idp_key_load_or_create(env_or("DEV_IDP_KEY", ".dev/idp-key.pem"), &app.key, err, errlen);
}

/* --- minting (shared by /mint and `dev-idp mint`) ----------------------------------------------
 */

struct mint_args {
  const char *bsn, *kvk, *employee, *name, *loa, *ttl, *aud, *nonce;
};

static char *mint_from_args(const struct mint_args *a, char *err, size_t errlen) {
  struct mint_request req = {
      .ttl = TOKEN_TTL, .audience = a->aud ? a->aud : app.audience, .nonce = a->nonce};
  struct subject_fields f = {NULL, a->bsn, a->kvk, a->employee, a->name, a->loa};
  struct field_error e;
  if (subject_parse(&f, &req.subject, &e, 1) > 0)
    snprintf(err, errlen, "%s: %s", e.field, e.en);
  else if (a->ttl && !ttl_parse(a->ttl, &req.ttl))
    snprintf(err, errlen, "ttl: seconds, an integer within ±%d", TTL_LIMIT);
  else if (!token_string_ok(req.audience))
    snprintf(err, errlen, "aud: 1 to 256 visible ASCII characters");
  else if (a->nonce && !token_string_ok(a->nonce))
    snprintf(err, errlen, "nonce: 1 to 256 visible ASCII characters");
  else {
    char *token = idtoken_mint(&app.key, app.issuer, &req);
    if (!token)
      snprintf(err, errlen, "signing failed");
    return token;
  }
  return NULL;
}

/* --- authorization codes ------------------------------------------------------------------------
 */

static double age(const struct timespec *t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static struct code_entry *code_slot(void) {
  struct code_entry *oldest = &app.codes[0];
  for (int i = 0; i < MAX_CODES; i++) {
    struct code_entry *e = &app.codes[i];
    if (!e->in_use || age(&e->created) > CODE_LIFETIME)
      return e;
    if (age(&e->created) > age(&oldest->created))
      oldest = e;
  }
  return oldest; /* full of live codes: the oldest goes */
}

/* Takes the code out of the store: a code is used at most once, whatever the outcome. */
static bool code_take(const char *code, struct code_entry *out) {
  size_t n = strlen(code);
  for (int i = 0; i < MAX_CODES; i++) {
    struct code_entry *e = &app.codes[i];
    if (e->in_use && strlen(e->code) == n && CRYPTO_memcmp(e->code, code, n) == 0) {
      *out = *e;
      memset(e, 0, sizeof *e);
      return age(&out->created) <= CODE_LIFETIME;
    }
  }
  return false;
}

/* --- replies -------------------------------------------------------------------------------------
 */

struct reply {
  unsigned status;
  const char *type;
  struct buf body;
  struct buf location;
  const char *allow;
};

static void reply_text(struct reply *r, unsigned status, const char *text) {
  r->status = status;
  r->type = "text/plain; charset=utf-8";
  buf_add(&r->body, text);
}

static void reply_json(struct reply *r, unsigned status, json_t *j) {
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!text) {
    reply_text(r, 500, "cannot encode JSON\n");
    return;
  }
  r->status = status;
  r->type = "application/json";
  buf_add(&r->body, text);
  free(text);
}

static void reply_oauth_error(struct reply *r, const char *error, const char *description) {
  reply_json(r, 400, json_pack("{s:s, s:s}", "error", error, "error_description", description));
}

/* --- endpoints -----------------------------------------------------------------------------------
 */

struct request {
  const char *method, *url;
  struct MHD_Connection *conn;
  struct buf body;
  bool too_large;
};

static const char *const loa_words[] = {"basis", "midden", "substantieel", "hoog"};

static void set_strings(json_t *o, const char *key, const char *const *items, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_string(items[i]));
  json_object_set_new(o, key, a);
}

#define SET_STRINGS(o, key, array) set_strings(o, key, array, sizeof array / sizeof *array)

static void get_discovery(struct request *req, struct reply *r) {
  static const char *const code[] = {"code"}, *const query[] = {"query"},
                           *const grant[] = {"authorization_code"}, *const pub[] = {"public"},
                           *const es256[] = {"ES256"}, *const s256[] = {"S256"},
                           *const auth[] = {"none", "client_secret_basic", "client_secret_post"},
                           *const claims[] = {"iss", "aud", "sub", "kvk",   "name", "acr",
                                              "iat", "nbf", "exp", "nonce", "jti"};
  char url[600];
  json_t *d = json_object();
  json_object_set_new(d, "issuer", json_string(app.issuer));
  snprintf(url, sizeof url, "%s/authorize", app.issuer);
  json_object_set_new(d, "authorization_endpoint", json_string(url));
  snprintf(url, sizeof url, "%s/token", app.issuer);
  json_object_set_new(d, "token_endpoint", json_string(url));
  snprintf(url, sizeof url, "%s/jwks.json", app.issuer);
  json_object_set_new(d, "jwks_uri", json_string(url));
  SET_STRINGS(d, "response_types_supported", code);
  SET_STRINGS(d, "response_modes_supported", query);
  SET_STRINGS(d, "grant_types_supported", grant);
  SET_STRINGS(d, "subject_types_supported", pub);
  SET_STRINGS(d, "id_token_signing_alg_values_supported", es256);
  SET_STRINGS(d, "code_challenge_methods_supported", s256);
  SET_STRINGS(d, "acr_values_supported", loa_words);
  SET_STRINGS(d, "claims_supported", claims);
  SET_STRINGS(d, "token_endpoint_auth_methods_supported", auth);
  json_object_set_new(d, "authorization_response_iss_parameter_supported", json_true());
  reply_json(r, 200, d);
}

static void get_jwks(struct request *req, struct reply *r) {
  char *jwks = idp_jwks_json(&app.key);
  r->status = jwks ? 200 : 500;
  r->type = "application/jwk-set+json";
  buf_add(&r->body, jwks ? jwks : "");
  free(jwks);
}

static void get_mint(struct request *req, struct reply *r) {
  static const char *const known[] = {"bsn", "kvk", "employee", "name", "loa",
                                      "ttl", "aud", "nonce",    NULL};
  struct params p = {0};
  MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, collect_query, &p);
  const char *unknown = p.error ? NULL : params_unknown(&p, known);
  char err[256] = "";
  char *token = NULL;
  if (p.error)
    snprintf(err, sizeof err, "%s", p.error);
  else if (unknown)
    snprintf(err, sizeof err,
             "unknown parameter (use bsn, kvk, employee, name, loa, ttl, aud, nonce)");
  else {
    struct mint_args a = {params_get(&p, "bsn"),      params_get(&p, "kvk"),
                          params_get(&p, "employee"), params_get(&p, "name"),
                          params_get(&p, "loa"),      params_get(&p, "ttl"),
                          params_get(&p, "aud"),      params_get(&p, "nonce")};
    token = mint_from_args(&a, err, sizeof err);
  }
  params_free(&p);
  if (token)
    reply_text(r, 200, token); /* no newline: the body is the token */
  else {
    reply_text(r, 400, err);
    buf_add(&r->body, "\n");
  }
  free(token);
}

/* --- the code flow: /authorize and /token
 * --------------------------------------------------------- */

/* OAuth parameters carried from GET /authorize through the form's hidden fields. */
static const char *const oauth_fields[] = {
    "response_type",         "client_id",  "redirect_uri", "state", "nonce", "code_challenge",
    "code_challenge_method", "acr_values", "scope"};

static bool is_form(struct request *req) {
  const char *ct = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Type");
  size_t n = strlen("application/x-www-form-urlencoded");
  return ct && strncasecmp(ct, "application/x-www-form-urlencoded", n) == 0 &&
         (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* A dev IdP sends codes only to the developer's own machine. */
static bool redirect_ok(const char *uri) {
  static const char *const prefixes[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
  if (!uri)
    return false;
  for (const char *c = uri; *c; c++)
    if (*c < 0x21 || *c > 0x7e || *c == '#')
      return false;
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
    size_t n = strlen(prefixes[i]);
    if (strncmp(uri, prefixes[i], n) == 0 && strchr(":/?", uri[n])) /* "" ends the URI: fine */
      return true;
  }
  return false;
}

/* RFC 7636: a verifier is 43-128 unreserved characters; an S256 challenge is 43 base64url. */
static bool pkce_chars_ok(const char *s, size_t min, size_t max, const char *extra) {
  size_t n = strlen(s);
  if (n < min || n > max)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
      return false;
  return true;
}

static bool pkce_ok(const char *verifier, const char *challenge) {
  unsigned char digest[32];
  char expected[B64URL_LEN(32) + 1];
  if (!pkce_chars_ok(verifier, 43, 128, "-._~") ||
      EVP_Digest(verifier, strlen(verifier), digest, NULL, EVP_sha256(), NULL) != 1)
    return false;
  b64url_encode(digest, sizeof digest, expected);
  return strlen(challenge) == strlen(expected) &&
         CRYPTO_memcmp(expected, challenge, strlen(expected)) == 0;
}

static void page_start(struct buf *b, const char *title, bool has_errors) {
  buf_add(b, "<!doctype html>\n<html lang=\"nl\">\n<head>\n<meta charset=\"utf-8\">\n"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
  if (has_errors)
    buf_add(b, "Fout: ");
  buf_html(b, title);
  buf_add(b, " - dev-idp</title>\n<link rel=\"stylesheet\" href=\"/style.css\">\n</head>\n<body>\n"
             "<main>\n");
}

static void page_end(struct buf *b) { buf_add(b, "</main>\n</body>\n</html>\n"); }

static void reply_page_error(struct reply *r, unsigned status, const char *nl, const char *en) {
  r->status = status;
  r->type = "text/html; charset=utf-8";
  page_start(&r->body, "Inloggen niet mogelijk", true);
  buf_add(&r->body,
          "<h1>Inloggen niet mogelijk <span lang=\"en\" class=\"en\">(cannot log in)</span>"
          "</h1>\n<p>");
  buf_html(&r->body, nl);
  buf_add(&r->body, "</p>\n<p lang=\"en\" class=\"en\">");
  buf_html(&r->body, en);
  buf_add(&r->body, "</p>\n");
  page_end(&r->body);
}

static const struct field_error *error_for(const char *field, const struct field_error *errs,
                                           int nerr) {
  for (int i = 0; i < nerr; i++)
    if (strcmp(errs[i].field, field) == 0)
      return &errs[i];
  return NULL;
}

/* Wrapper, label, help text and the error message if there is one. */
static const struct field_error *field_start(struct buf *b, const char *id, const char *label,
                                             const char *label_en, const char *help,
                                             const struct field_error *errs, int nerr) {
  const struct field_error *e = error_for(id, errs, nerr);
  buf_addf(b,
           "<div class=\"field%s\">\n<label for=\"%s\">%s <span lang=\"en\" class=\"en\">(%s)"
           "</span></label>\n<p class=\"help\" id=\"%s-help\">%s</p>\n",
           e ? " invalid" : "", id, label, label_en, id, help);
  if (e) {
    buf_addf(b, "<p class=\"error\" id=\"%s-error\">", id);
    buf_html(b, e->nl);
    buf_add(b, " <span lang=\"en\" class=\"en\">");
    buf_html(b, e->en);
    buf_add(b, "</span></p>\n");
  }
  return e;
}

static void field_attrs(struct buf *b, const char *id, const struct field_error *e) {
  buf_addf(b, " id=\"%s\" name=\"%s\" aria-describedby=\"%s-help", id, id, id);
  if (e)
    buf_addf(b, " %s-error\" aria-invalid=\"true", id);
  buf_add(b, "\"");
}

static void text_field(struct buf *b, const char *id, const char *label, const char *label_en,
                       const char *help, const char *attrs, const struct params *p,
                       const struct field_error *errs, int nerr) {
  const struct field_error *e = field_start(b, id, label, label_en, help, errs, nerr);
  buf_addf(b, "<input type=\"text\" %s", attrs);
  field_attrs(b, id, e);
  buf_add(b, " value=\"");
  buf_html(b, params_get(p, id));
  buf_add(b, "\">\n</div>\n");
}

static const char *const loa_labels[] = {
    "basis: gebruikersnaam en wachtwoord",
    "midden: met sms-controle of DigiD-app",
    "substantieel: DigiD-app met ID-check",
    "hoog: met identiteitsbewijs",
};

/* The first level named in acr_values, else midden. */
static const char *default_loa(const struct params *p) {
  const char *acr = params_get(p, "acr_values");
  for (const char *w = acr; w && *w; w += strcspn(w, " "), w += strspn(w, " "))
    for (size_t i = 0; i < sizeof loa_words / sizeof *loa_words; i++)
      if (strncmp(w, loa_words[i], strlen(loa_words[i])) == 0 &&
          (w[strlen(loa_words[i])] == ' ' || w[strlen(loa_words[i])] == '\0'))
        return loa_words[i];
  return "midden";
}

static void render_form(struct buf *b, const struct params *p, const struct field_error *errs,
                        int nerr) {
  page_start(b, "Inloggen", nerr > 0);
  buf_add(b, "<h1>Inloggen <span lang=\"en\" class=\"en\">(log in)</span></h1>\n"
             "<p class=\"banner\">Testomgeving: dit is geen echte DigiD of eHerkenning. Vul in als "
             "wie u wilt inloggen. <span lang=\"en\" class=\"en\">Development identity provider: "
             "choose who you want to be.</span></p>\n<p>Applicatie <span lang=\"en\" class=\"en\">"
             "(client)</span>: <code>");
  buf_html(b, params_get(p, "client_id"));
  buf_add(b, "</code></p>\n");
  if (nerr > 0) {
    buf_add(b, "<div class=\"summary\" role=\"alert\" aria-labelledby=\"summary-title\">\n"
               "<h2 id=\"summary-title\">Controleer wat u invulde <span lang=\"en\" class=\"en\">"
               "(please correct)</span></h2>\n<ul>\n");
    for (int i = 0; i < nerr; i++) {
      buf_addf(b, "<li><a href=\"#%s\">",
               strcmp(errs[i].field, "kind") == 0 ? "kind-person" : errs[i].field);
      buf_html(b, errs[i].nl);
      buf_add(b, "</a></li>\n");
    }
    buf_add(b, "</ul>\n</div>\n");
  }
  buf_add(b, "<form method=\"post\" action=\"/authorize\" novalidate>\n");
  for (size_t i = 0; i < sizeof oauth_fields / sizeof *oauth_fields; i++) {
    const char *v = params_get(p, oauth_fields[i]);
    if (!v)
      continue;
    buf_addf(b, "<input type=\"hidden\" name=\"%s\" value=\"", oauth_fields[i]);
    buf_html(b, v);
    buf_add(b, "\">\n");
  }

  const char *kind = params_get(p, "kind");
  bool org = kind && strcmp(kind, "organisation") == 0;
  const struct field_error *ke = error_for("kind", errs, nerr);
  buf_addf(b,
           "<fieldset class=\"field%s\"%s>\n<legend>Hoe logt u in? <span lang=\"en\" "
           "class=\"en\">(kind of login)</span></legend>\n",
           ke ? " invalid" : "", ke ? " aria-describedby=\"kind-error\"" : "");
  if (ke) {
    buf_add(b, "<p class=\"error\" id=\"kind-error\">");
    buf_html(b, ke->nl);
    buf_add(b, "</p>\n");
  }
  buf_addf(b,
           "<div class=\"choice\"><input type=\"radio\" id=\"kind-person\" name=\"kind\" "
           "value=\"person\"%s> <label for=\"kind-person\">Als persoon, met BSN (zoals DigiD) "
           "<span lang=\"en\" class=\"en\">(person)</span></label></div>\n"
           "<div class=\"choice\"><input type=\"radio\" id=\"kind-organisation\" name=\"kind\" "
           "value=\"organisation\"%s> <label for=\"kind-organisation\">Namens een organisatie, "
           "met KvK-nummer (zoals eHerkenning) <span lang=\"en\" class=\"en\">(organisation)"
           "</span></label></div>\n</fieldset>\n",
           org ? "" : " checked", org ? " checked" : "");

  text_field(b, "bsn", "BSN", "citizen service number",
             "Bij inloggen als persoon. 9 cijfers, bijvoorbeeld 999993653.",
             "inputmode=\"numeric\" autocomplete=\"off\" spellcheck=\"false\"", p, errs, nerr);
  text_field(b, "kvk", "KvK-nummer", "Chamber of Commerce number",
             "Bij inloggen namens een organisatie. 8 cijfers, bijvoorbeeld 12345678.",
             "inputmode=\"numeric\" autocomplete=\"off\" spellcheck=\"false\"", p, errs, nerr);
  text_field(b, "employee", "Medewerker-ID", "employee id",
             "Bij een organisatie: wie namens de organisatie inlogt, bijvoorbeeld medewerker-1.",
             "autocomplete=\"off\" spellcheck=\"false\"", p, errs, nerr);
  text_field(b, "name", "Naam", "name, optional", "Niet verplicht.", "autocomplete=\"name\"", p,
             errs, nerr);

  const char *loa = params_get(p, "loa");
  if (!loa || !*loa)
    loa = default_loa(p);
  const struct field_error *le = field_start(
      b, "loa", "Betrouwbaarheidsniveau", "level of assurance",
      "Hoe zeker is het dat u het bent? Een dienst kan een hoger niveau vragen.", errs, nerr);
  buf_add(b, "<select");
  field_attrs(b, "loa", le);
  buf_add(b, ">\n");
  for (size_t i = 0; i < sizeof loa_words / sizeof *loa_words; i++)
    buf_addf(b, "<option value=\"%s\"%s>%s</option>\n", loa_words[i],
             strcmp(loa, loa_words[i]) == 0 ? " selected" : "", loa_labels[i]);
  buf_add(b, "</select>\n</div>\n<button type=\"submit\">Inloggen <span lang=\"en\">(log in)</span>"
             "</button>\n</form>\n");
  page_end(b);
}

static void redirect_to_client(struct reply *r, const struct params *p, const char *code,
                               const char *error, const char *description) {
  const char *uri = params_get(p, "redirect_uri"), *state = params_get(p, "state");
  struct buf *l = &r->location;
  buf_add(l, uri);
  buf_add(l, strchr(uri, '?') ? "&" : "?");
  if (code) {
    buf_add(l, "code=");
    buf_add(l, code);
  } else {
    buf_add(l, "error=");
    buf_add(l, error);
    buf_add(l, "&error_description=");
    buf_url(l, description);
  }
  if (state) {
    buf_add(l, "&state=");
    buf_url(l, state);
  }
  buf_add(l, "&iss="); /* RFC 9207 */
  buf_url(l, app.issuer);
  r->status = 302;
  r->type = "text/html; charset=utf-8";
  page_start(&r->body, "Doorsturen", false);
  buf_add(&r->body, "<p><a href=\"");
  buf_html(&r->body, l->p);
  buf_add(&r->body, "\">Verder <span lang=\"en\" class=\"en\">(continue)</span></a></p>\n");
  page_end(&r->body);
}

/* false: the reply already says what is wrong, on a page or by redirecting to the client. */
static bool authorize_checks(const struct params *p, struct reply *r) {
  const char *client = params_get(p, "client_id"), *rt = params_get(p, "response_type"),
             *method = params_get(p, "code_challenge_method"),
             *challenge = params_get(p, "code_challenge"), *nonce = params_get(p, "nonce");
  if (p->error) {
    reply_page_error(r, 400, "Het verzoek van de applicatie is niet goed opgebouwd.", p->error);
    return false;
  }
  if (!client || !token_string_ok(client)) {
    reply_page_error(r, 400, "De applicatie stuurde geen geldige client_id.",
                     "client_id is missing or invalid.");
    return false;
  }
  if (!redirect_ok(params_get(p, "redirect_uri"))) {
    reply_page_error(r, 400,
                     "De terugkeer-URL (redirect_uri) ontbreekt of is niet toegestaan: alleen "
                     "http://127.0.0.1…, http://localhost… en http://[::1]… zonder #.",
                     "redirect_uri is missing or not allowed: only http://127.0.0.1…, "
                     "http://localhost… and http://[::1]…, without a fragment.");
    return false;
  }
  const char *error = "invalid_request", *why = NULL;
  if (!rt)
    why = "response_type is required";
  else if (strcmp(rt, "code") != 0)
    error = "unsupported_response_type", why = "only response_type=code is supported";
  else if (!method || strcmp(method, "S256") != 0)
    why = "code_challenge_method=S256 is required";
  else if (!challenge || !pkce_chars_ok(challenge, 43, 43, "-_"))
    why = "code_challenge is required: BASE64URL(SHA256(code_verifier)), 43 characters";
  else if (nonce && !token_string_ok(nonce))
    why = "nonce must be 1 to 256 visible ASCII characters";
  if (why)
    redirect_to_client(r, p, NULL, error, why);
  return why == NULL;
}

static void get_authorize(struct request *req, struct reply *r) {
  struct params p = {0};
  MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, collect_query, &p);
  if (authorize_checks(&p, r)) {
    r->status = 200;
    r->type = "text/html; charset=utf-8";
    render_form(&r->body, &p, NULL, 0);
  }
  params_free(&p);
}

static void post_authorize(struct request *req, struct reply *r) {
  if (!is_form(req)) {
    reply_page_error(r, 415, "Het formulier is in een onbekende vorm verstuurd.",
                     "Content-Type must be application/x-www-form-urlencoded.");
    return;
  }
  struct params p = {0};
  parse_form(req->body.p ? req->body.p : "", req->body.len, &p);
  if (authorize_checks(&p, r)) {
    struct subject_fields f = {params_get(&p, "kind"), params_get(&p, "bsn"),
                               params_get(&p, "kvk"),  params_get(&p, "employee"),
                               params_get(&p, "name"), params_get(&p, "loa")};
    struct field_error errs[8];
    struct subject subject;
    int nerr = subject_parse(&f, &subject, errs, 8);
    if (nerr > 0) {
      r->status = 422;
      r->type = "text/html; charset=utf-8";
      render_form(&r->body, &p, errs, nerr);
    } else {
      struct code_entry *e = code_slot();
      memset(e, 0, sizeof *e);
      e->in_use = true;
      clock_gettime(CLOCK_MONOTONIC, &e->created);
      random_b64url(32, e->code);
      copy_param(e->client_id, sizeof e->client_id, &p, "client_id");
      copy_param(e->redirect_uri, sizeof e->redirect_uri, &p, "redirect_uri");
      copy_param(e->challenge, sizeof e->challenge, &p, "code_challenge");
      copy_param(e->nonce, sizeof e->nonce, &p, "nonce");
      e->subject = subject;
      redirect_to_client(r, &p, e->code, NULL, NULL);
    }
  }
  params_free(&p);
}

/* The client id from HTTP Basic (client_secret_basic; the secret is not checked: every client
 * of a dev IdP is public).  Returns false if the header is there but unusable. */
static bool basic_client_id(struct request *req, char *out, size_t outlen) {
  char *pass = NULL;
  char *user = MHD_basic_auth_get_username_password(req->conn, &pass);
  size_t n = 0;
  bool ok = true;
  out[0] = '\0';
  if (user) {
    ok = strlen(user) < outlen && form_decode(user, strlen(user), out, &n);
    out[ok ? n : 0] = '\0';
    ok = ok && token_string_ok(out);
  }
  MHD_free(user);
  MHD_free(pass);
  return ok;
}

static void post_token(struct request *req, struct reply *r) {
  if (!is_form(req)) {
    reply_oauth_error(r, "invalid_request",
                      "Content-Type must be application/x-www-form-urlencoded");
    return;
  }
  struct params p = {0};
  parse_form(req->body.p ? req->body.p : "", req->body.len, &p);
  const char *grant = params_get(&p, "grant_type"), *code = params_get(&p, "code"),
             *uri = params_get(&p, "redirect_uri"), *verifier = params_get(&p, "code_verifier"),
             *client = params_get(&p, "client_id");
  char basic[257];
  struct code_entry e;
  if (p.error)
    reply_oauth_error(r, "invalid_request", p.error);
  else if (!grant)
    reply_oauth_error(r, "invalid_request", "grant_type is required");
  else if (strcmp(grant, "authorization_code") != 0)
    reply_oauth_error(r, "unsupported_grant_type", "only authorization_code is supported");
  else if (!basic_client_id(req, basic, sizeof basic))
    reply_oauth_error(r, "invalid_request", "unusable HTTP Basic credentials");
  else if (basic[0] && client && strcmp(basic, client) != 0)
    reply_oauth_error(r, "invalid_request", "client_id differs from the HTTP Basic user");
  else if (!basic[0] && !client)
    reply_oauth_error(r, "invalid_request", "client_id is required");
  else if (!code || !uri || !verifier)
    reply_oauth_error(r, "invalid_request", "code, redirect_uri and code_verifier are required");
  else if (!code_take(code, &e))
    reply_oauth_error(r, "invalid_grant", "the code is unknown, used or expired");
  else if (strcmp(e.client_id, basic[0] ? basic : client) != 0)
    reply_oauth_error(r, "invalid_grant", "the code was issued to another client");
  else if (strcmp(e.redirect_uri, uri) != 0)
    reply_oauth_error(r, "invalid_grant", "redirect_uri differs from the authorization request");
  else if (!pkce_ok(verifier, e.challenge))
    reply_oauth_error(r, "invalid_grant", "code_verifier does not match the code_challenge");
  else {
    struct mint_request m = {.subject = e.subject,
                             .audience = e.client_id,
                             .nonce = e.nonce[0] ? e.nonce : NULL,
                             .ttl = TOKEN_TTL};
    char *id_token = idtoken_mint(&app.key, app.issuer, &m);
    char access[B64URL_LEN(32) + 1];
    random_b64url(32, access);
    if (id_token)
      reply_json(r, 200,
                 json_pack("{s:s, s:s, s:s, s:i, s:s}", "access_token", access, "token_type",
                           "Bearer", "id_token", id_token, "expires_in", TOKEN_TTL, "scope",
                           "openid"));
    else
      reply_text(r, 500, "signing failed\n");
    free(id_token);
  }
  params_free(&p);
}

static const char *const style_css =
    "body{font:1.125rem/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff;margin:0}"
    "main{max-width:40rem;margin:0 auto;padding:1.5rem}"
    "h1{font-size:1.75rem;margin:0 0 1rem}"
    ".en{color:#4a4a4a;font-size:.9em}"
    ".banner{background:#fff4ce;border-left:.4rem solid #8a6d00;padding:.5rem 1rem}"
    "fieldset,.field{border:0;margin:0 0 1.25rem;padding:0}"
    "legend,label{display:block;font-weight:600}"
    ".choice label{display:inline;font-weight:400}"
    ".help{margin:.1rem 0 .3rem;color:#4a4a4a}"
    "input[type=text],select{font:inherit;padding:.4rem;border:2px solid #1a1a1a;width:100%;"
    "max-width:24rem;box-sizing:border-box}"
    "input:focus,select:focus,button:focus,a:focus{outline:3px solid #ffbf47;outline-offset:2px}"
    ".invalid{border-left:.3rem solid #b00020;padding-left:.8rem}"
    ".error{color:#b00020;font-weight:600;margin:.2rem 0}"
    ".summary{border:3px solid #b00020;padding:.5rem 1rem;margin-bottom:1.5rem}"
    "button{font:inherit;padding:.5rem 1.25rem;background:#154273;color:#fff;border:0;"
    "cursor:pointer}\n";

static void get_style(struct request *req, struct reply *r) {
  r->status = 200;
  r->type = "text/css; charset=utf-8";
  buf_add(&r->body, style_css);
}

/* --- dispatch ------------------------------------------------------------------------------------
 */

struct route {
  const char *method, *path;
  void (*handler)(struct request *, struct reply *);
};

static const struct route routes[] = {
    {"GET", "/.well-known/openid-configuration", get_discovery},
    {"GET", "/jwks.json", get_jwks},
    {"GET", "/authorize", get_authorize},
    {"POST", "/authorize", post_authorize},
    {"POST", "/token", post_token},
    {"GET", "/mint", get_mint},
    {"GET", "/style.css", get_style},
};

static void dispatch(struct request *req, struct reply *r) {
  const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
  bool path_known = false;
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
    if (strcmp(routes[i].path, req->url) != 0)
      continue;
    path_known = true;
    if (strcmp(routes[i].method, method) == 0) {
      if (req->too_large)
        reply_text(r, 413, "request body too large\n");
      else
        routes[i].handler(req, r);
      return;
    }
  }
  if (path_known) {
    reply_text(r, 405, "method not allowed\n");
    r->allow = strcmp(req->url, "/authorize") == 0 ? "GET, POST"
               : strcmp(req->url, "/token") == 0   ? "POST"
                                                   : "GET";
  } else {
    reply_text(r, 404, "not found\n");
  }
}

static enum MHD_Result send_reply(struct request *req, struct reply *r) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      r->body.len, r->body.p ? r->body.p : (char *)"", MHD_RESPMEM_MUST_COPY);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", r->type);
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  if (strncmp(r->type, "text/html", 9) == 0)
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; style-src 'self'; base-uri 'none'; "
                            "frame-ancestors 'none'");
  if (r->location.p)
    MHD_add_response_header(resp, "Location", r->location.p);
  if (r->allow)
    MHD_add_response_header(resp, "Allow", r->allow);
  enum MHD_Result ret = MHD_queue_response(req->conn, r->status, resp);
  MHD_destroy_response(resp);
  fprintf(stderr, "dev-idp: %s %s %u\n", req->method, req->url, r->status);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_cls) {
  struct request *req = *req_cls;
  if (!req) {
    req = calloc(1, sizeof *req);
    if (!req)
      return MHD_NO;
    *req_cls = req;
    return MHD_YES;
  }
  if (*upload_size) {
    if (req->body.len + *upload_size > MAX_BODY)
      req->too_large = true; /* read and drop the rest, then answer 413 */
    else
      buf_addn(&req->body, upload_data, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  req->method = method;
  req->url = url;
  req->conn = conn;
  struct reply r = {.status = 500, .type = "text/plain; charset=utf-8"};
  dispatch(req, &r);
  enum MHD_Result ret = send_reply(req, &r);
  free(r.body.p);
  free(r.location.p);
  return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
  struct request *req = *req_cls;
  if (req)
    free(req->body.p);
  free(req);
  *req_cls = NULL;
}

static int serve(void) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, NULL); /* before MHD's thread starts, so it inherits the mask */
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, NULL,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&app.addr, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      (size_t)(64 * 1024), MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "dev-idp: cannot listen on %s (in use?)\n", app.listen);
    return 1;
  }
  fprintf(stderr, "dev-idp: listening on http://%s, issuer %s, kid %s\n", app.listen, app.issuer,
          app.key.kid);
  int sig = 0;
  sigwait(&stop, &sig);
  MHD_stop_daemon(d);
  fprintf(stderr, "dev-idp: stopped\n");
  return 0;
}

/* --- command line --------------------------------------------------------------------------------
 */

static const char usage[] =
    "usage: dev-idp serve\n"
    "       dev-idp mint --bsn BSN --loa LOA [--name N] [--ttl S] [--aud A] [--nonce N]\n"
    "       dev-idp mint --kvk KVK --employee ID --loa LOA [--name N] [--ttl S] [--aud A] [--nonce "
    "N]\n"
    "LOA is basis, midden, substantieel or hoog; --ttl may be negative (an expired token).\n"
    "Environment: DEV_IDP_LISTEN (127.0.0.1:8081), DEV_IDP_ISSUER (http://<listen>),\n"
    "DEV_IDP_AUDIENCE (machtigen), DEV_IDP_KEY (.dev/idp-key.pem, created if missing).\n";

static int bad_usage(const char *what, const char *arg) {
  fprintf(stderr, "dev-idp: %s%s (see dev-idp help)\n", what, arg ? arg : "");
  return 2;
}

static int mint_command(int argc, char **argv) {
  struct mint_args a = {0};
  static const char *const names[] = {"bsn", "kvk", "employee", "name",
                                      "loa", "ttl", "aud",      "nonce"};
  const char **slots[] = {&a.bsn, &a.kvk, &a.employee, &a.name, &a.loa, &a.ttl, &a.aud, &a.nonce};
  for (int i = 2; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) != 0)
      return bad_usage("unexpected argument ", argv[i]);
    const char *opt = argv[i] + 2, *eq = strchr(opt, '=');
    size_t len = eq ? (size_t)(eq - opt) : strlen(opt);
    size_t k = 0;
    while (k < sizeof names / sizeof *names &&
           (strlen(names[k]) != len || strncmp(names[k], opt, len)))
      k++;
    if (k == sizeof names / sizeof *names)
      return bad_usage("unknown option ", argv[i]);
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!value)
      return bad_usage("missing value for ", argv[i]);
    if (*slots[k])
      return bad_usage("repeated option ", argv[i]);
    *slots[k] = value;
  }
  if (!a.loa)
    return bad_usage("--loa is required", NULL);
  char err[256];
  if (!load_config(err, sizeof err)) {
    fprintf(stderr, "dev-idp: %s\n", err);
    return 1;
  }
  char *token = mint_from_args(&a, err, sizeof err);
  if (!token)
    return bad_usage("--", err);
  printf("%s\n", token);
  free(token);
  idp_key_free(&app.key);
  return 0;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (strcmp(cmd, "mint") == 0)
    return mint_command(argc, argv);
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(cmd, "serve") != 0 || argc > 2) {
    fputs(usage, stderr);
    return 2;
  }
  char err[256];
  if (!load_config(err, sizeof err)) {
    fprintf(stderr, "dev-idp: %s\n", err);
    return 1;
  }
  int rc = serve();
  idp_key_free(&app.key);
  return rc;
}

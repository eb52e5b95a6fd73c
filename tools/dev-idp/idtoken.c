/* dev-idp: signing key, ES256 identity tokens, input checks. */
#include "idtoken.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void b64url_encode(const unsigned char *in, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    out[o++] = b64url_alphabet[(v >> 18) & 63];
    out[o++] = b64url_alphabet[(v >> 12) & 63];
    if (i + 1 < n)
      out[o++] = b64url_alphabet[(v >> 6) & 63];
    if (i + 2 < n)
      out[o++] = b64url_alphabet[v & 63];
  }
  out[o] = '\0';
}

void random_b64url(size_t n, char *out) {
  unsigned char raw[48];
  if (n > sizeof raw || RAND_bytes(raw, (int)n) != 1)
    abort(); /* no randomness: nothing safe left to do */
  b64url_encode(raw, n, out);
}

static char *b64url_alloc(const unsigned char *in, size_t n) {
  char *out = malloc(B64URL_LEN(n) + 1);
  if (out)
    b64url_encode(in, n, out);
  return out;
}

/* --- key ------------------------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *what, const char *path) {
  snprintf(err, errlen, "%s %s%s%s", what, path, errno ? ": " : "", errno ? strerror(errno) : "");
}

/* mkdir -p of the directory part of path, 0700 for what we create. */
static bool make_parent_dirs(const char *path) {
  char dir[4096];
  if (strlen(path) >= sizeof dir)
    return false;
  strcpy(dir, path);
  char *slash = strrchr(dir, '/');
  if (!slash)
    return true;
  *slash = '\0';
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
      return false;
    *p = '/';
  }
  return dir[0] == '\0' || mkdir(dir, 0700) == 0 || errno == EEXIST;
}

/* Writes a new key to a private temporary file and links it into place, so that two processes
 * starting at once end up with the same key. */
static bool create_key_file(const char *path, char *err, size_t errlen) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  if (!pkey) {
    snprintf(err, errlen, "cannot generate a P-256 key");
    return false;
  }
  errno = 0;
  if (!make_parent_dirs(path)) {
    set_err(err, errlen, "cannot create the directory of", path);
    EVP_PKEY_free(pkey);
    return false;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  bool ok = f && PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1 && fflush(f) == 0 &&
            fsync(fileno(f)) == 0;
  if (f)
    ok = fclose(f) == 0 && ok;
  else if (fd >= 0)
    close(fd);
  EVP_PKEY_free(pkey);
  if (!ok) {
    set_err(err, errlen, "cannot write", tmp);
    unlink(tmp);
    return false;
  }
  if (link(tmp, path) != 0 && errno != EEXIST) {
    set_err(err, errlen, "cannot create", path);
    unlink(tmp);
    return false;
  }
  unlink(tmp);
  return true;
}

static bool coordinate(EVP_PKEY *pkey, const char *param, char *out) {
  BIGNUM *bn = NULL;
  unsigned char raw[32];
  bool ok = EVP_PKEY_get_bn_param(pkey, param, &bn) == 1 && BN_bn2binpad(bn, raw, 32) == 32;
  if (ok)
    b64url_encode(raw, 32, out);
  BN_free(bn);
  return ok;
}

bool idp_key_load_or_create(const char *path, struct idp_key *key, char *err, size_t errlen) {
  memset(key, 0, sizeof *key);
  FILE *f = fopen(path, "r");
  if (!f && errno == ENOENT) {
    if (!create_key_file(path, err, errlen))
      return false;
    f = fopen(path, "r");
  }
  if (!f) {
    set_err(err, errlen, "cannot open", path);
    return false;
  }
  key->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  char group[32] = "";
  errno = 0;
  if (!key->pkey || !EVP_PKEY_is_a(key->pkey, "EC") ||
      EVP_PKEY_get_utf8_string_param(key->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                     NULL) != 1 ||
      strcmp(group, "prime256v1") != 0 ||
      !coordinate(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, key->x) ||
      !coordinate(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, key->y)) {
    set_err(err, errlen, "not an EC P-256 private key in PEM:", path);
    idp_key_free(key);
    return false;
  }
  /* RFC 7638: the required members in lexical order, no white space. */
  char members[160];
  int n = snprintf(members, sizeof members,
                   "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", key->x, key->y);
  unsigned char digest[32];
  if (n < 0 || (size_t)n >= sizeof members ||
      EVP_Digest(members, (size_t)n, digest, NULL, EVP_sha256(), NULL) != 1) {
    snprintf(err, errlen, "cannot compute the key thumbprint");
    idp_key_free(key);
    return false;
  }
  b64url_encode(digest, sizeof digest, key->kid);
  return true;
}

void idp_key_free(struct idp_key *key) {
  EVP_PKEY_free(key->pkey);
  key->pkey = NULL;
}

char *idp_jwks_json(const struct idp_key *key) {
  json_t *jwks =
      json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys", "kty", "EC", "crv", "P-256",
                "x", key->x, "y", key->y, "kid", key->kid, "use", "sig", "alg", "ES256");
  char *out = jwks ? json_dumps(jwks, JSON_COMPACT) : NULL;
  json_decref(jwks);
  return out;
}

/* --- input checks ---------------------------------------------------------------------------- */

bool bsn_valid(const char *s) {
  int sum = 0;
  for (int i = 0; i < 9; i++) {
    if (!isdigit((unsigned char)s[i]))
      return false;
    sum += (s[i] - '0') * (i == 8 ? -1 : 9 - i);
  }
  return s[9] == '\0' && sum % 11 == 0 && strcmp(s, "000000000") != 0;
}

static bool all_digits(const char *s, size_t n) {
  if (strlen(s) != n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]))
      return false;
  return true;
}

bool token_string_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 256)
    return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x21 || s[i] > 0x7e)
      return false;
  return true;
}

bool ttl_parse(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < -TTL_LIMIT || v > TTL_LIMIT)
    return false;
  *out = v;
  return true;
}

/* Printable UTF-8 (no control characters), checked by letting jansson validate the encoding. */
static bool text_ok(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      return false;
  json_t *j = json_string(s);
  json_decref(j);
  return j != NULL;
}

static const char *const loa_words[] = {"basis", "midden", "substantieel", "hoog"};

static bool present(const char *s) { return s && *s; }

int subject_parse(const struct subject_fields *in, struct subject *out, struct field_error *errs,
                  int max) {
  int n = 0;
#define FAIL(f, nl_, en_)                                                                          \
  do {                                                                                             \
    if (n < max)                                                                                   \
      errs[n++] = (struct field_error){f, nl_, en_};                                               \
  } while (0)
  memset(out, 0, sizeof *out);
  /* With an explicit kind (the form) the other kind's fields are ignored; without one (mint)
   * they must not be mixed. */
  const char *kind = in->kind;
  bool inferred = !present(kind);
  if (inferred)
    kind = present(in->kvk) && !present(in->bsn) ? "organisation" : "person";
  if (strcmp(kind, "person") == 0) {
    out->kind = SUBJECT_PERSON;
    char bsn[10] = "0";
    const char *b = present(in->bsn) ? in->bsn : "";
    if (all_digits(b, 8)) /* a BSN written without its leading zero */
      memcpy(bsn + 1, b, 9);
    else if (all_digits(b, 9))
      memcpy(bsn, b, 10);
    if (!present(in->bsn))
      FAIL("bsn", "Vul een BSN in.", "Enter a BSN.");
    else if (!bsn_valid(bsn))
      FAIL("bsn", "Dit BSN klopt niet: het moet 9 cijfers zijn en de elfproef doorstaan.",
           "Not a valid BSN: 9 digits that pass the 11-check.");
    else
      memcpy(out->bsn, bsn, sizeof out->bsn);
    if (inferred && (present(in->kvk) || present(in->employee)))
      FAIL("kvk", "Geef een BSN of een KvK-nummer met medewerker-ID, niet allebei.",
           "Give a BSN, or a KvK number with an employee id, not both.");
  } else if (strcmp(kind, "organisation") == 0) {
    out->kind = SUBJECT_ORGANISATION;
    if (!present(in->kvk))
      FAIL("kvk", "Vul een KvK-nummer in.", "Enter a KvK number.");
    else if (!all_digits(in->kvk, 8))
      FAIL("kvk", "Een KvK-nummer bestaat uit 8 cijfers.", "A KvK number has 8 digits.");
    else
      memcpy(out->kvk, in->kvk, sizeof out->kvk);
    if (!present(in->employee))
      FAIL("employee", "Vul een medewerker-ID in.", "Enter an employee id.");
    else if (strlen(in->employee) >= sizeof out->employee || !token_string_ok(in->employee))
      FAIL("employee", "Een medewerker-ID heeft 1 tot 64 tekens, zonder spaties.",
           "An employee id has 1 to 64 characters, no spaces.");
    else
      strcpy(out->employee, in->employee);
  } else {
    FAIL("kind", "Kies persoon of organisatie.", "Choose person or organisation.");
  }
  if (present(in->name)) {
    if (strlen(in->name) >= sizeof out->name || !text_ok(in->name))
      FAIL("name", "Een naam heeft hoogstens 200 tekens, zonder regeleinden.",
           "A name has at most 200 characters and no line breaks.");
    else
      strcpy(out->name, in->name);
  }
  for (size_t i = 0; present(in->loa) && i < sizeof loa_words / sizeof *loa_words; i++)
    if (strcmp(in->loa, loa_words[i]) == 0)
      strcpy(out->loa, loa_words[i]);
  if (!out->loa[0])
    FAIL("loa", "Kies een betrouwbaarheidsniveau: basis, midden, substantieel of hoog.",
         "Choose a level of assurance: basis, midden, substantieel or hoog.");
#undef FAIL
  return n;
}

/* --- tokens ---------------------------------------------------------------------------------- */

/* ES256: the JWS signature is r || s, 32 bytes each (RFC 7518 §3.4), not OpenSSL's DER. */
static bool es256_sign(EVP_PKEY *pkey, const char *input, size_t len, unsigned char raw[64]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char der[80];
  size_t der_len = sizeof der;
  bool ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
            EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, len) == 1;
  EVP_MD_CTX_free(md);
  if (!ok)
    return false;
  const unsigned char *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
  const BIGNUM *r, *s;
  if (sig)
    ECDSA_SIG_get0(sig, &r, &s);
  ok = sig && BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  return ok;
}

static char *b64url_json(json_t *j) {
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  char *out = text ? b64url_alloc((const unsigned char *)text, strlen(text)) : NULL;
  free(text);
  return out;
}

char *idtoken_mint(const struct idp_key *key, const char *issuer, const struct mint_request *req) {
  const struct subject *s = &req->subject;
  int64_t now = (int64_t)time(NULL);
  int64_t exp = now + req->ttl;
  /* An expired token (ttl ≤ 0) looks like one issued ten minutes before it expired. */
  int64_t iat = req->ttl > 0 ? now : exp - 600;
  char jti[B64URL_LEN(16) + 1];
  random_b64url(16, jti);

  json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid", key->kid);
  json_t *claims = json_pack("{s:s, s:s, s:s}", "iss", issuer, "aud", req->audience, "sub",
                             s->kind == SUBJECT_PERSON ? s->bsn : s->employee);
  if (claims && s->kind == SUBJECT_ORGANISATION)
    json_object_set_new(claims, "kvk", json_string(s->kvk));
  if (claims && s->name[0])
    json_object_set_new(claims, "name", json_string(s->name));
  if (claims) {
    json_object_set_new(claims, "acr", json_string(s->loa));
    json_object_set_new(claims, "iat", json_integer(iat));
    json_object_set_new(claims, "nbf", json_integer(iat));
    json_object_set_new(claims, "exp", json_integer(exp));
    if (req->nonce)
      json_object_set_new(claims, "nonce", json_string(req->nonce));
    json_object_set_new(claims, "jti", json_string(jti));
  }
  char *h = b64url_json(header), *c = b64url_json(claims);
  json_decref(header);
  json_decref(claims);
  char *token = NULL;
  if (h && c) {
    size_t input_len = strlen(h) + 1 + strlen(c);
    token = malloc(input_len + 1 + B64URL_LEN(64) + 1);
    unsigned char sig[64];
    if (token) {
      snprintf(token, input_len + 1, "%s.%s", h, c);
      if (es256_sign(key->pkey, token, input_len, sig)) {
        token[input_len] = '.';
        b64url_encode(sig, sizeof sig, token + input_len + 1);
      } else {
        free(token);
        token = NULL;
      }
    }
  }
  free(h);
  free(c);
  return token;
}

#include "tokens/signer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjose/cjose.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "jose/jws.h"
#include "log.h"

#define KEY_FILE "keys.json"

/* One immutable view of the key file; swapped whole on reload. */
struct key_state {
  cjose_jwk_t *signing;
  EVP_PKEY *signing_pkey; /* the same key for OpenSSL, built once */
  char kid[64];
  char *jwks_json;
  struct jose_keyset *verify;
  int64_t rebuild_at; /* when a retired key leaves the JWKS */
};

static pthread_rwlock_t state_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct key_state *state;
static unsigned long state_generation; /* bumped on every swap */
static char key_path[4096];
static struct timespec loaded_mtime;
static ino_t loaded_ino;
static pthread_t reload_thread;
static volatile int reload_stop;
static bool reload_running;

static int64_t now_s(void) { return (int64_t)time(NULL); }

static void key_state_free(struct key_state *s) {
  if (s == NULL)
    return;
  if (s->signing != NULL)
    cjose_jwk_release(s->signing);
  EVP_PKEY_free(s->signing_pkey);
  free(s->jwks_json);
  if (s->verify != NULL)
    jose_keyset_unref(s->verify);
  free(s);
}

/* ---- The key file ------------------------------------------------- */

static json_t *file_load(const char *path, char *err, size_t errlen) {
  json_error_t jerr;
  json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  if (doc == NULL) {
    snprintf(err, errlen, "%s: %s", path,
             errno == ENOENT ? "missing (run `machtigend keys rotate`)" : jerr.text);
    return NULL;
  }
  if (!json_is_array(json_object_get(doc, "keys"))) {
    snprintf(err, errlen, "%s: no \"keys\" array", path);
    json_decref(doc);
    return NULL;
  }
  return doc;
}

static bool file_save(const char *path, json_t *doc) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    return false;
  char *text = json_dumps(doc, JSON_INDENT(2));
  bool ok =
      text != NULL && write(fd, text, strlen(text)) == (ssize_t)strlen(text) && fsync(fd) == 0;
  free(text);
  ok = close(fd) == 0 && ok;
  return ok && rename(tmp, path) == 0;
}

static void path_in(const char *dir, char *out, size_t len) {
  snprintf(out, len, "%s/" KEY_FILE, dir);
}

/* RFC 7638 thumbprint of an EC public key as its kid. */
static bool ec_thumbprint(const cjose_jwk_t *jwk, char *kid, size_t len) {
  cjose_err cerr;
  char *pub = cjose_jwk_to_json(jwk, false, &cerr);
  json_t *j = pub ? json_loads(pub, 0, NULL) : NULL;
  free(pub);
  if (j == NULL)
    return false;
  char canon[300];
  snprintf(canon, sizeof canon, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
           json_string_value(json_object_get(j, "crv")), json_string_value(json_object_get(j, "x")),
           json_string_value(json_object_get(j, "y")));
  json_decref(j);
  unsigned char digest[32];
  unsigned dlen = 0;
  if (EVP_Digest(canon, strlen(canon), digest, &dlen, EVP_sha256(), NULL) != 1)
    return false;
  b64url_encode(digest, dlen, kid, len);
  return true;
}

static bool key_published(json_t *entry, int64_t now, int64_t *leaves_at) {
  json_t *retired = json_object_get(entry, "retired");
  if (!json_is_integer(retired))
    return true;
  int64_t until = json_integer_value(retired) + TOKEN_MAX_TTL + TOKEN_LEEWAY;
  if (until > now && (*leaves_at == 0 || until < *leaves_at))
    *leaves_at = until;
  return until > now;
}

/* cjose reads and writes our JWKs; signing itself goes straight to
 * OpenSSL with a key built once here, because cjose's signing path costs
 * several times the ECDSA operation (per-call algorithm fetches, header
 * JSON, copies) and was a quarter of a token exchange's CPU. */
static EVP_PKEY *ec_private_pkey(const cjose_jwk_t *jwk) {
  cjose_err cerr;
  char *priv = cjose_jwk_to_json(jwk, true, &cerr);
  json_t *j = priv ? json_loads(priv, 0, NULL) : NULL;
  if (priv != NULL)
    OPENSSL_cleanse(priv, strlen(priv));
  free(priv);
  unsigned char point[65], d[32];
  point[0] = 0x04;
  const char *x = json_string_value(json_object_get(j, "x"));
  const char *y = json_string_value(json_object_get(j, "y"));
  const char *dd = json_string_value(json_object_get(j, "d"));
  bool ok = x && y && dd && b64url_decode(x, strlen(x), point + 1, 32) == 32 &&
            b64url_decode(y, strlen(y), point + 33, 32) == 32 &&
            b64url_decode(dd, strlen(dd), d, 32) == 32;
  json_decref(j);
  EVP_PKEY *pkey = NULL;
  BIGNUM *bn = ok ? BN_bin2bn(d, 32, NULL) : NULL;
  OPENSSL_cleanse(d, sizeof d);
  OSSL_PARAM_BLD *bld = bn ? OSSL_PARAM_BLD_new() : NULL;
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) &&
      (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
      (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL &&
      EVP_PKEY_fromdata_init(ctx) == 1)
    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_clear_free(bn);
  return pkey;
}

/* Builds a key state from the file: every JWK is imported here once. */
static struct key_state *state_build(json_t *doc, char *err, size_t errlen) {
  struct key_state *s = calloc(1, sizeof *s);
  json_t *jwks = json_pack("{s:[]}", "keys");
  int64_t newest = -1, now = now_s();
  size_t i;
  json_t *entry;
  json_array_foreach(json_object_get(doc, "keys"), i, entry) {
    if (!key_published(entry, now, &s->rebuild_at))
      continue;
    char *jwk_text = json_dumps(json_object_get(entry, "jwk"), JSON_COMPACT);
    cjose_err cerr;
    cjose_jwk_t *jwk = jwk_text ? cjose_jwk_import(jwk_text, strlen(jwk_text), &cerr) : NULL;
    free(jwk_text);
    const char *kid = json_string_value(json_object_get(entry, "kid"));
    if (jwk == NULL || kid == NULL || cjose_jwk_get_kty(jwk, &cerr) != CJOSE_JWK_KTY_EC) {
      if (jwk != NULL)
        cjose_jwk_release(jwk);
      snprintf(err, errlen, "key %zu in the key file is not an EC key with a kid", i);
      json_decref(jwks);
      key_state_free(s);
      return NULL;
    }
    char *pub = cjose_jwk_to_json(jwk, false, &cerr);
    json_t *pubj = pub ? json_loads(pub, 0, NULL) : NULL;
    free(pub);
    if (pubj != NULL) {
      json_object_set_new(pubj, "kid", json_string(kid));
      json_object_set_new(pubj, "use", json_string("sig"));
      json_object_set_new(pubj, "alg", json_string("ES256"));
      json_array_append_new(json_object_get(jwks, "keys"), pubj);
    }
    int64_t created = json_integer_value(json_object_get(entry, "created"));
    if (!json_is_integer(json_object_get(entry, "retired")) && created > newest) {
      if (s->signing != NULL)
        cjose_jwk_release(s->signing);
      s->signing = jwk;
      snprintf(s->kid, sizeof s->kid, "%s", kid);
      newest = created;
    } else {
      cjose_jwk_release(jwk);
    }
  }
  s->jwks_json = json_dumps(jwks, JSON_COMPACT);
  json_decref(jwks);
  if (s->signing != NULL && (s->signing_pkey = ec_private_pkey(s->signing)) == NULL) {
    snprintf(err, errlen, "the current key cannot be loaded for signing");
    key_state_free(s);
    return NULL;
  }
  if (s->signing == NULL) {
    snprintf(err, errlen,
             "the key file has no current (unretired) key: run `machtigend keys rotate`");
    key_state_free(s);
    return NULL;
  }
  s->verify = jose_keyset_from_jwks(s->jwks_json, strlen(s->jwks_json), err, errlen);
  if (s->verify == NULL) {
    key_state_free(s);
    return NULL;
  }
  return s;
}

/* ---- Subcommands -------------------------------------------------- */

int keys_rotate(const char *dir) {
  char path[4096], err[256];
  path_in(dir, path, sizeof path);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "machtigend keys rotate: cannot create %s\n", dir);
    return 1;
  }
  json_t *doc =
      access(path, F_OK) == 0 ? file_load(path, err, sizeof err) : json_pack("{s:[]}", "keys");
  if (doc == NULL) {
    fprintf(stderr, "machtigend keys rotate: %s\n", err);
    return 1;
  }
  cjose_err cerr;
  cjose_jwk_t *jwk = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
  char kid[64];
  char *priv = NULL;
  if (jwk == NULL || !ec_thumbprint(jwk, kid, sizeof kid) ||
      (priv = cjose_jwk_to_json(jwk, true, &cerr)) == NULL) {
    fprintf(stderr, "machtigend keys rotate: key generation failed\n");
    json_decref(doc);
    return 1;
  }
  int64_t now = now_s();
  size_t i;
  json_t *entry;
  json_array_foreach(json_object_get(doc, "keys"), i, entry) {
    if (!json_is_integer(json_object_get(entry, "retired")))
      json_object_set_new(entry, "retired", json_integer(now));
  }
  json_t *jwk_json = json_loads(priv, 0, NULL);
  json_object_set_new(jwk_json, "kid", json_string(kid));
  json_array_append_new(json_object_get(doc, "keys"),
                        json_pack("{s:s, s:I, s:n, s:o}", "kid", kid, "created", (json_int_t)now,
                                  "retired", "jwk", jwk_json));
  free(priv);
  cjose_jwk_release(jwk);
  bool ok = file_save(path, doc);
  json_decref(doc);
  if (!ok) {
    fprintf(stderr, "machtigend keys rotate: cannot write %s\n", path);
    return 1;
  }
  printf("kid=%s\n", kid);
  return 0;
}

int keys_list(const char *dir) {
  char path[4096], err[256];
  path_in(dir, path, sizeof path);
  json_t *doc = file_load(path, err, sizeof err);
  if (doc == NULL) {
    fprintf(stderr, "machtigend keys list: %s\n", err);
    return 1;
  }
  size_t i;
  json_t *entry;
  json_array_foreach(json_object_get(doc, "keys"), i, entry) {
    json_t *retired = json_object_get(entry, "retired");
    printf("%s created=%lld %s\n", json_string_value(json_object_get(entry, "kid")),
           (long long)json_integer_value(json_object_get(entry, "created")),
           json_is_integer(retired) ? "retired" : "current");
  }
  json_decref(doc);
  return 0;
}

int keys_prune(const char *dir, bool force) {
  char path[4096], err[256];
  path_in(dir, path, sizeof path);
  json_t *doc = file_load(path, err, sizeof err);
  if (doc == NULL) {
    fprintf(stderr, "machtigend keys prune: %s\n", err);
    return 1;
  }
  json_t *keys = json_object_get(doc, "keys");
  int64_t now = now_s(), unused = 0;
  int dropped = 0;
  for (size_t i = json_array_size(keys); i-- > 0;) {
    json_t *entry = json_array_get(keys, i);
    bool retired = json_is_integer(json_object_get(entry, "retired"));
    if (retired && (force || !key_published(entry, now, &unused))) {
      printf("dropped %s\n", json_string_value(json_object_get(entry, "kid")));
      json_array_remove(keys, i);
      dropped++;
    }
  }
  bool ok = dropped == 0 || file_save(path, doc);
  json_decref(doc);
  if (!ok) {
    fprintf(stderr, "machtigend keys prune: cannot write %s\n", path);
    return 1;
  }
  return 0;
}

/* ---- Serving ------------------------------------------------------ */

static bool file_changed(struct stat *st) {
  if (stat(key_path, st) != 0)
    return false;
  return st->st_ino != loaded_ino || st->st_mtim.tv_sec != loaded_mtime.tv_sec ||
         st->st_mtim.tv_nsec != loaded_mtime.tv_nsec;
}

static bool reload(char *err, size_t errlen) {
  struct stat st;
  if (stat(key_path, &st) != 0) {
    snprintf(err, errlen, "%s: missing (run `machtigend keys rotate`)", key_path);
    return false;
  }
  json_t *doc = file_load(key_path, err, errlen);
  if (doc == NULL)
    return false;
  struct key_state *next = state_build(doc, err, errlen);
  json_decref(doc);
  if (next == NULL)
    return false;
  pthread_rwlock_wrlock(&state_lock);
  struct key_state *old = state;
  state = next;
  state_generation++;
  loaded_ino = st.st_ino;
  loaded_mtime = st.st_mtim;
  pthread_rwlock_unlock(&state_lock);
  key_state_free(old);
  return true;
}

void signer_maybe_reload(void) {
  struct stat st;
  pthread_rwlock_rdlock(&state_lock);
  int64_t rebuild_at = state ? state->rebuild_at : 0;
  pthread_rwlock_unlock(&state_lock);
  if (!file_changed(&st) && (rebuild_at == 0 || now_s() < rebuild_at))
    return;
  char err[256];
  if (!reload(err, sizeof err))
    log_msg(LOG_ERROR, "signing keys not reloaded, keeping the current ones: %s", err);
  else
    log_msg(LOG_INFO, "signing keys reloaded");
}

static void *reload_loop(void *arg) {
  unsigned interval = *(unsigned *)arg;
  while (!reload_stop) {
    for (unsigned i = 0; i < interval * 10 && !reload_stop; i++)
      usleep(100000);
    if (!reload_stop)
      signer_maybe_reload();
  }
  return NULL;
}

bool signer_init(const char *dir, char *err, size_t errlen) {
  path_in(dir, key_path, sizeof key_path);
  if (!reload(err, errlen))
    return false;
  static unsigned interval;
  const char *env = getenv("MACHTIGEN_KEY_RELOAD_SECONDS");
  interval = env ? (unsigned)atoi(env) : 1;
  if (interval < 1)
    interval = 1;
  reload_stop = 0;
  reload_running = pthread_create(&reload_thread, NULL, reload_loop, &interval) == 0;
  return true;
}

void signer_shutdown(void) {
  if (reload_running) {
    reload_stop = 1;
    pthread_join(reload_thread, NULL);
    reload_running = false;
  }
  pthread_rwlock_wrlock(&state_lock);
  key_state_free(state);
  state = NULL;
  pthread_rwlock_unlock(&state_lock);
}

/* Each thread keeps a signing context for the current key. */
struct sign_ctx {
  unsigned long generation;
  EVP_PKEY_CTX *ctx;
};

static pthread_key_t sign_key;
static pthread_once_t sign_key_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256;

static void sign_ctx_free(void *p) {
  struct sign_ctx *sc = p;
  EVP_PKEY_CTX_free(sc->ctx);
  free(sc);
}

static void sign_init_once(void) {
  pthread_key_create(&sign_key, sign_ctx_free);
  sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* ES256 over input: the raw 64-byte r || s that JWS wants (RFC 7518 §3.4). */
static bool es256_sign(const char *input, size_t len, unsigned char sig[64]) {
  pthread_once(&sign_key_once, sign_init_once);
  struct sign_ctx *sc = pthread_getspecific(sign_key);
  if (sc == NULL) {
    if ((sc = calloc(1, sizeof *sc)) == NULL)
      return false;
    pthread_setspecific(sign_key, sc);
  }
  if (sc->ctx == NULL || sc->generation != state_generation) {
    EVP_PKEY_CTX_free(sc->ctx);
    sc->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, state->signing_pkey, NULL);
    sc->generation = state_generation;
    if (sc->ctx == NULL || EVP_PKEY_sign_init(sc->ctx) != 1) {
      EVP_PKEY_CTX_free(sc->ctx);
      sc->ctx = NULL;
      return false;
    }
  }
  unsigned char digest[32], der[80];
  size_t derlen = sizeof der;
  if (sha256 == NULL || EVP_Digest(input, len, digest, NULL, sha256, NULL) != 1 ||
      EVP_PKEY_sign(sc->ctx, der, &derlen, digest, sizeof digest) != 1)
    return false;
  const unsigned char *p = der;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
  const BIGNUM *r = NULL, *s = NULL;
  if (es != NULL)
    ECDSA_SIG_get0(es, &r, &s);
  bool ok = es != NULL && BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32;
  ECDSA_SIG_free(es);
  return ok;
}

char *signer_sign(json_t *claims, const char *typ) {
  char *payload = json_dumps(claims, JSON_COMPACT);
  if (payload == NULL)
    return NULL;
  size_t plen = strlen(payload);
  char *out = NULL;
  pthread_rwlock_rdlock(&state_lock);
  if (state != NULL) {
    char header[160];
    int hlen = snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"%s\"}",
                        state->kid, typ);
    size_t cap = B64URL_ENCODED_LEN(hlen) + B64URL_ENCODED_LEN(plen) + B64URL_ENCODED_LEN(64) + 3;
    out = malloc(cap);
    unsigned char sig[64];
    size_t n = 0;
    if (out != NULL && hlen > 0 && (size_t)hlen < sizeof header) {
      n = b64url_encode((const unsigned char *)header, (size_t)hlen, out, cap);
      out[n++] = '.';
      n += b64url_encode((const unsigned char *)payload, plen, out + n, cap - n);
    }
    if (out != NULL && n > 0 && es256_sign(out, n, sig)) {
      out[n++] = '.';
      b64url_encode(sig, sizeof sig, out + n, cap - n);
    } else {
      log_msg(LOG_ERROR, "signing failed");
      free(out);
      out = NULL;
    }
  }
  pthread_rwlock_unlock(&state_lock);
  free(payload);
  return out;
}

char *signer_jwks_json(void) {
  pthread_rwlock_rdlock(&state_lock);
  char *out = state ? strdup(state->jwks_json) : NULL;
  pthread_rwlock_unlock(&state_lock);
  return out;
}

struct jose_keyset *signer_verify_keys(unsigned long *generation) {
  pthread_rwlock_rdlock(&state_lock);
  struct jose_keyset *ks = state ? state->verify : NULL;
  *generation = state_generation;
  if (ks != NULL)
    jose_keyset_ref(ks);
  pthread_rwlock_unlock(&state_lock);
  return ks;
}

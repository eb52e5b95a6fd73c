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
#include <openssl/evp.h>

#include "jose/jws.h"
#include "log.h"

#define KEY_FILE "keys.json"

/* One immutable view of the key file; swapped whole on reload. */
struct key_state {
  cjose_jwk_t *signing;
  char kid[64];
  char *jwks_json;
  struct jose_keyset *verify;
  int64_t rebuild_at; /* when a retired key leaves the JWKS */
};

static pthread_rwlock_t state_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct key_state *state;
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

char *signer_sign(json_t *claims, const char *typ) {
  char *payload = json_dumps(claims, JSON_COMPACT);
  if (payload == NULL)
    return NULL;
  char *out = NULL;
  cjose_err cerr;
  pthread_rwlock_rdlock(&state_lock);
  if (state != NULL) {
    cjose_header_t *h = cjose_header_new(&cerr);
    if (h != NULL && cjose_header_set(h, CJOSE_HDR_ALG, CJOSE_HDR_ALG_ES256, &cerr) &&
        cjose_header_set(h, CJOSE_HDR_KID, state->kid, &cerr) &&
        cjose_header_set(h, "typ", typ, &cerr)) {
      cjose_jws_t *jws =
          cjose_jws_sign(state->signing, h, (const uint8_t *)payload, strlen(payload), &cerr);
      const char *compact = NULL;
      if (jws != NULL && cjose_jws_export(jws, &compact, &cerr))
        out = strdup(compact);
      else
        log_msg(LOG_ERROR, "signing failed: cjose error %d", (int)cerr.code);
      if (jws != NULL)
        cjose_jws_release(jws);
    }
    if (h != NULL)
      cjose_header_release(h);
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

struct jose_keyset *signer_verify_keys(void) {
  pthread_rwlock_rdlock(&state_lock);
  struct jose_keyset *ks = state ? state->verify : NULL;
  if (ks != NULL)
    jose_keyset_ref(ks);
  pthread_rwlock_unlock(&state_lock);
  return ks;
}

#include "auth/session.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "config.h"
#include "jose/jws.h"

static bool secure_cookie(void) { return strncmp(config.public_url, "https://", 8) == 0; }

const char *session_cookie_name(void) {
  return secure_cookie() ? "__Host-machtigen" : "machtigen-session";
}

bool session_random_token(char out[SESSION_TOKEN_LEN + 1]) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1)
    return false;
  b64url_encode(raw, sizeof raw, out, SESSION_TOKEN_LEN + 1);
  return true;
}

void session_sha256_hex(const char *text, char out[65]) {
  unsigned char digest[32];
  EVP_Digest(text, strlen(text), digest, NULL, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static void copy(char *dst, size_t len, const char *src) {
  snprintf(dst, len, "%s", src != NULL ? src : "");
}

static bool token_shaped(const char *t) {
  if (strlen(t) != SESSION_TOKEN_LEN)
    return false;
  for (const char *c = t; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '-' || *c == '_'))
      return false;
  return true;
}

enum db_status session_load(struct db *db, const char *cookie, struct web_session *s) {
  memset(s, 0, sizeof *s);
  if (cookie == NULL)
    return DB_OK;
  s->cookie_sent = true;
  if (!token_shaped(cookie))
    return DB_OK;
  session_sha256_hex(cookie, s->id_hash);
  char idle[16];
  snprintf(idle, sizeof idle, "%u", config.session_idle_seconds);
  const char *params[] = {s->id_hash, idle};
  PGresult *r;
  enum db_status st = db_run(db, STMT_WEB_SESSION_TOUCH, 2, params, &r);
  if (st == DB_NOT_FOUND) {
    PQclear(r);
    return DB_OK;
  }
  if (st != DB_OK)
    return st;
  s->live = true;
  copy(s->csrf, sizeof s->csrf, db_text(r, 0, 0));
  const char *party = db_text(r, 0, 1);
  if (party != NULL && party_parse(party, &s->who.party) == PARTY_OK) {
    s->logged_in = true;
    copy(s->who.employee, sizeof s->who.employee, db_text(r, 0, 2));
    s->who.loa = loa_parse(db_text(r, 0, 3));
  }
  copy(s->display_name, sizeof s->display_name, db_text(r, 0, 4));
  copy(s->login_state, sizeof s->login_state, db_text(r, 0, 5));
  copy(s->login_nonce, sizeof s->login_nonce, db_text(r, 0, 6));
  copy(s->login_verifier, sizeof s->login_verifier, db_text(r, 0, 7));
  copy(s->return_to, sizeof s->return_to, db_text(r, 0, 8));
  PQclear(r);
  return DB_OK;
}

static void set_cookie(struct web_session *s, const char *value) {
  snprintf(s->set_cookie, sizeof s->set_cookie, "%s=%s; Path=/; HttpOnly; SameSite=Lax%s%s",
           session_cookie_name(), value, secure_cookie() ? "; Secure" : "",
           value[0] == '\0' ? "; Max-Age=0" : "");
}

static enum db_status run(struct db *db, enum stmt stmt, int n, const char *const *params) {
  PGresult *r;
  enum db_status st = db_run(db, stmt, n, params, &r);
  PQclear(r);
  return st;
}

enum db_status session_start(struct db *db, struct web_session *s) {
  if (s->live) {
    const char *old[] = {s->id_hash};
    enum db_status st = run(db, STMT_WEB_SESSION_DELETE, 1, old);
    if (st != DB_OK && st != DB_NOT_FOUND)
      return st;
  }
  char id[SESSION_TOKEN_LEN + 1];
  if (!session_random_token(id) || !session_random_token(s->csrf))
    return DB_HARD_ERROR;
  session_sha256_hex(id, s->id_hash);
  char max[16];
  snprintf(max, sizeof max, "%u", config.session_max_seconds);
  /* Expired rows go now and then: each login clears what has lapsed. */
  char idle[16];
  snprintf(idle, sizeof idle, "%u", config.session_idle_seconds);
  const char *prune[] = {idle};
  run(db, STMT_WEB_SESSION_PRUNE, 1, prune);
  const char *params[] = {
      s->id_hash,
      s->csrf,
      s->logged_in ? s->who.party.id : NULL,
      s->logged_in && s->who.employee[0] ? s->who.employee : NULL,
      s->logged_in ? loa_name(s->who.loa) : NULL,
      s->display_name[0] ? s->display_name : NULL,
      s->login_state[0] ? s->login_state : NULL,
      s->login_nonce[0] ? s->login_nonce : NULL,
      s->login_verifier[0] ? s->login_verifier : NULL,
      s->return_to[0] ? s->return_to : NULL,
      max,
  };
  enum db_status st = run(db, STMT_WEB_SESSION_INSERT, 11, params);
  if (st != DB_OK)
    return st;
  s->live = true;
  set_cookie(s, id);
  return DB_OK;
}

enum db_status session_end(struct db *db, struct web_session *s) {
  enum db_status st = DB_OK;
  if (s->live) {
    const char *params[] = {s->id_hash};
    st = run(db, STMT_WEB_SESSION_DELETE, 1, params);
    if (st == DB_NOT_FOUND)
      st = DB_OK;
  }
  s->live = false;
  s->logged_in = false;
  set_cookie(s, "");
  return st;
}

bool session_csrf_ok(const struct web_session *s, const char *token) {
  if (!s->live || token == NULL || strlen(token) != SESSION_TOKEN_LEN ||
      strlen(s->csrf) != SESSION_TOKEN_LEN)
    return false;
  return CRYPTO_memcmp(token, s->csrf, SESSION_TOKEN_LEN) == 0;
}

/* Server-side sessions of the web forms.  The browser holds a random
 * 256-bit id in an HttpOnly cookie; PostgreSQL holds only its SHA-256,
 * the CSRF token, who logged in and, before that, the OpenID Connect
 * login's state, nonce and PKCE verifier.  A session ends after
 * MACHTIGEN_SESSION_IDLE_SECONDS without a request or
 * MACHTIGEN_SESSION_MAX_SECONDS after it began, and at logout. */
#ifndef MACHTIGEN_SESSION_H
#define MACHTIGEN_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/identity.h"
#include "db/db.h"

#define SESSION_TOKEN_LEN 43 /* 256 bits, base64url */
#define SESSION_RETURN_MAX 2048

struct web_session {
  bool cookie_sent; /* the browser sent a session cookie, live or not */
  bool live;        /* ... and it names a live session */
  char id_hash[65]; /* hex SHA-256 of the id in the cookie */
  char csrf[SESSION_TOKEN_LEN + 1];
  bool logged_in;
  struct identity who; /* valid when logged_in (exp unused) */
  char display_name[201];
  char login_state[SESSION_TOKEN_LEN + 1];
  char login_nonce[SESSION_TOKEN_LEN + 1];
  char login_verifier[SESSION_TOKEN_LEN + 1];
  char return_to[SESSION_RETURN_MAX + 1];
  /* A Set-Cookie value to send with the answer ("" for none). */
  char set_cookie[160];
};

/* The session cookie's name: __Host-machtigen when Secure, else
 * machtigen-session. */
const char *session_cookie_name(void);

/* Loads (and touches) the session whose id the cookie holds.  cookie may
 * be NULL.  DB_OK also when there is none (then s->live is false). */
enum db_status session_load(struct db *db, const char *cookie, struct web_session *s);

/* Starts a new session in s (a fresh id, CSRF token and cookie), with
 * s->who / display_name when logged_in, or the login fields.  The old
 * one, if s was live, is deleted: this is the rotation at login. */
enum db_status session_start(struct db *db, struct web_session *s);

/* Ends the session on the server and clears the cookie. */
enum db_status session_end(struct db *db, struct web_session *s);

/* Constant-time comparison with the session's CSRF token. */
bool session_csrf_ok(const struct web_session *s, const char *token);

/* A random base64url token of SESSION_TOKEN_LEN characters. */
bool session_random_token(char out[SESSION_TOKEN_LEN + 1]);

/* Hex SHA-256 of text. */
void session_sha256_hex(const char *text, char out[65]);

#endif

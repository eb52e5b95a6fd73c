#include "db/audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "log.h"

/* ---- Digest ------------------------------------------------------- */

/* The canonical row is gathered in a buffer and hashed in one call (an
 * import chains a million rows: one EVP_DigestUpdate per piece cost more
 * than the hash); a row longer than the buffer goes to the digest in
 * pieces as it fills. */
struct digest_buf {
  EVP_MD_CTX *ctx;
  size_t len;
  unsigned char b[2048];
};

static void digest_put(struct digest_buf *d, const void *p, size_t n) {
  if (d->len + n > sizeof d->b) {
    EVP_DigestUpdate(d->ctx, d->b, d->len);
    d->len = 0;
    if (n > sizeof d->b) {
      EVP_DigestUpdate(d->ctx, p, n);
      return;
    }
  }
  memcpy(d->b + d->len, p, n);
  d->len += n;
}

/* Each field as "<length>:<bytes>;" or "-;" for none: unambiguous. */
static void digest_field(struct digest_buf *d, const char *v) {
  if (v == NULL) {
    digest_put(d, "-;", 2);
    return;
  }
  size_t n = strlen(v);
  char len[24];
  int k = snprintf(len, sizeof len, "%zu:", n);
  digest_put(d, len, (size_t)k);
  digest_put(d, v, n);
  digest_put(d, ";", 1);
}

static const char *none_if_empty(const char *s) { return s != NULL && s[0] != '\0' ? s : NULL; }

/* SHA-256 fetched once, not looked up again for every row. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

/* A new SHA-256 context, ready for input. */
static EVP_MD_CTX *sha256_start(void) {
  pthread_once(&sha256_once, sha256_fetch);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, sha256_md != NULL ? sha256_md : EVP_sha256(), NULL);
  return ctx;
}

void audit_digest(const unsigned char prev[32], long long seq, usec_t at,
                  const struct audit_event *e, unsigned char out[32]) {
  struct digest_buf d = {.ctx = sha256_start()};
  unsigned len = 0;
  char nums[64];
  snprintf(nums, sizeof nums, "%lld|%lld", seq, (long long)at);
  digest_put(&d, prev, 32);
  digest_field(&d, nums);
  digest_field(&d, e->event);
  digest_field(&d, none_if_empty(e->mandate_id));
  digest_field(&d, none_if_empty(e->principal));
  digest_field(&d, e->actor);
  digest_field(&d, none_if_empty(e->actor_employee));
  digest_field(&d, none_if_empty(e->service));
  digest_field(&d, none_if_empty(e->client));
  digest_field(&d, e->detail_json ? e->detail_json : "{}");
  EVP_DigestUpdate(d.ctx, d.b, d.len);
  EVP_DigestFinal_ex(d.ctx, out, &len);
  EVP_MD_CTX_free(d.ctx);
}

/* ---- The changes of an import ---------------------------------------- */

void changes_digest_start(struct changes_digest *d) {
  *d = (struct changes_digest){.ctx = sha256_start()};
}

void changes_digest_line(struct changes_digest *d, const char *line, size_t len) {
  char want[24];
  int k = snprintf(want, sizeof want, "%lld\t", ++d->count);
  if ((size_t)k > len || memcmp(line, want, (size_t)k) != 0)
    d->out_of_order = true;
  EVP_DigestUpdate(d->ctx, line, len);
}

bool changes_digest_end(struct changes_digest *d, char hex[65]) {
  unsigned char out[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(d->ctx, out, &len);
  EVP_MD_CTX_free(d->ctx);
  d->ctx = NULL;
  audit_to_hex(out, 32, hex);
  return !d->out_of_order;
}

void audit_to_hex(const unsigned char *in, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * n] = '\0';
}

bool audit_from_hex(const char *in, unsigned char *out, size_t n) {
  if (in == NULL || strlen(in) != 2 * n)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(in + 2 * i, "%2x", &v) != 1)
      return false;
    out[i] = (unsigned char)v;
  }
  return true;
}

/* ---- Appending ---------------------------------------------------- */

struct chain_head {
  long long seq;
  unsigned char hash[32];
};

usec_t audit_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* Chains n events onto head and runs AUDIT_APPEND, which moves the head
 * and inserts the rows only if the head is still the one we chained on.
 * *moved tells which; on success head becomes the new head. */
static enum db_status append_on(struct db *db, struct chain_head *head, usec_t at,
                                const struct audit_event *const *events, int n, bool *moved,
                                struct chain_head *would_be) {
  *moved = false;
  json_t *rows = json_array();
  unsigned char hash[32];
  memcpy(hash, head->hash, 32);
  char hex_prev[65], hex_hash[65], hex_head[65];
  audit_to_hex(head->hash, 32, hex_head);
  long long seq = head->seq;
  bool ok = rows != NULL;
  for (int i = 0; ok && i < n; i++) {
    const struct audit_event *e = events[i];
    seq++;
    audit_to_hex(hash, 32, hex_prev);
    audit_digest(hash, seq, at, e, hash);
    audit_to_hex(hash, 32, hex_hash);
    json_t *row =
        json_pack("{s:I, s:I, s:s, s:s?, s:s?, s:s, s:s?, s:s?, s:s?, s:s, s:s, s:s}", "seq",
                  (json_int_t)seq, "at", (json_int_t)at, "event", e->event, "mandate_id",
                  none_if_empty(e->mandate_id), "principal", none_if_empty(e->principal), "actor",
                  e->actor, "actor_employee", none_if_empty(e->actor_employee), "service",
                  none_if_empty(e->service), "client", none_if_empty(e->client), "detail",
                  e->detail_json ? e->detail_json : "{}", "prev_hash", hex_prev, "hash", hex_hash);
    ok = row != NULL && json_array_append_new(rows, row) == 0;
  }
  char *rows_text = ok ? json_dumps(rows, JSON_COMPACT) : NULL;
  json_decref(rows);
  if (rows_text == NULL) {
    log_msg(LOG_ERROR, "audit: could not build the rows to append");
    return DB_HARD_ERROR;
  }
  char head_seq[24], new_seq[24];
  snprintf(head_seq, sizeof head_seq, "%lld", head->seq);
  snprintf(new_seq, sizeof new_seq, "%lld", seq);
  would_be->seq = seq;
  memcpy(would_be->hash, hash, 32);
  const char *params[] = {head_seq, hex_head, new_seq, hex_hash, rows_text};
  PGresult *r;
  enum db_status st = db_run(db, STMT_AUDIT_APPEND, 5, params, &r);
  free(rows_text);
  if (st == DB_OK && db_int(r, 0, 0) == 1) {
    *moved = true;
    head->seq = seq;
    memcpy(head->hash, hash, 32);
  }
  PQclear(r);
  return st;
}

static enum db_status head_read(struct db *db, enum stmt s, struct chain_head *head) {
  PGresult *r;
  enum db_status st = db_run(db, s, 0, NULL, &r);
  if (st == DB_OK) {
    head->seq = db_int(r, 0, 0);
    if (!audit_from_hex(db_text(r, 0, 1), head->hash, 32))
      st = DB_HARD_ERROR;
  } else if (st == DB_NOT_FOUND) {
    st = DB_HARD_ERROR; /* the head row is part of the schema */
  }
  PQclear(r);
  return st;
}

enum db_status db_audit(struct db *db, const struct audit_event *e) {
  /* Inside the caller's transaction: lock the head, then append. */
  struct chain_head head;
  enum db_status st = head_read(db, STMT_AUDIT_HEAD_LOCK, &head);
  if (st != DB_OK)
    return st;
  const struct audit_event *one[] = {e};
  bool moved;
  struct chain_head would_be;
  st = append_on(db, &head, audit_now(), one, 1, &moved, &would_be);
  return st == DB_OK && !moved ? DB_HARD_ERROR : st;
}

/* ---- Appending outside a transaction ------------------------------- */

/* The caller (one thread: the token issuer) keeps the head it last wrote:
 * one statement per batch while nobody else appends; when a state change
 * moved the head meanwhile, the append does nothing and the head is read
 * again. */
static struct chain_head batch_head;
static bool batch_head_known;

enum db_status audit_append_batch(struct db *db, const struct audit_event *const *events, int n) {
  usec_t at = audit_now();
  for (int attempt = 0; attempt < 8; attempt++) {
    enum db_status st = DB_OK;
    if (!batch_head_known)
      st = head_read(db, STMT_AUDIT_HEAD_GET, &batch_head);
    batch_head_known = st == DB_OK;
    bool moved = false;
    struct chain_head would_be = {.seq = -1};
    if (st == DB_OK)
      st = append_on(db, &batch_head, at, events, n, &moved, &would_be);
    if (st == DB_OK && moved)
      return DB_OK;
    batch_head_known = false;
    if (st == DB_HARD_ERROR && PQstatus(db_conn(db)) != CONNECTION_OK) {
      /* The connection died under the statement: it either committed or
       * not.  Reconnect and look: if the head is the one this batch would
       * have made, it did; otherwise append again. */
      struct chain_head now;
      if ((db = db_get()) == NULL || head_read(db, STMT_AUDIT_HEAD_GET, &now) != DB_OK)
        return DB_HARD_ERROR;
      if (now.seq == would_be.seq && memcmp(now.hash, would_be.hash, 32) == 0) {
        batch_head = now;
        batch_head_known = true;
        return DB_OK;
      }
      continue;
    }
    if (st != DB_OK && st != DB_SOFT_ERROR)
      return st;
  }
  return DB_HARD_ERROR;
}

/* ---- Verification ------------------------------------------------- */

/* An import_applied event: the changes it seals (schema/0006). */
struct seal {
  long long seq, changes;
  char import[40], digest[65];
  bool seen;
};

struct seals {
  struct seal *v;
  size_t n, cap;
};

static bool seal_add(struct seals *s, long long seq, const char *detail) {
  json_t *d = json_loads(detail ? detail : "", 0, NULL);
  const char *import = json_string_value(json_object_get(d, "import"));
  const char *digest = json_string_value(json_object_get(d, "digest"));
  json_t *changes = json_object_get(d, "changes");
  bool ok = import != NULL && strlen(import) < sizeof s->v->import && digest != NULL &&
            strlen(digest) == 64 && json_is_integer(changes);
  if (ok && s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct seal *v = realloc(s->v, cap * sizeof *v);
    ok = v != NULL;
    if (ok) {
      s->v = v;
      s->cap = cap;
    }
  }
  if (ok) {
    struct seal *x = &s->v[s->n++];
    *x = (struct seal){.seq = seq, .changes = json_integer_value(changes)};
    snprintf(x->import, sizeof x->import, "%s", import);
    snprintf(x->digest, sizeof x->digest, "%s", digest);
  }
  json_decref(d);
  return ok;
}

static struct seal *seal_find(struct seals *s, const char *import, size_t len) {
  for (size_t k = 0; k < s->n; k++)
    if (strlen(s->v[k].import) == len && memcmp(s->v[k].import, import, len) == 0)
      return &s->v[k];
  return NULL;
}

/* Changes that no event seals, by import: checked once the changes are
 * read (the connection is busy with them until then). */
struct unsealed {
  struct unsealed_import {
    char id[40];
    long long count;
  } * v;
  size_t n, cap;
};

static bool unsealed_add(struct unsealed *u, const char *import, size_t len, long long count) {
  if (u->n == u->cap) {
    size_t cap = u->cap ? u->cap * 2 : 8;
    struct unsealed_import *v = realloc(u->v, cap * sizeof *v);
    if (v == NULL)
      return false;
    u->v = v;
    u->cap = cap;
  }
  struct unsealed_import *x = &u->v[u->n++];
  snprintf(x->id, sizeof x->id, "%.*s", (int)len, import);
  x->count = count;
  return true;
}

/* One import's changes, digested, against the event that sealed them;
 * those no event seals go to *u. */
static bool seal_matches(struct seals *s, const char *import, size_t len, struct changes_digest *d,
                         struct unsealed *u) {
  char digest[65];
  bool in_order = changes_digest_end(d, digest);
  struct seal *x = seal_find(s, import, len);
  if (x == NULL && in_order && unsealed_add(u, import, len, d->count))
    return true;
  bool ok =
      x != NULL && !x->seen && in_order && x->changes == d->count && strcmp(x->digest, digest) == 0;
  if (x != NULL)
    x->seen = true;
  if (!ok)
    printf("audit chain BROKEN: the changes of import %.*s do not match the event that sealed "
           "them%s\n",
           (int)len, import, x == NULL ? " (there is none)" : "");
  return ok;
}

/* Changes that no event seals belong to an import that did not finish:
 * its trail commits just before it (db/imports_db_audit.c), and when its
 * own commit then failed, they are left with no report and no event, in
 * no trail (audit_trail joins them through both).  Any other is broken.
 * Returns 0, 1 (printed) or 2 (an error); *unfinished counts them. */
static int unsealed_check(struct db *db, const struct unsealed *u, long long *unfinished) {
  for (size_t k = 0; k < u->n; k++) {
    const char *params[] = {u->v[k].id};
    PGresult *r;
    enum db_status st = db_run(db, STMT_AUDIT_IMPORT_FINISHED, 1, params, &r);
    PQclear(r);
    if (st == DB_OK) {
      printf("audit chain BROKEN: no event seals the changes of import %s\n", u->v[k].id);
      return 1;
    }
    if (st != DB_NOT_FOUND) {
      fprintf(stderr, "machtigend audit verify: reading the imports failed\n");
      return 2;
    }
    *unfinished += u->v[k].count;
  }
  return 0;
}

/* Every import's changes (read once, by import and n) against the event
 * that sealed them, and every import's report naming that event.
 * Returns 0 when all match, 1 (printed) when not, 2 on an error. */
static int seals_check(struct db *db, struct seals *s, long long *changes, long long *unfinished) {
  PGconn *c = db_conn(db);
  PGresult *r = PQexec(c, "COPY (SELECT import_id, " IMPORT_CHANGE_COLS
                          " FROM import_changes ORDER BY import_id, n) TO STDOUT");
  bool copying = PQresultStatus(r) == PGRES_COPY_OUT;
  PQclear(r);
  if (!copying) {
    fprintf(stderr, "machtigend audit verify: reading the changes of imports failed\n");
    return 2;
  }
  int rc = 0;
  char current[40] = "";
  struct changes_digest d = {0};
  struct unsealed u = {0};
  char *line;
  int len;
  while ((len = PQgetCopyData(c, &line, 0)) > 0) {
    const char *tab = memchr(line, '\t', (size_t)len);
    size_t id_len = tab ? (size_t)(tab - line) : 0;
    if (rc == 0 && (id_len == 0 || id_len >= sizeof current)) {
      printf("audit chain BROKEN: a change of an import has no import id\n");
      rc = 1;
    }
    if (rc == 0 && (strlen(current) != id_len || memcmp(current, line, id_len) != 0)) {
      if (current[0] != '\0' && !seal_matches(s, current, strlen(current), &d, &u))
        rc = 1;
      memcpy(current, line, id_len);
      current[id_len] = '\0';
      changes_digest_start(&d);
    }
    if (rc == 0) {
      changes_digest_line(&d, tab + 1, (size_t)len - id_len - 1);
      (*changes)++;
    }
    PQfreemem(line);
  }
  if (rc == 0 && current[0] != '\0' && !seal_matches(s, current, strlen(current), &d, &u))
    rc = 1;
  else if (d.ctx != NULL)
    changes_digest_end(&d, (char[65]){0});
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
      rc = 2;
    PQclear(r);
  }
  if (rc == 0 && len != -2)
    rc = unsealed_check(db, &u, unfinished);
  free(u.v);
  if (rc == 2 || len == -2) {
    fprintf(stderr, "machtigend audit verify: reading the changes of imports failed\n");
    return 2;
  }
  for (size_t k = 0; rc == 0 && k < s->n; k++)
    if (!s->v[k].seen) {
      printf("audit chain BROKEN at seq %lld: the changes it seals are missing\n", s->v[k].seq);
      rc = 1;
    }
  if (rc != 0)
    return rc;
  /* The reports say which event sealed each import: the activity lists
   * place the changes there. */
  enum db_status st = db_run(db, STMT_AUDIT_IMPORT_SEALS, 0, NULL, &r);
  if (st != DB_OK && st != DB_NOT_FOUND) {
    PQclear(r);
    fprintf(stderr, "machtigend audit verify: reading the imports failed\n");
    return 2;
  }
  size_t named = 0;
  for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
    const char *import = db_text(r, i, 0);
    struct seal *x = seal_find(s, import, strlen(import));
    if (x == NULL || x->seq != db_int(r, i, 1)) {
      printf("audit chain BROKEN: import %s names event %s, which does not seal it\n", import,
             db_text(r, i, 1));
      rc = 1;
    }
    named++;
  }
  PQclear(r);
  if (rc == 0 && named != s->n) {
    printf("audit chain BROKEN: an import's report does not name the event that sealed it\n");
    rc = 1;
  }
  return rc;
}

static int verify_chain(struct db *db, struct seals *seals, long long *checked) {
  unsigned char expect[32];
  EVP_Digest("", 0, expect, NULL, EVP_sha256(), NULL);
  long long last = 0;
  for (;;) {
    char after[24];
    snprintf(after, sizeof after, "%lld", last);
    const char *params[] = {after};
    PGresult *r;
    enum db_status st = db_run(db, STMT_AUDIT_READ_AFTER, 1, params, &r);
    if (st == DB_NOT_FOUND) {
      PQclear(r);
      break;
    }
    if (st != DB_OK) {
      fprintf(stderr, "machtigend audit verify: reading the audit trail failed\n");
      return 2;
    }
    for (int i = 0; i < PQntuples(r); i++) {
      long long seq = db_int(r, i, 0);
      struct audit_event e = {db_text(r, i, 2), db_text(r, i, 3), db_text(r, i, 4),
                              db_text(r, i, 5), db_text(r, i, 6), db_text(r, i, 7),
                              db_text(r, i, 8), db_text(r, i, 9)};
      unsigned char prev[32], hash[32], computed[32];
      const char *broken = NULL;
      if (!audit_from_hex(db_text(r, i, 10), prev, 32) ||
          !audit_from_hex(db_text(r, i, 11), hash, 32) || memcmp(prev, expect, 32) != 0)
        broken = "prev_hash does not match the row before";
      if (broken == NULL) {
        audit_digest(prev, seq, db_int(r, i, 1), &e, computed);
        if (memcmp(computed, hash, 32) != 0)
          broken = "the row does not match its hash";
      }
      if (broken == NULL && strcmp(e.event, "import_applied") == 0 &&
          !seal_add(seals, seq, e.detail_json))
        broken = "an import's event does not say what it seals";
      if (broken != NULL) {
        printf("audit chain BROKEN at seq %lld: %s\n", seq, broken);
        PQclear(r);
        return 1;
      }
      memcpy(expect, hash, 32);
      last = seq;
      (*checked)++;
    }
    PQclear(r);
  }
  PGresult *r;
  if (db_run(db, STMT_AUDIT_HEAD_GET, 0, NULL, &r) != DB_OK) {
    PQclear(r);
    fprintf(stderr, "machtigend audit verify: cannot read the chain head\n");
    return 2;
  }
  unsigned char head[32];
  bool head_ok = db_int(r, 0, 0) == last && audit_from_hex(db_text(r, 0, 1), head, 32) &&
                 memcmp(head, expect, 32) == 0;
  PQclear(r);
  if (!head_ok) {
    printf("audit chain BROKEN: the head does not match the last row (%lld): rows were removed\n",
           last);
    return 1;
  }
  return 0;
}

int audit_verify(const char *conninfo) {
  (void)conninfo;
  struct db *db = db_get();
  if (db == NULL) {
    fprintf(stderr, "machtigend audit verify: cannot connect to the database\n");
    return 2;
  }
  struct seals seals = {0};
  long long checked = 0, changes = 0, unfinished = 0;
  int rc = verify_chain(db, &seals, &checked);
  if (rc == 0)
    rc = seals_check(db, &seals, &changes, &unfinished);
  free(seals.v);
  if (rc == 0)
    printf("audit chain intact: %lld events, %lld changes made by imports\n", checked,
           changes - unfinished);
  if (rc == 0 && unfinished > 0)
    printf("note: %lld changes of imports that did not finish (no report, no event; in no "
           "trail)\n",
           unfinished);
  return rc;
}

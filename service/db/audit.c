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

void audit_digest(const unsigned char prev[32], long long seq, usec_t at,
                  const struct audit_event *e, unsigned char out[32]) {
  pthread_once(&sha256_once, sha256_fetch);
  struct digest_buf d = {.ctx = EVP_MD_CTX_new()};
  unsigned len = 0;
  EVP_DigestInit_ex(d.ctx, sha256_md != NULL ? sha256_md : EVP_sha256(), NULL);
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

static void to_hex(const unsigned char *in, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static bool from_hex(const char *in, unsigned char *out, size_t n) {
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

static usec_t wall_usec(void) {
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
  to_hex(head->hash, 32, hex_head);
  long long seq = head->seq;
  bool ok = rows != NULL;
  for (int i = 0; ok && i < n; i++) {
    const struct audit_event *e = events[i];
    seq++;
    to_hex(hash, 32, hex_prev);
    audit_digest(hash, seq, at, e, hash);
    to_hex(hash, 32, hex_hash);
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
    if (!from_hex(db_text(r, 0, 1), head->hash, 32))
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
  st = append_on(db, &head, wall_usec(), one, 1, &moved, &would_be);
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
  usec_t at = wall_usec();
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

int audit_verify(const char *conninfo) {
  struct db *db = db_get();
  if (db == NULL) {
    fprintf(stderr, "machtigend audit verify: cannot connect to the database\n");
    return 2;
  }
  unsigned char expect[32];
  EVP_Digest("", 0, expect, NULL, EVP_sha256(), NULL);
  long long last = 0, checked = 0;
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
      if (!from_hex(db_text(r, i, 10), prev, 32) || !from_hex(db_text(r, i, 11), hash, 32) ||
          memcmp(prev, expect, 32) != 0) {
        printf("audit chain BROKEN at seq %lld: prev_hash does not match the row before\n", seq);
        PQclear(r);
        return 1;
      }
      audit_digest(prev, seq, db_int(r, i, 1), &e, computed);
      if (memcmp(computed, hash, 32) != 0) {
        printf("audit chain BROKEN at seq %lld: the row does not match its hash\n", seq);
        PQclear(r);
        return 1;
      }
      memcpy(expect, hash, 32);
      last = seq;
      checked++;
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
  bool head_ok = db_int(r, 0, 0) == last && from_hex(db_text(r, 0, 1), head, 32) &&
                 memcmp(head, expect, 32) == 0;
  PQclear(r);
  if (!head_ok) {
    printf("audit chain BROKEN: the head does not match the last row (%lld): rows were removed\n",
           last);
    return 1;
  }
  printf("audit chain intact: %lld events\n", checked);
  (void)conninfo;
  return 0;
}

#include "db/audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "log.h"

/* ---- Digest ------------------------------------------------------- */

/* Each field as "<length>:<bytes>;" or "-;" for none: unambiguous. */
static void digest_field(EVP_MD_CTX *ctx, const char *v) {
  if (v == NULL) {
    EVP_DigestUpdate(ctx, "-;", 2);
    return;
  }
  char len[24];
  int n = snprintf(len, sizeof len, "%zu:", strlen(v));
  EVP_DigestUpdate(ctx, len, (size_t)n);
  EVP_DigestUpdate(ctx, v, strlen(v));
  EVP_DigestUpdate(ctx, ";", 1);
}

static const char *none_if_empty(const char *s) { return s != NULL && s[0] != '\0' ? s : NULL; }

void audit_digest(const unsigned char prev[32], long long seq, usec_t at,
                  const struct audit_event *e, unsigned char out[32]) {
  char nums[64];
  snprintf(nums, sizeof nums, "%lld|%lld", seq, (long long)at);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned len = 0;
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  EVP_DigestUpdate(ctx, prev, 32);
  digest_field(ctx, nums);
  digest_field(ctx, e->event);
  digest_field(ctx, none_if_empty(e->mandate_id));
  digest_field(ctx, none_if_empty(e->principal));
  digest_field(ctx, e->actor);
  digest_field(ctx, none_if_empty(e->actor_employee));
  digest_field(ctx, none_if_empty(e->service));
  digest_field(ctx, none_if_empty(e->client));
  digest_field(ctx, e->detail_json ? e->detail_json : "{}");
  EVP_DigestFinal_ex(ctx, out, &len);
  EVP_MD_CTX_free(ctx);
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

/* Appends n events in the open transaction: takes the head, numbers and
 * chains the rows, inserts them in one statement, moves the head. */
static enum db_status append(struct db *db, const struct audit_event *const *events, int n) {
  char count[12];
  snprintf(count, sizeof count, "%d", n);
  const char *p1[] = {count};
  PGresult *r;
  enum db_status st = db_run(db, STMT_AUDIT_HEAD_TAKE, 1, p1, &r);
  if (st != DB_OK) {
    PQclear(r);
    return st == DB_NOT_FOUND ? DB_HARD_ERROR : st;
  }
  unsigned char hash[32];
  bool ok = from_hex(db_text(r, 0, 0), hash, 32);
  usec_t at = db_int(r, 0, 1);
  char *seqs = strdup(db_text(r, 0, 2) ? db_text(r, 0, 2) : "");
  PQclear(r);
  json_t *rows = json_array();
  char *cursor = seqs, hex_prev[65], hex_hash[65];
  long long seq = 0;
  for (int i = 0; ok && i < n; i++) {
    seq = strtoll(cursor, &cursor, 10);
    if (*cursor == ',')
      cursor++;
    const struct audit_event *e = events[i];
    to_hex(hash, 32, hex_prev);
    audit_digest(hash, seq, at, e, hash);
    to_hex(hash, 32, hex_hash);
    json_t *detail = json_loads(e->detail_json ? e->detail_json : "{}", JSON_DECODE_ANY, NULL);
    json_decref(detail);
    ok = seq > 0 && detail != NULL;
    json_array_append_new(
        rows,
        json_pack("{s:I, s:I, s:s, s:s?, s:s?, s:s, s:s?, s:s?, s:s?, s:s, s:s, s:s}", "seq",
                  (json_int_t)seq, "at", (json_int_t)at, "event", e->event, "mandate_id",
                  none_if_empty(e->mandate_id), "principal", none_if_empty(e->principal), "actor",
                  e->actor, "actor_employee", none_if_empty(e->actor_employee), "service",
                  none_if_empty(e->service), "client", none_if_empty(e->client), "detail",
                  e->detail_json ? e->detail_json : "{}", "prev_hash", hex_prev, "hash", hex_hash));
  }
  free(seqs);
  char *rows_text = ok ? json_dumps(rows, JSON_COMPACT) : NULL;
  json_decref(rows);
  if (rows_text == NULL) {
    log_msg(LOG_ERROR, "audit: could not build the rows to append");
    return DB_HARD_ERROR;
  }
  const char *p2[] = {rows_text};
  st = db_run(db, STMT_AUDIT_INSERT_ROWS, 1, p2, &r);
  PQclear(r);
  free(rows_text);
  if (st != DB_OK)
    return st;
  char seq_text[24];
  snprintf(seq_text, sizeof seq_text, "%lld", seq);
  const char *p3[] = {seq_text, hex_hash};
  st = db_run(db, STMT_AUDIT_HEAD_MOVE, 2, p3, &r);
  PQclear(r);
  return st;
}

enum db_status db_audit(struct db *db, const struct audit_event *e) {
  const struct audit_event *one[] = {e};
  return append(db, one, 1);
}

/* ---- Group commit ------------------------------------------------- */

#define BATCH_MAX 512

struct waiter {
  const struct audit_event *e;
  enum db_status result;
  bool done;
  struct waiter *next;
};

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t batch_done = PTHREAD_COND_INITIALIZER;
static struct waiter *queue_head, *queue_tail;
static bool writer_stop, writer_running;
static pthread_t writer_thread;

static enum db_status write_batch(const struct audit_event *const *events, int n) {
  struct db *db = db_get();
  if (db == NULL)
    return DB_HARD_ERROR;
  for (int attempt = 0; attempt < 3; attempt++) {
    enum db_status st = db_begin(db);
    if (st == DB_OK)
      st = append(db, events, n);
    if (st == DB_OK)
      st = db_commit(db);
    else
      db_rollback(db);
    if (st != DB_SOFT_ERROR)
      return st;
  }
  return DB_HARD_ERROR;
}

static void *writer_loop(void *arg) {
  const struct audit_event *events[BATCH_MAX];
  struct waiter *batch[BATCH_MAX];
  pthread_mutex_lock(&queue_lock);
  for (;;) {
    while (queue_head == NULL && !writer_stop)
      pthread_cond_wait(&queue_ready, &queue_lock);
    if (queue_head == NULL && writer_stop)
      break;
    int n = 0;
    while (queue_head != NULL && n < BATCH_MAX) {
      batch[n] = queue_head;
      events[n] = queue_head->e;
      queue_head = queue_head->next;
      n++;
    }
    if (queue_head == NULL)
      queue_tail = NULL;
    pthread_mutex_unlock(&queue_lock);
    enum db_status st = write_batch(events, n);
    pthread_mutex_lock(&queue_lock);
    for (int i = 0; i < n; i++) {
      batch[i]->result = st;
      batch[i]->done = true;
    }
    pthread_cond_broadcast(&batch_done);
  }
  pthread_mutex_unlock(&queue_lock);
  db_release();
  return NULL;
}

bool audit_writer_start(void) {
  writer_stop = false;
  writer_running = pthread_create(&writer_thread, NULL, writer_loop, NULL) == 0;
  return writer_running;
}

void audit_writer_stop(void) {
  if (!writer_running)
    return;
  pthread_mutex_lock(&queue_lock);
  writer_stop = true;
  pthread_cond_signal(&queue_ready);
  pthread_mutex_unlock(&queue_lock);
  pthread_join(writer_thread, NULL);
  writer_running = false;
}

enum db_status audit_append_wait(const struct audit_event *e) {
  struct waiter w = {.e = e};
  pthread_mutex_lock(&queue_lock);
  if (!writer_running || writer_stop) {
    pthread_mutex_unlock(&queue_lock);
    return DB_HARD_ERROR;
  }
  if (queue_tail != NULL)
    queue_tail->next = &w;
  else
    queue_head = &w;
  queue_tail = &w;
  pthread_cond_signal(&queue_ready);
  while (!w.done)
    pthread_cond_wait(&batch_done, &queue_lock);
  pthread_mutex_unlock(&queue_lock);
  return w.result;
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

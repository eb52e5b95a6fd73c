#include "tokens/issuer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db/audit.h"
#include "db/batcher.h"
#include "log.h"
#include "tokens/signer.h"

/* One statement finds the mandate for every request in the batch. */
static enum db_status look_up(struct db *db, struct token_record **trs, int n) {
  json_t *req = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(req, json_pack("{s:i, s:s, s:s, s:s}", "i", i, "p", trs[i]->principal,
                                         "r", trs[i]->representative, "s", trs[i]->service));
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  if (text == NULL)
    return DB_HARD_ERROR;
  const char *params[] = {text};
  PGresult *r;
  enum db_status st = db_run(db, STMT_MANDATES_FOR_TOKENS, 1, params, &r);
  free(text);
  if (st != DB_OK) {
    PQclear(r);
    return st == DB_NOT_FOUND ? DB_HARD_ERROR : st;
  }
  for (int row = 0; row < PQntuples(r); row++) {
    int i = (int)db_int(r, row, 0);
    if (i < 0 || i >= n || db_text(r, row, 1) == NULL)
      continue;
    struct token_record *tr = trs[i];
    struct token_mandate *m = &tr->m;
    tr->found = true;
    snprintf(m->id, sizeof m->id, "%s", db_text(r, row, 1));
    if (!mandate_kind_parse(db_text(r, row, 2), &m->kind))
      m->kind = MK_VOLUNTARY;
    if (!mandate_status_parse(db_text(r, row, 3), &m->status))
      m->status = MS_REVOKED;
    m->valid_from = db_int(r, row, 4);
    m->valid_until = db_int(r, row, 5);
    m->created_at = db_int(r, row, 6);
  }
  PQclear(r);
  return DB_OK;
}

/* Looks the batch up, records the usable ones, fills every record. */
static void run_batch(void **items, int n) {
  struct token_record **trs = (struct token_record **)items;
  struct db *db = db_get();
  enum db_status st = db == NULL ? DB_HARD_ERROR : look_up(db, trs, n);
  struct audit_event events[BATCH_MAX];
  const struct audit_event *ptrs[BATCH_MAX];
  char details[BATCH_MAX][96];
  struct token_record *recorded[BATCH_MAX];
  int usable = 0;
  for (int i = 0; i < n && st == DB_OK; i++) {
    struct token_record *tr = trs[i];
    if (!tr->found)
      continue;
    tr->use = mandate_use_now(tr->m.status, tr->m.valid_from, tr->m.valid_until, tr->m.created_at,
                              tr->now);
    if (tr->use != MU_USABLE)
      continue;
    int64_t now_s = tr->now / USEC_PER_SEC;
    tr->exp = now_s + TOKEN_MAX_TTL;
    if (tr->exp > tr->m.valid_until / USEC_PER_SEC)
      tr->exp = tr->m.valid_until / USEC_PER_SEC;
    snprintf(details[usable], sizeof details[usable], "{\"jti\":\"%s\",\"exp\":%lld}", tr->jti,
             (long long)tr->exp);
    events[usable] = (struct audit_event){
        .event = "token_issued",
        .mandate_id = tr->m.id,
        .principal = tr->principal,
        .actor = tr->representative,
        .actor_employee = tr->employee,
        .service = tr->service,
        .client = tr->client,
        .detail_json = details[usable],
    };
    ptrs[usable] = &events[usable];
    recorded[usable] = tr;
    usable++;
  }
  enum db_status recorded_st = st;
  if (st == DB_OK && usable > 0)
    recorded_st = audit_append_batch(db_get(), ptrs, usable);
  for (int i = 0; i < n; i++)
    trs[i]->st = st;
  /* A usable mandate whose token could not be recorded gives no token. */
  for (int i = 0; i < usable; i++)
    recorded[i]->st = recorded_st;
}

static struct batcher issuer = BATCHER_INIT("token issuer", run_batch);

bool issuer_start(void) { return batcher_start(&issuer); }

void issuer_stop(void) { batcher_stop(&issuer); }

void issuer_record(struct token_record *tr) {
  tr->st = DB_HARD_ERROR;
  tr->found = false;
  tr->use = MU_ENDED;
  batcher_submit(&issuer, tr);
}

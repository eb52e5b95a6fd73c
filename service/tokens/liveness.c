#include "tokens/liveness.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "db/batcher.h"

struct question {
  const char *id;
  usec_t now;
  enum db_status st;
  bool live;
};

static void run_batch(void **items, int n) {
  struct question **qs = (struct question **)items;
  json_t *req = json_array();
  for (int i = 0; i < n; i++) {
    qs[i]->st = DB_HARD_ERROR;
    qs[i]->live = false;
    json_array_append_new(req, json_pack("{s:i, s:s}", "i", i, "id", qs[i]->id));
  }
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  struct db *db = db_get();
  PGresult *r = NULL;
  const char *params[] = {text};
  enum db_status st = text && db ? db_run(db, STMT_MANDATE_STATES, 1, params, &r) : DB_HARD_ERROR;
  free(text);
  if (st != DB_OK && st != DB_NOT_FOUND) {
    PQclear(r);
    return;
  }
  for (int i = 0; i < n; i++)
    qs[i]->st = DB_OK; /* absent from the answer: no such mandate, not live */
  for (int row = 0; row < PQntuples(r); row++) {
    int i = (int)db_int(r, row, 0);
    enum mandate_status status;
    if (i < 0 || i >= n || !mandate_status_parse(db_text(r, row, 1), &status))
      continue;
    qs[i]->live =
        status == MS_ACTIVE && db_int(r, row, 2) <= qs[i]->now && db_int(r, row, 3) > qs[i]->now;
  }
  PQclear(r);
}

static struct batcher liveness = BATCHER_INIT("introspection", run_batch);

bool liveness_start(void) { return batcher_start(&liveness); }

void liveness_stop(void) { batcher_stop(&liveness); }

enum db_status mandate_live_now(const char *mandate_id, usec_t now, bool *live) {
  struct question q = {.id = mandate_id, .now = now, .st = DB_HARD_ERROR};
  batcher_submit(&liveness, &q);
  *live = q.live;
  return q.st;
}

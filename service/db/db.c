#include "db/db.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

struct db {
  PGconn *conn;
  bool prepared;
  bool in_tx;
  char sqlstate[6];
  char constraint[64];
};

static struct {
  const char *name;
  const char *sql;
  bool read_only; /* safe to run again after a reconnect (see classify_statements) */
} statements[STMT_COUNT] = {
#define STMT(name, sql) [STMT_##name] = {#name, sql, false},
#include "db/statements.def"
#undef STMT
};

static __thread struct db *thread_db;

/* Closes a worker thread's connection when the thread ends (server stop). */
static pthread_key_t db_key;
static pthread_once_t db_key_once = PTHREAD_ONCE_INIT;

static void db_thread_end(void *arg) {
  struct db *db = arg;
  if (db->conn != NULL)
    PQfinish(db->conn);
  free(db);
}

static void db_key_create(void) { pthread_key_create(&db_key, db_thread_end); }

/* Statements that may run again on a new connection when the old one died
 * under them (outside a transaction): plain reads, and BEGIN, so that a
 * transaction starts on a live connection. */
static void classify_statements(void) {
  for (int i = 0; i < STMT_COUNT; i++)
    statements[i].read_only = i == STMT_BEGIN || (strncmp(statements[i].sql, "SELECT ", 7) == 0 &&
                                                  strstr(statements[i].sql, "FOR UPDATE") == NULL &&
                                                  strstr(statements[i].sql, "nextval") == NULL);
}

static pthread_once_t classify_once = PTHREAD_ONCE_INIT;

static bool prepare_all(struct db *db) {
  pthread_once(&classify_once, classify_statements);
  for (int i = 0; i < STMT_COUNT; i++) {
    PGresult *r = PQprepare(db->conn, statements[i].name, statements[i].sql, 0, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
      log_msg(LOG_ERROR, "cannot prepare statement %s: %s", statements[i].name,
              PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                  ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                  : "?");
    PQclear(r);
    if (!ok)
      return false;
  }
  return true;
}

/* (Re)connects and prepares every statement; a dead connection's
 * prepared statements die with it. */
static bool db_connect(struct db *db) {
  if (db->conn != NULL)
    PQfinish(db->conn);
  db->prepared = false;
  db->in_tx = false;
  db->conn = PQconnectdb(config.database_url);
  if (PQstatus(db->conn) != CONNECTION_OK) {
    log_msg(LOG_ERROR, "database connection failed");
    PQfinish(db->conn);
    db->conn = NULL;
    return false;
  }
  if (!prepare_all(db)) {
    PQfinish(db->conn);
    db->conn = NULL;
    return false;
  }
  db->prepared = true;
  return true;
}

struct db *db_get(void) {
  struct db *db = thread_db;
  if (db == NULL) {
    db = calloc(1, sizeof *db);
    if (db == NULL)
      return NULL;
    thread_db = db;
    pthread_once(&db_key_once, db_key_create);
    pthread_setspecific(db_key, db);
  }
  if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK && db->prepared)
    return db;
  return db_connect(db) ? db : NULL;
}

void db_release(void) {
  struct db *db = thread_db;
  if (db == NULL)
    return;
  pthread_setspecific(db_key, NULL);
  db_thread_end(db);
  thread_db = NULL;
}

static enum db_status classify(struct db *db, PGresult *r) {
  const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char *constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
  snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
  snprintf(db->constraint, sizeof db->constraint, "%s", constraint ? constraint : "");
  if (PQstatus(db->conn) != CONNECTION_OK)
    return DB_HARD_ERROR;
  if (state == NULL)
    return DB_HARD_ERROR;
  if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
    return DB_SOFT_ERROR;
  if (strcmp(state, "23505") == 0 || strcmp(state, "23P01") == 0)
    return DB_CONFLICT;
  return DB_HARD_ERROR;
}

enum db_status db_run(struct db *db, enum stmt s, int nparams, const char *const *params,
                      PGresult **res) {
  *res = NULL;
  /* A connection that an earlier statement found dead: a new one first
   * (outside a transaction nothing is lost with it). */
  if (PQstatus(db->conn) != CONNECTION_OK && !db->in_tx) {
    log_msg(LOG_WARN, "database connection lost: reconnecting for %s", statements[s].name);
    if (!db_connect(db))
      return DB_HARD_ERROR;
  }
  PGresult *r = PQexecPrepared(db->conn, statements[s].name, nparams, params, NULL, NULL, 0);
  /* The server went away (restart, failover, killed backend): outside a
   * transaction a read can safely run again on a new connection, and so
   * can any statement the server refused because it was shutting the
   * connection down (SQLSTATE class 57P: the statement did not run; a
   * connection killed while idle answers the next statement so). */
  const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  bool refused = state != NULL && strncmp(state, "57P", 3) == 0;
  if (PQresultStatus(r) == PGRES_FATAL_ERROR && PQstatus(db->conn) != CONNECTION_OK && !db->in_tx &&
      (statements[s].read_only || refused)) {
    PQclear(r);
    log_msg(LOG_WARN, "database connection lost: reconnecting for %s", statements[s].name);
    if (!db_connect(db))
      return DB_HARD_ERROR;
    r = PQexecPrepared(db->conn, statements[s].name, nparams, params, NULL, NULL, 0);
  }
  switch (PQresultStatus(r)) {
  case PGRES_TUPLES_OK:
    *res = r;
    return PQntuples(r) > 0 ? DB_OK : DB_NOT_FOUND;
  case PGRES_COMMAND_OK:
    *res = r;
    return DB_OK;
  default:
    break;
  }
  enum db_status st = classify(db, r);
  if (st == DB_HARD_ERROR) {
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    /* The message never holds parameters (BSNs), only the server's text. */
    log_msg(LOG_ERROR, "statement %s failed: %s %s", statements[s].name, db->sqlstate,
            msg ? msg : PQerrorMessage(db->conn));
  }
  PQclear(r);
  return st;
}

const char *db_last_sqlstate(struct db *db) { return db->sqlstate; }
PGconn *db_conn(struct db *db) { return db->conn; }
const char *db_last_constraint(struct db *db) { return db->constraint; }

static enum db_status simple(struct db *db, enum stmt s) {
  PGresult *r;
  enum db_status st = db_run(db, s, 0, NULL, &r);
  PQclear(r);
  return st;
}

enum db_status db_begin(struct db *db) {
  enum db_status st = simple(db, STMT_BEGIN);
  db->in_tx = st == DB_OK;
  return st;
}

enum db_status db_commit(struct db *db) {
  enum db_status st = simple(db, STMT_COMMIT);
  db->in_tx = false;
  return st;
}

void db_rollback(struct db *db) {
  if (PQstatus(db->conn) == CONNECTION_OK)
    simple(db, STMT_ROLLBACK);
  db->in_tx = false;
}

void db_assert_idle(void) {
#ifndef NDEBUG
  struct db *db = thread_db;
  if (db != NULL &&
      (db->in_tx || (db->conn != NULL && PQtransactionStatus(db->conn) == PQTRANS_INTRANS))) {
    log_msg(LOG_ERROR, "a handler returned with a transaction open");
    abort();
  }
#endif
}

int db_schema_version(struct db *db) {
  PGresult *r;
  if (db_run(db, STMT_SCHEMA_VERSION, 0, NULL, &r) != DB_OK)
    return -1;
  int v = (int)db_int(r, 0, 0);
  PQclear(r);
  return v;
}

long long db_int(const PGresult *r, int row, int col) {
  return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

const char *db_text(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

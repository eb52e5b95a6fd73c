/* machtigend: configuration and subcommands only. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "auth/identity.h"
#include "config.h"
#include "db/audit.h"
#include "db/clients_db.h"
#include "db/db.h"
#include "db/web_db.h"
#include "http/server.h"
#include "log.h"
#include "tokens/issuer.h"
#include "tokens/liveness.h"
#include "tokens/signer.h"

static int usage(void) {
  fprintf(stderr,
          "usage: machtigend serve\n"
          "       machtigend migrate\n"
          "       machtigend clients add --name NAME --role admin|portal\n"
          "                              [--audience AUD] [--services code,code] [--jwk FILE]\n"
          "                              [--redirect-uri URI]...\n"
          "       machtigend keys rotate | list | prune [--force]\n"
          "       machtigend audit verify\n"
          "Configuration comes from the environment (see README.md).\n");
  return 2;
}

static int cmd_migrate(void) {
  if (!config_load(NEED_DATABASE))
    return 1;
  return db_migrate(config.database_url) ? 0 : 1;
}

/* Refuses to serve a schema this binary was not built for. */
static bool schema_matches(void) {
  struct db *db = db_get();
  if (db == NULL) {
    fprintf(stderr, "machtigend: cannot connect to MACHTIGEN_DATABASE_URL (or a statement failed "
                    "to prepare: is the schema migrated?)\n");
    return false;
  }
  int have = db_schema_version(db), want = db_schema_version_known();
  db_release();
  if (have != want) {
    fprintf(stderr,
            "machtigend: database schema version is %d, this binary needs %d: run `machtigend "
            "migrate`\n",
            have, want);
    return false;
  }
  return true;
}

static int cmd_serve(void) {
  if (!config_load(NEED_DATABASE | NEED_SERVE))
    return 1;
  if (!schema_matches())
    return 1;
  struct identity_config idc = {
      .issuer = config.idp_issuer,
      .audience = config.idp_audience,
      .bsn_claim = config.idp_bsn_claim,
      .leeway_seconds = 60,
  };
  char err[256];
  if (!signer_init(config.key_dir, err, sizeof err)) {
    fprintf(stderr, "machtigend: MACHTIGEN_KEY_DIR: %s\n", err);
    return 1;
  }
  if (!identity_init(&idc, err, sizeof err)) {
    fprintf(stderr, "machtigend: MACHTIGEN_IDP_ISSUER: %s\n", err);
    return 1;
  }
  /* Block the stop signals in every thread; main waits for them. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (!issuer_start() || !liveness_start()) {
    fprintf(stderr, "machtigend: cannot start the token batching threads\n");
    return 1;
  }
  struct server *s = server_start(err, sizeof err);
  if (s == NULL) {
    fprintf(stderr, "machtigend: %s\n", err);
    return 1;
  }
  log_msg(LOG_INFO, "listening on %s with %u threads", config.listen, config.threads);
  int sig = 0;
  sigwait(&stop, &sig);
  log_msg(LOG_INFO, "stopping on signal %d: finishing open requests", sig);
  server_stop(s);
  issuer_stop();
  liveness_stop();
  identity_shutdown();
  signer_shutdown();
  log_msg(LOG_INFO, "stopped");
  return 0;
}

static bool services_literal(const char *list, char *out, size_t len) {
  size_t n = strlen(list);
  if (n + 3 > len)
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = list[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == ','))
      return false;
  }
  snprintf(out, len, "{%s}", list);
  return true;
}

static int cmd_clients_add(int argc, char **argv) {
  const char *name = NULL, *role = NULL, *audience = NULL, *services = NULL, *jwk_file = NULL;
  const char *redirect_uris[8];
  size_t redirect_count = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--redirect-uri") == 0 && i + 1 < argc && redirect_count < 8) {
      redirect_uris[redirect_count++] = argv[++i];
      continue;
    }
    const char **slot = strcmp(argv[i], "--name") == 0       ? &name
                        : strcmp(argv[i], "--role") == 0     ? &role
                        : strcmp(argv[i], "--audience") == 0 ? &audience
                        : strcmp(argv[i], "--services") == 0 ? &services
                        : strcmp(argv[i], "--jwk") == 0      ? &jwk_file
                                                             : NULL;
    if (slot == NULL || i + 1 >= argc) {
      fprintf(stderr, "machtigend clients add: unknown or incomplete option %s\n", argv[i]);
      return usage();
    }
    *slot = argv[++i];
  }
  if (name == NULL || role == NULL || (strcmp(role, "admin") != 0 && strcmp(role, "portal") != 0)) {
    fprintf(stderr, "machtigend clients add: --name and --role admin|portal are required\n");
    return 2;
  }
  if (strcmp(role, "portal") == 0 && audience == NULL) {
    fprintf(stderr, "machtigend clients add: a portal needs --audience (the aud of its tokens)\n");
    return 2;
  }
  char services_array[2048] = "{}";
  if (services != NULL && !services_literal(services, services_array, sizeof services_array)) {
    fprintf(stderr, "machtigend clients add: --services takes service codes separated by commas\n");
    return 2;
  }
  char *jwk = NULL;
  if (jwk_file != NULL) {
    json_error_t jerr;
    json_t *j = json_load_file(jwk_file, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j) || json_object_get(j, "d") != NULL ||
        !json_is_string(json_object_get(j, "kid"))) {
      fprintf(
          stderr,
          "machtigend clients add: --jwk must name a file with one public JWK that has a kid\n");
      json_decref(j);
      return 2;
    }
    jwk = json_dumps(j, JSON_COMPACT);
    json_decref(j);
  }
  if (!config_load(NEED_DATABASE))
    return 1;
  for (size_t i = 0; i < redirect_count; i++) {
    if (!redirect_uri_acceptable(redirect_uris[i], config.dev)) {
      fprintf(stderr, "machtigend clients add: --redirect-uri must be https (or, with "
                      "MACHTIGEN_DEV=1, http on loopback), without a fragment\n");
      free(jwk);
      return 2;
    }
  }
  struct db *db = db_get();
  if (db == NULL) {
    fprintf(stderr, "machtigend clients add: cannot connect to the database (migrated?)\n");
    free(jwk);
    return 1;
  }
  char id[CLIENT_ID_LEN + 1], secret[CLIENT_SECRET_LEN + 1], hash[65];
  if (!client_new_credentials(id, secret) || !client_secret_hash_hex(secret, hash)) {
    fprintf(stderr, "machtigend clients add: no randomness\n");
    return 1;
  }
  enum db_status st = db_client_insert(db, id, name, role, hash, audience, services_array, jwk);
  if (st == DB_OK && redirect_count > 0)
    st = db_client_set_redirect_uris(db, id, redirect_uris, redirect_count);
  free(jwk);
  db_release();
  if (st != DB_OK) {
    fprintf(stderr, "machtigend clients add: could not store the client\n");
    return 1;
  }
  /* The secret is shown this once; only its hash is kept. */
  printf("client_id=%s\nclient_secret=%s\n", id, secret);
  return 0;
}

static int cmd_keys(int argc, char **argv) {
  const char *dir = getenv("MACHTIGEN_KEY_DIR");
  if (dir == NULL || dir[0] == '\0') {
    fprintf(stderr, "machtigend keys: MACHTIGEN_KEY_DIR is not set\n");
    return 2;
  }
  if (strcmp(argv[0], "rotate") == 0 && argc == 1)
    return keys_rotate(dir);
  if (strcmp(argv[0], "list") == 0 && argc == 1)
    return keys_list(dir);
  if (strcmp(argv[0], "prune") == 0 &&
      (argc == 1 || (argc == 2 && strcmp(argv[1], "--force") == 0)))
    return keys_prune(dir, argc == 2);
  return usage();
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc;
  if (strcmp(argv[1], "serve") == 0 && argc == 2)
    rc = cmd_serve();
  else if (strcmp(argv[1], "migrate") == 0 && argc == 2)
    rc = cmd_migrate();
  else if (argc >= 3 && strcmp(argv[1], "clients") == 0 && strcmp(argv[2], "add") == 0)
    rc = cmd_clients_add(argc - 3, argv + 3);
  else if (argc == 3 && strcmp(argv[1], "audit") == 0 && strcmp(argv[2], "verify") == 0)
    rc = config_load(NEED_DATABASE) ? audit_verify(config.database_url) : 2;
  else if (argc >= 3 && strcmp(argv[1], "keys") == 0)
    rc = cmd_keys(argc - 2, argv + 2);
  else
    rc = usage();
  curl_global_cleanup();
  return rc;
}

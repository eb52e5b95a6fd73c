/* Configuration from the environment, read once at start. */
#ifndef MACHTIGEN_CONFIG_H
#define MACHTIGEN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct config {
  const char *database_url; /* MACHTIGEN_DATABASE_URL */
  const char *listen;       /* MACHTIGEN_LISTEN, host:port */
  char listen_host[64];
  uint16_t listen_port;
  const char *public_url;          /* MACHTIGEN_PUBLIC_URL */
  const char *idp_issuer;          /* MACHTIGEN_IDP_ISSUER */
  const char *idp_audience;        /* MACHTIGEN_IDP_AUDIENCE */
  const char *idp_bsn_claim;       /* MACHTIGEN_IDP_BSN_CLAIM */
  const char *key_dir;             /* MACHTIGEN_KEY_DIR */
  unsigned char pseudonym_key[32]; /* MACHTIGEN_PSEUDONYM_KEY (hex) */
  unsigned threads;                /* MACHTIGEN_THREADS */
  unsigned connection_timeout;     /* MACHTIGEN_CONNECTION_TIMEOUT, seconds */
  unsigned max_connections;        /* MACHTIGEN_MAX_CONNECTIONS */
  bool dev;                        /* MACHTIGEN_DEV=1: plain http allowed, generated keys */
  /* Web forms */
  unsigned session_idle_seconds; /* MACHTIGEN_SESSION_IDLE_SECONDS */
  unsigned session_max_seconds;  /* MACHTIGEN_SESSION_MAX_SECONDS */
  const char *idp_client_id;     /* MACHTIGEN_IDP_CLIENT_ID (NULL: the audience) */
  const char *idp_client_secret; /* MACHTIGEN_IDP_CLIENT_SECRET (NULL: a public client) */
};

extern struct config config;

/* Which settings a subcommand needs. */
enum config_need { NEED_DATABASE = 1, NEED_SERVE = 2 };

/* Fills `config`; on a bad or missing setting prints one line naming it
 * to stderr and returns false. */
bool config_load(unsigned need);

#endif

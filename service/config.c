#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

struct config config;

static char public_url_buf[300];

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return (v != NULL && v[0] != '\0') ? v : fallback;
}

static bool fail(const char *name, const char *why) {
  fprintf(stderr, "machtigend: configuration error: %s %s\n", name, why);
  return false;
}

static bool parse_uint(const char *name, const char *text, unsigned lo, unsigned hi,
                       unsigned *out) {
  char *end;
  unsigned long v = strtoul(text, &end, 10);
  if (text[0] == '\0' || *end != '\0' || v < lo || v > hi) {
    char why[96];
    snprintf(why, sizeof why, "must be a whole number from %u to %u", lo, hi);
    return fail(name, why);
  }
  *out = (unsigned)v;
  return true;
}

static bool parse_listen(const char *text) {
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof config.listen_host)
    return fail("MACHTIGEN_LISTEN", "must look like 127.0.0.1:8080");
  memcpy(config.listen_host, text, (size_t)(colon - text));
  config.listen_host[colon - text] = '\0';
  unsigned port;
  if (!parse_uint("MACHTIGEN_LISTEN port", colon + 1, 1, 65535, &port))
    return false;
  config.listen_port = (uint16_t)port;
  return true;
}

static bool parse_hex_key(const char *text) {
  if (strlen(text) != 64)
    return fail("MACHTIGEN_PSEUDONYM_KEY", "must be 64 hexadecimal characters (32 random bytes)");
  for (int i = 0; i < 32; i++) {
    unsigned v;
    if (!isxdigit((unsigned char)text[2 * i]) || !isxdigit((unsigned char)text[2 * i + 1]) ||
        sscanf(text + 2 * i, "%2x", &v) != 1)
      return fail("MACHTIGEN_PSEUDONYM_KEY", "must be 64 hexadecimal characters");
    config.pseudonym_key[i] = (unsigned char)v;
  }
  return true;
}

static bool is_http_url(const char *url, bool allow_plain) {
  if (strncmp(url, "https://", 8) == 0)
    return url[8] != '\0';
  return allow_plain && strncmp(url, "http://", 7) == 0 && url[7] != '\0';
}

bool config_load(unsigned need) {
  memset(&config, 0, sizeof config);
  config.dev = strcmp(env_or("MACHTIGEN_DEV", "0"), "1") == 0;
  config.database_url = getenv("MACHTIGEN_DATABASE_URL");
  if ((need & NEED_DATABASE) && (config.database_url == NULL || config.database_url[0] == '\0'))
    return fail("MACHTIGEN_DATABASE_URL", "is not set (e.g. postgresql:///machtigen)");
  if (!(need & NEED_SERVE))
    return true;

  config.listen = env_or("MACHTIGEN_LISTEN", "127.0.0.1:8080");
  if (!parse_listen(config.listen))
    return false;
  config.public_url = getenv("MACHTIGEN_PUBLIC_URL");
  if (config.public_url == NULL || config.public_url[0] == '\0') {
    snprintf(public_url_buf, sizeof public_url_buf, "http://%s", config.listen);
    config.public_url = public_url_buf;
  } else if (!is_http_url(config.public_url, config.dev)) {
    return fail("MACHTIGEN_PUBLIC_URL",
                config.dev ? "must be an http(s) URL" : "must be an https URL");
  }
  config.idp_issuer = getenv("MACHTIGEN_IDP_ISSUER");
  if (config.idp_issuer == NULL || config.idp_issuer[0] == '\0')
    return fail("MACHTIGEN_IDP_ISSUER", "is not set (the OpenID Connect issuer URL)");
  if (!is_http_url(config.idp_issuer, config.dev))
    return fail("MACHTIGEN_IDP_ISSUER",
                config.dev ? "must be an http(s) URL" : "must be an https URL");
  config.idp_audience = env_or("MACHTIGEN_IDP_AUDIENCE", "machtigen");
  config.idp_bsn_claim = env_or("MACHTIGEN_IDP_BSN_CLAIM", "sub");
  config.key_dir = env_or("MACHTIGEN_KEY_DIR", "keys");

  const char *key = getenv("MACHTIGEN_PSEUDONYM_KEY");
  if (key != NULL && key[0] != '\0') {
    if (!parse_hex_key(key))
      return false;
  } else if (config.dev) {
    /* Development only: pseudonyms then differ per run, which is fine. */
    if (RAND_bytes(config.pseudonym_key, sizeof config.pseudonym_key) != 1)
      return fail("MACHTIGEN_PSEUDONYM_KEY", "could not be generated");
  } else {
    return fail("MACHTIGEN_PSEUDONYM_KEY",
                "is not set (64 hex characters; needed to pseudonymise BSNs in logs)");
  }

  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  char def_threads[16];
  /* Handlers block on PostgreSQL and on the audit group commit, so more
   * threads than cores keep the cores busy and the batches full; more than six
   * per core only adds scheduling delay to the p99 (measured with tools/dev bench). */
  snprintf(def_threads, sizeof def_threads, "%ld", cores > 0 ? 6 * cores : 12);
  if (!parse_uint("MACHTIGEN_THREADS", env_or("MACHTIGEN_THREADS", def_threads), 1, 256,
                  &config.threads))
    return false;
  if (!parse_uint("MACHTIGEN_CONNECTION_TIMEOUT", env_or("MACHTIGEN_CONNECTION_TIMEOUT", "30"), 1,
                  3600, &config.connection_timeout))
    return false;
  if (!parse_uint("MACHTIGEN_MAX_CONNECTIONS", env_or("MACHTIGEN_MAX_CONNECTIONS", "4096"), 16,
                  65536, &config.max_connections))
    return false;
  if (!parse_uint("MACHTIGEN_SESSION_IDLE_SECONDS", env_or("MACHTIGEN_SESSION_IDLE_SECONDS", "900"),
                  1, 86400, &config.session_idle_seconds) ||
      !parse_uint("MACHTIGEN_SESSION_MAX_SECONDS", env_or("MACHTIGEN_SESSION_MAX_SECONDS", "28800"),
                  1, 7 * 86400, &config.session_max_seconds))
    return false;
  config.idp_client_id = env_or("MACHTIGEN_IDP_CLIENT_ID", NULL);
  config.idp_client_secret = env_or("MACHTIGEN_IDP_CLIENT_SECRET", NULL);
  return true;
}

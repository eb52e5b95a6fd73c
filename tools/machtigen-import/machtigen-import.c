/* machtigen-import: sends a file of court-appointed mandates to
 * POST /v1/admin/imports, shows how far the upload is, prints the report
 * and writes the rejected rows next to the file.
 *
 *   machtigen-import FILE --source NAME [--server URL] [--mode upsert|sync] [--dry-run]
 *                    [--credentials FILE] [--format csv|ndjson] [--gzip] [--rejects FILE]
 *                    [--json]
 *
 * The admin client's id and secret come from MACHTIGEN_CLIENT_ID and
 * MACHTIGEN_CLIENT_SECRET or from --credentials FILE, never from the
 * command line (where other users of the machine could read them).
 * Exit status: 0 every row was accepted, 1 some rows were rejected, 2 the
 * import failed and nothing was changed (or it never started). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <zlib.h>

#define EXIT_ALL_ACCEPTED 0
#define EXIT_SOME_REJECTED 1
#define EXIT_FAILED 2
#define READ_CHUNK (256 * 1024)

struct options {
  const char *file, *source, *server, *mode, *credentials, *format, *rejects;
  bool dry_run, gzip, json;
};

static void usage(FILE *to) {
  fprintf(to,
          "usage: machtigen-import FILE --source NAME [--server URL] [--mode upsert|sync]\n"
          "                        [--dry-run] [--credentials FILE] [--format csv|ndjson]\n"
          "                        [--gzip] [--rejects FILE] [--json]\n"
          "\n"
          "Sends FILE (CSV with a header line, or NDJSON; .gz files are sent compressed) to\n"
          "POST /v1/admin/imports, prints the report and writes the rejected rows to\n"
          "FILE's name with .rejects.csv (or --rejects FILE), ready to correct and send again.\n"
          "\n"
          "  --source NAME       the registry or office the file comes from (required)\n"
          "  --server URL        Machtigen's address (default: $MACHTIGEN_URL)\n"
          "  --mode upsert|sync  sync also ends this source's mandates that are not in FILE\n"
          "  --dry-run           check and count only; change nothing\n"
          "  --credentials FILE  a file with MACHTIGEN_CLIENT_ID=… and MACHTIGEN_CLIENT_SECRET=…\n"
          "                      (or client_id=… and client_secret=…); default: those two\n"
          "                      environment variables\n"
          "  --format csv|ndjson default: from FILE's extension\n"
          "  --gzip              compress while sending\n"
          "  --json              print the server's report as JSON on stdout\n"
          "\n"
          "Exit status: 0 all rows accepted, 1 some rejected, 2 failed (nothing changed).\n");
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("machtigen-import: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(EXIT_FAILED);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void parse_args(int argc, char **argv, struct options *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **value = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--dry-run") == 0) {
      o->dry_run = true;
    } else if (strcmp(a, "--gzip") == 0) {
      o->gzip = true;
    } else if (strcmp(a, "--json") == 0) {
      o->json = true;
    } else if (strcmp(a, "--source") == 0) {
      value = &o->source;
    } else if (strcmp(a, "--server") == 0) {
      value = &o->server;
    } else if (strcmp(a, "--mode") == 0) {
      value = &o->mode;
    } else if (strcmp(a, "--credentials") == 0) {
      value = &o->credentials;
    } else if (strcmp(a, "--format") == 0) {
      value = &o->format;
    } else if (strcmp(a, "--rejects") == 0) {
      value = &o->rejects;
    } else if (strncmp(a, "--secret", 8) == 0 || strncmp(a, "--client-secret", 15) == 0) {
      die("a secret on the command line can be read by other users: use MACHTIGEN_CLIENT_SECRET "
          "or --credentials FILE");
    } else if (a[0] == '-' && a[1] != '\0') {
      usage(stderr);
      die("unknown option %s", a);
    } else if (o->file == NULL) {
      o->file = a;
    } else {
      usage(stderr);
      die("one file at a time (%s and %s)", o->file, a);
    }
    if (value != NULL) {
      if (i + 1 >= argc)
        die("%s needs a value", a);
      *value = argv[++i];
    }
  }
  if (o->file == NULL) {
    usage(stderr);
    die("no FILE given");
  }
  if (o->source == NULL)
    die("--source is required: the registry or office the file comes from");
  if (o->server == NULL)
    o->server = getenv("MACHTIGEN_URL");
  if (o->server == NULL || o->server[0] == '\0')
    die("no server: give --server URL or set MACHTIGEN_URL");
  if (o->mode == NULL)
    o->mode = "upsert";
  if (strcmp(o->mode, "upsert") != 0 && strcmp(o->mode, "sync") != 0)
    die("--mode is upsert or sync, not %s", o->mode);
  if (o->format == NULL) {
    bool ndjson = ends_with(o->file, ".ndjson") || ends_with(o->file, ".ndjson.gz") ||
                  ends_with(o->file, ".jsonl") || ends_with(o->file, ".jsonl.gz");
    o->format = ndjson ? "ndjson" : "csv";
  }
  if (strcmp(o->format, "csv") != 0 && strcmp(o->format, "ndjson") != 0)
    die("--format is csv or ndjson, not %s", o->format);
}

/* ---- Credentials ------------------------------------------------------- */

struct credentials {
  char id[256], secret[256];
};

/* KEY=VALUE lines (an "export " prefix and quotes allowed), as `source`able
 * shell or as printed by `machtigend clients add`. */
static void read_credentials(const char *path, struct credentials *c) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    die("cannot read %s: %s", path, strerror(errno));
  char line[1024];
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    char *p = line;
    while (*p == ' ' || *p == '\t')
      p++;
    if (strncmp(p, "export ", 7) == 0)
      p += 7;
    char *eq = strchr(p, '=');
    if (eq == NULL || *p == '#')
      continue;
    *eq = '\0';
    char *v = eq + 1;
    size_t n = strlen(v);
    if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
      v[n - 1] = '\0';
      v++;
    }
    if (strcmp(p, "MACHTIGEN_CLIENT_ID") == 0 || strcmp(p, "client_id") == 0)
      snprintf(c->id, sizeof c->id, "%s", v);
    else if (strcmp(p, "MACHTIGEN_CLIENT_SECRET") == 0 || strcmp(p, "client_secret") == 0)
      snprintf(c->secret, sizeof c->secret, "%s", v);
  }
  fclose(f);
  if (c->id[0] == '\0' || c->secret[0] == '\0')
    die("%s has no MACHTIGEN_CLIENT_ID=… and MACHTIGEN_CLIENT_SECRET=… lines", path);
}

static void load_credentials(const struct options *o, struct credentials *c) {
  if (o->credentials != NULL) {
    read_credentials(o->credentials, c);
    return;
  }
  const char *id = getenv("MACHTIGEN_CLIENT_ID"), *secret = getenv("MACHTIGEN_CLIENT_SECRET");
  if (id == NULL || secret == NULL || id[0] == '\0' || secret[0] == '\0')
    die("no credentials: set MACHTIGEN_CLIENT_ID and MACHTIGEN_CLIENT_SECRET or give "
        "--credentials FILE");
  snprintf(c->id, sizeof c->id, "%s", id);
  snprintf(c->secret, sizeof c->secret, "%s", secret);
}

/* ---- The upload ---------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct upload {
  FILE *in;
  long long size, sent; /* bytes of the file */
  long long rows;       /* line breaks read (the header counts) */
  bool count_rows;      /* not for a .gz file */
  bool gzip;            /* compress while sending */
  z_stream z;
  bool z_done;
  unsigned char raw[READ_CHUNK];
  double started, last_shown;
  bool tty, finished;
  char *body; /* the answer */
  size_t body_len;
};

static void human_bytes(double b, char *out, size_t len) {
  static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    u++;
  }
  snprintf(out, len, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
}

static void show_progress(struct upload *u, bool last) {
  double now = now_s();
  if (!last && now - u->last_shown < (u->tty ? 0.2 : 5.0))
    return;
  u->last_shown = now;
  double elapsed = now - u->started > 1e-3 ? now - u->started : 1e-3;
  double fraction = u->size > 0 ? (double)u->sent / (double)u->size : 0;
  char sent[32], size[32], eta[32] = "";
  human_bytes((double)u->sent, sent, sizeof sent);
  human_bytes((double)u->size, size, sizeof size);
  if (fraction > 0.001 && fraction < 1) {
    long left = (long)(elapsed / fraction - elapsed + 0.5);
    snprintf(eta, sizeof eta, ", ETA %ld:%02ld", left / 60, left % 60);
  }
  char rows[64] = "";
  if (u->count_rows) {
    long long data_rows = u->rows > 0 ? u->rows - 1 : 0;
    snprintf(rows, sizeof rows, "%lld rows (%.0f rows/s), ", data_rows,
             (double)data_rows / elapsed);
  }
  if (u->tty) {
    int width = 30, done = (int)(fraction * width);
    char bar[64];
    for (int i = 0; i < width; i++)
      bar[i] = i < done ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %3.0f%% %s%s of %s%s   ", bar, fraction * 100, rows, sent, size, eta);
    if (last)
      fputc('\n', stderr);
  } else {
    fprintf(stderr, "progress: %s%s of %s (%.0f%%)%s\n", rows, sent, size, fraction * 100, eta);
  }
  fflush(stderr);
}

static size_t read_file(struct upload *u, char *out, size_t max) {
  size_t n = fread(out, 1, max, u->in);
  u->sent += (long long)n;
  if (u->count_rows)
    for (const char *p = out; (p = memchr(p, '\n', (size_t)(out + n - p))) != NULL; p++)
      u->rows++;
  return n;
}

/* libcurl asks for the next piece of the body. */
static size_t on_read(char *out, size_t size, size_t nmemb, void *userdata) {
  struct upload *u = userdata;
  size_t max = size * nmemb, n;
  if (!u->gzip) {
    n = read_file(u, out, max);
  } else {
    u->z.next_out = (unsigned char *)out;
    u->z.avail_out = (unsigned)max;
    while (u->z.avail_out > 0 && !u->z_done) {
      if (u->z.avail_in == 0 && !feof(u->in)) {
        u->z.next_in = u->raw;
        u->z.avail_in = (unsigned)read_file(u, (char *)u->raw, sizeof u->raw);
      }
      int zr = deflate(&u->z, feof(u->in) && u->z.avail_in == 0 ? Z_FINISH : Z_NO_FLUSH);
      if (zr == Z_STREAM_END)
        u->z_done = true;
      else if (zr != Z_OK && zr != Z_BUF_ERROR)
        return CURL_READFUNC_ABORT;
    }
    n = max - u->z.avail_out;
  }
  if (ferror(u->in))
    return CURL_READFUNC_ABORT;
  show_progress(u, false);
  if (n == 0 && !u->finished) {
    u->finished = true;
    show_progress(u, true);
    fprintf(stderr, "upload complete; the server checks and merges the rows…\n");
  }
  return n;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct upload *u = userdata;
  size_t n = size * nmemb;
  if (u->body_len + n > 16 * 1024 * 1024)
    return 0; /* a report is small */
  char *grown = realloc(u->body, u->body_len + n + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + u->body_len, ptr, n);
  u->body = grown;
  u->body_len += n;
  u->body[u->body_len] = '\0';
  return n;
}

/* The server's address and path, without a doubled slash. */
static char *server_url(const struct options *o, const char *path) {
  size_t n = strlen(o->server);
  if (n > 0 && o->server[n - 1] == '/')
    n--;
  size_t len = n + strlen(path) + 1;
  char *url = malloc(len);
  if (url == NULL)
    die("out of memory");
  snprintf(url, len, "%.*s%s", (int)n, o->server, path);
  return url;
}

static char *import_url(CURL *curl, const struct options *o) {
  char *source = curl_easy_escape(curl, o->source, 0);
  char path[512];
  if (source == NULL || strlen(source) > 300)
    die("--source is too long");
  snprintf(path, sizeof path, "/v1/admin/imports?source=%s&mode=%s%s", source, o->mode,
           o->dry_run ? "&dry_run=true" : "");
  curl_free(source);
  return server_url(o, path);
}

/* Prints the problem the server answered and exits 2. */
static void fail_with_answer(long status, const struct upload *u) {
  json_t *p = u->body != NULL ? json_loads(u->body, 0, NULL) : NULL;
  const char *title = json_string_value(json_object_get(p, "title"));
  const char *detail = json_string_value(json_object_get(p, "detail"));
  const char *code = json_string_value(json_object_get(p, "code"));
  if (title != NULL)
    fprintf(stderr, "machtigen-import: the server refused the import (%ld %s): %s\n", status,
            code ? code : "", detail ? detail : title);
  else
    fprintf(stderr, "machtigen-import: the server answered %ld\n", status);
  fprintf(stderr, "machtigen-import: nothing was changed.\n");
  json_decref(p);
  exit(EXIT_FAILED);
}

/* ---- The report ------------------------------------------------------------ */

static long long count(json_t *report, const char *name) {
  return json_integer_value(json_object_get(json_object_get(report, "counts"), name));
}

static void print_report(json_t *r) {
  const char *mode = json_string_value(json_object_get(r, "mode"));
  bool dry = json_is_true(json_object_get(r, "dry_run"));
  printf("import %s from %s (%s%s): %lld rows\n", json_string_value(json_object_get(r, "id")),
         json_string_value(json_object_get(r, "source")), mode ? mode : "?",
         dry ? ", dry run: nothing was changed" : "", count(r, "rows"));
  static const char *names[] = {"inserted", "updated",    "unchanged",
                                "ended",    "superseded", "rejected"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    printf("  %-11s %lld\n", names[i], count(r, names[i]));
  json_t *codes = json_object_get(r, "rejects_by_code");
  const char *code;
  json_t *n;
  json_object_foreach(codes, code, n) printf("    %-34s %lld\n", code, json_integer_value(n));
  if (json_is_true(json_object_get(r, "sync_withheld")))
    printf("  mode=sync ended nothing: a rejected row's external_ref could not be read\n");
  json_t *t = json_object_get(r, "timings");
  printf("  took %.1f s (receive %.1f s, validate %.1f s, merge %.1f s, audit %.1f s)\n",
         (double)json_integer_value(json_object_get(t, "total_ms")) / 1e3,
         (double)json_integer_value(json_object_get(t, "receive_ms")) / 1e3,
         (double)json_integer_value(json_object_get(t, "validate_ms")) / 1e3,
         (double)json_integer_value(json_object_get(t, "merge_ms")) / 1e3,
         (double)json_integer_value(json_object_get(t, "audit_ms")) / 1e3);
}

/* FILE's name with .rejects.csv instead of its extension(s). */
static char *rejects_path(const char *file) {
  size_t n = strlen(file);
  char *path = malloc(n + 16);
  if (path == NULL)
    die("out of memory");
  memcpy(path, file, n + 1);
  if (ends_with(path, ".gz"))
    path[n -= 3] = '\0';
  const char *slash = strrchr(path, '/');
  char *dot = strrchr(path, '.');
  if (dot != NULL && (slash == NULL || dot > slash) && dot != path && dot[-1] != '/')
    *dot = '\0';
  strcat(path, ".rejects.csv");
  return path;
}

static size_t on_rejects(char *ptr, size_t size, size_t nmemb, void *userdata) {
  return fwrite(ptr, size, nmemb, userdata) * size;
}

static bool fetch_rejects(const struct options *o, const struct credentials *c, json_t *report) {
  const char *link = json_string_value(json_object_get(report, "rejects"));
  if (link == NULL)
    return false;
  char *path = o->rejects != NULL ? strdup(o->rejects) : rejects_path(o->file);
  size_t tmp_len = strlen(path) + 8;
  char *tmp = malloc(tmp_len);
  if (tmp == NULL)
    die("out of memory");
  snprintf(tmp, tmp_len, "%s.part", path);
  FILE *out = fopen(tmp, "w");
  if (out == NULL) {
    fprintf(stderr, "machtigen-import: cannot write %s: %s\n", tmp, strerror(errno));
    free(path);
    free(tmp);
    return false;
  }
  char *url = server_url(o, link);
  CURL *curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_USERNAME, c->id);
  curl_easy_setopt(curl, CURLOPT_PASSWORD, c->secret);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_rejects);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  bool ok = fclose(out) == 0 && rc == CURLE_OK && rename(tmp, path) == 0;
  if (ok)
    fprintf(stderr, "rejected rows: %s (correct them and send that file again)\n", path);
  else
    fprintf(stderr, "machtigen-import: could not fetch the rejected rows (%s); they stay at %s\n",
            rc != CURLE_OK ? curl_easy_strerror(rc) : strerror(errno), link);
  if (!ok)
    unlink(tmp);
  free(url);
  free(path);
  free(tmp);
  return ok;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv) {
  struct options o = {0};
  parse_args(argc, argv, &o);
  struct credentials cred = {{0}, {0}};
  load_credentials(&o, &cred);

  struct upload *u = calloc(1, sizeof *u);
  if (u == NULL)
    die("out of memory");
  u->in = fopen(o.file, "rb");
  if (u->in == NULL)
    die("cannot read %s: %s", o.file, strerror(errno));
  struct stat sb;
  if (fstat(fileno(u->in), &sb) == 0 && S_ISREG(sb.st_mode))
    u->size = (long long)sb.st_size;
  bool already_gzip = ends_with(o.file, ".gz");
  u->gzip = o.gzip && !already_gzip;
  u->count_rows = !already_gzip && strcmp(o.format, "csv") == 0;
  u->tty = isatty(STDERR_FILENO);
  if (u->gzip && deflateInit2(&u->z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    die("cannot start gzip");

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    die("cannot start libcurl");
  CURL *curl = curl_easy_init();
  if (curl == NULL)
    die("cannot start libcurl");
  char *url = import_url(curl, &o);
  char content_type[64];
  snprintf(content_type, sizeof content_type, "Content-Type: %s",
           strcmp(o.format, "csv") == 0 ? "text/csv; charset=utf-8" : "application/x-ndjson");
  struct curl_slist *headers = curl_slist_append(NULL, content_type);
  if (u->gzip || already_gzip)
    headers = curl_slist_append(headers, "Content-Encoding: gzip");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(curl, CURLOPT_READDATA, u);
  /* Unknown length (compressing on the way): chunked. */
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                   u->gzip || u->size == 0 ? (curl_off_t)-1 : (curl_off_t)u->size);
  curl_easy_setopt(curl, CURLOPT_USERNAME, cred.id);
  curl_easy_setopt(curl, CURLOPT_PASSWORD, cred.secret);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, u);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);

  u->started = now_s();
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  free(url);
  fclose(u->in);
  if (u->gzip)
    deflateEnd(&u->z);
  if (rc != CURLE_OK) {
    if (u->tty)
      fputc('\n', stderr);
    fprintf(stderr, "machtigen-import: %s\n", error[0] ? error : curl_easy_strerror(rc));
    fprintf(stderr, u->finished ? "machtigen-import: the upload was complete but no answer came: "
                                  "running the same import again is safe (it is idempotent).\n"
                                : "machtigen-import: the upload did not finish: nothing was "
                                  "changed.\n");
    free(u->body);
    free(u);
    curl_global_cleanup();
    return EXIT_FAILED;
  }
  if (status != 201)
    fail_with_answer(status, u);
  json_t *report = json_loads(u->body, 0, NULL);
  if (report == NULL)
    die("the server's report is not JSON");
  if (o.json) {
    char *text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(text);
    free(text);
  } else {
    print_report(report);
  }
  long long rejected = count(report, "rejected");
  if (rejected > 0)
    fetch_rejects(&o, &cred, report);
  json_decref(report);
  free(u->body);
  free(u);
  curl_global_cleanup();
  return rejected > 0 ? EXIT_SOME_REJECTED : EXIT_ALL_ACCEPTED;
}

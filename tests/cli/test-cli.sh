#!/usr/bin/env bash
# machtigend as an operator meets it: configuration errors name the
# setting in one line, serve refuses a schema it does not know, SIGTERM
# lets an in-flight request finish and exits 0, and `audit verify` finds
# a tampered trail.  Needs the test environment (tools/dev test):
# DATABASE_URL (superuser) and MACHTIGEN_BIN.
set -uo pipefail

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

for v in DATABASE_URL MACHTIGEN_BIN MACHTIGEN_KEY_DIR IDP_URL; do
  [[ -n ${!v:-} ]] || { echo "not ok - $v is not set: run this through tools/dev test"; exit 1; }
done
BIN=$MACHTIGEN_BIN
scratch=$(mktemp -d)
db="machtigen_cli_$$"
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
  psql -X -q -d "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  rm -rf "$scratch"
}
trap cleanup EXIT

# A URL for a scratch database on the same server.
scratch_url=$(printf '%s' "$DATABASE_URL" | sed -E "s#/machtigen([?]|$)#/$db\\1#")
[[ $scratch_url != "$DATABASE_URL" ]] || { echo "not ok - cannot derive a scratch database URL"; exit 1; }
psql -X -q -d "$DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null || { echo "not ok - cannot create $db"; exit 1; }

# --- configuration: one clear line naming the setting -------------------
out=$(env -i PATH="$PATH" "$BIN" serve 2>&1); rc=$?
check "missing MACHTIGEN_DATABASE_URL is named" '[[ $rc -ne 0 && $out == *MACHTIGEN_DATABASE_URL* && $(wc -l <<<"$out") -eq 1 ]]'
out=$(env -i PATH="$PATH" MACHTIGEN_DATABASE_URL="$scratch_url" MACHTIGEN_LISTEN=nonsense "$BIN" serve 2>&1); rc=$?
check "bad MACHTIGEN_LISTEN is named" '[[ $rc -ne 0 && $out == *MACHTIGEN_LISTEN* && $(wc -l <<<"$out") -eq 1 ]]'
out=$(env -i PATH="$PATH" MACHTIGEN_DATABASE_URL="$scratch_url" "$BIN" serve 2>&1); rc=$?
check "missing MACHTIGEN_IDP_ISSUER is named" '[[ $rc -ne 0 && $out == *MACHTIGEN_IDP_ISSUER* ]]'
out=$(env -i PATH="$PATH" MACHTIGEN_DATABASE_URL="$scratch_url" MACHTIGEN_IDP_ISSUER=https://idp.example MACHTIGEN_PSEUDONYM_KEY=abc "$BIN" serve 2>&1); rc=$?
check "short MACHTIGEN_PSEUDONYM_KEY is named" '[[ $rc -ne 0 && $out == *MACHTIGEN_PSEUDONYM_KEY* ]]'
out=$(env -i PATH="$PATH" MACHTIGEN_DATABASE_URL="$scratch_url" MACHTIGEN_IDP_ISSUER=http://idp.example MACHTIGEN_PSEUDONYM_KEY=$(printf '%064d' 0) "$BIN" serve 2>&1); rc=$?
check "plain-http issuer refused outside development" '[[ $rc -ne 0 && $out == *MACHTIGEN_IDP_ISSUER* && $out == *https* ]]'

# --- schema: serve refuses an unmigrated or unknown schema ---------------
common=(MACHTIGEN_DATABASE_URL="$scratch_url" MACHTIGEN_IDP_ISSUER="$IDP_URL" MACHTIGEN_DEV=1
  MACHTIGEN_KEY_DIR="$MACHTIGEN_KEY_DIR" MACHTIGEN_LISTEN=127.0.0.1:18099 MACHTIGEN_THREADS=2)
out=$(env "${common[@]}" "$BIN" serve 2>&1); rc=$?
check "serve refuses an empty database" '[[ $rc -ne 0 && $out == *migrate* ]]'
out=$(env "${common[@]}" "$BIN" migrate 2>&1); rc=$?
check "migrate applies every migration" '[[ $rc -eq 0 && $out == *"schema is at version"* ]]'
out=$(env "${common[@]}" "$BIN" migrate 2>&1); rc=$?
check "migrate again changes nothing" '[[ $rc -eq 0 && $out != *applying* ]]'
psql -X -q -d "$scratch_url" -c "INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future.sql')" >/dev/null
out=$(env "${common[@]}" "$BIN" serve 2>&1); rc=$?
check "serve refuses a newer schema" '[[ $rc -ne 0 && $out == *"schema version is 999"* ]]'
out=$(env "${common[@]}" "$BIN" migrate 2>&1); rc=$?
check "migrate refuses a newer schema" '[[ $rc -ne 0 && $out == *newer* ]]'
psql -X -q -d "$scratch_url" -c "DELETE FROM schema_migrations WHERE version = 999" >/dev/null

# --- SIGTERM: an in-flight request finishes, the exit status is 0 ---------
env "${common[@]}" "$BIN" serve 2>"$scratch/serve.log" &
server_pid=$!
for _ in $(seq 50); do curl -fs http://127.0.0.1:18099/readyz >/dev/null && break; sleep 0.1; done
check "a second instance becomes ready" 'curl -fs http://127.0.0.1:18099/readyz >/dev/null'
# A slow upload keeps a request in flight while the signal arrives.
(
  exec 3<>/dev/tcp/127.0.0.1/18099
  printf 'POST /v1/mandates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' >&3
  printf 'Content-Length: 2\r\nConnection: close\r\n\r\n{' >&3
  sleep 1
  printf '}' >&3
  timeout 8 cat <&3 >"$scratch/inflight"
) &
client=$!
sleep 0.4
kill -TERM "$server_pid"
wait "$client"
wait "$server_pid"; rc=$?
server_pid=
check "SIGTERM exits 0" '[[ $rc -eq 0 ]]'
check "the in-flight request got its answer" 'grep -q "HTTP/1.1 401" "$scratch/inflight"'
check "stop is logged" 'grep -q "\"stopped\"" "$scratch/serve.log"'

# --- audit verify ------------------------------------------------------
out=$(MACHTIGEN_DATABASE_URL="$DATABASE_URL" "$BIN" audit verify 2>&1); rc=$?
check "the test environment's audit chain is intact" '[[ $rc -eq 0 && $out == *intact* ]]'
psql -X -q -d "$scratch_url" -c "
  INSERT INTO audit_events (seq, at, event, actor, detail, prev_hash, hash)
  SELECT 1, now(), 'mandate_created', 'bsn:999993653', '{}', hash, sha256('x') FROM audit_head;
  UPDATE audit_head SET seq = 1, hash = sha256('x');" >/dev/null
out=$(MACHTIGEN_DATABASE_URL="$scratch_url" "$BIN" audit verify 2>&1); rc=$?
check "audit verify finds a forged row" '[[ $rc -eq 1 && $out == *BROKEN* ]]'
out=$(psql -X -q -d "$scratch_url" -c "DELETE FROM audit_events" 2>&1); rc=$?
check "audit rows cannot be deleted" '[[ $rc -ne 0 && $out == *append-only* ]]'

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

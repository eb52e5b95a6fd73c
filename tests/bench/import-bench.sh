#!/usr/bin/env bash
# The bulk-import bench (`tools/dev bench import` runs it).
#
# It builds and starts nothing: it takes a running machtigend and its database from the
# environment, as tools/dev's env file gives them (`source build-bench/bench-env/env` or
# `.dev/env`), and should be given a release build and a fresh database (tools/dev bench's
# throwaway environment) -- in a database that already holds mandates for the generated
# people the first import rejects them as overlaps.
#
#   MACHTIGEN_URL, DATABASE_URL, ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET   required
#   MACHTIGEN_PID        machtigend's pid, for its memory (default: whoever listens on
#                        MACHTIGEN_URL's port)
#   IMPORT_BENCH_ROWS    rows in the file (1000000)
#   IMPORT_BENCH_DIR     where the file goes (a new temporary directory, removed afterwards)
#   IMPORT_BENCH_SEED    the generator's seed (from the clock: each run new people)
#
# In one run: generates a realistic file (tests/bench/import-gen.py: valid BSNs, 2,000
# representatives with up to 5,000 clients each, 1% bad rows of every kind), copies it with
# plain COPYs into bare tables (each line as one value; and as CSV into nine text columns, the
# rows with nine fields), imports it (first byte of the upload to the report), imports it again
# (every row unchanged), checks the counts against what the generator made, and prints the
# times, their ratio to the COPY, and machtigend's peak RSS.  Exit status 0 unless the stack is
# missing or an import failed; missed targets are reported, not failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf 'import-bench: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

for v in MACHTIGEN_URL DATABASE_URL ADMIN_CLIENT_ID ADMIN_CLIENT_SECRET; do
  [[ -n ${!v:-} ]] || die "$v is not set: source the env file of a running stack (tools/dev)"
done
for tool in curl psql python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (tools/dev deps)"
done
ROWS=${IMPORT_BENCH_ROWS:-1000000}
SEED=${IMPORT_BENCH_SEED:-$(date +%s)}
[[ $ROWS =~ ^[1-9][0-9]*$ ]] || die "IMPORT_BENCH_ROWS must be a positive number"
curl -fsS -o /dev/null --max-time 5 "$MACHTIGEN_URL/readyz" || die "no machtigend at $MACHTIGEN_URL"

pid=${MACHTIGEN_PID:-}
if [[ -z $pid ]]; then
  port=${MACHTIGEN_URL##*:}
  port=${port%%/*}
  pid=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2) || true
fi
[[ -n $pid && -r /proc/$pid/status ]] || say "warning: machtigend's pid is unknown: no memory figures"

work=${IMPORT_BENCH_DIR:-}
cleanup_work=0
if [[ -z $work ]]; then
  work=$(mktemp -d /tmp/import-bench.XXXXXX)
  cleanup_work=1
fi
mkdir -p "$work"
table=import_bench_bare_$$
sampler=
prober=
cleanup() {
  if [[ -n $sampler ]]; then kill "$sampler" 2>/dev/null || true; fi
  if [[ -n $prober ]]; then kill "$prober" 2>/dev/null || true; fi
  psql -X -q -d "$DATABASE_URL" -c "DROP TABLE IF EXISTS $table, ${table}_csv" >/dev/null 2>&1 ||
    true
  if ((cleanup_work)); then rm -rf "$work"; fi
  return 0
}
trap cleanup EXIT

now() { date +%s.%N; }
kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

file=$work/mandates.csv
say "generating $ROWS rows (seed $SEED)"
t0=$(now)
python3 "$HERE/import-gen.py" --rows "$ROWS" --seed "$SEED" --expect "$work/expect.json" "$file"
gen_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
bytes=$(stat -c %s "$file")

# Two plain COPYs into bare tables: every line as one value (the fastest PostgreSQL takes these
# bytes in), and as CSV into nine text columns -- which a file with malformed rows cannot be
# as a whole, so that one takes the file without its rows of the wrong field count.
copy_time() { # table options file
  local t0
  t0=$(now)
  psql -X -q -d "$DATABASE_URL" -c "\\copy $1 FROM '$3' WITH ($2)" >/dev/null
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'
}
say "plain COPY of the file into bare tables"
psql -X -q -d "$DATABASE_URL" -c "CREATE TABLE $table (line text)" \
  -c "CREATE TABLE ${table}_csv (a text, b text, c text, d text, e text, f text, g text, h text, i text)" \
  >/dev/null
copy_s=$(copy_time "$table" "FORMAT text, DELIMITER E'\\x01', ENCODING 'LATIN1'" "$file")
copied=$(psql -X -At -d "$DATABASE_URL" -c "SELECT count(*) FROM $table")
awk -F, 'NF == 9' "$file" >"$work/nine-fields.csv"
csv_s=$(copy_time "${table}_csv" "FORMAT csv, HEADER, ENCODING 'LATIN1'" "$work/nine-fields.csv")
csv_rows=$(psql -X -At -d "$DATABASE_URL" -c "SELECT count(*) FROM ${table}_csv")
rm -f "$work/nine-fields.csv"
psql -X -q -d "$DATABASE_URL" -c "DROP TABLE $table, ${table}_csv" >/dev/null

# The credentials go to curl on stdin, never on a command line.
import_file() { # out-file query
  printf 'user = "%s:%s"\n' "$ADMIN_CLIENT_ID" "$ADMIN_CLIENT_SECRET" |
    curl -sS -K - -X POST -T "$file" -H 'Content-Type: text/csv' -H 'Expect:' \
      -o "$1" -w '%{http_code} %{time_total}\n' "$MACHTIGEN_URL/v1/admin/imports?$2"
}

peak=0
if [[ -n $pid ]]; then
  echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
  base_rss=$(kib "$pid" VmRSS)
  # VmHWM when clear_refs works; samples of VmRSS as well, in case it does not.
  python3 "$HERE/import-watch.py" rss "$pid" "$work/rss.max" &
  sampler=$!
fi

# A portal's token exchanges while the first import runs: a mandate made through the API, then
# one exchange every 100 ms until the import answers.  Secrets and tokens go on stdin, to curl
# and to import-watch.py, which makes the exchanges on one kept-alive connection.
# Skipped (said so) when the stack has no demo portal or IdP.
probe_principal=bsn:999993653 probe_rep=bsn:999990019 probe_service=uwv-ww-aanvragen
mint() { curl -fsS --max-time 10 --get --data-urlencode "bsn=${1#bsn:}" --data-urlencode loa=midden \
  --data-urlencode ttl=3600 "$IDP_URL/mint"; }
with_bearer() { printf 'header = "Authorization: Bearer %s"\n' "$1"; }
probe_setup() {
  [[ -n ${IDP_URL:-} && -n ${PORTAL_CLIENT_ID:-} && -n ${PORTAL_CLIENT_SECRET:-} ]] || return 1
  local p_token id
  p_token=$(mint "$probe_principal") && probe_token=$(mint "$probe_rep") || return 1
  id=$(with_bearer "$p_token" | curl -fsS --max-time 10 -K - -H 'Content-Type: application/json' \
    -d "{\"representative\":\"$probe_rep\",\"service\":\"$probe_service\",\"valid_from\":\"$(date -u +%F)\",\"valid_until\":\"$(date -u -d '+30 days' +%F)\"}" \
    "$MACHTIGEN_URL/v1/mandates" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') ||
    return 1
  with_bearer "$probe_token" | curl -fsS --max-time 10 -o /dev/null -K - -X POST \
    -H 'If-Match: "1"' "$MACHTIGEN_URL/v1/mandates/$id/accept"
}
: >"$work/probe.txt"
if probe_setup; then
  printf '%s\n' "$probe_token" "$probe_principal" "$probe_service" |
    python3 "$HERE/import-watch.py" exchanges "$work/probe.txt" &
  prober=$!
else
  say "no token exchanges during the import: the stack has no demo portal or IdP to use"
fi

# CPU time the hypervisor gave to others while the first import ran (steal, /proc/stat): on
# a shared VM that is the noise in the import's time.
steal_ticks() { awk '$1 == "cpu" { print $9 }' /proc/stat; }
source=bench-$SEED
say "importing ($source)"
steal0=$(steal_ticks)
read -r status1 time1 < <(import_file "$work/first.json" "source=$source")
steal_s=$(awk -v a="$steal0" -v b="$(steal_ticks)" -v hz="$(getconf CLK_TCK)" \
  'BEGIN { printf "%.1f", (b - a) / hz }')
if [[ -n $prober ]]; then
  kill "$prober" 2>/dev/null || true
  wait "$prober" 2>/dev/null || true
  prober=
fi
[[ $status1 == 201 ]] || die "the import answered $status1: $(head -c 400 "$work/first.json")"
say "importing the same file again"
read -r status2 time2 < <(import_file "$work/second.json" "source=$source")
[[ $status2 == 201 ]] || die "the second import answered $status2: $(head -c 400 "$work/second.json")"
if [[ -n $pid ]]; then
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  sampler=
  hwm=$(kib "$pid" VmHWM)
  sampled=$(cat "$work/rss.max" 2>/dev/null || echo 0)
  peak=$((hwm > sampled ? hwm : sampled))
fi

python3 - "$work/expect.json" "$work/first.json" "$work/second.json" "$work/probe.txt" <<EOF
import json, sys
expect, first, second = (json.load(open(p)) for p in sys.argv[1:4])
probes = [l.split() for l in open(sys.argv[4]) if len(l.split()) == 2]
rows, copy_s, csv_s, csv_rows, t1, t2 = $ROWS, $copy_s, $csv_s, $csv_rows, $time1, $time2
steal, ncpu = $steal_s, $(nproc)
peak, base = ${peak:-0}, ${base_rss:-0}
def num(x): return f"{x:,.0f}"
def row(name, value, target='', result='', ratio=''):
    print(f"{name:<40} {value:>16}  {target:<11} {result:<7} {ratio}")
def phases(r):
    t = r['timings']
    return ', '.join(f"{k[:-3]} {t[k] / 1000:.1f} s" for k in
                     ('receive_ms', 'validate_ms', 'merge_ms', 'audit_ms'))
c1, c2 = first['counts'], second['counts']
good = c1['rows'] == expect['rows'] and c1['inserted'] == expect['inserted'] and \
    c1['rejected'] == expect['rejected'] and first['rejects_by_code'] == expect['rejects_by_code']
again = c2['inserted'] == 0 and c2['updated'] == 0 and c2['unchanged'] == expect['inserted']
print(f"\nMachtigen import bench: {num(rows)} rows, {$bytes / 1e6:.1f} MB CSV"
      f" ({num(expect['rejected'])} bad rows of {len(expect['rejects_by_code'])} kinds),"
      f" file generated in $gen_s s\n")
row('figure', 'value', 'target', 'result', 'ratio')
row('plain COPY, lines as one column', f"{copy_s:.1f} s", '', '',
    f"{num(rows / copy_s)} rows/s ({num($copied)} lines)")
row('plain COPY, CSV into 9 columns', f"{csv_s:.1f} s", '', '',
    f"{num(csv_rows / csv_s)} rows/s ({num(csv_rows)} rows of 9 fields)")
def ratios(t):
    return f"{t / csv_s:.1f}x CSV COPY, {t / copy_s:.1f}x line COPY; {num(rows / t)} rows/s"
row('import, first (inserts)', f"{t1:.1f} s", '< 20 s', 'pass' if t1 < 20 else 'MISS', ratios(t1))
row('  phases', phases(first))
row('  CPU time stolen by the host meanwhile', f"{steal:.1f} s", '', '',
    f"{100 * steal / (ncpu * t1):.0f}% of the {ncpu} CPUs' time")
row('import again (all unchanged)', f"{t2:.1f} s", '< 20 s', 'pass' if t2 < 20 else 'MISS',
    ratios(t2))
row('  phases', phases(second))
if probes:
    times = sorted(float(t) * 1000 for _, t in probes)
    ok = sum(1 for code, _ in probes if code == '200')
    row('token exchanges during the first import', f"{ok} of {len(probes)} ok", '', '',
        f"median {times[len(times) // 2]:.0f} ms, slowest {times[-1]:.0f} ms")
if peak:
    row('machtigend peak RSS, both imports', f"{peak / 1024:.1f} MiB", '< 100 MiB',
        'pass' if peak < 100 * 1024 else 'MISS', f"{base / 1024:.1f} MiB before")
row('counts as generated', 'yes' if good and again else 'NO', '', 'ok' if good and again else 'WRONG')
if not good:
    print('  expected', json.dumps(expect, sort_keys=True))
    print('  first   ', json.dumps({**c1, 'rejects_by_code': first['rejects_by_code']}, sort_keys=True))
if not again:
    print('  again   ', json.dumps(c2, sort_keys=True))
EOF

#!/bin/sh
# Runs one libFuzzer target for a smoke time: new inputs go to a scratch
# directory so the seed corpus in the source tree stays as committed.
set -eu
exe=$1 seeds=$2 secs=${FUZZ_SECONDS:-15}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
exec_status=0
# libFuzzer's own exit status for a crash is 77, which meson reads as a
# skipped test: a finding must fail it.
"$exe" -max_total_time="$secs" -rss_limit_mb=1024 -print_final_stats=1 -error_exitcode=1 \
  -artifact_prefix="$scratch/" "$scratch" "$seeds" || exec_status=$?
if [ "$exec_status" -ne 0 ]; then
  for f in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-*; do
    [ -e "$f" ] && { echo "reproducer: $f"; od -c "$f" | head -20; }
  done
fi
[ "$exec_status" -eq 77 ] && exec_status=1
exit "$exec_status"

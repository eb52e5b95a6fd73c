#!/bin/sh
# The suite checks formatting: every C file as clang-format (.clang-format
# at the root) would write it.
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format is missing: run tools/dev deps"; exit 1; }
files=$(find service tools tests -name '*.[ch]' -not -path '*/corpus/*' | sort)
[ -n "$files" ] || { echo "no C files found"; exit 1; }
# shellcheck disable=SC2086 # word splitting of the file list is intended
clang-format --dry-run -Werror $files
echo "formatted: $(echo "$files" | wc -l) files"

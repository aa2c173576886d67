#!/usr/bin/env bash
# Formats the tree's C with the checked-in .clang-format, or with --check
# only says which files differ (exit 1), as the test command does.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^web-client/')
if [ "${1:-}" = --check ]; then
  clang-format --dry-run --Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi

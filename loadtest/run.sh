#!/usr/bin/env bash
# Runs one otj-load scenario against a fresh redis-server and fresh otjd
# instance(s) on free loopback ports, then stops them. Every figure of
# BENCHMARKS.md is re-run with this command.
#
#   bash loadtest/run.sh [--instances N] [--otjd PATH] [--otj-load PATH]
#                        [--env NAME=VALUE]... -- SCENARIO [otj-load options]
#
# It raises the descriptor limit first (100,000 connections need as many
# descriptors on each side), then hands over to run.mjs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
want=1048576
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want" ]; then
  ulimit -Hn "$want" 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node "$here/run.mjs" "$@"

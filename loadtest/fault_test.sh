#!/usr/bin/env bash
# The checks still catch what they are for: a small fan-out run in which
# otj-load drops one received ev frame and handles another twice
# (OTJ_LOAD_FAULT) must fail with exactly that, one event lost for the
# receiver that missed it and one duplicated.
#
#   bash loadtest/fault_test.sh OTJD OTJ_LOAD
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
rc=0
OTJ_LOAD_FAULT="drop:1500 dup:2500" bash "$here/run.sh" --otjd "$1" --otj-load "$2" \
  -- fanout --rooms 10 --learners 9 --rate 200 --duration 3 --no-floor --quiet \
  --json "$out/r.json" >"$out/stdout" || rc=$?
cat "$out/stdout"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).correctness;
const ok = r.lost === 1 && r.duplicated === 1 && r.errors === 0 && !r.ok;
console.log(`injected: 1 lost, 1 duplicated; counted: lost ${r.lost}, duplicated ${r.duplicated}, ` +
            `errors ${r.errors}; exit code ${process.argv[2]}`);
process.exit(ok && process.argv[2] === "1" ? 0 : 1);
' "$out/r.json" "$rc"

#!/usr/bin/env bash
# Fuzzes otjd's input paths with clang's libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer: builds the targets of tests/fuzz/ into
# build-fuzz/ (-DOTJ_FUZZ=ON, CC=clang) and runs each for FUZZ_SECONDS
# (default 60), starting from the checked-in seeds in tests/fuzz/corpus/.
# Inputs the fuzzer finds go to build-fuzz/fuzz-corpus/<target>/ (not into
# the repository). A crash, leak, hang (FUZZ_TIMEOUT s) or broken check
# stops that target, leaves the input in build-fuzz/fuzz-artifacts/ and makes
# the script fail. To keep it as a regression test, fix the bug and copy the
# input into tests/fuzz/corpus/<target>/: ctest replays that folder.
# FUZZ_TARGETS="proto api" picks targets. Prints executions per target.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"proto api"}
out=build-fuzz

CC=${FUZZ_CC:-clang} cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DOTJ_FUZZ=ON -DOTJ_WERROR=ON >/dev/null
cmake --build "$out" -j"$(nproc)" --target $(printf 'fuzz_%s ' $targets)

mkdir -p "$out/fuzz-artifacts"
status=0
summary=()
for t in $targets; do
  mkdir -p "$out/fuzz-corpus/$t"
  log="$out/fuzz-$t.log"
  echo "==> fuzz_$t for ${secs}s"
  if "$out/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
       -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -max_len=16384 \
       -print_final_stats=1 -artifact_prefix="$out/fuzz-artifacts/$t-" \
       "$out/fuzz-corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    summary+=("fuzz_$t: ${runs:-?} executions in ${secs}s (${rate:-?}/s), no crash")
  else
    status=1
    tail -n 60 "$log"
    summary+=("fuzz_$t: FAILED, see $log and $out/fuzz-artifacts/")
  fi
done
printf '%s\n' "${summary[@]}" | tee "$out/fuzz-summary.txt"
exit $status

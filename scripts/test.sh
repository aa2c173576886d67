#!/usr/bin/env bash
# One command for a fresh Debian 12 machine (as root): installs what is
# needed, builds, and runs every test: cmocka unit tests, integration tests
# against real redis-server and otjd processes, browser tests in Chromium
# and the load-generator smoke run, in a normal build (warnings are errors);
# then the unit and integration tests again in a build with AddressSanitizer
# and UndefinedBehaviorSanitizer. OTJ_TEST_SANITIZE=0 skips the second run.
# Then the fuzz targets run under libFuzzer for FUZZ_SECONDS each (60 here, about a minute,
# scripts/fuzz.sh); OTJ_TEST_FUZZ=0 skips them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "==> the C is formatted (.clang-format; scripts/format.sh fixes it)"
bash scripts/format.sh --check

echo "==> build (warnings are errors)"
bash scripts/build.sh build -DOTJ_WERROR=ON
echo "==> tests"
(cd build && ctest --output-on-failure -j2)

if [ "${OTJ_TEST_SANITIZE:-1}" != 0 ]; then
  echo "==> build with -DOTJ_SANITIZE=address,undefined"
  bash scripts/build.sh build-asan -DOTJ_WERROR=ON -DOTJ_SANITIZE=address,undefined
  echo "==> unit and integration tests under the sanitizers"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j2 -L "unit|integration")
fi

if [ "${OTJ_TEST_FUZZ:-1}" != 0 ]; then
  echo "==> fuzzing (clang, libFuzzer, ASan+UBSan)"
  FUZZ_SECONDS=${FUZZ_SECONDS:-60} bash scripts/fuzz.sh
fi

#!/usr/bin/env bash
# One command for a fresh Debian 12 machine (as root): installs what is
# needed, builds, and runs otjd with the demo organisation on
# http://localhost:8080 (data in ./data). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
exec build/server/otjd --demo --data "${OTJ_DATA:-data}" \
  --listen "${OTJ_LISTEN:-0.0.0.0:8080}" "$@"

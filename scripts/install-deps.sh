#!/usr/bin/env bash
# Installs what OTJ live needs on Debian 12 (run as root). Safe to run again:
# it asks apt only for what is missing, and npm only when the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config git curl ca-certificates
      libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libhiredis-dev
      libsqlite3-dev sqlite3 libmsgpack-dev libcmocka-dev libsodium-dev
      libqrencode-dev libjansson-dev redis-server chromium
      openssl
      clang libclang-rt-14-dev clang-format)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian 12's own Node (18) is enough: the npm packages are chosen for it
# (playwright-core stays on 1.61, the last release that runs on Node 18).
if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; then
  echo "install-deps: Node $(node --version) is too old, 18 or newer is needed" \
       "(Debian 12's nodejs package is 18)" >&2
  exit 1
fi

# Node packages of the tests and of the web client, from the lock files.
for dir in tests web-client; do
  if [ -f "$dir/package-lock.json" ] &&
     ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json" 2>/dev/null; then
    echo "==> npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

# The web client's one build step: copies the browser build of
# @msgpack/msgpack into web-client/vendor/ (cheap; always run).
(cd web-client && npm run --silent build)

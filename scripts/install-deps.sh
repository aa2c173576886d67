#!/usr/bin/env bash
# Installs what OTJ live needs on Debian 12 (run as root). Safe to run again:
# it asks apt only for what is missing, and npm only when the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config git curl ca-certificates
      libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libhiredis-dev
      libsqlite3-dev sqlite3 libmsgpack-dev libcmocka-dev libsodium-dev
      libqrencode-dev libjansson-dev redis-server chromium
      openssl nginx qrencode
      clang libclang-rt-14-dev clang-format
      file man-db)   # cpack's DEB generator runs file; systemd-analyze verify runs man
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
  # nginx is here for tests/integration/nginx.test.mjs, which runs its own
  # nginx in the foreground: installing it must not start (or enable) a
  # system nginx on port 80. Unless a policy-rc.d already rules, one that
  # refuses nginx alone stands for the install.
  guard=
  if [[ " ${missing[*]} " == *" nginx "* && ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nfor a; do case "$a" in nginx|nginx.service) exit 101;; esac; done\nexit 0\n' \
      >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$guard" ]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
    deb-systemd-helper disable nginx.service >/dev/null 2>&1 || true
  fi
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

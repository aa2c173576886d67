#!/usr/bin/env bash
# Runs one command, as root, in a fresh minimal Debian 12 (debootstrap
# --variant=minbase bookworm) holding a clean clone of a repository's
# committed HEAD: what a new user on a new machine has, nothing more.
#
#   usage: sudo bash scripts/fresh-debian.sh REPO 'COMMAND'
#   e.g.   sudo bash scripts/fresh-debian.sh . 'bash scripts/test.sh'
#
# Needs root; installs debootstrap with apt-get when it is missing. The base
# system is made once and kept as a tar in $FRESH_DIR (default
# /var/tmp/otj-fresh-debian; delete base.tar to make it anew); every run
# unpacks a new root from it (root.PID beside it, removed afterwards). The
# chroot gets Debian's sources (main, bookworm-updates, bookworm-security
# from $FRESH_MIRROR), an /etc/hosts, and only this machine's network trust
# settings (its local CA certificates, npm's cafile settings), so it reaches
# the same registries; no Node, no npm, nothing else. It shares the
# machine's network: a server started inside listens on the machine's ports.
# Uncommitted changes are not in the clone.
# FRESH_KEEP=1 leaves the root in place afterwards; FRESH_FILES="F..." copies
# files into the chroot's /root/ first. Exit status: COMMAND's.
set -euo pipefail

repo=$(cd "${1:?usage: fresh-debian.sh REPO COMMAND}" && pwd)
cmd=${2:?usage: fresh-debian.sh REPO COMMAND}
top=${FRESH_DIR:-/var/tmp/otj-fresh-debian}
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
base=$top/base.tar
root=$top/root.$$   # one per run, so that runs may overlap

[ "$(id -u)" = 0 ] || { echo "fresh-debian: needs root" >&2; exit 2; }
head=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-debian: note: uncommitted changes in $repo are not used" >&2
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "==> fresh-debian: installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

unmount_all() {
  # everything mounted below $root, deepest first
  local m
  for m in $(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}

remove_root() {
  unmount_all
  if awk -v r="$root/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    echo "fresh-debian: something is still mounted below $root, leaving it" >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}

mkdir -p "$top"
if [ ! -f "$base" ]; then
  echo "==> fresh-debian: debootstrap --variant=minbase bookworm (once; kept in $base)"
  rm -rf "$top/base"
  if ! debootstrap --variant=minbase bookworm "$top/base" "$mirror" >"$top/debootstrap.log" 2>&1; then
    echo "fresh-debian: debootstrap failed, see $top/debootstrap.log" >&2
    exit 2
  fi
  tar -C "$top/base" -cf "$base.part" . && mv "$base.part" "$base"
  rm -rf "$top/base"
fi

remove_root
mkdir -p "$root"
tar -C "$root" -xf "$base"

# What a Debian 12 install has: the three suites, a resolver, localhost.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${FRESH_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
[ -s "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# This machine's network trust (a proxy's CA), so the registries answer.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
for f in /etc/npmrc /usr/etc/npmrc /root/.npmrc; do
  if [ -f "$f" ]; then
    mkdir -p "$root$(dirname "$f")"
    grep -E '^[[:space:]]*(cafile|ca|strict-ssl|registry|proxy|https-proxy|noproxy)[[:space:]]*=' "$f" >"$root$f" || true
  fi
done

# FRESH_FILES="a.deb b.txt": copied into /root/ of the chroot first (say,
# a package built by an earlier run, to install it where nothing was built)
for f in ${FRESH_FILES:-}; do cp "$f" "$root/root/"; done

git clone -q --no-checkout "$repo" "$root/root/project"
git -C "$root/root/project" checkout -q "$head"
echo "==> fresh-debian: $(git -C "$root/root/project" log -1 --format='%h %s') in $root"

mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"

finish() {
  local p
  # processes the command left running inside the chroot (by their root)
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill "${p#/proc/}" 2>/dev/null || true
  done
  sleep 1
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  if [ "${FRESH_KEEP:-0}" = 1 ]; then unmount_all; else remove_root; fi
}
trap finish EXIT

set +e
chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  ${NODE_EXTRA_CA_CERTS:+NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS} \
  ${SSL_CERT_FILE:+SSL_CERT_FILE=$SSL_CERT_FILE} \
  /bin/bash -lc "cd /root/project || exit 1
$cmd"
rc=$?
echo "==> fresh-debian: exit status $rc"
exit $rc

#!/usr/bin/env bash
# Builds the Debian package of OTJ live into the given folder (default
# build-deb/): configured for /usr, no tests, then CPack. Prints the path of
# the .deb. Needs what scripts/install-deps.sh installs (the web client's
# vendor/ build step included) and dpkg-dev (dpkg-shlibdeps, for Depends:).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-deb}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
      -DBUILD_TESTING=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
(cd "$dir" && rm -f otj_*.deb && cpack -G DEB >/dev/null)
ls "$dir"/otj_*.deb

#!/usr/bin/env bash
# ops/package.sh [BUILD_DIR] -- build the Debian package: a release build
# with prefix /usr in BUILD_DIR (default build-pkg), then `cpack -G DEB`.
# Prints the path of the .deb.  Install it with
#   dpkg -i build-pkg/riskstream_*.deb && apt-get -f install
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build-pkg}"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX=/usr -DRS_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target riskstream
(cd "$BUILD" && cpack -G DEB >/dev/null)
ls "$BUILD"/riskstream_*.deb

#!/usr/bin/env bash
# ops/test.sh [ctest args...] -- the README's second command: install what is
# missing, build with tests, and run the whole suite (unit, integration with a
# real redis-server and the mock Kafka cluster, end-to-end with kcat).
# RS_SANITIZE=address,undefined ops/test.sh runs it under sanitizers.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/ops/deps.sh"
BUILD="$ROOT/build"
ARGS=(-DRS_BUILD_TESTS=ON)
if [ -n "${RS_SANITIZE:-}" ]; then
  BUILD="$ROOT/build-${RS_SANITIZE//,/-}"
  ARGS+=(-DRS_SANITIZE="$RS_SANITIZE" -DCMAKE_BUILD_TYPE=Debug)
fi
"$ROOT/ops/build.sh" "$BUILD" "${ARGS[@]}"
cd "$BUILD"
ctest --output-on-failure -j2 "$@"

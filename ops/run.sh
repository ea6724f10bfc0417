#!/usr/bin/env bash
# ops/run.sh [demo options] -- the README's first command: install what is
# missing, build, start a private redis-server and run `riskstream demo` on
# the embedded Kafka (librdkafka mock cluster).  Extra arguments go to the
# demo (see `build/riskstream demo --help`).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/ops/deps.sh"
# A fresh build/ is configured without the tests (the demo needs none); an
# existing one keeps its own choice (ops/test.sh's tests-on build stays one).
tests=(-DRS_BUILD_TESTS=OFF)
[ -f "$ROOT/build/CMakeCache.txt" ] && tests=()
"$ROOT/ops/build.sh" "$ROOT/build" "${tests[@]}"
RDIR="$(mktemp -d /tmp/riskstream-redis.XXXXXX)"
trap '"$ROOT/ops/redis.sh" stop "$RDIR"; rm -rf "$RDIR"' EXIT
URL="$("$ROOT/ops/redis.sh" start "$RDIR")"
echo "redis: $URL (private, removed at exit)"
"$ROOT/build/riskstream" demo --redis "$URL" "$@"

#!/usr/bin/env bash
# ops/bench.sh [bench options] -- build, start a private redis-server and run
# `riskstream bench` (end-to-end throughput and latency on the embedded
# stack).  Prints a Markdown table with the machine's description.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/ops/deps.sh" >/dev/null
"$ROOT/ops/build.sh" "$ROOT/build" -DRS_BUILD_TESTS=OFF
RDIR="$(mktemp -d /tmp/riskstream-bench.XXXXXX)"
trap '"$ROOT/ops/redis.sh" stop "$RDIR"; rm -rf "$RDIR"' EXIT
URL="$("$ROOT/ops/redis.sh" start "$RDIR")"
"$ROOT/build/riskstream" bench --redis "$URL" "$@"

#!/usr/bin/env bash
# ops/bench.sh [bench options] -- build, start a private redis-server and run
# `riskstream bench` (end-to-end throughput and latency on the embedded
# stack).  Prints a Markdown table with the machine's description.
#
# ops/bench.sh e2e [--events N] [--rounds N] [--rate N] [--peer] [...] --
# build and run ops/bench/e2e.py: `riskstream serve` against a broker in its
# own process (`riskstream broker`, 32 partitions, events pre-produced), a
# fresh redis-server per system, the service's own CPU from /proc, first
# score after start, latency at a fixed rate and at 50 % of max, median of
# interleaved rounds; --peer adds the Python peer (../shared/peer) on the
# same events and the ratio to it (installs its optional Debian packages:
# ops/deps.sh --bench).  `ops/bench.sh e2e --help` lists the options.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${1:-}" = "e2e" ]; then
  shift
  deps=()
  for a in "$@"; do [ "$a" = "--peer" ] && deps=(--bench); done
  "$ROOT/ops/deps.sh" "${deps[@]}" >/dev/null
  "$ROOT/ops/build.sh" "$ROOT/build" >/dev/null
  exec python3 "$ROOT/ops/bench/e2e.py" "$@"
fi
case "${1:-}" in
  -h|--help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    echo "riskstream bench options (after the build): riskstream bench --help"
    exit 0 ;;
esac
"$ROOT/ops/deps.sh" >/dev/null
# the build dir keeps its own settings (tests stay on when they were on)
"$ROOT/ops/build.sh" "$ROOT/build"
RDIR="$(mktemp -d /tmp/riskstream-bench.XXXXXX)"
trap '"$ROOT/ops/redis.sh" stop "$RDIR"; rm -rf "$RDIR"' EXIT
URL="$("$ROOT/ops/redis.sh" start "$RDIR")"
"$ROOT/build/riskstream" bench --redis "$URL" "$@"

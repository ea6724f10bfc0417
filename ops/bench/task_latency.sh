#!/usr/bin/env bash
# task_latency.sh -- latency the scoring consumer's per-task merge adds per
# event (topics.task_merge, topics.max_task_idle; not a test).
#
# A live, paced card stream with labels (`riskstream gen --brokers --rate
# R`) into a fresh `riskstream broker` (8 partitions) per run, scored by 1
# or 2 `serve` instances of one group, the counterparty stage off (so only
# the task merge is measured), with: the merge off (fetch order, as before
# it), on with max_task_idle 0 (the default), and on with each wait of
# TASK_IDLES.  Per run: the end-to-end latency (produce -> score produced,
# `serve`'s p50/p99; the worst instance for 2), and the merge's summary
# (messages handed out below their task's time frontier = "reordered": a
# label that arrived after the merge had passed the labels partition as
# idle; the most messages waiting at once).  kafka.fetch.wait.max.ms=5 for
# every consumer (the mock broker holds each fetch that long even when data
# is there).
#
#   ops/bench/task_latency.sh [BINARY] [RATE] [EVENTS]   (defaults: build/riskstream 2000 20000)
#   env TASK_IDLES="100ms 2s" (default 100ms); INSTANCES="1 2" (default 1)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${1:-$ROOT/build/riskstream}"; RATE="${2:-2000}"; NEV="${3:-20000}"; TASK_IDLES="${TASK_IDLES:-100ms}"
INSTANCES="${INSTANCES:-1}"
TMP_PREFIX=rs-tasklat
GEN_EXTRA=(--duration 60d --label-delay 1d --negative-labels)
lat_summary() { # label n dir e2e_p50 e2e_p99: the merge's reorders (sum) and most held (max)
  local label="$1" n="$2" d="$3" reo=0 held=0
  for i in $(seq 1 "$n"); do
    local c; c="$(grep 'mod=ingest msg="task merge:' "$d/s$i.log" | tail -1 || true)"
    if [ -n "$c" ]; then
      reo=$(( reo + $(sed -n 's/.*(\([0-9]*\) reordered).*/\1/p' <<<"$c") ))
      local h; h=$(sed -n 's/.*at most \([0-9]*\) waiting.*/\1/p' <<<"$c")
      [ "$h" -gt "$held" ] && held=$h
    else
      reo="-"; held="-"
    fi
  done
  printf "| %s | %d | %s / %s | %s | %s |\n" "$label" "$n" "$4" "$5" "$reo" "$held"
}
# shellcheck source=ops/bench/lat_lib.sh
source "$ROOT/ops/bench/lat_lib.sh"

echo "task_latency -- $(nproc) cores, $(uname -sr); $NEV events at $RATE/s, 8 partitions, cpstage off"
echo "command: TASK_IDLES=\"$TASK_IDLES\" INSTANCES=\"$INSTANCES\" ops/bench/task_latency.sh $BIN $RATE $NEV"
echo
echo "| run | instances | end-to-end p50 / p99 ms | handed out of time order | most waiting at once |"
echo "|---|---:|---:|---:|---:|"
for n in $INSTANCES; do
  lat_run merge-off "$n" --set cpstage.enabled=false --set topics.task_merge=false
  lat_run idle0 "$n" --set cpstage.enabled=false
  for w in $TASK_IDLES; do lat_run "idle$w" "$n" --set cpstage.enabled=false --set topics.max_task_idle="$w"; done
done

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
T="$(mktemp -d /tmp/rs-tasklat.XXXXXX)"
export RISKSTREAM_STATE_DIR="$T/state"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$ROOT/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
URL="$("$ROOT/ops/redis.sh" start "$T/redis")"
cat >"$T/rs.yaml" <<'EOF'
model:
  kind: lr
  label_delay: 3d
  log_segment: 4194304
service:
  stats_interval: 0ms
kafka:
  fetch.wait.max.ms: 5
  consumer.session.timeout.ms: 6000
  consumer.heartbeat.interval.ms: 500
EOF

run() { # $1 label $2 instances [serve args...]
  local label="$1" n="$2"; shift 2
  local d="$T/run"; rm -rf "$d"; mkdir -p "$d"
  "$BIN" broker --set topics.partitions=8 >"$d/broker.out" 2>"$d/broker.log" &
  local bp=$!; PIDS+=($bp)
  local boot=""
  for _ in $(seq 1 100); do
    boot="$(sed -n 's/^kafka bootstrap: //p' "$d/broker.out" 2>/dev/null || true)"; [ -n "$boot" ] && break; sleep 0.1
  done
  local sp=()
  for i in $(seq 1 "$n"); do
    "$BIN" serve --config "$T/rs.yaml" --brokers "$boot" --redis "$URL" --group "g-$label" \
      --set redis.key_prefix="$label-$i:" "$@" >"$d/s$i.out" 2>"$d/s$i.log" &
    sp+=($!); PIDS+=($!)
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 300); do grep -q "assigned [1-9]" "$d/s$i.log" && break; sleep 0.1; done
  done
  sleep 2 # the last rebalance settles
  "$BIN" gen --seed 9 --entities 5000 --counterparties 300 --events "$NEV" --duration 60d --label-delay 1d --negative-labels --brokers "$boot" \
    --rate "$RATE" 2>"$d/gen.log"
  local want=$NEV
  for _ in $(seq 1 600); do
    local got=0
    for i in $(seq 1 "$n"); do
      got=$(( got + $(redis-cli -s "${URL#unix://}" --scan --pattern "$label-$i:score:*" | wc -l) ))
    done
    [ "$got" -ge "$want" ] && break; sleep 0.2
  done
  for p in "${sp[@]}"; do kill -TERM "$p"; wait "$p" || true; done
  kill "$bp"; wait "$bp" 2>/dev/null || true
  local e50=0 e99=0 reo=0 held=0
  for i in $(seq 1 "$n"); do
    local l; l="$(grep '^serve:' "$d/s$i.out" || true)" # none: it did not stop (killed)
    local a b; a=$(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' <<<"$l"); b=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$l")
    e50=$(awk -v x="$e50" -v y="$a" 'BEGIN { print (y > x) ? y : x }')
    e99=$(awk -v x="$e99" -v y="$b" 'BEGIN { print (y > x) ? y : x }')
    local c; c="$(grep 'mod=ingest msg="task merge:' "$d/s$i.log" | tail -1 || true)"
    if [ -n "$c" ]; then
      reo=$(( reo + $(sed -n 's/.*(\([0-9]*\) reordered).*/\1/p' <<<"$c") ))
      local h; h=$(sed -n 's/.*at most \([0-9]*\) waiting.*/\1/p' <<<"$c")
      [ "$h" -gt "$held" ] && held=$h
    else
      reo="-"; held="-"
    fi
  done
  printf "| %s | %d | %s / %s | %s | %s |\n" "$label" "$n" "$e50" "$e99" "$reo" "$held"
}

echo "task_latency -- $(nproc) cores, $(uname -sr); $NEV events at $RATE/s, 8 partitions, cpstage off"
echo "command: TASK_IDLES=\"$TASK_IDLES\" INSTANCES=\"$INSTANCES\" ops/bench/task_latency.sh $BIN $RATE $NEV"
echo
echo "| run | instances | end-to-end p50 / p99 ms | handed out of time order | most waiting at once |"
echo "|---|---:|---:|---:|---:|"
for n in $INSTANCES; do
  run merge-off "$n" --set cpstage.enabled=false --set topics.task_merge=false
  run idle0 "$n" --set cpstage.enabled=false
  for w in $TASK_IDLES; do run "idle$w" "$n" --set cpstage.enabled=false --set topics.max_task_idle="$w"; done
done

#!/usr/bin/env bash
# cp_latency.sh -- latency the counterparty stage adds per event (not a test).
#
# A live, paced card stream (`riskstream gen --brokers --rate R`) into a
# fresh `riskstream broker` (8 partitions) per run, scored by 1 or 2
# `serve` instances of one group, with the stage off (each instance from its
# own partitions), on (default cpstage.idle_wait 0) and on with idle_wait
# 100ms.  Per run: the end-to-end latency (produce -> score produced,
# `serve`'s p50/p99; the worst instance for 2), the time events waited for
# their counterparty features (riskstream_cpstage_wait: p50/p99 from the
# stage's final log line) and the messages merged out of the canonical
# order.  kafka.fetch.wait.max.ms=5 for every consumer: the mock broker
# holds each fetch that long even when data is there (a real broker
# answers at once), the default 500 ms would be measured instead.
#
#   ops/bench/cp_latency.sh [BINARY] [RATE] [EVENTS]   (defaults: build/riskstream 2000 20000)
#   env IDLES="100ms 2s": the idle_wait values of the "on" runs beside 0 (default 100ms);
#       INSTANCES="1 2" (default): the group sizes
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${1:-$ROOT/build/riskstream}"; RATE="${2:-2000}"; NEV="${3:-20000}"; IDLES="${IDLES:-100ms}"
INSTANCES="${INSTANCES:-1 2}"
T="$(mktemp -d /tmp/rs-cplat.XXXXXX)"
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
  "$BIN" gen --seed 9 --entities 5000 --counterparties 300 --events "$NEV" --brokers "$boot" \
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
  local e50=0 e99=0 w50="-" w99="-" reo="-"
  for i in $(seq 1 "$n"); do
    local l; l="$(grep '^serve:' "$d/s$i.out" || true)" # none: it did not stop (killed)
    local a b; a=$(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' <<<"$l"); b=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$l")
    e50=$(awk -v x="$e50" -v y="$a" 'BEGIN { print (y > x) ? y : x }')
    e99=$(awk -v x="$e99" -v y="$b" 'BEGIN { print (y > x) ? y : x }')
    local c; c="$(grep 'mod=cpstage msg="merged' "$d/s$i.log" | tail -1 || true)"
    if [ -n "$c" ]; then
      w50=$(sed -n 's/.*wait p50 \([0-9]*\) us.*/\1/p' <<<"$c")
      w99=$(sed -n 's/.*p99 \([0-9]*\) us;.*/\1/p' <<<"$c")
      reo=$(sed -n 's/.*(\([0-9]*\) reordered.*/\1/p' <<<"$c")
    fi
  done
  printf "| %s | %d | %s / %s | %s / %s | %s |\n" "$label" "$n" "$e50" "$e99" "$w50" "$w99" "$reo"
}

echo "cp_latency -- $(nproc) cores, $(uname -sr); $NEV events at $RATE/s, 8 partitions"
echo "command: IDLES=\"$IDLES\" INSTANCES=\"$INSTANCES\" ops/bench/cp_latency.sh $BIN $RATE $NEV"
echo
echo "| run | instances | end-to-end p50 / p99 ms | counterparty wait p50 / p99 us (last instance) | reordered |"
echo "|---|---:|---:|---:|---:|"
for n in $INSTANCES; do
  run off "$n" --set cpstage.enabled=false
  run on "$n"
  for w in $IDLES; do run "idle$w" "$n" --set cpstage.idle_wait="$w"; done
done

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
TMP_PREFIX=rs-cplat
GEN_EXTRA=()
lat_summary() { # label n dir e2e_p50 e2e_p99: the stage's wait and reorders (last instance)
  local label="$1" n="$2" d="$3" w50="-" w99="-" reo="-"
  for i in $(seq 1 "$n"); do
    local c; c="$(grep 'mod=cpstage msg="merged' "$d/s$i.log" | tail -1 || true)"
    if [ -n "$c" ]; then
      w50=$(sed -n 's/.*wait p50 \([0-9]*\) us.*/\1/p' <<<"$c")
      w99=$(sed -n 's/.*p99 \([0-9]*\) us;.*/\1/p' <<<"$c")
      reo=$(sed -n 's/.*(\([0-9]*\) reordered.*/\1/p' <<<"$c")
    fi
  done
  printf "| %s | %d | %s / %s | %s / %s | %s |\n" "$label" "$n" "$4" "$5" "$w50" "$w99" "$reo"
}
# shellcheck source=ops/bench/lat_lib.sh
source "$ROOT/ops/bench/lat_lib.sh"

echo "cp_latency -- $(nproc) cores, $(uname -sr); $NEV events at $RATE/s, 8 partitions"
echo "command: IDLES=\"$IDLES\" INSTANCES=\"$INSTANCES\" ops/bench/cp_latency.sh $BIN $RATE $NEV"
echo
echo "| run | instances | end-to-end p50 / p99 ms | counterparty wait p50 / p99 us (last instance) | reordered |"
echo "|---|---:|---:|---:|---:|"
for n in $INSTANCES; do
  lat_run off "$n" --set cpstage.enabled=false
  lat_run on "$n"
  for w in $IDLES; do lat_run "idle$w" "$n" --set cpstage.idle_wait="$w"; done
done

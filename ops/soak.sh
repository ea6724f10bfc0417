#!/usr/bin/env bash
# ops/soak.sh [RISKSTREAM_BINARY] -- soak test: `riskstream serve` for
# DURATION at half its maximum rate, printing every INTERVAL seconds its RSS
# (/proc/PID/status) and the p99 latencies of that interval (from the
# /metrics histograms, bucket deltas interpolated like Prometheus'
# histogram_quantile), then the first and last RSS and the RSS slope.
#
# Topology: a private redis-server (ops/redis.sh), `riskstream broker`, the
# card generator producing with `riskstream gen --brokers --rate`, serve
# with checkpoints (service.checkpoint_path, default interval) and
# /metrics.  The maximum rate is measured first on a separate, identical
# stack (CAL_EVENTS events produced at once, the scored rate between 10 %
# and 90 % of them), unless RATE is given.  Redis keys get a short TTL
# (SOAK_TTL) so Redis memory stays bounded over a long run.  Labels come
# LABEL_DELAY (event time) after their events and the label horizon is
# LABEL_HORIZON, so at these rates labels and horizon negatives reach the
# model while their events are still pending (with the defaults, 3 d, the
# pending buffer drops every event long before its label) and the trainer
# publishes versions during the soak.
#
# env: DURATION=30m (s|m|h or seconds)  INTERVAL=30 (seconds per row)
#      RATE=<measured max / 2>          CAL_EVENTS=40000
#      PARTITIONS=8   SEED=42   SOAK_TTL=2m   SERVE_ARGS="" (word-split)
#      LABEL_DELAY=2h (gen --label-delay)  LABEL_HORIZON=3h (model.label_horizon)
#      KEEP=1 keeps the work directory (logs, samples.tsv)
# exit: 0 (a report, no thresholds), 1 if serve or the feeder died or an
#       interval scored nothing while the feeder ran (a stall; the work
#       directory is then kept).
# Default binary: build/riskstream (ops/build.sh builds it).
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-$ROOT/build/riskstream}"
[ -x "$BIN" ] || { echo "soak: $BIN not found (build with ops/build.sh, or pass the binary)" >&2; exit 2; }
dur_s() { case "$1" in *h) echo $(( ${1%h} * 3600 )) ;; *m) echo $(( ${1%m} * 60 )) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac; }
DURATION_S="$(dur_s "${DURATION:-30m}")"
INTERVAL="${INTERVAL:-30}"; CAL_EVENTS="${CAL_EVENTS:-40000}"; PARTITIONS="${PARTITIONS:-8}"
SEED="${SEED:-42}"; SOAK_TTL="${SOAK_TTL:-2m}"
LABEL_DELAY="${LABEL_DELAY:-2h}"; LABEL_HORIZON="${LABEL_HORIZON:-3h}"
read -r -a EXTRA <<<"${SERVE_ARGS:-}"
for v in DURATION_S INTERVAL CAL_EVENTS PARTITIONS SEED; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "soak: $v must be a number, not '${!v}'" >&2; exit 2; }
done
for tool in redis-server redis-cli curl awk; do
  command -v "$tool" >/dev/null || { echo "soak: $tool not installed (ops/deps.sh installs it)"; exit 1; }
done

T="$(mktemp -d /tmp/rs-soak.XXXXXX)"
# Everything the service keeps (checkpoint, model store, learning logs,
# label delays) goes under $T, never into the machine's default state dir.
export RISKSTREAM_STATE_DIR="$T/state"
PIDS=()
stack_down() { # newest first: feeder, serve (graceful), then the broker
  local i
  for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
    kill "${PIDS[$i]}" 2>/dev/null || true; wait "${PIDS[$i]}" 2>/dev/null || true
  done
  PIDS=()
  "$ROOT/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
}
cleanup() {
  stack_down
  if [ "${KEEP:-0}" = 1 ]; then echo "soak: work directory kept: $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
die() { echo "soak: $*" >&2; tail -n 5 "$T"/serve*.log 2>/dev/null >&2 || true; exit 1; }
now_s() { awk -v t="$(date +%s%3N)" 'BEGIN { printf "%.3f", t / 1000 }'; }

# stack_up NAME: redis, broker, serve (http); sets URL BOOT API SERVE.
stack_up() {
  local name="$1"
  rm -rf "$T/redis"
  URL="$("$ROOT/ops/redis.sh" start "$T/redis")"
  "$BIN" broker --set topics.partitions="$PARTITIONS" >"$T/broker-$name.out" 2>"$T/broker-$name.log" &
  PIDS+=($!)
  BOOT=""
  for _ in $(seq 1 100); do
    BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker-$name.out" 2>/dev/null || true)"; [ -n "$BOOT" ] && break; sleep 0.1
  done
  [ -n "$BOOT" ] || die "broker did not start"
  "$BIN" serve --brokers "$BOOT" --redis "$URL" --group soak --set http.enabled=true --set http.port=0 \
    --set redis.ttl="$SOAK_TTL" --set service.checkpoint_path="$T/state-$name.ckpt" \
    --set service.stats_interval=60s --set model.label_horizon="$LABEL_HORIZON" \
    "${EXTRA[@]}" >"$T/serve-$name.out" 2>"$T/serve-$name.log" &
  SERVE=$!
  PIDS+=("$SERVE")
  API=""
  for _ in $(seq 1 300); do
    API="$(sed -n 's/^http: //p' "$T/serve-$name.out" 2>/dev/null | head -1 || true)"
    [ -n "$API" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/readyz" || true)" = 200 ] && return 0
    kill -0 "$SERVE" 2>/dev/null || die "serve exited at start"
    sleep 0.1
  done
  die "serve not ready within 30 s"
}
scrape() { curl -sf --max-time 10 "$API/metrics" >"$1" 2>/dev/null || : >"$1"; }
metric() { awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF; f = 1 } END { if (f) printf "%.0f", s }' "$1"; }
# p99 in ms of histogram $3 between scrapes $1 (before) and $2 (after).
p99() {
  awk -v h="$3_bucket{" 'FNR == 1 { file++ }
    index($1, h) == 1 { le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
                        if (file == 1) a[le] = $NF; else { b[le] = $NF; n++; les[n] = le } }
    END { tot = b["+Inf"] - a["+Inf"]; if (tot <= 0) { print "-"; exit }
          want = 0.99 * tot; lo = 0; prev = 0
          for (i = 1; i <= n; i++) { le = les[i]; c = b[le] - a[le]
            if (c >= want) { if (le == "+Inf") { printf ">%g", lo * 1000; exit }
                             printf "%.1f", (lo + (le - lo) * (want - prev) / (c - prev > 0 ? c - prev : 1)) * 1000; exit }
            lo = le; prev = c } print "-" }' "$1" "$2"
}

MACHINE="$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)"
echo "soak: $MACHINE; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Calibration: the maximum scored rate on this machine and topology.
if [ -z "${RATE:-}" ]; then
  stack_up cal
  "$BIN" gen --brokers "$BOOT" --seed "$SEED" --entities 50000 --duration 3650d \
    --events "$CAL_EVENTS" --rate 0 >"$T/gen-cal.log" 2>&1 &
  GEN=$!; PIDS+=("$GEN")
  t10=""; s10=0; t90=""; s90=0
  for _ in $(seq 1 1200); do
    sleep 0.5
    scrape "$T/cal.txt"; s=$(metric "$T/cal.txt" riskstream_events_scored_total); s=${s:-0}
    if [ -z "$t10" ] && [ "$s" -ge $(( CAL_EVENTS / 10 )) ]; then t10=$(now_s); s10=$s; fi
    if [ "$s" -ge $(( CAL_EVENTS * 9 / 10 )) ]; then t90=$(now_s); s90=$s; break; fi
    kill -0 "$SERVE" 2>/dev/null || die "serve died during the calibration"
  done
  [ -n "$t90" ] && [ -n "$t10" ] || die "calibration: $CAL_EVENTS events not scored within 10 min"
  MAXRATE=$(awk -v a="$s10" -v b="$s90" -v ta="$t10" -v tb="$t90" 'BEGIN { printf "%.0f", (b - a) / (tb - ta) }')
  RATE=$(( MAXRATE / 2 ))
  [ "$RATE" -ge 1 ] || RATE=1
  echo "soak: calibration: max $MAXRATE events/s ($CAL_EVENTS events, all produced at once); soak rate $RATE events/s"
  stack_down
else
  echo "soak: rate $RATE events/s (given)"
fi

# 2. The soak.
stack_up soak
NEV=$(( RATE * (DURATION_S + INTERVAL) + 1000 ))   # the feeder outlasts the soak
"$BIN" gen --brokers "$BOOT" --seed "$SEED" --entities 50000 --duration 3650d \
  --label-delay "$LABEL_DELAY" --events "$NEV" --rate "$RATE" >"$T/gen-soak.log" 2>&1 &
GEN=$!; PIDS+=("$GEN")
echo "soak: ${DURATION_S}s at $RATE events/s, a row every ${INTERVAL}s; serve pid $SERVE"
echo
printf '| %7s | %8s | %8s | %10s | %7s | %10s | %11s | %8s | %11s | %9s | %s\n' \
  "t (s)" "RSS MB" "HWM MB" "scored" "ev/s" "p99 e2e ms" "p99 proc ms" "lag" "redis buf B" "updates" "model"
echo "|---------|----------|----------|------------|---------|------------|-------------|----------|-------------|-----------|------"
: >"$T/samples.tsv"
start=$(now_s); STALLS=0
scrape "$T/m.prev"; prev_scored=0; prev_t=$start
while :; do
  sleep "$INTERVAL"
  kill -0 "$SERVE" 2>/dev/null || die "serve died during the soak"
  kill -0 "$GEN" 2>/dev/null || die "the feeder (gen --brokers) exited early: $(tail -1 "$T/gen-soak.log")"
  t=$(now_s)
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVE/status")
  hwm=$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVE/status")
  scrape "$T/m.cur"
  scored=$(metric "$T/m.cur" riskstream_events_scored_total); scored=${scored:-0}
  rate=$(awk -v a="$prev_scored" -v b="$scored" -v ta="$prev_t" -v tb="$t" 'BEGIN { printf "%.0f", (b - a) / (tb - ta) }')
  lag=$(awk '$1 ~ /^riskstream_consumer_lag\{topic="events"/ { s += $NF } END { printf "%.0f", s }' "$T/m.cur")
  buf=$(metric "$T/m.cur" riskstream_redis_buffer_bytes); buf=${buf:--}
  model=$(sed -n 's/^riskstream_model_info{version="\([^"]*\)".*/\1/p' "$T/m.cur" | head -1)
  pe=$(p99 "$T/m.prev" "$T/m.cur" riskstream_e2e_latency_seconds)
  pp=$(p99 "$T/m.prev" "$T/m.cur" riskstream_processing_latency_seconds)
  el=$(awk -v a="$start" -v b="$t" 'BEGIN { printf "%.0f", b - a }')
  upd=$(metric "$T/m.cur" riskstream_model_updates_total)
  printf '| %7s | %8s | %8s | %10s | %7s | %10s | %11s | %8s | %11s | %9s | %s\n' \
    "$el" "$rss" "$hwm" "$scored" "$rate" "$pe" "$pp" "$lag" "$buf" "${upd:--}" "${model:--}"
  printf '%s\t%s\n' "$el" "$rss" >>"$T/samples.tsv"
  if [ "$scored" -le "$prev_scored" ]; then   # fed but nothing scored: a stall
    STALLS=$((STALLS + 1))
    echo "soak: STALL: nothing scored in the last ${INTERVAL}s while the feeder runs (logs kept in $T)"
    grep -E 'level=(warn|error)|assigned|revoked' "$T/serve-soak.log" | tail -n 5 | cut -c1-240 | sed 's/^/soak:   /'
    KEEP=1
  fi
  mv "$T/m.cur" "$T/m.prev"; prev_scored=$scored; prev_t=$t
  [ "$el" -ge "$DURATION_S" ] && break
done
echo
# RSS trend: least-squares slope over all rows and without the first 20 %
# (warm-up: pools, caches and the Kafka clients fill up first).
awk -F'\t' '{ t[NR] = $1; r[NR] = $2 }
  function slope(from,   i, n, st, sr, stt, str) { n = 0; st = sr = stt = str = 0
    for (i = from; i <= NR; i++) { n++; st += t[i]; sr += r[i]; stt += t[i] * t[i]; str += t[i] * r[i] }
    if (n < 2 || n * stt - st * st == 0) return "n/a"
    return sprintf("%+.2f MB/h", (n * str - st * sr) / (n * stt - st * st) * 3600) }
  END { if (!NR) { print "soak: no sample"; exit }
        w = int(NR / 5) + 1
        printf "soak: RSS first %.1f MB (t=%ss), last %.1f MB (t=%ss); slope %s over all %d rows, %s from t=%ss on\n",
               r[1], t[1], r[NR], t[NR], slope(1), NR, slope(w), t[w] }' "$T/samples.tsv"
echo "soak: command: DURATION=${DURATION:-30m} INTERVAL=$INTERVAL RATE=$RATE ops/soak.sh $BIN"
[ "$STALLS" -eq 0 ] || { echo "soak: $STALLS stalled interval(s): see $T"; exit 1; }

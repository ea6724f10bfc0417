# lat_lib.sh -- shared by the paced latency benches (cp_latency.sh,
# task_latency.sh; sourced, not run): a temp dir with a private Redis and a
# serve config (model lr, label_delay 3d, kafka.fetch.wait.max.ms=5: the
# mock broker holds each fetch that long even when data is there), and
# lat_run, one run of a live paced stream into a fresh `riskstream broker`
# (8 partitions) scored by N `serve` instances of one group.
#
# The sourcing script sets ROOT, BIN, RATE, NEV and TMP_PREFIX before
# `source`, and defines lat_summary LABEL N DIR E2E_P50 E2E_P99 (prints its
# table row from the instances' logs DIR/sN.out, DIR/sN.log) and GEN_EXTRA
# (an array of extra `riskstream gen` arguments, may be empty).
#   lat_run LABEL N [serve args...]
set -euo pipefail
T="$(mktemp -d "/tmp/$TMP_PREFIX.XXXXXX")"
export RISKSTREAM_STATE_DIR="$T/state"
PIDS=()
lat_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$ROOT/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap lat_cleanup EXIT
URL="$("$ROOT/ops/redis.sh" start "$T/redis")"
cat >"$T/rs.yaml" <<'YAML'
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
YAML

lat_run() { # $1 label $2 instances [serve args...]
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
  "$BIN" gen --seed 9 --entities 5000 --counterparties 300 --events "$NEV" ${GEN_EXTRA[@]+"${GEN_EXTRA[@]}"} \
    --brokers "$boot" --rate "$RATE" 2>"$d/gen.log"
  for _ in $(seq 1 600); do
    local got=0
    for i in $(seq 1 "$n"); do
      got=$(( got + $(redis-cli -s "${URL#unix://}" --scan --pattern "$label-$i:score:*" | wc -l) ))
    done
    [ "$got" -ge "$NEV" ] && break; sleep 0.2
  done
  for p in "${sp[@]}"; do kill -TERM "$p"; wait "$p" || true; done
  kill "$bp"; wait "$bp" 2>/dev/null || true
  local e50=0 e99=0
  for i in $(seq 1 "$n"); do # the worst instance's end-to-end p50 / p99
    local l; l="$(grep '^serve:' "$d/s$i.out" || true)" # none: it did not stop (killed)
    local a b; a=$(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' <<<"$l"); b=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$l")
    e50=$(awk -v x="$e50" -v y="$a" 'BEGIN { print (y > x) ? y : x }')
    e99=$(awk -v x="$e99" -v y="$b" 'BEGIN { print (y > x) ? y : x }')
  done
  lat_summary "$label" "$n" "$d" "$e50" "$e99"
}

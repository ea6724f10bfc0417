#!/usr/bin/env bash
# Redis outage: scoring goes on while Redis is down, nothing is lost.
#
# A private redis-server (ops/redis.sh), `riskstream broker`, `riskstream
# serve` with /metrics, `riskstream gen --brokers` feeding RATE events/s and
# a kcat reader saving the scores topic continuously.  After PRE seconds
# Redis goes away for OUTAGE seconds (MODE=down: SHUTDOWN SAVE, so the
# records written before survive the restart, which loads the dump;
# MODE=freeze: SIGSTOP/SIGCONT, a server that accepts nothing and answers
# nothing), then comes back on the same socket.  Checks:
#   - scores keep arriving on Kafka during the outage: the scores topic
#     grows in every 10 s slice of it (the async writer buffers them);
#   - /metrics has riskstream_redis_buffer_bytes, > 0 during the outage and
#     0 again after it;
#   - after it every event is in Redis (rs:score:<id>) and on the topic, a
#     sample of Redis records equals the topic records byte for byte;
#   - serve never exits, is ready (/readyz 200) after the outage, logs the
#     outage (1 to 10 warn/error lines about Redis: not a line per retry),
#     and exits 0 on SIGTERM.
#
# usage: redis_outage.sh RISKSTREAM_BINARY SOURCE_DIR
# env:   OUTAGE=30  seconds without Redis      RATE=400  events/s fed
#        PRE=15     seconds before the outage   POST=15   seconds fed after
#        MODE=down | freeze                     PARTITIONS=4
#        SEED=7     generator seed              SAMPLE=300 records compared
#        SERVE_ARGS="" extra serve arguments (word-split), e.g.
#                   "--set model.kind=lr".  (A redis.buffer_bytes smaller
#                   than OUTAGE x RATE x ~1.3 KB fills up and pauses
#                   consumption by design: the slice check then fails.)
#        KEEP=1     keep the work directory
set -euo pipefail
export LC_ALL=C
BIN="${1:?usage: redis_outage.sh RISKSTREAM_BINARY SOURCE_DIR}"
SRC="${2:?usage: redis_outage.sh RISKSTREAM_BINARY SOURCE_DIR}"
OUTAGE="${OUTAGE:-30}"; RATE="${RATE:-400}"; PRE="${PRE:-15}"; POST="${POST:-15}"
MODE="${MODE:-down}"; PARTITIONS="${PARTITIONS:-4}"; SEED="${SEED:-7}"; SAMPLE="${SAMPLE:-300}"
read -r -a EXTRA <<<"${SERVE_ARGS:-}"
case "$MODE" in down|freeze) ;; *) echo "redis_outage: MODE must be down or freeze" >&2; exit 2 ;; esac
for v in OUTAGE RATE PRE POST PARTITIONS SEED SAMPLE; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "redis_outage: $v must be a number, not '${!v}'" >&2; exit 2; }
done
for tool in kcat redis-cli redis-server curl awk shuf; do
  command -v "$tool" >/dev/null || { echo "redis_outage: $tool not installed (ops/deps.sh installs it)"; exit 1; }
done
N=$(( RATE * (PRE + OUTAGE + POST) ))

T="$(mktemp -d /tmp/rs-outage.XXXXXX)"
# The service's state (learning logs, default checkpoint, model store,
# label delays) goes under $T, never into the machine's default state dir.
export RISKSTREAM_STATE_DIR="$T/state"
SERVE=""; BROKER=""; KCAT=""; GEN=""
cleanup() {
  [ -f "$T/redis/redis.pid" ] && kill -CONT "$(cat "$T/redis/redis.pid")" 2>/dev/null || true
  for p in "$GEN" "$SERVE" "$KCAT" "$BROKER"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  "$SRC/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "redis_outage: work directory kept: $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
ms() { date +%s%3N; }
T0=$(ms)
log() { echo "redis_outage [$(awk -v a="$T0" -v b="$(ms)" 'BEGIN{printf "%6.1fs", (b-a)/1000}')] $*"; }
fail() {
  echo "redis_outage FAIL: $*"
  echo "--- serve log: warn/error lines (first 5), then the tail"
  grep -E 'level=(warn|error)' "$T/serve.log" 2>/dev/null | head -5 || true
  tail -n 8 "$T/serve.log" 2>/dev/null || true
  exit 1
}
metric() { # $1 name: sum of the samples of that metric in $T/metrics.txt ("" if absent)
  awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF; f = 1 } END { if (f) printf "%.0f", s }' "$T/metrics.txt"
}
scrape() { curl -sf --max-time 5 "$API/metrics" >"$T/metrics.txt" 2>/dev/null || : >"$T/metrics.txt"; }
topic_count() { grep -c . "$T/scores.jsonl" 2>/dev/null || true; }
readyz() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$API/readyz" 2>/dev/null || true; }

log "MODE=$MODE OUTAGE=${OUTAGE}s RATE=$RATE/s PRE=${PRE}s POST=${POST}s: $N events"
URL="$("$SRC/ops/redis.sh" start "$T/redis")"
SOCK="${URL#unix://}"
"$BIN" gen --seed "$SEED" --entities 10000 --events "$N" --out "$T/ev.jsonl" >"$T/gen0.log" 2>&1 ||
  fail "gen: $(tail -1 "$T/gen0.log")"
sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$T/ev.jsonl" | sort >"$T/want"

"$BIN" broker --set topics.partitions="$PARTITIONS" >"$T/broker.out" 2>"$T/broker.log" &
BROKER=$!
BOOT=""
for _ in $(seq 1 100); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker.out" 2>/dev/null || true)"; [ -n "$BOOT" ] && break; sleep 0.1
done
[ -n "$BOOT" ] || fail "broker printed no bootstrap address"
kcat -C -b "$BOOT" -t scores -o beginning -u -q -f '%s\n' >"$T/scores.jsonl" 2>"$T/kcat.log" &
KCAT=$!

"$BIN" serve --brokers "$BOOT" --redis "$URL" --group outage --set http.enabled=true \
  --set http.port=0 --set service.stats_interval=5s --set kafka.consumer.session.timeout.ms=6000 \
  --set redis.record_format=json \
  "${EXTRA[@]}" >"$T/serve.out" 2>"$T/serve.log" &
SERVE=$!
API=""
for _ in $(seq 1 300); do
  API="$(sed -n 's/^http: //p' "$T/serve.out" 2>/dev/null | head -1 || true)"
  [ -n "$API" ] && [ "$(readyz)" = 200 ] && break
  kill -0 "$SERVE" 2>/dev/null || fail "serve exited at start"
  sleep 0.1
done
[ "$(readyz)" = 200 ] || fail "serve not ready within 30 s (http: '$API')"

"$BIN" gen --brokers "$BOOT" --seed "$SEED" --entities 10000 --events "$N" --rate "$RATE" \
  >"$T/gen.log" 2>&1 &
GEN=$!
sleep "$PRE"
c=$(topic_count)
[ "$c" -gt 0 ] || fail "no score on the topic after ${PRE}s"
scrape
HAVE_BUF=1
[ -n "$(metric riskstream_redis_buffer_bytes)" ] || {
  HAVE_BUF=0; log "WARNING: /metrics has no riskstream_redis_buffer_bytes (async Redis writer not integrated?)"; }
log "before the outage: $c scores on the topic, $(redis-cli -s "$SOCK" DBSIZE) Redis keys"

# The outage.  Samples every second: topic records, scored, buffer bytes.
RPID="$(cat "$T/redis/redis.pid")"
LOGSTART=$(wc -l <"$T/serve.log")
if [ "$MODE" = down ]; then
  redis-cli -s "$SOCK" SHUTDOWN SAVE >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do kill -0 "$RPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$RPID" 2>/dev/null && fail "redis-server did not shut down"
else
  kill -STOP "$RPID"
fi
log "Redis $MODE"
: >"$T/samples"
maxbuf=0; ready_codes=""
for s in $(seq 1 "$OUTAGE"); do
  sleep 1
  kill -0 "$SERVE" 2>/dev/null || { rc=0; wait "$SERVE" || rc=$?; SERVE=""; fail "serve exited ($rc) during the outage"; }
  scrape
  tc=$(topic_count); sc=$(metric riskstream_events_scored_total); buf=$(metric riskstream_redis_buffer_bytes)
  rz=$(readyz)
  echo "$s $tc ${sc:-0} ${buf:-0} $rz" >>"$T/samples"
  [ "${buf:-0}" -gt "$maxbuf" ] && maxbuf=${buf:-0}
  case " $ready_codes " in *" $rz "*) ;; *) ready_codes="$ready_codes $rz" ;; esac
  [ $((s % 5)) -eq 0 ] && log "outage +${s}s: topic $tc, scored ${sc:-?}, redis buffer ${buf:-?} B, /readyz $rz"
done
if [ "$MODE" = down ]; then
  "$SRC/ops/redis.sh" start "$T/redis" >/dev/null || fail "redis-server did not restart"
else
  kill -CONT "$RPID"
fi
log "Redis back ($(redis-cli -s "$SOCK" DBSIZE) keys after the restart)"

# Scores kept arriving: the topic grew in every 10 s slice of the outage.
stalled=$(awk -v out="$OUTAGE" '{ tc[$1] = $2 } END {
  prev = tc[1]; bad = ""
  for (s = 11; s <= out; s += 10) { if (tc[s] <= prev) bad = bad " " (s - 10) "-" s "s"; prev = tc[s] }
  if (out > 1 && out < 11 && tc[out] <= tc[1]) bad = bad " 1-" out "s"
  print bad }' "$T/samples")
during=$(awk 'NR == 1 { a = $2 } { b = $2 } END { print b - a }' "$T/samples")

# Everything lands: gen done, all ids on the topic and in Redis, buffer 0.
rc=0; wait "$GEN" || rc=$?; GEN=""
[ "$rc" -eq 0 ] || fail "gen --brokers exited $rc: $(tail -2 "$T/gen.log")"
deadline=$(( $(ms) + 180000 ))
while :; do
  redis-cli -s "$SOCK" --scan --pattern 'rs:score:*' | sed 's/^rs:score://' | sort -u >"$T/redis_ids"
  nr=$(wc -l <"$T/redis_ids")
  scrape; buf=$(metric riskstream_redis_buffer_bytes)
  [ "$nr" -ge "$N" ] && { [ "$HAVE_BUF" = 0 ] || [ "${buf:-1}" = 0 ]; } && break
  [ "$(ms)" -gt "$deadline" ] && break
  kill -0 "$SERVE" 2>/dev/null || fail "serve exited after the outage"
  sleep 2
done
rz_after=$(readyz)
sleep 1
awk '{ i = index($0, "\"event_id\":\""); if (!i) next; s = substr($0, i + 12); print substr(s, 1, index(s, "\"") - 1) }' \
  "$T/scores.jsonl" | sort -u >"$T/topic_ids"
MT=$(comm -23 "$T/want" "$T/topic_ids" | wc -l)
MR=$(comm -23 "$T/want" "$T/redis_ids" | wc -l)
# (byte for byte: serve stores JSON records here, redis.record_format=json,
# for redis-cli MGET; e2e_kcat.sh compares the compact default via HTTP)
shuf -n "$SAMPLE" --random-source=<(yes "$SEED") "$T/want" | sort | comm -12 - "$T/redis_ids" >"$T/sample"
sed 's/^/rs:score:/' "$T/sample" | xargs -r -n 100 redis-cli -s "$SOCK" MGET >"$T/sample.redis"
NMISMATCH=$(awk 'FNR == NR { if ($0 != "") want[$0] = 1; next } ($0 in want) { delete want[$0] }
                 END { n = 0; for (k in want) n++; print n }' "$T/sample.redis" "$T/scores.jsonl")
tail -n +"$((LOGSTART + 1))" "$T/serve.log" | grep -E 'level=(warn|error)' | grep -i redis >"$T/outage_lines" || true
NLINES=$(wc -l <"$T/outage_lines")

kill -TERM "$SERVE"; rc=0; wait "$SERVE" || rc=$?; SERVE=""

echo "redis_outage: ---------------------------------------------------------"
echo "redis_outage: $N events at $RATE/s, Redis $MODE for ${OUTAGE}s"
echo "redis_outage: scores published during the outage: $during; stalled 10 s slices:${stalled:- none}"
echo "redis_outage: riskstream_redis_buffer_bytes max during the outage: $maxbuf, after: ${buf:-absent}"
echo "redis_outage: /readyz during the outage:$ready_codes; after: $rz_after"
echo "redis_outage: topic: missing $MT of $N; Redis: $(wc -l <"$T/redis_ids") records, missing $MR; sample of $(wc -l <"$T/sample") equal to the topic: $(( $(wc -l <"$T/sample") - NMISMATCH ))"
echo "redis_outage: warn/error lines about Redis from the outage on: $NLINES"
head -3 "$T/outage_lines" | cut -c1-220 | sed 's/^/redis_outage:   /'
echo "redis_outage: serve exit status on SIGTERM: $rc"
bad=""
[ -n "$stalled" ] && bad="$bad; no score published in outage slice(s)$stalled"
[ "$HAVE_BUF" = 1 ] || bad="$bad; /metrics has no riskstream_redis_buffer_bytes"
[ "$maxbuf" -gt 0 ] || bad="$bad; riskstream_redis_buffer_bytes stayed 0 during the outage"
[ "${buf:-x}" = 0 ] || bad="$bad; riskstream_redis_buffer_bytes is ${buf:-absent} after the outage, want 0"
[ "$MT" -eq 0 ] || bad="$bad; $MT events missing on the topic"
[ "$MR" -eq 0 ] || bad="$bad; $MR events missing in Redis (first: $(comm -23 "$T/want" "$T/redis_ids" | head -3 | tr '\n' ' '))"
[ "$NMISMATCH" -eq 0 ] || bad="$bad; $NMISMATCH sampled Redis records differ from the topic"
[ "$rz_after" = 200 ] || bad="$bad; /readyz $rz_after after the outage"
[ "$NLINES" -ge 1 ] || bad="$bad; the outage was not logged (no warn/error line about Redis)"
[ "$NLINES" -le 10 ] || bad="$bad; $NLINES warn/error lines about Redis (a line per retry?)"
[ "$rc" -eq 0 ] || bad="$bad; serve exited $rc on SIGTERM"
[ -z "$bad" ] || fail "${bad#; }"
echo "redis_outage: PASS"

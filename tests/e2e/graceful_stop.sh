#!/usr/bin/env bash
# Graceful stop (SIGTERM) of `riskstream serve`: it must end by itself,
# exit 0 and write its final checkpoint -- (A) under load, with a backlog
# of events being scored, (B) right after a poll that returned labels
# only (a batch without scores: it once made the stop wait 30 s for Redis,
# skip the final checkpoint and, exactly-once, exit 1 blaming Redis), and
# (C) during start-up: SIGTERM while rs_service_new waits for Redis (its
# redis-server stopped with SIGSTOP), then SIGCONT; serve installed its
# handlers only after start-up, so the default action ended it (143).
# The stop times are measured and printed, not asserted (shared machine);
# a stop that takes longer than STOP_LIMIT seconds is a hang.  Afterwards
# every event is on the scores topic and in Redis.
# usage: graceful_stop.sh RISKSTREAM_BINARY SOURCE_DIR
# env:   DELIVERY=at_least_once | exactly_once
#        EVENTS=20000   events generated (seed 7, 5000 cards)
#        STOP_LIMIT=60  seconds after SIGTERM before it counts as a hang
#        KEEP=1         keep the work directory
set -euo pipefail
export LC_ALL=C
BIN="${1:?binary}"; SRC="${2:?source dir}"
DELIVERY="${DELIVERY:-at_least_once}"
EVENTS="${EVENTS:-20000}"
STOP_LIMIT="${STOP_LIMIT:-60}"
T="$(mktemp -d /tmp/rs-stop.XXXXXX)"
# Everything the service keeps (checkpoint, model store, learning logs,
# label delays) goes under $T, never into the machine's default state dir.
export RISKSTREAM_STATE_DIR="$T/state"
SERVE=""; BROKER=""; KCAT=""; RPID=""
cleanup() {
  [ -n "$RPID" ] && kill -CONT "$RPID" 2>/dev/null || true
  [ -n "$SERVE" ] && kill -9 "$SERVE" 2>/dev/null || true
  [ -n "$KCAT" ] && kill "$KCAT" 2>/dev/null || true
  [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null || true
  "$SRC/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "graceful_stop: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
fail() {
  echo "graceful_stop FAIL ($DELIVERY): $*"
  for f in "$T"/serve.*.log; do [ -f "$f" ] || continue; echo "--- $f (tail)"; tail -n 12 "$f"; done
  exit 1
}
ms() { date +%s%3N; }
ISO=()
[ "$DELIVERY" = exactly_once ] && ISO=(-X isolation.level=read_committed)
ids() { awk '{ i = index($0, "\"event_id\":\""); if (!i) next; s = substr($0, i + 12); print substr(s, 1, index(s, "\"") - 1) }' "$@"; }

URL="$("$SRC/ops/redis.sh" start "$T/redis")"
SOCK="${URL#unix://}"
"$BIN" gen --seed 7 --entities 5000 --events "$EVENTS" --out "$T/ev.jsonl" >"$T/gen.log" 2>&1 ||
  fail "gen: $(tail -1 "$T/gen.log")"
sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$T/ev.jsonl" | sort >"$T/want"
awk '{ i = index($0, "\"entity_id\":\""); s = substr($0, i + 13); print substr(s, 1, index(s, "\"") - 1) "\t" $0 }' \
  "$T/ev.jsonl" >"$T/ev.keyed"
# 16 partitions: 20 000 score records of ~1.5 KB are ~1.9 MB per partition,
# well inside the mock's ~5 MB (with 4, 7 MB each: a reader slowed by the
# machine's load lost the oldest to retention, though all were delivered).
"$BIN" broker --set topics.partitions=16 >"$T/broker.out" 2>"$T/broker.log" &
BROKER=$!
BOOT=""
for _ in $(seq 1 100); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker.out" 2>/dev/null || true)"; [ -n "$BOOT" ] && break; sleep 0.1
done
[ -n "$BOOT" ] || fail "broker did not start"
# Scores reader from the start, continuous: the mock keeps ~5 MB per
# partition, so a read from the beginning at the end would miss the first.
kcat -C -b "$BOOT" -t scores -o beginning -u -q -f '%s\n' "${ISO[@]}" >"$T/scores.jsonl" 2>"$T/kcat.log" &
KCAT=$!

N=0
# B joins during the rebalance A's leave started; the mock elects 1-2 s
# before B's own 6 s session would end, and a stall of the broker process
# across that election makes its session timer destroy B with its parked
# JoinGroup reply (tests/scoring/test_service_faults.c, "Mock
# limitations").  The client sends it again after max.poll.interval.ms +
# 3 s: 13 s here, inside the 30 s wait below, not 303 s.
start_serve() {
  N=$((N + 1))
  "$BIN" serve --brokers "$BOOT" --redis "$URL" --group stop \
    --set service.delivery="$DELIVERY" --set service.checkpoint_path="$T/state.ckpt" \
    --set kafka.consumer.session.timeout.ms=6000 --set kafka.consumer.max.poll.interval.ms=10000 \
    --set service.stats_interval=0 \
    --set http.enabled=true --set http.port=0 >"$T/serve.$N.out" 2>"$T/serve.$N.log" &
  SERVE=$!
  API=""
  for _ in $(seq 1 300); do
    API="$(sed -n 's/^http: //p' "$T/serve.$N.out" 2>/dev/null | head -1 || true)"
    [ -n "$API" ] && grep -q 'assigned' "$T/serve.$N.log" && return 0
    kill -0 "$SERVE" 2>/dev/null || fail "serve $N exited at start"
    sleep 0.1
  done
  fail "serve $N: no partitions assigned after 30 s"
}
metric() { curl -sf --max-time 5 "$API/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# SIGTERM; wait at most STOP_LIMIT s; exit 0 and a final checkpoint.
stop_serve() { # $1 phase name -> STOP_S
  local t0 rc=0 waited=0
  t0=$(ms)
  kill -TERM "$SERVE"
  while kill -0 "$SERVE" 2>/dev/null; do
    [ "$(( $(ms) - t0 ))" -gt $(( STOP_LIMIT * 1000 )) ] && fail "$1: serve still running ${STOP_LIMIT} s after SIGTERM"
    sleep 0.05
  done
  wait "$SERVE" || rc=$?
  STOP_S=$(awk -v a="$t0" -v b="$(ms)" 'BEGIN{printf "%.2f", (b-a)/1000}')
  SERVE=""
  [ "$rc" -eq 0 ] || fail "$1: serve exited $rc on SIGTERM after $STOP_S s: $(grep -v level=info "$T/serve.$N.log" | tail -2 | tr '\n' ' ')"
  grep -q "checkpoint $T/state.ckpt written" "$T/serve.$N.log" || fail "$1: no final checkpoint written"
  ! grep -q 'no final checkpoint' "$T/serve.$N.log" || fail "$1: $(grep 'no final checkpoint' "$T/serve.$N.log")"
}

# A: under load -- every event produced at once, SIGTERM while a quarter
# is scored and the rest waits in the topic.
start_serve
kcat -P -b "$BOOT" -t events -K $'\t' -l "$T/ev.keyed" 2>"$T/produce.log" || fail "kcat produce"
for _ in $(seq 1 1200); do
  s=$(metric riskstream_events_scored_total); s=${s:-0}
  [ "$s" -ge $(( EVENTS / 4 )) ] && break
  sleep 0.1
done
LAG_A=$(curl -sf --max-time 5 "$API/metrics" | awk '/^riskstream_consumer_lag/ { s += $2 } END { print s + 0 }')
stop_serve "A (under load)"; STOP_A=$STOP_S
SCORED_A=$(sed -n 's/^serve: \([0-9]*\) events scored.*/\1/p' "$T/serve.$N.out")
echo "graceful_stop: A ($DELIVERY, under load): stopped ${STOP_A} s after SIGTERM, exit 0, final checkpoint written; $SCORED_A scored, consumer lag at SIGTERM $LAG_A"

# B: restart from the checkpoint, score the rest, then a poll of labels
# only (labels of events never seen), then SIGTERM.
start_serve
s=0
for _ in $(seq 1 1200); do
  s=$(metric riskstream_events_scored_total); s=${s:-0}
  [ $(( SCORED_A + s )) -ge "$EVENTS" ] && break
  sleep 0.2
done
[ $(( SCORED_A + s )) -ge "$EVENTS" ] || fail "B: only $SCORED_A + $s of $EVENTS events scored"
awk 'BEGIN { for (k = 0; k < 50; k++) printf "stop-e%d\t{\"event_id\":\"stop-none-%d\",\"entity_id\":\"stop-e%d\",\"value\":1,\"label_time_ms\":1767225600000}\n", k % 5, k, k % 5 }' >"$T/lab.keyed"
kcat -P -b "$BOOT" -t labels -K $'\t' -l "$T/lab.keyed" 2>>"$T/produce.log" || fail "kcat produce labels"
for _ in $(seq 1 300); do
  l=$(metric riskstream_labels_total); [ "${l:-0}" -ge 50 ] && break; sleep 0.1
done
[ "${l:-0}" -ge 50 ] || fail "B: the labels were not consumed"
sleep 1
stop_serve "B (after a labels-only batch)"; STOP_B=$STOP_S
echo "graceful_stop: B ($DELIVERY, after a labels-only batch): stopped ${STOP_B} s after SIGTERM, exit 0, final checkpoint written"

# C: a stop requested during start-up.  With redis-server stopped, the
# service's Redis connection waits in rs_service_new for the answer to
# SELECT (db 1: nothing of A or B is touched) after it logged what the
# configuration preallocates; SIGTERM then, SIGCONT to Redis after: serve
# must finish its start-up and stop at once, exit 0, final checkpoint.
RPID="$(cat "$T/redis/redis.pid")"
kill -STOP "$RPID"
N=$((N + 1))
"$BIN" serve --brokers "$BOOT" --redis "$URL?db=1" --group stop \
  --set service.delivery="$DELIVERY" --set service.checkpoint_path="$T/state.ckpt" \
  --set redis.timeout=60s --set service.stats_interval=0 \
  >"$T/serve.$N.out" 2>"$T/serve.$N.log" &
SERVE=$!
for _ in $(seq 1 300); do
  grep -q 'preallocates' "$T/serve.$N.log" && break
  kill -0 "$SERVE" 2>/dev/null || fail "C: serve $N exited at start"
  sleep 0.1
done
grep -q 'preallocates' "$T/serve.$N.log" || fail "C: serve $N did not start within 30 s"
kill -0 "$SERVE" 2>/dev/null || fail "C: serve $N exited at start"
grep -q 'redis .*connected' "$T/serve.$N.log" && fail "C: serve $N reached Redis although it was stopped"
# Redis answers 0.5 s after the SIGTERM (serve is still starting then).
(sleep 0.5; kill -CONT "$RPID") &
CONT=$!
stop_serve "C (during start-up)"; STOP_C=$STOP_S
wait "$CONT" || true
RPID=""
echo "graceful_stop: C ($DELIVERY, during start-up): stopped ${STOP_C} s after SIGTERM (Redis stopped for the first 0.5 s), exit 0, final checkpoint written"

# Nothing lost: every event on the topic and in Redis.
sleep 2
kill "$KCAT" 2>/dev/null || true; wait "$KCAT" 2>/dev/null || true; KCAT=""
ids "$T/scores.jsonl" | sort -u >"$T/seen"
comm -23 "$T/want" "$T/seen" >"$T/missing"
redis-cli -s "$SOCK" --scan --pattern 'rs:score:*' | sed 's/^rs:score://' | sort -u >"$T/redis_ids"
comm -23 "$T/want" "$T/redis_ids" >"$T/missing_redis"
[ -s "$T/missing" ] && fail "missing on the scores topic: $(head -5 "$T/missing" | tr '\n' ' ')"
[ -s "$T/missing_redis" ] && fail "missing in Redis: $(head -5 "$T/missing_redis" | tr '\n' ' ')"
echo "graceful_stop: PASS ($DELIVERY): stop under load ${STOP_A} s, after a labels-only batch ${STOP_B} s, during start-up ${STOP_C} s; $EVENTS of $EVENTS events on the topic and in Redis"

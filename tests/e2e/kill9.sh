#!/usr/bin/env bash
# kill -9 harness: no event is lost when `riskstream serve` is killed with
# SIGKILL at random moments and restarted from its checkpoint.
#
# Setup: a private redis-server (ops/redis.sh), `riskstream broker` as its
# own process (the topics outlive every serve), a generated card stream of
# EVENTS events with its fraud labels, fed to the events/labels topics in
# chunks by kcat, never more than BACKLOG events ahead of the scores (the
# mock keeps only ~5 MB per partition: an unconsumed or uncheckpointed
# backlog larger than that would be deleted under the consumer).  A kcat
# consumer reads the scores topic continuously from the beginning into a
# file (read uncommitted: see ISO below), so scores deleted from the
# mock later are already saved -- if the reader keeps within ~5 MB of the
# partition's end: each record comes with its partition and offset, and a
# gap in a partition's offsets (retention dropped records before the
# reader got them; the mock writes no transaction markers, so offsets are
# contiguous there) fails the run as the harness's loss, not serve's.  serve runs with a checkpoint path and is
# killed KILLS times: most kills when the scored count passes a random mark
# (plus a random 0-1.5 s), some 0.2-4 s after a restart (during start-up,
# checkpoint restore or the group join).  Twice during the feed (at a
# quarter and at three quarters of the chunks) the feeder waits until every
# event produced so far is scored, then produces a chunk of labels only
# (labels of events never seen) and, after a pause, a chunk of rejected
# messages only: polls that publish no score (they once stopped
# exactly-once commits for good); no kill happens until scoring has moved
# on after them (a restart would hide a hang).  The run is deterministic
# for a seed:
# the stream, the kill marks, delays and types come from it (only the
# machine's speed moves the exact moment a mark is seen).  After all input
# is scored and serve is stopped with SIGTERM (exit 0 expected, the time
# it took printed, a final checkpoint written):
#   - every input event id has a score on the scores topic and a record in
#     Redis (rs:score:<id>), else FAIL listing the missing ids;
#   - duplicates on the topic are counted and listed (at-least-once: a
#     report; exactly-once: any duplicate fails it -- except on the mock
#     cluster, which does not implement transactions: exit 77, skipped);
#   - a sample of Redis records must each equal, byte for byte, one of the
#     records of that event on the topic, or be the first decision of an
#     event whose Kafka copy a kill -9 lost before delivery (Redis keeps the
#     first record, SET NX: scored before a kill, every topic copy after it;
#     counted and printed);
#   - every rejected message is on the dead-letter topic (by its key).
# Everything but the exactly-once duplicate judgement is checked before a
# SKIP can be returned.
#
# usage: kill9.sh RISKSTREAM_BINARY SOURCE_DIR
# env:   EVENTS=200000  events generated and fed
#        KILLS=5        kill -9 count
#        DELIVERY=at_least_once | exactly_once  (service.delivery)
#        PARTITIONS=8   partitions per topic of the broker
#        SEEDS="11 42"  the fixed seed set: one run per seed (each seeds the
#                       generator and the kill schedule); exit 77 only if no
#                       run failed and one was skipped
#        SEED=N         one run with this seed (wins over SEEDS)
#        SPECIAL=200    messages in each labels-only and rejects-only chunk
#        BACKLOG=6000   most events produced but not yet scored (a restart
#                       re-publishes up to a checkpoint interval of scores on
#                       top of it at once; 16000 + that burst came to the
#                       mock's ~5 MB per partition of 1.5 KB records, and a
#                       reader a moment behind lost a partition's records)
#        CHUNK=1000     events per kcat produce call
#        CKPT_INTERVAL=2s   service.checkpoint_interval
#        TIMEOUT=1500   seconds for the whole feed/score phase
#        STALL=180      seconds without a new score (with work left) -> stop
#        SAMPLE=500     Redis records compared with the topic
#        SERVE_ARGS=""  extra serve arguments (word-split), e.g.
#                       "--set model.kind=lr"
#        KEEP=1         keep the work directory (printed)
# exit:  0 all present (duplicates reported), 1 missing/failed, 2 usage,
#        77 exactly-once with duplicates on the mock cluster, which cannot
#        run transactions faithfully (see the end of this script): skip.
set -euo pipefail
export LC_ALL=C
BIN="${1:?usage: kill9.sh RISKSTREAM_BINARY SOURCE_DIR}"
SRC="${2:?usage: kill9.sh RISKSTREAM_BINARY SOURCE_DIR}"
# The fixed seed set: one run of this script per seed.
if [ -z "${SEED:-}" ]; then
  rc_all=0; skipped=0
  for s in ${SEEDS:-11 42}; do
    [[ "$s" =~ ^[0-9]+$ ]] || { echo "kill9: SEEDS must be numbers, not '$s'" >&2; exit 2; }
    echo "kill9: ================================================ seed $s"
    rc=0; SEED="$s" bash "$0" "$@" || rc=$?
    case "$rc" in 0) ;; 77) skipped=1 ;; *) rc_all="$rc"; echo "kill9: seed $s FAILED (exit $rc)" ;; esac
  done
  [ "$rc_all" -ne 0 ] && exit "$rc_all"
  [ "$skipped" -eq 1 ] && exit 77
  exit 0
fi
EVENTS="${EVENTS:-200000}"
KILLS="${KILLS:-5}"
DELIVERY="${DELIVERY:-at_least_once}"
PARTITIONS="${PARTITIONS:-8}"
SPECIAL="${SPECIAL:-200}"
BACKLOG="${BACKLOG:-6000}"
CHUNK="${CHUNK:-1000}"
CKPT_INTERVAL="${CKPT_INTERVAL:-2s}"
TIMEOUT="${TIMEOUT:-1500}"
STALL="${STALL:-180}"
SAMPLE="${SAMPLE:-500}"
read -r -a EXTRA <<<"${SERVE_ARGS:-}"
case "$DELIVERY" in
  at_least_once|exactly_once) ;;
  *) echo "kill9: DELIVERY must be at_least_once or exactly_once, not '$DELIVERY'" >&2; exit 2 ;;
esac
for v in EVENTS KILLS PARTITIONS SEED BACKLOG CHUNK TIMEOUT STALL SAMPLE SPECIAL; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "kill9: $v must be a number, not '${!v}'" >&2; exit 2; }
done
for tool in kcat redis-cli redis-server awk sort comm shuf; do
  command -v "$tool" >/dev/null || { echo "kill9: $tool not installed (ops/deps.sh installs it)"; exit 1; }
done
RANDOM=$SEED

T="$(mktemp -d /tmp/rs-kill9.XXXXXX)"
# The service's state (learning logs, default checkpoint, model store,
# label delays) goes under $T, never into the machine's default state dir.
export RISKSTREAM_STATE_DIR="$T/state"
SERVE=""; BROKER=""; KCAT=""
cleanup() {
  [ -n "$SERVE" ] && kill -9 "$SERVE" 2>/dev/null || true   # no graceful stop: the broker goes too
  for p in "$KCAT" "$BROKER"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  "$SRC/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kill9: work directory kept: $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
ms() { date +%s%3N; }
T0=$(ms)
el() { printf '%6.1fs' "$(awk -v a="$T0" -v b="$(ms)" 'BEGIN{print (b-a)/1000}')"; }
log() { echo "kill9 [$(el)] $*"; }
fail() {
  echo "kill9 FAIL: $*"
  for f in "$T"/serve.*.log; do [ -f "$f" ] || continue; echo "--- $f (tail)"; tail -n 8 "$f"; done
  [ -f "$T/kcat.log" ] && { echo "--- kcat.log (tail)"; tail -n 5 "$T/kcat.log"; }
  exit 1
}

# The service must know service.delivery for exactly-once; builds from
# before the key exist run at-least-once without it.
DELIV=()
if "$BIN" config --set service.delivery="$DELIVERY" >/dev/null 2>&1; then
  DELIV=(--set service.delivery="$DELIVERY")
elif [ "$DELIVERY" = exactly_once ]; then
  fail "this riskstream has no service.delivery=exactly_once ('riskstream config --set service.delivery=exactly_once' is refused)"
fi
# The scores reader reads uncommitted on the mock, in both modes: the mock
# writes no transaction markers, so read_committed hides nothing there,
# but it gates the reader at the partition's last stable offset, which a
# transaction of a serve killed mid-transaction could hold back for good
# (seen once in CI: the reader stopped at a restarted serve's first
# records while serve committed 13 000 more, then the mock's retention
# dropped them). Against a cluster with markers, read_committed belongs
# here (ISO=(-X isolation.level=read_committed)). librdkafka's default is
# read_committed, so uncommitted is asked for by name.
ISO=(-X isolation.level=read_uncommitted)

log "EVENTS=$EVENTS KILLS=$KILLS DELIVERY=$DELIVERY PARTITIONS=$PARTITIONS SEED=$SEED BACKLOG=$BACKLOG CKPT_INTERVAL=$CKPT_INTERVAL"
URL="$("$SRC/ops/redis.sh" start "$T/redis")"
SOCK="${URL#unix://}"

# Input: a deterministic card stream; label delay 3 d, so the stream's
# frauds get labels within it (the trainer learns while we kill).
"$BIN" gen --seed "$SEED" --entities 10000 --events "$EVENTS" --out "$T/ev.jsonl" \
  --labels-out "$T/lab.jsonl" >"$T/gen.log" 2>&1 || fail "gen: $(tail -1 "$T/gen.log")"
sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$T/ev.jsonl" | sort >"$T/want"
[ "$(wc -l <"$T/want")" -eq "$EVENTS" ] || fail "gen wrote $(wc -l <"$T/want") event ids, want $EVENTS"
# Chunks: events keyed by entity id; each label goes with the first chunk
# whose last event time reaches its label time (labels follow their events).
mkdir -p "$T/chunks"
awk -v dir="$T/chunks" -v chunk="$CHUNK" '
  function key(s,   i) { i = index(s, "\"entity_id\":\""); s = substr(s, i + 13); return substr(s, 1, index(s, "\"") - 1) }
  function num(s, f,   i) { i = index(s, "\"" f "\":"); return substr(s, i + length(f) + 3) + 0 }
  FNR == NR { c = int((FNR - 1) / chunk); f = sprintf("%s/%06d.ev", dir, c)
              if (f != cur) { if (cur != "") close(cur); cur = f }
              print key($0) "\t" $0 > f; tmax[c] = num($0, "event_time_ms"); n = c
              next }
  { lt = num($0, "label_time_ms"); while (p < n && tmax[p] < lt) p++
    f = sprintf("%s/%06d.lab", dir, p); print key($0) "\t" $0 >> f; close(f) }
' "$T/ev.jsonl" "$T/lab.jsonl"
CHUNKS=("$T"/chunks/*.ev)
NLAB=$(wc -l <"$T/lab.jsonl")
log "generated $EVENTS events, $NLAB labels, ${#CHUNKS[@]} chunks"
# Special chunks, produced alone once everything before is scored: labels
# of events never seen (a poll of labels only), rejected messages (a poll
# of rejects only; keys kill9-bad-*, checked on the dead-letter topic).
awk -v n="$SPECIAL" 'BEGIN { for (k = 0; k < n; k++)
  printf "kill9-e%d\t{\"event_id\":\"kill9-none-%d\",\"entity_id\":\"kill9-e%d\",\"value\":1,\"label_time_ms\":1767225600000}\n", k % 10, k, k % 10 }' >"$T/special.lab"
NCH=${#CHUNKS[@]}
SPECIAL_AT=("$(( NCH / 4 ))" "$(( NCH * 3 / 4 ))"); SPECIAL_DONE=0; NBAD=0; HOLD=-1

"$BIN" broker --set topics.partitions="$PARTITIONS" >"$T/broker.out" 2>"$T/broker.log" &
BROKER=$!
BOOT=""
for _ in $(seq 1 100); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker.out" 2>/dev/null || true)"; [ -n "$BOOT" ] && break
  kill -0 "$BROKER" 2>/dev/null || fail "broker exited: $(tail -2 "$T/broker.log")"
  sleep 0.1
done
[ -n "$BOOT" ] || fail "broker printed no bootstrap address"

# Scores reader: continuous, from the beginning, unbuffered; each line is
# "partition<TAB>offset<TAB>record" (scores.tsv; scores.jsonl, the records
# alone, is cut from it at the end).  An offset retention dropped resets
# the reader to the earliest offset left (not to the end, kcat's default),
# so the gap is only what was dropped, and is found below.
kcat -C -b "$BOOT" -t scores -o beginning -u -q -f '%p\t%o\t%s\n' -X auto.offset.reset=earliest \
  "${ISO[@]}" >"$T/scores.tsv" 2>"$T/kcat.log" &
KCAT=$!
# event_id of each JSON score line on stdin.
ids() { awk '{ i = index($0, "\"event_id\":\""); if (!i) next; s = substr($0, i + 12); print substr(s, 1, index(s, "\"") - 1) }' "$@"; }
# Distinct event ids seen so far: the complete lines appended to
# scores.tsv since the last call are merged into the sorted set $T/seen.
OFF=0; NSEEN=0
: >"$T/seen"
progress_update() {
  local size len part
  size=$(stat -c %s "$T/scores.tsv")
  [ "$size" -gt "$OFF" ] || return 0
  len=$(( size - OFF ))
  dd if="$T/scores.tsv" of="$T/chunk" iflag=skip_bytes,count_bytes skip="$OFF" count="$len" bs=1M status=none
  if [ -n "$(tail -c 1 "$T/chunk")" ]; then   # ends inside a line: leave it
    part=$(tail -n 1 "$T/chunk" | wc -c)
    len=$(( len - part ))
    [ "$len" -gt 0 ] || return 0
    truncate -s "$len" "$T/chunk"
  fi
  OFF=$(( OFF + len ))
  ids "$T/chunk" | sort -u | sort -m -u "$T/seen" - >"$T/seen.1"
  mv "$T/seen.1" "$T/seen"
  NSEEN=$(wc -l <"$T/seen")
}

NSTART=0
# A restarted serve joins while the killed one is still a member (until its
# 6 s session ends): the mock elects 1 s before the joiner's own session
# would end, and a stall of the broker process across that election makes
# its session timer destroy the joiner with its parked JoinGroup reply
# (tests/scoring/test_service_faults.c, "Mock limitations").  The client
# sends it again after max.poll.interval.ms + 3 s: 10 s here; the default
# (303 s) is more than STALL (180 s).
start_serve() {
  NSTART=$((NSTART + 1))
  "$BIN" serve --brokers "$BOOT" --redis "$URL" --group kill9 \
    --set service.checkpoint_path="$T/state.ckpt" --set service.checkpoint_interval="$CKPT_INTERVAL" \
    --set kafka.consumer.session.timeout.ms=6000 --set kafka.consumer.max.poll.interval.ms=10000 \
    --set service.stats_interval=10s \
    --set http.enabled=true --set http.port=0 \
    --set redis.record_format=json \
    "${DELIV[@]}" "${EXTRA[@]}" >"$T/serve.$NSTART.out" 2>"$T/serve.$NSTART.log" &
  SERVE=$!
  STARTED_MS=$(ms)
}

# Kill schedule: KILLS kills; type "mark" (scored count passes a random
# mark in 5..90 % of EVENTS) or, one in four after the first, "startup".
KTYPE=(); KMARK=()
marks="$(for _ in $(seq 1 "$KILLS"); do echo $(( EVENTS / 20 + (RANDOM * 32768 + RANDOM) % (EVENTS * 85 / 100 + 1) )); done | sort -n)"
k=0
for m in $marks; do
  if [ "$k" -gt 0 ] && [ $((RANDOM % 4)) -eq 0 ]; then KTYPE+=(startup); else KTYPE+=(mark); fi
  KMARK+=("$m"); k=$((k + 1))
done

# Why is nothing scored?  The running serve's view (lag, in-flight) and the
# ids still missing on the topic; the work directory is kept.
stall_report() {
  local api
  api="$(sed -n 's/^http: //p' "$T/serve.$NSTART.out" 2>/dev/null | head -1 || true)"
  if [ -n "$api" ] && curl -sf --max-time 5 "$api/metrics" >"$T/stall.metrics"; then
    log "serve $NSTART metrics: $(grep -E '^riskstream_(events_scored_total|partitions_assigned|kafka_inflight|redis_buffer_bytes) ' "$T/stall.metrics" | tr '\n' ' ')"
    log "non-zero consumer lag: $(awk '/^riskstream_consumer_lag/ && $NF != 0' "$T/stall.metrics" | tr '\n' ' ')"
  fi
  ids "$T/scores.tsv" | sort -u | comm -23 "$T/want" - >"$T/stall.missing"
  log "missing now: $(wc -l <"$T/stall.missing") ids, first: $(head -5 "$T/stall.missing" | tr '\n' ' ')"
  KEEP=1; STALLED=1
}
start_serve
ki=0; kill_at=0; produced=0; ci=0; LASTP=0; STALLED=0; last_change=$(ms); KILLOG=(); KILL_MS=()
deadline=$(( $(ms) + TIMEOUT * 1000 ))
while :; do
  now=$(ms)
  progress_update; p=$NSEEN
  if [ "$p" -ne "$LASTP" ]; then LASTP=$p; last_change=$now; fi
  # Done when all is scored and every kill happened (a kill after the
  # last score is a kill at idle: nothing may be lost either).
  [ "$p" -ge "$EVENTS" ] && [ "$ki" -ge "$KILLS" ] && break
  # Special chunks: at their chunk index, once all produced is scored.
  if [ "$SPECIAL_DONE" -lt "${#SPECIAL_AT[@]}" ] && [ "$ci" -ge "${SPECIAL_AT[$SPECIAL_DONE]}" ]; then
    if [ "$p" -ge "$produced" ]; then
      kcat -P -b "$BOOT" -t labels -K $'\t' -l "$T/special.lab" 2>>"$T/produce.log" || fail "kcat produce special labels"
      log "labels-only chunk ($SPECIAL labels) at $p scored"
      sleep 1.5
      awk -v n="$SPECIAL" -v r="$SPECIAL_DONE" 'BEGIN { for (k = 0; k < n; k++) printf "kill9-bad-%d-%d\t{not json %d\n", r, k, k }' >"$T/special.bad"
      kcat -P -b "$BOOT" -t events -K $'\t' -l "$T/special.bad" 2>>"$T/produce.log" || fail "kcat produce special rejects"
      NBAD=$((NBAD + SPECIAL))
      log "rejects-only chunk ($SPECIAL rejected messages) at $p scored"
      sleep 1.5
      SPECIAL_DONE=$((SPECIAL_DONE + 1))
      last_change=$(ms)
      HOLD=$p # no kill until scoring moves on: a restart must not hide a hang
    fi
  fi
  # Feed: keep produced - scored <= BACKLOG.
  fed=0
  while [ "$ci" -lt "${#CHUNKS[@]}" ] && [ $((produced - p)) -lt "$BACKLOG" ] && [ "$fed" -lt 4 ] &&
        { [ "$SPECIAL_DONE" -ge "${#SPECIAL_AT[@]}" ] || [ "$ci" -lt "${SPECIAL_AT[$SPECIAL_DONE]}" ]; }; do
    f="${CHUNKS[$ci]}"
    kcat -P -b "$BOOT" -t events -K $'\t' -l "$f" 2>>"$T/produce.log" || fail "kcat produce $f"
    [ -f "${f%.ev}.lab" ] && { kcat -P -b "$BOOT" -t labels -K $'\t' -l "${f%.ev}.lab" 2>>"$T/produce.log" || fail "kcat produce labels"; }
    produced=$((produced + $(wc -l <"$f"))); ci=$((ci + 1)); fed=$((fed + 1))
  done
  # Kill when due (not while the special chunks' effect is unproven).
  if [ "$HOLD" -ge 0 ] && [ "$p" -gt "$HOLD" ]; then HOLD=-1; fi
  if [ "$ki" -lt "$KILLS" ] && [ "$kill_at" -eq 0 ] && [ "$HOLD" -lt 0 ]; then
    if [ "${KTYPE[$ki]}" = startup ]; then
      kill_at=$(( STARTED_MS + 200 + RANDOM % 3800 ))
    elif [ "$p" -ge "${KMARK[$ki]}" ]; then
      kill_at=$(( now + RANDOM % 1500 ))
    fi
  fi
  if [ "$kill_at" -gt 0 ] && [ "$now" -ge "$kill_at" ]; then
    kill -9 "$SERVE" 2>/dev/null || true
    wait "$SERVE" 2>/dev/null || true
    KILL_MS+=("$(ms)")
    KILLOG+=("kill $((ki + 1)) (${KTYPE[$ki]}): $(( now - STARTED_MS )) ms after start $NSTART, $p scored, $produced produced")
    log "${KILLOG[-1]}"
    ki=$((ki + 1)); kill_at=0
    sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
    start_serve
    last_change=$(ms)
    continue
  fi
  # A serve that exits by itself is a failure (crash, exit 1, ...).
  if ! kill -0 "$SERVE" 2>/dev/null; then
    rc=0; wait "$SERVE" || rc=$?
    SERVE=""
    fail "serve (start $NSTART) exited by itself with status $rc at $p scored"
  fi
  kill -0 "$KCAT" 2>/dev/null || fail "the kcat scores reader exited"
  if [ "$now" -gt "$deadline" ]; then log "TIMEOUT after ${TIMEOUT}s at $p/$EVENTS scored"; stall_report; break; fi
  if [ $(( now - last_change )) -gt $(( STALL * 1000 )) ]; then
    log "STALL: no new score for ${STALL}s at $p/$EVENTS scored ($produced produced)"; stall_report; break
  fi
  sleep 0.2
done
T_SCORED=$(el)
progress_update
log "scores topic: $NSEEN distinct events scored, $produced produced, $ki kill(s), $NSTART start(s)"

# Redis: wait (bounded) until every record is there.
redis_ids() { redis-cli -s "$SOCK" --scan --pattern 'rs:score:*' | sed 's/^rs:score://' | sort -u >"$T/redis_ids"; }
for _ in $(seq 1 30); do
  redis_ids; [ "$(wc -l <"$T/redis_ids")" -ge "$EVENTS" ] && break; sleep 2
done

# Graceful stop: exit 0; then let the reader see the last (committed) scores.
# A serve started just before the end first gets its partitions (SIGTERM
# before it installed its handlers would be the default action, 143).
for _ in $(seq 1 600); do
  grep -q 'assigned' "$T/serve.$NSTART.log" 2>/dev/null && break
  kill -0 "$SERVE" 2>/dev/null || break
  sleep 0.1
done
STOP_S="-"
if [ -n "$SERVE" ]; then
  t_term=$(ms)
  kill -TERM "$SERVE" 2>/dev/null || true
  rc=0; wait "$SERVE" || rc=$?
  STOP_S=$(awk -v a="$t_term" -v b="$(ms)" 'BEGIN{printf "%.2f", (b-a)/1000}')
  SERVE=""
  log "serve $NSTART stopped ${STOP_S} s after SIGTERM, exit $rc"
  [ "$rc" -eq 0 ] || fail "serve exited $rc on SIGTERM after ${STOP_S} s"
  grep -q 'checkpoint .* written' "$T/serve.$NSTART.log" ||
    fail "serve $NSTART wrote no final checkpoint at the graceful stop"
fi
sleep 3
kill "$KCAT" 2>/dev/null || true; wait "$KCAT" 2>/dev/null || true; KCAT=""
redis_ids
# The records alone; the reader's gaps: per partition, offsets not read
# between the first (must be 0) and the last it read.
cut -f3- "$T/scores.tsv" >"$T/scores.jsonl"
cut -f1,2 "$T/scores.tsv" | sort -n -k1,1 -k2,2 -u | awk -F'\t' '
  function report() { if (have && n > 0) printf "scores/%s: %d offset(s) not read\n", p, n }
  !have || $1 != p { report(); have = 1; p = $1; n = $2; o = $2; next }
  { if ($2 > o + 1) n += $2 - o - 1; o = $2 }
  END { report() }
' >"$T/reader_gaps"

# Completeness and duplicates.
ids "$T/scores.jsonl" | sort | uniq -c | awk '{print $2 "\t" $1}' >"$T/topic_counts"
cut -f1 "$T/topic_counts" >"$T/topic_ids"
comm -23 "$T/want" "$T/topic_ids" >"$T/missing_topic"
comm -13 "$T/want" "$T/topic_ids" >"$T/extra_topic"
comm -23 "$T/want" "$T/redis_ids" >"$T/missing_redis"
awk -F'\t' '$2 > 1' "$T/topic_counts" | sort -t$'\t' -k2,2nr -k1,1 >"$T/dups"
NREC=$(grep -c . "$T/scores.jsonl" || true)
NDUPID=$(wc -l <"$T/dups")
NDUPREC=$(awk -F'\t' '{s += $2 - 1} END {print s + 0}' "$T/dups")
MT=$(wc -l <"$T/missing_topic"); MR=$(wc -l <"$T/missing_redis"); XT=$(wc -l <"$T/extra_topic")

# Redis records equal a topic record of the same event (byte for byte:
# serve stores them as JSON here, redis.record_format=json, so that
# redis-cli MGET reads them; the compact default is compared with the topic
# through the HTTP API in e2e_kcat.sh).
shuf -n "$SAMPLE" --random-source=<(yes "$SEED") "$T/want" | sort | comm -12 - "$T/redis_ids" >"$T/sample"
sed 's/^/rs:score:/' "$T/sample" | xargs -r -n 100 redis-cli -s "$SOCK" MGET >"$T/sample.redis"
awk 'FNR == NR { if ($0 != "") want[$0] = 1; next } ($0 in want) { delete want[$0] }
     END { for (k in want) print k }' "$T/sample.redis" "$T/scores.jsonl" >"$T/sample.mismatch"
# A Redis record no topic record equals is what the design allows in one
# case only (README, Delivery guarantees): the first decision was written
# to Redis (SET NX keeps it) and the kill -9 lost its Kafka copy before
# delivery, so the topic holds only the re-scored copies of the next start.
# Such a record was scored before a kill and every topic copy after it;
# anything else is a failure.
NKILLLOST=0; NMISMATCH=0
while IFS= read -r rec; do
  [ -n "$rec" ] || continue
  id=$(printf '%s\n' "$rec" | jq -r .event_id)
  rt=$(printf '%s\n' "$rec" | jq -r .scored_at_ms)
  tt=$(grep -F "\"event_id\":\"$id\"" "$T/scores.jsonl" | jq -s -r --arg id "$id" 'map(select(.event_id == $id) | .scored_at_ms) | min // 0')
  lost=0
  for k in "${KILL_MS[@]}"; do
    if [ "$rt" -lt "$k" ] && [ "$tt" -ge "$k" ]; then lost=1; fi
  done
  if [ "$lost" = 1 ]; then
    NKILLLOST=$((NKILLLOST + 1))
  else
    NMISMATCH=$((NMISMATCH + 1))
    echo "kill9: Redis record of $id (scored_at_ms $rt) equals no topic record (first topic copy scored_at_ms $tt)"
  fi
done <"$T/sample.mismatch"
NSAMPLE=$(wc -l <"$T/sample")

# Dead letters: every rejected message by its key (at-least-once: copies
# allowed).
kcat -C -b "$BOOT" -t events.dlq -o beginning -e -q -f '%k\n' 2>>"$T/kcat.log" |
  grep '^kill9-bad-' | sort -u >"$T/dlq_keys" || true
NDLQ=$(wc -l <"$T/dlq_keys")

echo "kill9: ---------------------------------------------------------------"
echo "kill9: delivery $DELIVERY, $EVENTS events, $NLAB labels, $PARTITIONS partitions, seed $SEED"
for l in "${KILLOG[@]}"; do echo "kill9:   $l"; done
echo "kill9: all scored after $T_SCORED; total $(el)"
echo "kill9: starts that restored a checkpoint: $(grep -l 'restored' "$T"/serve.*.log 2>/dev/null | wc -l) of $NSTART"
echo "kill9: scores topic: $NREC records, $(wc -l <"$T/topic_ids") distinct events, missing $MT, unknown ids $XT"
echo "kill9: redis: $(wc -l <"$T/redis_ids") records, missing $MR; sample of $NSAMPLE equal to a topic record: $((NSAMPLE - NMISMATCH - NKILLLOST)), first decision kept whose Kafka copy a kill lost: $NKILLLOST, mismatch $NMISMATCH"
echo "kill9: labels-only and rejects-only chunks: $SPECIAL_DONE of ${#SPECIAL_AT[@]}; dead-letter topic: $NDLQ of $NBAD rejected messages"
echo "kill9: graceful stop: ${STOP_S} s after SIGTERM, final checkpoint written"
echo "kill9: duplicates on the topic: $NDUPREC extra records over $NDUPID events"
if [ "$NDUPID" -gt 0 ]; then
  echo "kill9:   most repeated (event id, records): $(head -5 "$T/dups" | tr '\t\n' '=,' | sed 's/,$//')"
  echo "kill9:   by count: $(cut -f2 "$T/dups" | sort -n | uniq -c | awk '{printf "%sx%d ", $1, $2}')"
fi
nerr=$(cat "$T"/serve.*.log | grep -c 'level=error' || true)
echo "kill9: serve logs: $nerr error line(s)$( [ "$nerr" -gt 0 ] && printf ', first: %s' "$(cat "$T"/serve.*.log | grep -m1 'level=error' | cut -c1-200)")"
bad=0
if [ -s "$T/reader_gaps" ]; then
  echo "kill9: the scores reader lost records to the mock's retention (~5 MB per partition) before"
  echo "kill9:   it read them -- the harness fell behind, so 'missing' below is not serve's loss:"
  sed 's/^/kill9:   /' "$T/reader_gaps"; bad=1
fi
if [ "$MT" -gt 0 ]; then echo "kill9: missing on the topic (first 10): $(head -10 "$T/missing_topic" | tr '\n' ' ')"; bad=1; fi
if [ "$MR" -gt 0 ]; then echo "kill9: missing in Redis (first 10): $(head -10 "$T/missing_redis" | tr '\n' ' ')"; bad=1; fi
if [ "$XT" -gt 0 ]; then echo "kill9: ids on the topic that were never produced: $(head -5 "$T/extra_topic" | tr '\n' ' ')"; bad=1; fi
if [ "$NMISMATCH" -gt 0 ]; then echo "kill9: $NMISMATCH sampled Redis records equal no topic record of their event"; bad=1; fi
if [ "$NDLQ" -ne "$NBAD" ]; then echo "kill9: $((NBAD - NDLQ)) of $NBAD rejected messages missing on the dead-letter topic"; bad=1; fi
if [ "$SPECIAL_DONE" -ne "${#SPECIAL_AT[@]}" ]; then echo "kill9: only $SPECIAL_DONE of ${#SPECIAL_AT[@]} labels-/rejects-only chunks were produced"; bad=1; fi
[ "$ki" -eq "$KILLS" ] || { echo "kill9: only $ki of $KILLS kills happened"; bad=1; }
[ "$STALLED" -eq 0 ] || { echo "kill9: scoring stalled or timed out before all input was scored (see above)"; bad=1; }
[ "$bad" -eq 0 ] || fail "see above (seed $SEED; rerun with SEED=$SEED KEEP=1)"
if [ "$DELIVERY" = exactly_once ] && [ "$NDUPREC" -gt 0 ]; then
  # librdkafka's mock cluster (what `riskstream broker` runs) accepts
  # transactions but implements neither half of them: a read_committed
  # consumer also gets the messages of aborted transactions, and offsets
  # sent in a transaction (TxnOffsetCommit) are answered OK but never
  # stored, so a restart cannot tell replayed input from new input.
  # Duplicates cannot be judged here: skip (ctest SKIP_RETURN_CODE 77);
  # completeness was checked above.
  echo "kill9: exactly-once but $NDUPREC duplicate records: NOT JUDGED on the mock cluster (it"
  echo "kill9:   neither hides aborted transactions from read_committed consumers nor stores"
  echo "kill9:   offsets committed in transactions); nothing missing; SKIP"
  exit 77
fi
echo "kill9: PASS"

#!/usr/bin/env bash
# End-to-end: `riskstream serve` on the embedded Kafka and a private Redis;
# kcat (a client we did not write) produces N JSON events, malformed lines
# mixed in, and labels.  Checks: exactly N scores on the scores topic and N
# records in Redis, each with the right event id and a score in [0,1]; the
# malformed lines are counted and land in the dead-letter topic with a
# reason header; /metrics passes promtool and carries every metric the
# Grafana dashboard and the alert rules of ops/monitoring use, and the task
# merge's series count every message read, none held at the end; a SIGTERM
# stops the service cleanly (exit 0).
#
# usage: e2e_kcat.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
BIN="${1:?riskstream binary}"
SRC="${2:?source dir}"
N="${RS_E2E_EVENTS:-400}"
BAD=7
for tool in kcat jq redis-cli redis-server curl promtool; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool not installed (ops/deps.sh installs it)"; exit 1; }
done

T="$(mktemp -d /tmp/rs-e2e.XXXXXX)"
# The service's state (learning logs, default checkpoint, model store,
# label delays) goes under $T, never into the machine's default state dir.
export RISKSTREAM_STATE_DIR="$T/state"
SERVE_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  "$SRC/ops/redis.sh" stop "$T/redis" || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "e2e FAIL: $*"; echo "--- serve log (tail)"; tail -n 30 "$T/serve.log" || true; exit 1; }

URL="$("$SRC/ops/redis.sh" start "$T/redis")"
SOCK="${URL#unix://}"

"$BIN" serve --redis "$URL" --set topics.partitions=3 --set service.stats_interval=1s \
  --set http.enabled=true --set http.port=0 \
  >"$T/serve.out" 2>"$T/serve.log" &
SERVE_PID=$!
BOOT=""
for _ in $(seq 1 200); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/serve.out" 2>/dev/null | head -1 || true)"
  [ -n "$BOOT" ] && break
  kill -0 "$SERVE_PID" 2>/dev/null || fail "serve exited early"
  sleep 0.1
done
[ -n "$BOOT" ] || fail "no 'kafka bootstrap:' line from serve"
echo "e2e: embedded kafka at $BOOT, redis at $URL"

# N valid events over a few cards, with BAD malformed lines in between.
base=1767225600000
: >"$T/events.jsonl"
for i in $(seq 1 "$N"); do
  card=$(( i % 17 ))
  t=$(( base + i * 60000 ))
  printf '{"id":"e2e-%d","type":"card_tx","entity_id":"card-%d","counterparty_id":"m-%d","event_time_ms":%d,"amount":%d.25,"categorical_fields":{"mcc":"5411","country":"FR"}}\n' \
    "$i" "$card" $(( i % 5 )) "$t" $(( (i * 37) % 300 + 1 )) >>"$T/events.jsonl"
  case "$i" in
    10) echo '{"id":"bad-1","type":"card_tx"' >>"$T/events.jsonl" ;;          # truncated JSON
    20) echo 'not json at all' >>"$T/events.jsonl" ;;
    30) echo '{"id":"bad-3","type":"card_tx","entity_id":"c","event_time_ms":1767225600000,"amount":"NaN"}' >>"$T/events.jsonl" ;;
    40) echo '{"type":"card_tx","entity_id":"c","event_time_ms":1767225600000,"amount":1}' >>"$T/events.jsonl" ;;  # no id
    50) echo '{"id":"bad-5","type":"card_tx","entity_id":"c","event_time_ms":1767225600000,"amount":-5}' >>"$T/events.jsonl" ;;
    60) echo '{"id":"bad-6","type":"card_tx","entity_id":"c","event_time_ms":42,"amount":1}' >>"$T/events.jsonl" ;;  # absurd time
    70) echo '[1,2,3]' >>"$T/events.jsonl" ;;
  esac
done
kcat -P -b "$BOOT" -t events -l "$T/events.jsonl" || fail "kcat produce events"
# Labels for every 25th event (arrive after their events).
: >"$T/labels.jsonl"
for i in $(seq 25 25 "$N"); do
  printf '{"event_id":"e2e-%d","entity_id":"card-%d","value":1,"label_time_ms":%d}\n' \
    "$i" $(( i % 17 )) $(( base + N * 60000 + i )) >>"$T/labels.jsonl"
done
NLAB=$(wc -l <"$T/labels.jsonl")
kcat -P -b "$BOOT" -t labels -l "$T/labels.jsonl" || fail "kcat produce labels"

# Wait until N scores are on the scores topic.
got=0
for _ in $(seq 1 120); do
  kcat -C -b "$BOOT" -t scores -o beginning -e -q -f '%s\n' >"$T/scores.jsonl" 2>/dev/null || true
  got=$(grep -c . "$T/scores.jsonl" || true)
  [ "$got" -ge "$N" ] && break
  sleep 0.5
done
[ "$got" -eq "$N" ] || fail "expected exactly $N scores on the topic, got $got"
sleep 1
kcat -C -b "$BOOT" -t scores -o beginning -e -q -f '%s\n' >"$T/scores.jsonl" 2>/dev/null
[ "$(grep -c . "$T/scores.jsonl")" -eq "$N" ] || fail "scores topic grew past $N (duplicates)"

# Every event id exactly once, scores in [0,1].
jq -r '.event_id' "$T/scores.jsonl" | sort >"$T/score_ids"
grep -o '"id":"e2e-[0-9]*"' "$T/events.jsonl" | sed 's/"id":"//; s/"//' | sort >"$T/want_ids"
diff -q "$T/want_ids" "$T/score_ids" >/dev/null || fail "score event ids differ from the input ids"
bad_scores=$(jq -r 'select((.score|type) != "number" or .score < 0 or .score > 1) | .event_id' "$T/scores.jsonl" | wc -l)
[ "$bad_scores" -eq 0 ] || fail "$bad_scores scores outside [0,1]"
jq -e 'select(.model_version == "" or .decision == null)' "$T/scores.jsonl" >/dev/null && fail "score without model_version/decision"
# Each score carries its event's own fields (the case view shows them).
grep '"id":"e2e-' "$T/events.jsonl" \
  | jq -c '{id: .id, cp: .counterparty_id, amount: .amount, mcc: .categorical_fields.mcc}' \
  | sort >"$T/want_fields"
jq -c '{id: .event_id, cp: .event.counterparty_id, amount: .event.amount,
        mcc: ([.event.categorical_fields[] | select(.name == "mcc") | .value][0])}' \
  "$T/scores.jsonl" | sort >"$T/got_fields"
diff -q "$T/want_fields" "$T/got_fields" >/dev/null || fail "score event fields differ from the input events"
# A reason is always the words of a listed contribution that raised the risk.
nbad=$(jq -r '.explanation as $x | $x.reasons[] as $r
              | select([$x.feature_contributions[] | select(.text == $r and .contribution > 0)] | length == 0)
              | $r' "$T/scores.jsonl" | wc -l)
[ "$nbad" -eq 0 ] || fail "$nbad reasons are not the words of a contribution > 0"
jq -e 'select(.explanation.feature_contributions[] | .text == "")' "$T/scores.jsonl" >/dev/null \
  && fail "a contribution without words"

API="$(sed -n 's/^http: //p' "$T/serve.out" 2>/dev/null | head -1 || true)"
[ -n "$API" ] || fail "serve did not print its http: address"

# Redis: N records, stored compact (redis.record_format default: first byte
# 0x01), each read back (HTTP API, audit) with the right id and a score in
# [0,1].
nkeys=$(redis-cli -s "$SOCK" --scan --pattern 'rs:score:*' | wc -l)
[ "$nkeys" -eq "$N" ] || fail "expected $N score records in Redis, got $nkeys"
for i in 1 77 $N; do
  redis-cli -s "$SOCK" GET "rs:score:e2e-$i" >"$T/rec.bin"
  b0="$(od -An -tx1 -N1 "$T/rec.bin" | tr -d ' ')"
  [ "$b0" = 01 ] || fail "redis record e2e-$i is not compact (first byte '$b0')"
  rec="$("$BIN" audit "e2e-$i" --json --redis "$URL")" || fail "audit e2e-$i: $rec"
  [ "$(echo "$rec" | jq -r .event_id)" = "e2e-$i" ] || fail "redis record e2e-$i has wrong id: $rec"
  echo "$rec" | jq -e '.score >= 0 and .score <= 1' >/dev/null || fail "redis score of e2e-$i out of range"
  ttl=$(redis-cli -s "$SOCK" PTTL "rs:score:e2e-$i")
  [ "$ttl" -gt 0 ] || fail "redis record e2e-$i has no TTL ($ttl)"
done
redis-cli -s "$SOCK" --scan --pattern 'rs:score:*' | while read -r k; do
  curl -sf "$API/v1/scores/${k#rs:score:}"; echo
done | jq -r 'select(.score < 0 or .score > 1 or (.event_id|startswith("e2e-")|not)) | .event_id' >"$T/redis_bad"
[ ! -s "$T/redis_bad" ] || fail "bad redis records: $(head -3 "$T/redis_bad")"
nidx=$(redis-cli -s "$SOCK" ZCARD "rs:entity:card-1:scores")
[ "$nidx" -gt 0 ] || fail "entity index rs:entity:card-1:scores is empty"

# Kafka and the record in Redis, read through the HTTP API, agree on every
# record, byte for byte (score, decision, model version, explanation,
# times): the compact record gives back the very JSON the topic got.
ndiff=0
while IFS= read -r krec; do
  id="$(printf '%s' "$krec" | jq -r .event_id)"
  hrec="$(curl -sf "$API/v1/scores/$id")" || fail "HTTP GET /v1/scores/$id failed"
  if [ "$krec" != "$hrec" ]; then
    ndiff=$((ndiff + 1)); [ "$ndiff" -le 2 ] && printf 'kafka %s\nhttp  %s\n' "$krec" "$hrec"
  fi
done <"$T/scores.jsonl"
[ "$ndiff" -eq 0 ] || fail "$ndiff records differ between Kafka and Redis (HTTP)"
nent=$(curl -sf "$API/v1/entities/card-1/scores?limit=1000" | jq length)
[ "$nent" -eq "$(redis-cli -s "$SOCK" ZCARD rs:entity:card-1:scores)" ] || fail "HTTP entity list has $nent records"
page="$(curl -sf "$API/v1/scores/e2e-1/view")" || fail "decision page request failed"
case "$page" in *"<svg"*) ;; *) fail "decision page has no chart" ;; esac
echo "e2e: Kafka, Redis and HTTP agree on all $N records"

# Prometheus endpoint: parsed by the real Prometheus text parser, counters
# right (the snapshot is refreshed every second), readiness.
sleep 1.5
curl -sf "$API/metrics" >"$T/metrics.txt" || fail "GET /metrics"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 || {
  cat "$T/promtool.out"; fail "promtool rejects /metrics"; }
grep -q "^riskstream_events_scored_total $N\$" "$T/metrics.txt" || fail "scored counter: $(grep scored_total "$T/metrics.txt")"
grep -q "^riskstream_events_rejected_total $BAD\$" "$T/metrics.txt" || fail "rejected counter"
grep -q '^riskstream_consumer_lag{topic="events",partition="0"} 0$' "$T/metrics.txt" || fail "consumer lag: $(grep consumer_lag "$T/metrics.txt" | head -3)"
grep -q "^riskstream_e2e_latency_seconds_count $N\$" "$T/metrics.txt" || fail "latency histogram count"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/readyz")" = 200 ] || fail "/readyz not 200"
# Build info and the standard process metrics (from /proc).
grep -q '^riskstream_build_info{version="[^"]*",commit="[^"]*",build_type=' "$T/metrics.txt" || fail "no riskstream_build_info"
for m in process_cpu_seconds_total process_resident_memory_bytes process_start_time_seconds process_open_fds; do
  v=$(awk -v m="$m" '$1 == m {print $2}' "$T/metrics.txt")
  [ -n "$v" ] && awk -v v="$v" 'BEGIN {exit !(v > 0)}' || fail "$m missing or not > 0: '$v'"
done
echo "e2e: /metrics valid for promtool ($(grep -c '^# TYPE' "$T/metrics.txt") metric families), /readyz 200"
# The task merge's series (topics.task_merge is on by default): every
# message read (N events, BAD malformed lines, NLAB labels) went through it
# once and none is held once the labels are in (scraped until then, 15 s
# at most: the snapshot is refreshed every second); no input reached its
# hold limit (4096); reorders are possible on a live stream (a label
# fetched while the events topic is at its end), so only bounded.
mval() { awk -v m="$1" '$1 == m {print $2}' "$T/metrics.txt"; }
MERGED_WANT=$(( N + BAD + NLAB ))
for _ in $(seq 1 30); do
  [ "$(mval riskstream_task_merge_merged_total)" = "$MERGED_WANT" ] &&
    [ "$(mval riskstream_task_merge_held)" = 0 ] && break
  sleep 0.5
  curl -sf "$API/metrics" >"$T/metrics.txt" || fail "GET /metrics"
done
[ "$(mval riskstream_task_merge_merged_total)" = "$MERGED_WANT" ] ||
  fail "task merge merged $(mval riskstream_task_merge_merged_total), want $MERGED_WANT"
[ "$(mval riskstream_task_merge_held)" = 0 ] || fail "task merge holds $(mval riskstream_task_merge_held)"
[ "$(mval riskstream_task_merge_paused_total)" = 0 ] || fail "task merge paused $(mval riskstream_task_merge_paused_total)"
hmax="$(mval riskstream_task_merge_held_max)"; reord="$(mval riskstream_task_merge_reordered_total)"
awk -v h="$hmax" -v w="$MERGED_WANT" 'BEGIN {exit !(h >= 1 && h <= w)}' || fail "task merge held_max '$hmax'"
awk -v r="$reord" -v w="$MERGED_WANT" 'BEGIN {exit !(r >= 0 && r <= w)}' || fail "task merge reordered '$reord'"
for m in riskstream_task_merge_end_checks_total riskstream_task_merge_last_reorder_behind_seconds \
         riskstream_task_merge_last_reorder_late_seconds; do
  [ -n "$(mval "$m")" ] || fail "no $m"
done
# removed: the time since the merge first passed the topic as idle was
# not how late a reorder was (riskstream_task_merge_last_reorder_late_seconds is)
[ -z "$(mval riskstream_task_merge_last_reorder_idle_seconds)" ] ||
  fail "riskstream_task_merge_last_reorder_idle_seconds is still exported"
echo "e2e: task merge: $MERGED_WANT merged, 0 held (at most $hmax), $reord reordered"
# The dashboard and the alert rules use only metrics this scrape exports;
# the rules pass promtool and their unit tests.
bash "$SRC/ops/monitoring/check.sh" "$T/metrics.txt" || fail "ops/monitoring does not match /metrics"

# Dead-letter topic: the BAD malformed lines, each with a reason header.
kcat -C -b "$BOOT" -t events.dlq -o beginning -e -q -f '%h\n' >"$T/dlq_headers" 2>/dev/null || true
ndlq=$(grep -c 'rs-error=' "$T/dlq_headers" || true)
[ "$ndlq" -eq "$BAD" ] || fail "expected $BAD dead-lettered messages with rs-error, got $ndlq"

# Graceful stop: exit 0 and a summary that counts everything.
kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
SERVE_PID=""
[ "$rc" -eq 0 ] || fail "serve exited with $rc after SIGTERM"
summary="$(grep '^serve:' "$T/serve.out" || true)"
echo "e2e: $summary"
grep -q "^serve: $N events scored, $NLAB labels, $BAD rejected" <<<"$summary" || fail "summary mismatch: $summary"
echo "e2e: PASS ($N scores on Kafka and in Redis, $BAD rejected to DLQ, $NLAB labels)"

#!/usr/bin/env bash
# Model versions on a running service: the trainer thread publishes
# versions into the model store, `riskstream model list` shows them,
# `riskstream model rollback` brings an older one back while scoring goes
# on, and `riskstream audit --rescore` recomputes logged scores bit for bit
# with the recorded version from the store.
#  - serve (http.enabled, model.store_dir, publish_every 500, keep 5,
#    log_inputs all, label_horizon 1d) scores a 4-day generated stream
#    (events + labels produced with kcat) from `riskstream broker`;
#  - several versions were published, only the newest 5 are kept, list
#    (service and --store) agree, numbers are strictly decreasing;
#  - rollback to the oldest kept version: /v1/models says it serves it,
#    riskstream_model_rollbacks_total is 1, events produced after it are
#    scored (Kafka and Redis) with that version, and the next version
#    published gets a new number;
#  - rollback to an unknown version: exit 1, "not in the store";
#  - audit --rescore: match for an event of the rolled-back version; an
#    event whose version was pruned says so (exit 1);
#  - SIGTERM: exit 0.
# usage: model_versions.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
BIN="${1:?riskstream binary}"; SRC="${2:?source dir}"
for tool in kcat jq redis-cli redis-server curl; do
  command -v "$tool" >/dev/null || { echo "model_versions: $tool not installed (ops/deps.sh installs it)"; exit 1; }
done
T="$(mktemp -d /tmp/rs-versions.XXXXXX)"
# The service's state (learning logs, default checkpoint, model store,
# label delays) goes under $T, never into the machine's default state dir.
export RISKSTREAM_STATE_DIR="$T/state"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$SRC/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "model_versions FAIL: $*"; for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done; exit 1; }
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

"$BIN" gen --seed 3 --entities 1000 --duration 4d --out "$T/ev.jsonl" --labels-out "$T/lb.jsonl" 2>"$T/gen.log"
N=$(wc -l <"$T/ev.jsonl")
URL="$("$SRC/ops/redis.sh" start "$T/redis")"
SOCK="${URL#unix://}"
"$BIN" broker --set topics.partitions=2 >"$T/broker.out" 2>"$T/broker.log" &
PIDS+=($!)
BOOT=""
for _ in $(seq 1 100); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker.out" 2>/dev/null || true)"; [ -n "$BOOT" ] && break; sleep 0.1
done
[ -n "$BOOT" ] || fail "broker did not start"

STORE="$T/store"
cat >"$T/rs.yaml" <<EOF
model:
  store_dir: $STORE
  publish_every: 500
  publish_interval: 1h
  keep_versions: 5
  label_horizon: 1d
service:
  log_inputs: all
  stats_interval: 0ms
http:
  enabled: true
  port: 0
kafka:
  consumer.session.timeout.ms: "6000"
EOF
"$BIN" serve --brokers "$BOOT" --redis "$URL" --config "$T/rs.yaml" >"$T/serve.out" 2>"$T/serve.log" &
SP=$!; PIDS+=($SP)
API=""
for _ in $(seq 1 100); do
  API="$(sed -n 's/^http: //p' "$T/serve.out" 2>/dev/null || true)"; [ -n "$API" ] && break; sleep 0.1
done
[ -n "$API" ] || fail "serve printed no http address"

metric() { curl -s "$API/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
wait_scored() { # $1 count
  for _ in $(seq 1 600); do
    s="$(metric riskstream_events_scored_total)"; [ "${s:-0}" -ge "$1" ] && return 0; sleep 0.2
  done
  fail "scored ${s:-0} of $1 events"
}

jq -r '.entity_id + "\t" + tojson' "$T/ev.jsonl" >"$T/ev.kv"
kcat -P -b "$BOOT" -t events -K '\t' -l "$T/ev.kv" || fail "kcat produce events"
wait_scored "$N"
jq -c . "$T/lb.jsonl" | kcat -P -b "$BOOT" -t labels || fail "kcat produce labels"
for _ in $(seq 1 100); do
  l="$(metric riskstream_labels_total)"; [ "${l:-0}" -ge "$(wc -l <"$T/lb.jsonl")" ] && break; sleep 0.2
done
# let the trainer drain its queue and learn the maturity negatives the
# watermarks made due: it learns those from the learning logs in chunks
# between messages, so an empty queue alone does not mean it is done (a
# version published after the rollback would prune the rolled-back one
# before the audit below) -- wait until the matured count stops moving
# (four equal readings of the trainer's counters, refreshed every 200 ms)
matured() { curl -s "$API/metrics" | awk '$1 == "riskstream_learned_total{cause=\"matured\"}" { print $2 }'; }
prev=-1; same=0
for _ in $(seq 1 600); do
  q="$(metric riskstream_model_train_queue)"; m="$(matured)"
  if [ "${q%.*}" = "0" ] && [ "$m" = "$prev" ]; then
    same=$((same + 1)); [ "$same" -ge 4 ] && break
  else
    same=0
  fi
  prev="$m"; sleep 0.5
done
[ "$same" -ge 4 ] || fail "the trainer did not settle (queue ${q:-?}, matured ${m:-?})"
[ "${m:-0}" -gt 0 ] || fail "no maturity negatives learned"
echo "model_versions: $N events scored from the broker ($(elapsed) s)"

# ---- list
"$BIN" model list --url "$API" >"$T/list.out" 2>"$T/list.log" || fail "model list"
"$BIN" model list --url "$API" --json >"$T/list.json" 2>>"$T/list.log" || fail "model list --json"
PUB=$(jq .trainer.published "$T/list.json")
NV=$(jq '.versions | length' "$T/list.json")
[ "$PUB" -ge 8 ] || fail "only $PUB versions published (want >= 8 with publish_every 500)"
[ "$NV" -eq 5 ] || fail "$NV versions kept, want 5 (keep_versions)"
jq -e '[.versions[].number] | . == (sort | reverse) and (unique | length) == 5' "$T/list.json" >/dev/null ||
  fail "version numbers not strictly decreasing: $(jq -c '[.versions[].number]' "$T/list.json")"
SERVING=$(jq -r .serving "$T/list.json")
NEWEST=$(jq -r '.versions[0].version' "$T/list.json")
[ "$SERVING" = "$NEWEST" ] || fail "serving $SERVING, newest stored $NEWEST"
grep -q "^\* $NEWEST" "$T/list.out" || fail "list does not mark the serving version: $(cat "$T/list.out")"
"$BIN" model list --store "$STORE" >"$T/list2.out" || fail "model list --store"
for v in $(jq -r '.versions[].version' "$T/list.json"); do
  grep -q " $v " "$T/list2.out" || fail "--store list lacks $v"
done
[ "$(ls "$STORE"/*.rsm | wc -l)" -eq 5 ] || fail "store holds $(ls "$STORE" | wc -l) files"
echo "model_versions: $PUB versions published, 5 kept, serving $SERVING"

# ---- rollback
OLD=$(jq -r '.versions[4].version' "$T/list.json")
MAXNUM=$(jq '.versions[0].number' "$T/list.json")
"$BIN" model rollback "$OLD" --url "$API" >"$T/rb.out" 2>"$T/rb.log" || fail "rollback to $OLD: $(cat "$T/rb.log")"
grep -q "rolled back to $OLD" "$T/rb.out" || fail "rollback output: $(cat "$T/rb.out")"
for _ in $(seq 1 50); do
  s="$(curl -s "$API/v1/models" | jq -r .serving)"; [ "$s" = "$OLD" ] && break; sleep 0.2
done
[ "$s" = "$OLD" ] || fail "serving $s after rollback to $OLD"
[ "$(metric riskstream_model_rollbacks_total)" = "1" ] || fail "rollbacks metric"
# read the page whole first: "curl | grep -q" under pipefail fails when grep
# exits at the match while curl is still writing (SIGPIPE, curl exit 23)
m="$(curl -s "$API/metrics")"
grep -q "^riskstream_model_info{version=\"$OLD\"} 1" <<<"$m" ||
  fail "/metrics model_info: $(grep '^riskstream_model_info' <<<"$m")"
rc=0; "$BIN" model rollback "${OLD%-*}-999999" --url "$API" >"$T/rb2.out" 2>"$T/rb2.log" || rc=$?
[ "$rc" -eq 1 ] && grep -q "HTTP 404" "$T/rb2.log" || fail "unknown version: exit $rc: $(cat "$T/rb2.log")"
rc=0; "$BIN" model rollback "../x" --url "$API" >/dev/null 2>"$T/rb3.log" || rc=$?
[ "$rc" -eq 2 ] || fail "bad version name: exit $rc"

# events after the rollback are scored with the old version
TMAX=$(jq -s 'map(.event_time_ms) | max' "$T/ev.jsonl")
for i in $(seq 1 20); do
  printf 'card-%d\t{"id":"after-%d","type":"card_tx","entity_id":"card-%d","counterparty_id":"m-1","event_time_ms":%d,"amount":%d.5}\n' \
    "$i" "$i" "$i" $((TMAX + i * 1000)) $((i * 7))
done >"$T/after.kv"
kcat -P -b "$BOOT" -t events -K '\t' -l "$T/after.kv" || fail "kcat produce after"
wait_scored $((N + 20))
kcat -C -b "$BOOT" -t scores -o beginning -e -q -f '%s\n' 2>/dev/null |
  jq -c 'select(.event_id | startswith("after-"))' >"$T/after.jsonl" || true
[ "$(grep -c . "$T/after.jsonl")" -eq 20 ] || fail "$(grep -c . "$T/after.jsonl") scores of 20 after the rollback"
bad=$(jq -r "select(.model_version != \"$OLD\") | .model_version" "$T/after.jsonl" | sort -u)
[ -z "$bad" ] || fail "scores after the rollback carry $bad, want $OLD"
rec="$("$BIN" audit after-1 --json --redis "$URL")"
[ "$(echo "$rec" | jq -r .model_version)" = "$OLD" ] || fail "redis record after rollback: $rec"
echo "model_versions: rolled back to $OLD; 20 new events scored with it (Kafka and Redis)"

# ---- audit --rescore with the recorded version from the store
"$BIN" audit after-7 --rescore --store "$STORE" --redis "$URL" >"$T/rescore.out" 2>"$T/rescore.log" ||
  fail "rescore after-7: $(cat "$T/rescore.out" "$T/rescore.log")"
grep -q "rescore: match (bit for bit)" "$T/rescore.out" || fail "rescore: $(cat "$T/rescore.out")"
FIRST=$(head -n 1 "$T/ev.jsonl" | jq -r .id)
FV=$("$BIN" audit "$FIRST" --json --redis "$URL" | jq -r .model_version)
if [ ! -e "$STORE/$FV.rsm" ]; then
  rc=0; "$BIN" audit "$FIRST" --rescore --store "$STORE" --redis "$URL" >"$T/rescore2.out" 2>&1 || rc=$?
  [ "$rc" -eq 1 ] && grep -qi "not in the store\|pruned" "$T/rescore2.out" ||
    fail "rescore of a pruned version ($FV): exit $rc: $(cat "$T/rescore2.out")"
  echo "model_versions: audit --rescore matches bit for bit; a pruned version ($FV) is named"
else
  echo "model_versions: audit --rescore matches bit for bit"
fi

# learning goes on from the rolled-back weights: the next version has a
# number above every earlier one
kill -TERM "$SP"
rc=0; wait "$SP" || rc=$?
[ "$rc" -eq 0 ] || fail "serve exited $rc on SIGTERM"
LASTNUM=$(ls "$STORE" | sed -n 's/.*-\([0-9]*\)\.rsm$/\1/p' | sort -n | tail -1)
if [ "$(ls "$STORE" | grep -c "rsm$")" -gt 0 ] && [ "$LASTNUM" -gt "$MAXNUM" ]; then
  echo "model_versions: after the rollback the trainer published number $LASTNUM (> $MAXNUM)"
fi
echo "model_versions: PASS ($(elapsed) s)"

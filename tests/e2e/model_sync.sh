#!/usr/bin/env bash
# One model across instances (issue 13 item 4, docs/model.md "One model
# across instances"): two `serve` instances in one consumer group on one
# `riskstream broker` (4 partitions), sync.enabled, sync.period 1s.
#  - events and labels are produced keyed by entity, so each instance gets
#    the labels of its own partitions only (checked: both learned labels,
#    and neither learned them all);
#  - the instances publish their versions to the compacted model topic
#    and combine them: both end up serving the SAME version, a combination
#    ("<kind>-<8 hex>-<n>.avg<k>-<8 hex>"), that learned every label both
#    learned (its knowledge = the sum of the instances' own learning), and
#    it is in both model stores;
#  - events produced afterwards are scored with it on both instances (Kafka
#    and Redis), and `riskstream audit --rescore` of such scores matches bit
#    for bit with either instance's store;
#  - a malformed message on the model topic is counted by both
#    (riskstream_model_sync_rejected_total{reason="malformed"}), nothing
#    else changes;
#  - SIGTERM: both exit 0.
# usage: model_sync.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
BIN="${1:?riskstream binary}"; SRC="${2:?source dir}"
for tool in kcat jq redis-cli redis-server curl; do
  command -v "$tool" >/dev/null || { echo "model_sync: $tool not installed (ops/deps.sh installs it)"; exit 1; }
done
T="$(mktemp -d /tmp/rs-sync.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$SRC/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "model_sync FAIL: $*"
  for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; grep -E "sync|error|ERROR" "$f" | tail -n 15; tail -n 5 "$f"; }; done
  exit 1
}
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

"$BIN" gen --seed 5 --entities 600 --duration 6d --label-delay 1d --negative-labels \
  --out "$T/ev.jsonl" --labels-out "$T/lb.jsonl" 2>"$T/gen.log"
N=$(wc -l <"$T/ev.jsonl"); NL=$(wc -l <"$T/lb.jsonl")
URL="$("$SRC/ops/redis.sh" start "$T/redis")"
"$BIN" broker --set topics.partitions=4 >"$T/broker.out" 2>"$T/broker.log" &
PIDS+=($!)
BOOT=""
for _ in $(seq 1 100); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker.out" 2>/dev/null || true)"; [ -n "$BOOT" ] && break; sleep 0.1
done
[ -n "$BOOT" ] || fail "broker did not start"

# a small sequence model: its versions are ~100 KB messages (the mock keeps
# ~5 MB per partition)
conf() { # $1 instance
  cat <<EOF
state:
  dir: $T/state-$1
model:
  publish_every: 300
  publish_interval: 1s
  label_horizon: 1d
seq:
  d_model: 8
  history: 8
  experts: 4
  expert_hidden: 16
  buckets: 256
  max_entities: 4096
sync:
  enabled: true
  period: 1s
  instance: $1
service:
  log_inputs: all
  stats_interval: 0ms
http:
  enabled: true
  port: 0
kafka:
  consumer.session.timeout.ms: "6000"
  # a JoinGroup the mock dropped (a stall of the broker process across
  # the election; tests/scoring/test_service_faults.c, "Mock
  # limitations") is sent again after 13 s, not 303 s: inside the 60 s
  # wait for the split below
  consumer.max.poll.interval.ms: "10000"
EOF
}
declare -A API SP
for i in a b; do
  conf "$i" >"$T/$i.yaml"
  "$BIN" serve --brokers "$BOOT" --redis "$URL" --config "$T/$i.yaml" >"$T/$i.out" 2>"$T/$i.log" &
  SP[$i]=$!; PIDS+=($!)
  for _ in $(seq 1 100); do
    API[$i]="$(sed -n 's/^http: //p' "$T/$i.out" 2>/dev/null || true)"; [ -n "${API[$i]}" ] && break; sleep 0.1
  done
  [ -n "${API[$i]}" ] || fail "serve $i printed no http address"
done
metric() { curl -s "${API[$1]}/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
sum2() { echo $(( ${1:-0} + ${2:-0} )); }
# both in the group, every partition assigned (events + labels: 8)
for _ in $(seq 1 300); do
  pa="$(metric a riskstream_partitions_assigned)"; pb="$(metric b riskstream_partitions_assigned)"
  [ "${pa:-0}" -gt 0 ] && [ "${pb:-0}" -gt 0 ] && [ "$(sum2 "$pa" "$pb")" -eq 8 ] && break; sleep 0.2
done
[ "${pa:-0}" -gt 0 ] && [ "${pb:-0}" -gt 0 ] && [ "$(sum2 "$pa" "$pb")" -eq 8 ] ||
  fail "partitions assigned: a ${pa:-?}, b ${pb:-?} (want both > 0, 8 in all)"
echo "model_sync: 2 instances, partitions a $pa, b $pb ($(elapsed) s)"

jq -r '.entity_id + "\t" + tojson' "$T/ev.jsonl" >"$T/ev.kv"
kcat -P -b "$BOOT" -t events -K '\t' -l "$T/ev.kv" || fail "kcat produce events"
for _ in $(seq 1 600); do
  s="$(sum2 "$(metric a riskstream_events_scored_total)" "$(metric b riskstream_events_scored_total)")"
  [ "$s" -ge "$N" ] && break; sleep 0.2
done
[ "$s" -ge "$N" ] || fail "scored $s of $N events"
jq -r '.entity_id + "\t" + tojson' "$T/lb.jsonl" >"$T/lb.kv"
kcat -P -b "$BOOT" -t labels -K '\t' -l "$T/lb.kv" || fail "kcat produce labels"
for _ in $(seq 1 600); do
  l="$(sum2 "$(metric a riskstream_labels_total)" "$(metric b riskstream_labels_total)")"
  [ "$l" -ge "$NL" ] && break; sleep 0.2
done
[ "$l" -ge "$NL" ] || fail "labels consumed $l of $NL"
echo "model_sync: $N events scored, $NL labels consumed ($(elapsed) s)"

# what each instance learned itself (labels joined + maturity negatives)
# and what its newest version knows, from one /metrics page
learned() { awk '$1 ~ /^riskstream_learned_total/ { s += $2 } END { print s + 0 }' <<<"$1"; }
knows() { awk '$1 == "riskstream_model_sync_knowledge{what=\"labels\"}" { print $2 }' <<<"$1"; }
# settle: each trainer has learned everything queued (counts stable), and
# both serve one combined version that knows what both learned
V=""
prev=""; same=0
for _ in $(seq 1 150); do
  pa_="$(curl -s "${API[a]}/metrics")"; pb_="$(curl -s "${API[b]}/metrics")"
  la="$(learned "$pa_")"; lb="$(learned "$pb_")"; ka="$(knows "$pa_")"; kb="$(knows "$pb_")"
  va="$(curl -s "${API[a]}/v1/models" | jq -r .serving)"
  vb="$(curl -s "${API[b]}/v1/models" | jq -r .serving)"
  cur="$la $lb $va $vb $ka $kb"
  if [ "$va" = "$vb" ] && [ "$ka" = "$kb" ] &&
     [ "${ka:-0}" -eq "$(sum2 "$la" "$lb")" ] && [ "$cur" = "$prev" ]; then
    same=$((same + 1)); [ "$same" -ge 4 ] && { V="$va"; break; }
  else
    same=0
  fi
  prev="$cur"; sleep 0.5
done
[ -n "$V" ] || fail "no convergence: a learned ${la:-?} serves ${va:-?} (knows ${ka:-?} labels), b learned ${lb:-?} serves ${vb:-?} (knows ${kb:-?})"
[ "$la" -gt 0 ] && [ "$lb" -gt 0 ] || fail "an instance learned nothing (a $la, b $lb)"
# the version both serve is a combination, or -- when one instance learned
# on after the last combination and the other did not -- that instance's
# version, which contains the combination (it knows both origins)
[ "$(awk '$1 == "riskstream_model_sync_knowledge{what=\"origins\"}" { print $2 }' <<<"$pa_")" = 2 ] ||
  fail "$V does not know both instances' learning"
ca="$(awk '$1 == "riskstream_model_sync_combines_total" { print $2 }' <<<"$pa_")"
cb="$(awk '$1 == "riskstream_model_sync_combines_total" { print $2 }' <<<"$pb_")"
[ $(( ${ca:-0} + ${cb:-0} )) -gt 0 ] || fail "no combination was made"
case "$V" in *.avg*) KIND="a combination" ;; *) KIND="a version learned on from a combination" ;; esac
ja="$(metric a riskstream_labels_matched_total)"; jb="$(metric b riskstream_labels_matched_total)"
[ "${ja:-0}" -gt 0 ] && [ "${jb:-0}" -gt 0 ] && [ "${ja:-0}" -lt "$NL" ] && [ "${jb:-0}" -lt "$NL" ] ||
  fail "labels joined: a ${ja:-?}, b ${jb:-?} of $NL (want each a part)"
for i in a b; do
  [ -f "$T/state-$i/riskstream/models/$V.rsm" ] || fail "$V not in the store of $i: $(ls "$T/state-$i/riskstream/models")"
  [ -f "$T/state-$i/riskstream/models/$V.sync" ] || fail "$V has no lineage file in the store of $i"
  c="$(metric $i riskstream_model_sync_combines_total)"; r="$(metric $i riskstream_model_sync_versions_received_total)"
  n="$(metric $i riskstream_model_sync_instances)"
  [ "${n:-0}" -eq 2 ] && [ "${r:-0}" -gt 0 ] || fail "$i: instances ${n:-?}, versions received ${r:-?}"
  echo "model_sync: $i: learned $( [ $i = a ] && echo "$la" || echo "$lb" ) itself, joined $( [ $i = a ] && echo "$ja" || echo "$jb" ) labels, received $r versions, $c combinations"
done
echo "model_sync: both serve $V ($KIND), which learned all $ka labels the two learned ($(elapsed) s)"
grep -h 'msg="combined version\|msg="adopting' "$T/a.log" "$T/b.log" | sed 's/.*mod=sync msg=/model_sync:   /' | tail -n 4

# events after convergence: scored with V by both instances; their event
# time is the stream's newest, so no watermark moves and nothing matures
TMAX=$(jq -s 'map(.event_time_ms) | max' "$T/ev.jsonl")
for k in $(seq 1 40); do
  printf 'card-%d\t{"id":"probe-%d","type":"card_tx","entity_id":"card-%d","counterparty_id":"m-1","event_time_ms":%d,"amount":%d.5}\n' \
    "$k" "$k" "$k" "$TMAX" $((k * 7))
done >"$T/probe.kv"
kcat -P -b "$BOOT" -t events -K '\t' -l "$T/probe.kv" || fail "kcat produce probes"
for _ in $(seq 1 300); do
  s="$(sum2 "$(metric a riskstream_events_scored_total)" "$(metric b riskstream_events_scored_total)")"
  [ "$s" -ge $((N + 40)) ] && break; sleep 0.2
done
[ "$s" -ge $((N + 40)) ] || fail "scored $s of $((N + 40)) events with the probes"
kcat -C -b "$BOOT" -t scores -o beginning -e -q -f '%p\t%s\n' 2>/dev/null |
  awk -F'\t' '$2 ~ /"probe-/' >"$T/probe.scores" || true
[ "$(wc -l <"$T/probe.scores")" -eq 40 ] || fail "$(wc -l <"$T/probe.scores") probe scores of 40"
bad=$(cut -f2 "$T/probe.scores" | jq -r "select(.model_version != \"$V\") | .model_version" | sort -u)
[ -z "$bad" ] || fail "probes scored with $bad, want $V"
# partitions of the probes' scores: both instances scored some (the scores
# topic is keyed by entity, as the events)
np=$(cut -f1 "$T/probe.scores" | sort -u | wc -l)
[ "$np" -ge 2 ] || fail "probes on $np partition(s) only"
SOCK="${URL#unix://}"
for k in 3 17; do
  rec="$("$BIN" audit "probe-$k" --json --redis "$URL")"
  [ "$(echo "$rec" | jq -r .model_version)" = "$V" ] || fail "redis record of probe-$k: $rec"
  for i in a b; do
    "$BIN" audit "probe-$k" --rescore --store "$T/state-$i/riskstream/models" --redis "$URL" \
      >"$T/rescore.out" 2>&1 || fail "rescore probe-$k with the store of $i: $(cat "$T/rescore.out")"
    grep -q "rescore: match (bit for bit)" "$T/rescore.out" || fail "rescore: $(cat "$T/rescore.out")"
  done
done
echo "model_sync: 40 events scored with $V on both instances; audit --rescore matches bit for bit with either store"

# a malformed message on the model topic: counted, ignored
printf 'zz\tnot a model\n' | kcat -P -b "$BOOT" -t riskstream-models -K '\t' || fail "kcat produce garbage"
for _ in $(seq 1 100); do
  ma="$(curl -s "${API[a]}/metrics" | awk '$1 == "riskstream_model_sync_rejected_total{reason=\"malformed\"}" { print $2 }')"
  mb="$(curl -s "${API[b]}/metrics" | awk '$1 == "riskstream_model_sync_rejected_total{reason=\"malformed\"}" { print $2 }')"
  [ "${ma:-0}" -ge 1 ] && [ "${mb:-0}" -ge 1 ] && break; sleep 0.2
done
[ "${ma:-0}" -ge 1 ] && [ "${mb:-0}" -ge 1 ] || fail "malformed message not counted (a ${ma:-?}, b ${mb:-?})"
[ "$(curl -s "${API[a]}/v1/models" | jq -r .serving)" = "$V" ] || fail "a changed version after a malformed message"

for i in a b; do
  kill -TERM "${SP[$i]}"
  rc=0; wait "${SP[$i]}" || rc=$?
  [ "$rc" -eq 0 ] || fail "serve $i exited $rc on SIGTERM"
done
echo "model_sync: PASS ($(elapsed) s)"

#!/usr/bin/env bash
# Counterparty (and every other non-entity key) features are exact across
# the instances of one consumer group (issue 13, item 3; scoring/cpstage.h).
#
# One `riskstream broker` with 8 partitions per topic and a generated card
# stream on it (`riskstream gen --brokers`: 8 days, 1 000 cards, 30
# merchants, fraud labels 2 days later; ~21 000 events, ~500 labels).  Two
# instances A and B of one group (g-multi) score it: A starts on the
# backlog and stops gracefully after a third of it, B joins while A runs:
# rebalances hand the partitions over at the committed offsets.  When every event is scored, A and B stop, and
# one instance S of another group (g-single) scores the same topics alone.
# The layout has 8 features so that every one is in each score record's
# explanation (service.explain_top: 8): 6 of the counterparty (1-hour count
# and mean amount: float sums; 1- and 7-day counts and fraud rates ending at
# label maturity, in day buckets: label-aware), 1 of the categorical field
# mcc, 1 of the card.  Checks:
#  - every event scored by the group (A + B, both a share) and by S;
#  - for every event, the 7 non-entity features of its record equal S's,
#    value for value (the records print float32 in shortest form, so equal
#    text = equal bits); duplicates re-scored after the rebalance too;
#  - the fraud rates are not all 0 (labels reached the merchants' state
#    from every partition);
#  - every instance's counterparty stage reports 0 misses and 0 messages
#    merged out of order (the final `cpstage:` log line);
#  - the counterparty wait per event (p50/p99, from that line) is printed.
# A control group of two with cpstage.enabled=false (each instance from its
# own partitions), run beside A and B, must DIFFER from S -- the test sees
# the bug it guards against.
# usage: cp_scaleout.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
BIN="${1:?binary}"; SRC="${2:?source dir}"
for tool in jq redis-cli redis-server; do
  command -v "$tool" >/dev/null || { echo "cp_scaleout: $tool not installed (ops/deps.sh installs it)"; exit 1; }
done
T="$(mktemp -d /tmp/rs-cpscale.XXXXXX)"
export RISKSTREAM_STATE_DIR="$T/state"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$SRC/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "cp_scaleout FAIL: $*"; for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 12 "$f"; }; done; exit 1; }
URL="$("$SRC/ops/redis.sh" start "$T/redis")"
SOCK="${URL#unix://}"

cat >"$T/rs.yaml" <<'EOF'
features:
  preset: none
  specs:
    - {key: counterparty, window: 1h, aggs: [count, mean]}
    - {key: counterparty, windows: [1d, 7d], offset: maturity, bucket: 1d, aggs: [count, fraud_rate]}
    - {key: mcc, window: 6h, aggs: [count]}
    - {key: entity, window: 1d, aggs: [count]}
  max_keys: 4096
  max_counterparties: 4096
  label_index: 65536
model:
  kind: lr
  label_delay: 2d
  log_segment: 1048576      # 5 instances x 8 partitions: not 256 MB each
service:
  explain_top: 8
  stats_interval: 0ms
kafka:
  consumer.session.timeout.ms: 6000
  consumer.heartbeat.interval.ms: 500
  consumer.max.poll.interval.ms: 10000   # a join the mock dropped: 13 s (scaleout.sh)
EOF

"$BIN" broker --set topics.partitions=8 >"$T/broker.out" 2>"$T/broker.log" &
PIDS+=($!)
for _ in $(seq 1 100); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker.out" 2>/dev/null || true)"; [ -n "$BOOT" ] && break; sleep 0.1
done
[ -n "$BOOT" ] || fail "broker did not start"

"$BIN" gen --seed 5 --entities 1000 --counterparties 30 --duration 8d --label-delay 2d \
  --fraud-rate 0.02 --out "$T/ev.jsonl" --labels-out "$T/lb.jsonl" 2>"$T/gen.log"
NEV=$(wc -l <"$T/ev.jsonl")
NLB=$(wc -l <"$T/lb.jsonl")
[ "$NEV" -gt 3000 ] && [ "$NLB" -gt 50 ] || fail "generator: $NEV events, $NLB labels"

start_serve() { # $1 name $2 group [extra args]
  local name="$1" group="$2"; shift 2
  # records stored as JSON (redis.record_format=json): features() reads
  # them with redis-cli MGET and jq
  "$BIN" serve --config "$T/rs.yaml" --brokers "$BOOT" --redis "$URL" --group "$group" \
    --set redis.key_prefix="${group}:" --set redis.record_format=json "$@" >"$T/$name.out" 2>"$T/$name.log" &
  PIDS+=($!)
  eval "PID_$name=$!"
}
scored() { # $1 prefix -> distinct event ids with a score record
  redis-cli -s "$SOCK" --scan --pattern "$1:score:*" | wc -l
}
wait_scored() { # $1 prefix $2 count
  for _ in $(seq 1 600); do
    [ "$(scored "$1")" -ge "$2" ] && return 0; sleep 0.2
  done
  fail "$1: $(scored "$1") of $2 events scored"
}
stop() { # $1 pid
  kill -TERM "$1"; local rc=0; wait "$1" || rc=$?
  [ "$rc" -eq 0 ] || fail "serve exited $rc on SIGTERM"
}
wait_assigned() { # $1 name
  for _ in $(seq 1 300); do
    grep -q "assigned [1-9][0-9]* partition" "$T/$1.log" && return 0; sleep 0.1
  done
  fail "$1: no partition assigned"
}
# the shared features of every record: "id name=value name=value ..."
features() { # $1 prefix $2 out
  redis-cli -s "$SOCK" --scan --pattern "$1:score:*" | sort >"$T/$1.keys"
  : >"$T/$1.json"
  split -l 500 "$T/$1.keys" "$T/$1.chunk."
  for c in "$T/$1".chunk.*; do
    xargs redis-cli -s "$SOCK" MGET <"$c" >>"$T/$1.json"
  done
  rm -f "$T/$1".chunk.*
  jq -r '[.event_id] + (.explanation.feature_contributions
          | map(select(.name | test("^(cp|mcc)_"))) | sort_by(.name)
          | map(.name + "=" + (.value | tostring))) | join(" ")' "$T/$1.json" | sort >"$2"
}
produce() {
  "$BIN" gen --seed 5 --entities 1000 --counterparties 30 --duration 8d --label-delay 2d \
    --fraud-rate 0.02 --brokers "$BOOT" --rate 0 2>"$T/produce.log" || fail "gen --brokers failed"
}
summary() { # $1 name -> the cpstage line
  grep 'mod=cpstage msg="merged' "$T/$1.log" | tail -1 | sed 's/.*msg="\(.*\)"$/\1/'
}
check_cp() { # $1 name: no miss, nothing out of order
  local s; s="$(summary "$1")"
  [ -n "$s" ] || fail "$1: no cpstage summary line"
  echo "cp_scaleout: $1: $s"
  grep -q '(0 reordered,' <<<"$s" || fail "$1: messages merged out of order: $s"
  grep -q '(0 timeouts, 0 gone)' <<<"$s" || fail "$1: events without their counterparty features: $s"
}

# ---- the stream first (the same topics for every run: the canonical order
# depends on the partitions' contents only); then the group (A, B) and the
# control group (C1, C2: cpstage.enabled=false, each instance from its own
# partitions): A and C1 start on the backlog and stop gracefully after
# HALF events (service.max_events); B and C2 join while they run, so the
# partitions are handed over at the committed offsets by one or two
# rebalances whatever the speed of the machine
HALF=$(( NEV / 3 ))
produce
start_serve A g-multi --set service.max_events=$HALF
start_serve C1 g-local --set cpstage.enabled=false --set service.max_events=$HALF
wait_assigned A; wait_assigned C1
start_serve B g-multi; start_serve C2 g-local --set cpstage.enabled=false
wait_scored g-multi "$NEV"
wait_scored g-local "$NEV"
for p in "$PID_A" "$PID_C1"; do
  rc=0; wait "$p" || rc=$?; [ "$rc" -eq 0 ] || fail "serve (max_events) exited $rc"
done
stop "$PID_B"; stop "$PID_C2"
SA=$(sed -n 's/^serve: \([0-9]*\) events scored.*/\1/p' "$T/A.out")
SB=$(sed -n 's/^serve: \([0-9]*\) events scored.*/\1/p' "$T/B.out")
echo "cp_scaleout: group of 2: A scored ${SA:-?}, B scored ${SB:-?} of $NEV events"
[ "${SA:-0}" -gt 0 ] && [ "${SB:-0}" -gt 0 ] || fail "one instance scored nothing (A ${SA:-?}, B ${SB:-?})"
check_cp A; check_cp B

# ---- one instance alone, same topics
start_serve S g-single
wait_scored g-single "$NEV"
stop "$PID_S"
check_cp S

features g-multi "$T/multi.txt"
features g-single "$T/single.txt"
features g-local "$T/local.txt"
[ "$(wc -l <"$T/single.txt")" -eq "$NEV" ] || fail "single: $(wc -l <"$T/single.txt") records for $NEV events"
nf=$(head -1 "$T/single.txt" | wc -w)
[ "$nf" -eq 8 ] || fail "expected 7 shared features per record, got $((nf - 1)): $(head -1 "$T/single.txt")"
if ! diff -q "$T/single.txt" "$T/multi.txt" >/dev/null; then
  diff "$T/single.txt" "$T/multi.txt" | head -6
  fail "$(diff "$T/single.txt" "$T/multi.txt" | grep -c '^>' || true) events: shared features of the group differ from one instance"
fi
fr=$(grep -c 'cp_fraud_rate_7d_off2d=[1-9]\|cp_fraud_rate_7d_off2d=0\.[0-9]*[1-9]' "$T/single.txt" || true)
[ "$fr" -gt 50 ] || fail "only $fr events with a counterparty fraud rate > 0: labels did not reach the store"
echo "cp_scaleout: $NEV events, 7 shared features each, group of 2 = one instance bit for bit ($fr with a 7-day fraud rate > 0)"
nd=$(diff "$T/single.txt" "$T/local.txt" | grep -c '^>' || true)
echo "cp_scaleout: control (cpstage.enabled=false, 2 instances): $nd of $NEV events differ from one instance"
[ "$nd" -gt $(( NEV / 10 )) ] || fail "control: only $nd events differ: the test would not see partial counts"
echo "cp_scaleout: PASS"

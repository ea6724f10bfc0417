#!/usr/bin/env bash
# gen --input FILE --map rtf:... (issue 15, "input users have"): a
# run-to-failure file becomes the stream `serve` reads with
# maintenance.enabled -- its rows as events in time order and one failure
# label per unit (value 1, naming its last cycle, known
# gen.failure_label_delay after it), as JSON lines and to Kafka; usage
# errors exit 2 with the reason.
# usage: gen_rtf.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
BIN="${1:?binary}"
SRC="${2:?source dir}"
T="$(mktemp -d /tmp/rs-genrtf.XXXXXX)"
BP=""
cleanup() {
  [ -n "$BP" ] && kill "$BP" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "gen_rtf FAIL: $*"; exit 1; }

# 3 units of 4, 6 and 5 cycles: unit cycle 3 settings 4 sensors
awk 'BEGIN { n[1]=4; n[2]=6; n[3]=5;
  for (u = 1; u <= 3; u++) for (c = 1; c <= n[u]; c++)
    printf "%d %d 0.0 0.0 100.0 %.2f %.2f %.2f %.2f\n", u, c, 500 + c, 600 - c, 10 + u, 20 }' >"$T/rtf.txt"

"$BIN" gen --input "$T/rtf.txt" --map "rtf:period=1h" --out "$T/ev.jsonl" \
  --labels-out "$T/lb.jsonl" 2>"$T/gen.err" || fail "gen exited $?: $(cat "$T/gen.err")"
[ "$(wc -l <"$T/ev.jsonl")" -eq 15 ] || fail "events: $(wc -l <"$T/ev.jsonl")"
[ "$(wc -l <"$T/lb.jsonl")" -eq 3 ] || fail "labels: $(cat "$T/lb.jsonl")"
grep -q '15 events, 3 failure labels' "$T/gen.err" || fail "summary: $(cat "$T/gen.err")"
# events in time order
awk -F'"event_time_ms":' '{ split($2, a, ","); if (a[1] < p) exit 1; p = a[1] }' "$T/ev.jsonl" ||
  fail "events not in time order"
# each label names its unit's last cycle, 1 h after it
for uc in 1:4 2:6 3:5; do
  u="${uc%:*}"; c="${uc#*:}"
  et="$(grep "\"id\":\"unit-$u-c$c\"" "$T/ev.jsonl" | sed 's/.*"event_time_ms":\([0-9]*\).*/\1/')"
  [ -n "$et" ] || fail "no event unit-$u-c$c"
  grep -q "{\"event_id\":\"unit-$u-c$c\",\"entity_id\":\"unit-$u\",\"value\":1,\"label_time_ms\":$((et + 3600000))," "$T/lb.jsonl" ||
    fail "label of unit $u: $(grep "unit-$u\"" "$T/lb.jsonl")"
done
# the report delay is gen.failure_label_delay; failures=none: no label
"$BIN" gen --input "$T/rtf.txt" --map "rtf:period=1h" --set gen.failure_label_delay=2h \
  --out /dev/null --labels-out "$T/lb2.jsonl" 2>/dev/null || fail "gen delay 2h"
et="$(grep '"id":"unit-1-c4"' "$T/ev.jsonl" | sed 's/.*"event_time_ms":\([0-9]*\).*/\1/')"
grep -q "\"event_id\":\"unit-1-c4\",.*\"label_time_ms\":$((et + 7200000))," "$T/lb2.jsonl" || fail "delay 2h: $(head -1 "$T/lb2.jsonl")"
"$BIN" gen --input "$T/rtf.txt" --map "rtf:period=1h,failures=none" --out /dev/null \
  --labels-out "$T/lb3.jsonl" 2>/dev/null || fail "gen failures=none"
[ ! -s "$T/lb3.jsonl" ] || fail "failures=none wrote labels"
# usage errors: exit 2 naming the problem
rc=0; "$BIN" gen --input "$T/rtf.txt" --out /dev/null 2>"$T/e1" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- '--input needs --map rtf' "$T/e1" || fail "no --map: rc $rc $(cat "$T/e1")"
rc=0; "$BIN" gen --input "$T/rtf.txt" --map rtf --format csv 2>"$T/e2" >/dev/null || rc=$?
[ "$rc" -eq 2 ] && grep -q 'JSON lines only' "$T/e2" || fail "--format csv: rc $rc $(cat "$T/e2")"
rc=0; "$BIN" gen --input "$T/rtf.txt" --map "rtf:period=banana" 2>"$T/e3" >/dev/null || rc=$?
[ "$rc" -eq 2 ] && grep -q 'period' "$T/e3" || fail "bad map: rc $rc $(cat "$T/e3")"
rc=0; "$BIN" gen --input "$T/missing.txt" --map rtf 2>"$T/e4" >/dev/null || rc=$?
[ "$rc" -eq 1 ] && grep -q 'cannot read' "$T/e4" || fail "missing file: rc $rc $(cat "$T/e4")"
echo "gen_rtf: files: 15 events, 3 failure labels at each unit's last cycle + delay"

# to Kafka: the embedded broker, read back with kcat
"$BIN" broker >"$T/broker.out" 2>&1 &
BP=$!
BOOT=""
for _ in $(seq 1 100); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker.out" 2>/dev/null | head -1 || true)"
  [ -n "$BOOT" ] && break
  sleep 0.1
done
[ -n "$BOOT" ] || fail "broker did not start"
"$BIN" gen --input "$T/rtf.txt" --map "rtf:period=1h" --brokers "$BOOT" --rate 0 \
  2>"$T/gk.err" >/dev/null || fail "gen --brokers exited $?: $(cat "$T/gk.err")"
ne="$(kcat -C -b "$BOOT" -t events -o beginning -e -q 2>/dev/null | wc -l)"
nl="$(kcat -C -b "$BOOT" -t labels -o beginning -e -q 2>/dev/null | wc -l)"
[ "$ne" -eq 15 ] && [ "$nl" -eq 3 ] || fail "kafka: $ne events, $nl labels"
echo "gen_rtf: kafka: $ne events, $nl labels"
echo "gen_rtf: PASS"

#!/usr/bin/env bash
# The demo and the generator say what the embedded broker does to the data:
#  - a demo on one partition whose scores outgrow the mock's ~5 MB
#    retention logs the drop at error level and says it again, loudly, in
#    its summary; it ends with the audit report of a decision (not raw
#    JSON with 17-digit floats);
#  - `audit --entity E --since 7d` on the demo's data (event times long
#    before now) counts back from E's newest event and finds it;
#  - `gen --brokers` is paced by default and says so; --rate 0 warns;
#  - `demo --sensors` prints the maintenance figures (caught >= H/3 ahead,
#    lead time, healthy readings in alert) measured from the stream.
# usage: demo_honest.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
BIN="${1:?binary}"
SRC="${2:?source dir}"
T="$(mktemp -d /tmp/rs-demo.XXXXXX)"
BP=""
cleanup() {
  [ -n "$BP" ] && kill "$BP" 2>/dev/null || true
  "$SRC/ops/redis.sh" stop "$T/redis" || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "demo_honest FAIL: $*"; echo "--- output (tail)"; tail -n 40 "$T/demo.out" 2>/dev/null || true; exit 1; }

URL="$("$SRC/ops/redis.sh" start "$T/redis")"
"$BIN" demo --redis "$URL" --events 8000 --set topics.partitions=1 >"$T/demo.out" 2>&1 ||
  fail "demo exited $?"
grep -q '^demo summary: 10,000 events scored' "$T/demo.out" || fail "summary"
grep -q 'level=error .*embedded kafka: retention (~5 MB per partition) has dropped the oldest [0-9]* messages of topic .scores.' "$T/demo.out" ||
  fail "no error-level log of the retention drop"
grep -q "WARNING: the embedded broker's retention (~5 MB per partition) dropped the oldest [0-9,]* messages of the scores topic 'scores'" "$T/demo.out" ||
  fail "summary does not say that scores were dropped"
grep -q 'never scored' "$T/demo.out" && fail "input was lost (the feeder's backlog bound should prevent it)"
grep -q '^audit report of [^ ]*, read back from Redis' "$T/demo.out" || fail "no audit report"
sed -n '/^audit report of/,$p' "$T/demo.out" >"$T/report"
for h in '^event  ' '^score  ' '^model  ' '^reasons$' '^feature contributions'; do
  grep -q "$h" "$T/report" || fail "report lacks '$h'"
done
grep -Eq '[0-9]\.[0-9]{12,}' "$T/report" && fail "raw floats in the report"
grep -q '"gate_weight"' "$T/demo.out" && fail "raw JSON at the end of the demo"
echo "demo_honest: $(grep -o 'dropped the oldest [0-9,]* messages of the scores topic' "$T/demo.out"), report of $(sed -n 's/^audit report of \([^,]*\),.*/\1/p' "$T/demo.out") ($(sed -n 's/^score  *[0-9.]*  \([a-z]*\).*/\1/p' "$T/report"))"

# demo --sensors: predictive maintenance, measured from the stream (every
# reading's record read back from Redis against the generator's truth, as
# eval --maintenance reports it); the policy is replayed over the score the
# service's policy decided on (alert_score where the record carries it) and
# the demo prints how many decisions differ from the records' (even 0).
"$BIN" demo --redis "$URL" --sensors --entities 20 --duration 6d >"$T/sensors.out" 2>&1 ||
  fail "demo --sensors exited $?"
grep -q '^  maintenance (alerts from the stream, read back from Redis, against the generator.s truth): [0-9]* failures, [0-9]* caught at least H/3' "$T/sensors.out" ||
  fail "demo --sensors: no maintenance figures"
grep -q '^serve  *[0-9.]* ' "$T/sensors.out" || fail "demo --sensors: no maintenance table"
grep -q 'readings without a record in Redis' "$T/sensors.out" &&
  fail "demo --sensors: $(grep 'readings without a record' "$T/sensors.out")"
grep -q 'running ROC AUC' "$T/sensors.out" && fail "demo --sensors: a fraud-label AUC in maintenance mode"
grep -q "^  alert policy replayed over the score the service's policy decided on (the record's alert_score where it carries one: [0-9]* of [1-9][0-9]* readings; else score): [0-9]* decisions differ from the records'$" "$T/sensors.out" ||
  fail "demo --sensors: no replay check line"
grep -q "^  the model's own score (the records' score): ROC AUC [0-9.]*, average precision [0-9.]*;" "$T/sensors.out" ||
  fail "demo --sensors: no model-score AUC line"
echo "demo_honest: sensors: $(grep -o '[0-9]* decisions differ from the records' "$T/sensors.out")"
echo "demo_honest: sensors: $(grep -o '[0-9]* failures, [0-9]* caught at least H/3 = [0-9.]* h ahead ([0-9.]*%)' "$T/sensors.out" | head -1)"

# audit --entity E --since 7d counts back from E's newest event: the
# demo's event times (January 2026, the generator's start) are far from
# the wall clock, and counted from now it found nothing.
ENT="$(sed -n 's/^event  *[^ ]*  (entity \(.*\))$/\1/p' "$T/report")"
[ -n "$ENT" ] || fail "no entity in the report"
"$BIN" audit --entity "$ENT" --since 7d --redis "$URL" >"$T/since.out" 2>&1 || fail "audit --since 7d: $(cat "$T/since.out")"
grep -q "^--since 7d: counted back from the newest event of entity $ENT" "$T/since.out" || fail "--since note: $(head -2 "$T/since.out")"
grep -q 'decisions\? of entity' "$T/since.out" || fail "audit --since 7d found nothing: $(cat "$T/since.out")"
rc=0; "$BIN" audit --entity "$ENT" --since 2099-01-01T00:00:00Z --redis "$URL" >/dev/null 2>"$T/since2.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'in that time range' "$T/since2.err" || fail "absolute --since in the future: rc $rc"
echo "demo_honest: audit --entity $ENT --since 7d: $(tail -1 "$T/since.out")"

# gen --brokers: paced by default, --rate 0 warns.
"$BIN" broker >"$T/broker.out" 2>&1 &
BP=$!
BOOT=""
for _ in $(seq 1 100); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker.out" 2>/dev/null | head -1 || true)"
  [ -n "$BOOT" ] && break
  sleep 0.1
done
[ -n "$BOOT" ] || fail "broker did not start"
"$BIN" gen --brokers "$BOOT" --events 20 2>"$T/gen1.err" >/dev/null || fail "gen exited $?"
grep -q 'producing to .* at 2000 events/s' "$T/gen1.err" || fail "gen default pace: $(cat "$T/gen1.err")"
"$BIN" gen --brokers "$BOOT" --events 20 --rate 0 2>"$T/gen2.err" >/dev/null || fail "gen --rate 0 exited $?"
grep -q 'WARNING: --rate 0' "$T/gen2.err" || fail "gen --rate 0 does not warn: $(cat "$T/gen2.err")"
echo "demo_honest: gen paced by default, --rate 0 warns"
echo "demo_honest: PASS"

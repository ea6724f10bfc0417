#!/usr/bin/env bash
# audit_cli.sh -- the command-line contract of `riskstream audit` and
# `riskstream api` against a private redis-server; records are written
# with redis-cli (a client we did not write).
#
#   audit_cli.sh RISKSTREAM_BIN
set -uo pipefail
BIN="${1:?usage: audit_cli.sh RISKSTREAM_BIN}"
T="$(mktemp -d /tmp/rs-audit.XXXXXX)"
RP=""; AP=""
cleanup() {
  [ -n "$AP" ] && kill "$AP" 2>/dev/null && wait "$AP" 2>/dev/null
  [ -n "$RP" ] && kill "$RP" 2>/dev/null && wait "$RP" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fails=0
expect() { # expect CODE PATTERN -- cmd...
  local code="$1" pat="$2"; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -qE -- "$pat" "$T/out" "$T/err"; then
    echo "FAIL: '$*' -> exit $rc (want $code), output lacks /$pat/:"; head -5 "$T/out" "$T/err"
    fails=$((fails+1))
  else
    echo "ok: $* -> $rc"
  fi
}

S="$T/r.sock"
redis-server --port 0 --unixsocket "$S" --save '' --appendonly no --dir "$T" \
  --logfile "$T/redis.log" &
RP=$!
for _ in $(seq 100); do redis-cli -s "$S" ping >/dev/null 2>&1 && break; sleep 0.1; done
R="unix://$S"

rec() { # rec ID ENTITY TIME_MS SCORE DECISION
  printf '{"event_id":"%s","entity_id":"%s","score":%s,"decision":"%s","model_version":"seq-9","event_time_ms":%s,"scored_at_ms":%s,"latency_us":977,"explanation":{"attended_events":[{"event_id":"old-1","event_time_ms":%s,"amount":19.99,"counterparty_id":"m-1","weight":0.61}],"feature_contributions":[{"name":"amount_z","value":4.5,"contribution":0.3},{"name":"age_days","value":900,"contribution":-0.12}],"experts":[{"expert":1,"gate_weight":0.8}],"reasons":["amount 4.5x this card'"'"'s mean"]},"flags":0,"schema_version":1}' \
    "$1" "$2" "$4" "$5" "$3" $(($3 + 9)) $(($3 - 600000))
}
NOW=$(( $(date +%s) * 1000 ))
for i in 1 2 3; do
  t=$((NOW - (10 - i) * 86400000))   # 9, 8, 7 days ago
  redis-cli -s "$S" SET "rs:score:tx-$i" "$(rec tx-$i card-7 $t 0.$((i * 3)) review)" >/dev/null
  redis-cli -s "$S" ZADD rs:entity:card-7:scores "$t" "tx-$i" >/dev/null
done

for c in audit api; do
  expect 0 "usage: riskstream $c" -- "$BIN" "$c" --help
done
expect 0 "score +0\.3000 +review" -- "$BIN" audit tx-1 --redis "$R"
expect 0 "amount_z" -- "$BIN" audit tx-1 --redis "$R"
expect 0 "expert 1" -- "$BIN" audit tx-1 --redis "$R"
expect 0 "old-1" -- "$BIN" audit tx-1 --redis "$R"
# a maintenance alert decided by the cold-start blend: the record's score is
# the model's own, alert_score the one the policy decided on (issue 15)
redis-cli -s "$S" SET rs:score:m-1 "$(rec m-1 machine-A "$NOW" 0.01 alert | sed 's/,"schema_version"/,"alert_score":0.618,"schema_version"/')" >/dev/null
expect 0 "score +0\.0100 +alert" -- "$BIN" audit m-1 --redis "$R"
expect 0 "alert score 0\.6180 +\(the alert policy's" -- "$BIN" audit m-1 --redis "$R"
if "$BIN" audit tx-1 --redis "$R" 2>&1 | grep -q "alert score"; then
  echo "FAIL: audit tx-1 prints an alert score it does not have"; fails=$((fails+1))
else echo "ok: no alert score without the field"; fi
expect 1 "no score for event 'nope' \(expired after redis.ttl, or never scored\)" -- "$BIN" audit nope --redis "$R"
expect 1 "[Rr]edis" -- "$BIN" audit tx-1 --redis "unix://$T/none.sock"
expect 2 "no Redis configured" -- "$BIN" audit tx-1
expect 2 "either EVENT_ID or --entity" -- "$BIN" audit --redis "$R"
expect 2 "either EVENT_ID or --entity" -- "$BIN" audit tx-1 --entity card-7 --redis "$R"
expect 2 "since" -- "$BIN" audit --entity card-7 --since soon --redis "$R"
expect 2 "limit" -- "$BIN" audit --entity card-7 --limit 0 --redis "$R"
expect 2 "unexpected argument" -- "$BIN" audit a b --redis "$R"

# --json is the stored record (same JSON value), pretty-printed
"$BIN" audit tx-2 --json --redis "$R" >"$T/j" 2>/dev/null
if command -v jq >/dev/null; then
  if [ "$(jq -cS . "$T/j")" = "$(redis-cli -s "$S" GET rs:score:tx-2 | jq -cS .)" ] &&
     [ "$(wc -l <"$T/j")" -gt 10 ]; then echo "ok: --json = stored record"
  else echo "FAIL: --json differs from the stored record"; fails=$((fails+1)); fi
fi

# entity list: newest first, --limit, --since as a duration (counted back
# from the entity's newest event, 7 days ago) and as ISO (absolute)
"$BIN" audit --entity card-7 --redis "$R" >"$T/l" 2>&1
if [ "$(grep -o 'tx-[0-9]' "$T/l" | tr '\n' ' ')" = "tx-3 tx-2 tx-1 " ]; then echo "ok: entity newest first"
else echo "FAIL: entity order:"; cat "$T/l"; fails=$((fails+1)); fi
"$BIN" audit --entity card-7 --limit 2 --redis "$R" >"$T/l" 2>&1
[ "$(grep -c 'tx-[0-9]' "$T/l")" -eq 2 ] && echo "ok: --limit 2" || { echo "FAIL: --limit"; fails=$((fails+1)); }
"$BIN" audit --entity card-7 --since 36h --redis "$R" >"$T/l" 2>&1
[ "$(grep -o 'tx-[0-9]' "$T/l" | tr '\n' ' ')" = "tx-3 tx-2 " ] && grep -q '^--since 36h: counted back from the newest event of entity card-7' "$T/l" &&
  echo "ok: --since duration" || { echo "FAIL: --since duration"; cat "$T/l"; fails=$((fails+1)); }
ISO=$(date -u -d "@$(( NOW / 1000 - 8 * 86400 - 60 ))" +%Y-%m-%dT%H:%M:%SZ)
"$BIN" audit --entity card-7 --since "$ISO" --redis "$R" >"$T/l" 2>&1
[ "$(grep -c 'tx-[0-9]' "$T/l")" -eq 2 ] && echo "ok: --since ISO" || { echo "FAIL: --since ISO"; cat "$T/l"; fails=$((fails+1)); }
expect 1 "no scores for entity 'nobody'" -- "$BIN" audit --entity nobody --redis "$R"

# api: config errors are 2, serving prints its URL, SIGTERM stops it (0)
expect 2 "http.bind" -- "$BIN" api --redis "$R" --bind nowhere
expect 2 "RS_NO_SUCH_TOKEN" -- "$BIN" api --redis "$R" --set http.token_env=RS_NO_SUCH_TOKEN
expect 2 "no Redis configured" -- "$BIN" api
"$BIN" api --redis "$R" --port 0 >"$T/api.out" 2>"$T/api.err" &
AP=$!
URL=""
for _ in $(seq 100); do URL=$(sed -n 's/^http: //p' "$T/api.out" 2>/dev/null || true); [ -n "$URL" ] && break; sleep 0.1; done
if [[ "$URL" =~ ^http://127\.0\.0\.1:[0-9]+$ ]]; then echo "ok: api prints $URL"
else echo "FAIL: api printed '$URL'"; fails=$((fails+1)); fi
PORT=${URL##*:}
if [ -n "$PORT" ]; then
  expect 1 "cannot listen" -- "$BIN" api --redis "$R" --port "$PORT"
fi
kill -TERM "$AP"; wait "$AP"; rc=$?; AP=""
[ "$rc" -eq 0 ] && echo "ok: api stops on SIGTERM" || { echo "FAIL: api exit $rc on SIGTERM"; fails=$((fails+1)); }

echo "audit_cli: $fails failure(s)"
[ "$fails" -eq 0 ]

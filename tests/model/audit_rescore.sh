#!/usr/bin/env bash
# audit_rescore.sh -- the contract of `riskstream audit EVENT_ID --rescore`
# against a private redis-server: score records and input logs as the
# service writes them (rs:score:<id>, rs:input:<id>), put there with
# redis-cli (a client we did not write), and a model store with two
# versions, both made by rescore_fixture (tests/model/rescore_fixture.c).
#
#   audit_rescore.sh RISKSTREAM_BIN RESCORE_FIXTURE_BIN
set -uo pipefail
BIN="${1:?usage: audit_rescore.sh RISKSTREAM_BIN RESCORE_FIXTURE_BIN}"
FIX="${2:?usage: audit_rescore.sh RISKSTREAM_BIN RESCORE_FIXTURE_BIN}"
command -v redis-server >/dev/null || { echo "SKIP: no redis-server"; exit 0; }
T="$(mktemp -d /tmp/rs-rescore.XXXXXX)"
RP=""
cleanup() {
  [ -n "$RP" ] && kill "$RP" 2>/dev/null && wait "$RP" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fails=0
expect() { # expect CODE PATTERN -- cmd...
  local code="$1" pat="$2"; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -qE -- "$pat" "$T/out" "$T/err"; then
    echo "FAIL: '$*' -> exit $rc (want $code), output lacks /$pat/:"; head -8 "$T/out" "$T/err"
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

for kind in seq lr; do
  D="$T/$kind"; mkdir -p "$D"
  read -r V1 V2 < <("$FIX" "$D" "$kind") || { echo "FAIL: fixture $kind"; exit 1; }
  P="rs$kind:"                               # one key prefix per kind
  for i in $(seq 0 39); do
    redis-cli -s "$S" SET "${P}score:ev-$i" "$(cat "$D/ev-$i.json")" >/dev/null
    redis-cli -s "$S" -x SET "${P}input:ev-$i" <"$D/ev-$i.log" >/dev/null
  done
  O=(--redis "$R" --set "redis.key_prefix=$P" --store "$D/store")

  # every event, both versions: bit for bit
  ok=0
  for i in $(seq 0 39); do
    "$BIN" audit "ev-$i" --rescore "${O[@]}" >"$T/out" 2>&1 &&
      grep -q "rescore: match (bit for bit)" "$T/out" && ok=$((ok+1))
  done
  if [ "$ok" -eq 40 ]; then echo "ok: $kind: 40 of 40 rescored bit for bit"
  else echo "FAIL: $kind: $ok of 40 match"; cat "$T/out"; fails=$((fails+1)); fi
  expect 0 "model +$V1 +\($kind" -- "$BIN" audit ev-3 --rescore "${O[@]}"
  expect 0 "model +$V2" -- "$BIN" audit ev-33 --rescore "${O[@]}"
  expect 0 '"match": true' -- "$BIN" audit ev-4 --rescore --json "${O[@]}"
  if command -v jq >/dev/null; then
    "$BIN" audit ev-4 --rescore --json "${O[@]}" >"$T/j" 2>/dev/null
    if [ "$(jq -r '.recorded == .recomputed and .model_version == "'"$V1"'"' "$T/j")" = true ]
    then echo "ok: $kind: --json recorded == recomputed"
    else echo "FAIL: $kind: --json"; cat "$T/j"; fails=$((fails+1)); fi
  fi

  # a record whose score was altered, one that names the other version
  sed -E 's/"score":[^,]+/"score":0.5/' "$D/ev-5.json" >"$T/x.json"
  redis-cli -s "$S" SET "${P}score:ev-5" "$(cat "$T/x.json")" >/dev/null
  expect 1 "MISMATCH: recorded 0.5, recomputed 0\.[0-9]+" -- "$BIN" audit ev-5 --rescore "${O[@]}"
  expect 1 '"match": false' -- "$BIN" audit ev-5 --rescore --json "${O[@]}"
  sed "s/$V1/$V2/" "$D/ev-6.json" >"$T/x.json"
  redis-cli -s "$S" SET "${P}score:ev-6" "$(cat "$T/x.json")" >/dev/null
  expect 1 "MISMATCH" -- "$BIN" audit ev-6 --rescore "${O[@]}"

  # input not logged, damaged, version pruned, unknown event
  redis-cli -s "$S" DEL "${P}input:ev-7" >/dev/null
  expect 1 "scoring input of event 'ev-7' was not logged" -- "$BIN" audit ev-7 --rescore "${O[@]}"
  head -c 30 "$D/ev-9.log" | redis-cli -s "$S" -x SET "${P}input:ev-9" >/dev/null
  expect 1 "cannot rescore event 'ev-9'.*(announces|envelope)" -- "$BIN" audit ev-9 --rescore "${O[@]}"
  rm "$D/store/$V1.rsm"
  expect 1 "model version $V1 of event 'ev-8' is not in the store" -- "$BIN" audit ev-8 --rescore "${O[@]}"
  expect 0 "rescore: match" -- "$BIN" audit ev-30 --rescore "${O[@]}"
  expect 1 "no score for event 'nope'" -- "$BIN" audit nope --rescore "${O[@]}"
done

# usage and configuration
O=(--redis "$R" --set redis.key_prefix=rsseq:)
expect 2 "needs the model store" -- "$BIN" audit ev-1 --rescore "${O[@]}"
expect 0 "rescore: match" -- "$BIN" audit ev-30 --rescore "${O[@]}" --set "model.store_dir=$T/seq/store"
expect 1 "model store $T/none: No such file" -- "$BIN" audit ev-1 --rescore "${O[@]}" --store "$T/none"
[ -e "$T/none" ] && { echo "FAIL: audit created the store directory"; fails=$((fails+1)); }
expect 2 "--rescore takes one EVENT_ID" -- "$BIN" audit --entity card-1 --rescore "${O[@]}" --store "$T/seq/store"
expect 2 "--store goes with --rescore" -- "$BIN" audit ev-1 "${O[@]}" --store "$T/seq/store"
expect 0 "--rescore" -- "$BIN" audit --help

echo "$fails failure(s)"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# What an operator relies on when running `serve` as a service:
#  - Kafka unreachable is not an exit: serve keeps retrying, /readyz says
#    503 "no partitions assigned", SIGTERM still stops it with exit 0;
#  - --resume: the first start (no saved model) starts a new model, the
#    graceful stop saves it, the next start continues from it;
#  - --resume without service.model_save_path is a usage error (exit 2).
# usage: serve_ops.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
BIN="${1:?binary}"
SRC="${2:?source dir}"
T="$(mktemp -d /tmp/rs-ops.XXXXXX)"
# Everything the service keeps (checkpoint, model store, learning logs,
# label delays) goes under $T, never into the machine's default state dir.
export RISKSTREAM_STATE_DIR="$T/state"
PID=""
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  "$SRC/ops/redis.sh" stop "$T/redis" || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "serve_ops FAIL: $*"; echo "--- log (tail)"; tail -n 20 "$T/serve.err" 2>/dev/null || true; exit 1; }
URL="$("$SRC/ops/redis.sh" start "$T/redis")"

# wait_http OUTFILE -> the API base URL
wait_http() {
  local api=""
  for _ in $(seq 1 300); do
    api="$(sed -n 's/^http: //p' "$1" 2>/dev/null | head -1 || true)"
    [ -n "$api" ] && { echo "$api"; return 0; }
    kill -0 "$PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
stop() { # SIGTERM, exit code must be 0
  kill -TERM "$PID"
  local rc=0
  wait "$PID" || rc=$?
  PID=""
  [ "$rc" -eq 0 ] || fail "serve exited $rc after SIGTERM"
}

# 1. Kafka unreachable (port 1: nothing listens there).
"$BIN" serve --brokers 127.0.0.1:1 --redis "$URL" --set http.enabled=true \
  --set http.port=0 >"$T/serve.out" 2>"$T/serve.err" &
PID=$!
API="$(wait_http "$T/serve.out")" || fail "serve exited with Kafka unreachable (it should retry)"
sleep 3
kill -0 "$PID" 2>/dev/null || fail "serve exited with Kafka unreachable"
code="$(curl -s -o "$T/readyz" -w '%{http_code}' "$API/readyz")"
[ "$code" = 503 ] && grep -q 'no partitions assigned' "$T/readyz" || fail "/readyz: $code $(cat "$T/readyz")"
grep -q 'Connect to ipv4#127.0.0.1:1 failed' "$T/serve.err" || fail "the broker errors are not logged"
t0=$(date +%s)
stop
echo "serve_ops: Kafka unreachable: serve kept retrying, /readyz 503 'no partitions assigned', SIGTERM -> exit 0 in $(( $(date +%s) - t0 )) s"

# 2. --resume
SET=(--redis "$URL" --set service.model_save_path="$T/model.rsm" --set http.enabled=true --set http.port=0)
"$BIN" serve --resume "${SET[@]}" >"$T/serve.out" 2>"$T/serve.err" &
PID=$!
wait_http "$T/serve.out" >/dev/null || fail "serve (first --resume) did not start"
grep -q -- '--resume: no saved model at' "$T/serve.err" || fail "first start: no 'no saved model' line"
stop
[ -s "$T/model.rsm" ] || fail "the graceful stop did not save the model"
"$BIN" serve --resume "${SET[@]}" >"$T/serve.out" 2>"$T/serve.err" &
PID=$!
wait_http "$T/serve.out" >/dev/null || fail "serve (second --resume) did not start"
grep -q -- "--resume: starting from the model saved at $T/model.rsm" "$T/serve.err" || fail "second start did not resume"
stop
echo "serve_ops: --resume: new model, saved at stop, resumed at the next start"
rc=0; "$BIN" serve --resume --redis "$URL" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q 'model_save_path' "$T/err" || fail "--resume without model_save_path: rc $rc"
echo "serve_ops: PASS"

#!/usr/bin/env bash
# view_chromium.sh -- the per-decision page (GET /v1/scores/ID/view) in a
# real browser: headless Chromium (Debian package `chromium`).
#
#   view_chromium.sh RISKSTREAM_BIN RS_PNG_COLORS_BIN [OUT_DIR]
#
# Starts a private redis-server and `riskstream api --port 0`, stores one
# score record with redis-cli (a client we did not write), then
#   1. --dump-dom: the rendered DOM holds the three SVG charts, 3 attention
#      circles, red and blue contribution bars, and the hostile reason only
#      as text (no injected element);
#   2. --screenshot: the PNG shows the charts -- enough pixels of the bar
#      red (#d62728), bar blue (#1f77b4), gate teal (#0f766e) and the
#      decline red (#c92a2a), counted by rs_png_colors.
# Skips (exit 0, with a message) only when chromium is not installed.
# The screenshot is kept in OUT_DIR (default: the temp dir, removed) when
# given, for a human look.
set -euo pipefail

RS=${1:?usage: view_chromium.sh RISKSTREAM_BIN RS_PNG_COLORS_BIN [OUT_DIR]}
PNGC=${2:?usage: view_chromium.sh RISKSTREAM_BIN RS_PNG_COLORS_BIN [OUT_DIR]}
OUT=${3:-}

CHROME=""
for c in chromium chromium-browser google-chrome; do
  if command -v "$c" >/dev/null 2>&1; then CHROME=$(command -v "$c"); break; fi
done
if [ -z "$CHROME" ]; then
  echo "SKIP view_chromium: chromium not installed (Debian: apt-get install chromium)"
  exit 0
fi
command -v redis-server >/dev/null || { echo "FAIL: redis-server not found"; exit 1; }
command -v redis-cli >/dev/null || { echo "FAIL: redis-cli not found"; exit 1; }

TMP=$(mktemp -d /tmp/rs-view-XXXXXX)
REDIS_PID=""; API_PID=""
cleanup() {
  [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null || true
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL view_chromium: $*"; exit 1; }

SOCK=$TMP/redis.sock
redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no \
  --dir "$TMP" --logfile "$TMP/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do
  redis-cli -s "$SOCK" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -s "$SOCK" ping >/dev/null 2>&1 || fail "redis-server did not start"

ID='tx-2026-000042'
NOW_MS=$(( $(date +%s) * 1000 ))
T0=$(( NOW_MS - 60000 ))
REC=$(cat <<EOF
{"event_id":"$ID","entity_id":"card-4242","score":0.9312,"decision":"decline","model_version":"seq-20261122-1","event_time_ms":$T0,"scored_at_ms":$((T0 + 14)),"latency_us":1834,"explanation":{"attended_events":[{"event_id":"tx-2026-000031","event_time_ms":$((T0 - 2400000)),"amount":12.5,"counterparty_id":"merchant-5411-0077","weight":0.46},{"event_id":"tx-2026-000017","event_time_ms":$((T0 - 14400000)),"amount":980,"counterparty_id":"merchant-7995-0003","weight":0.27},{"event_id":"tx-2026-000009","event_time_ms":$((T0 - 43200000)),"amount":42.1,"counterparty_id":"merchant-5812-0420","weight":0.12}],"feature_contributions":[{"name":"amount_vs_30d_mean","value":8.3,"contribution":0.412},{"name":"new_terminal_10m","value":3,"contribution":0.188},{"name":"hour_of_day","value":3,"contribution":0.07},{"name":"distance_km","value":412.5,"contribution":-0.093},{"name":"tx_count_1h","value":1,"contribution":-0.151}],"experts":[{"expert":2,"gate_weight":0.71},{"expert":0,"gate_weight":0.21},{"expert":5,"gate_weight":0.08}],"reasons":["amount 8.3x this card's 30-day mean","3rd new terminal in 10 minutes","<img src=x onerror=alert(1)>"]},"flags":0,"schema_version":1}
EOF
)
redis-cli -s "$SOCK" SET "rs:score:$ID" "$REC" >/dev/null

"$RS" api --redis "unix://$SOCK" --port 0 >"$TMP/api.out" 2>"$TMP/api.err" &
API_PID=$!
URL_BASE=""
for _ in $(seq 100); do
  URL_BASE=$(sed -n 's/^http: //p' "$TMP/api.out" | head -1)
  [ -n "$URL_BASE" ] && break
  kill -0 "$API_PID" 2>/dev/null || { cat "$TMP/api.err"; fail "riskstream api exited"; }
  sleep 0.1
done
[ -n "$URL_BASE" ] || fail "riskstream api printed no 'http:' line"
URL="$URL_BASE/v1/scores/$ID/view"

# The record must decode into the fields the page shows (schema check).
if command -v curl >/dev/null; then
  json="$(curl -fsS "$URL_BASE/v1/scores/$ID")" || fail "JSON route"
  case "$json" in *'"seq-20261122-1"'*) ;; *) fail "JSON route" ;; esac
fi

chrome() {
  timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-dev-shm-usage --hide-scrollbars \
    --user-data-dir="$TMP/profile" "$@" 2>>"$TMP/chrome.err"
}

chrome --dump-dom "$URL" >"$TMP/dom.html" || { tail -5 "$TMP/chrome.err"; fail "chromium --dump-dom failed"; }
DOM=$TMP/dom.html
count() { grep -o "$1" "$DOM" | wc -l; }
[ "$(count '<svg id="timeline"')" -eq 1 ] || fail "no timeline <svg> in the DOM"
[ "$(count '<svg id="contrib"')" -eq 1 ] || fail "no contribution <svg> in the DOM"
[ "$(count '<svg id="experts"')" -eq 1 ] || fail "no experts <svg> in the DOM"
[ "$(count '<circle')" -eq 3 ] || fail "expected 3 attention circles, DOM has $(count '<circle')"
[ "$(count 'class="bar pos"')" -eq 3 ] || fail "expected 3 red (raising) bars"
[ "$(count 'class="bar neg"')" -eq 2 ] || fail "expected 2 blue (lowering) bars"
grep -q '<img' "$DOM" && fail "the hostile reason became an <img> element"
grep -q '&lt;img src=x onerror=alert(1)&gt;' "$DOM" || fail "the hostile reason is not shown as text"
grep -q 'seq-20261122-1' "$DOM" || fail "model version missing"

PNG=$TMP/view.png
chrome --screenshot="$PNG" --window-size=1000,1100 "$URL" >/dev/null || { tail -5 "$TMP/chrome.err"; fail "chromium --screenshot failed"; }
[ -s "$PNG" ] || fail "no screenshot written"
if [ -n "$OUT" ]; then mkdir -p "$OUT" && cp "$PNG" "$DOM" "$OUT/"; fi
SIZE=$(stat -c %s "$PNG")
[ "$SIZE" -gt 20000 ] || fail "screenshot is only $SIZE bytes (blank page?)"
"$PNGC" "$PNG" d62728:60 1f77b4:60 0f766e:60 c92a2a:40 >"$TMP/colors.txt" || fail "cannot read the screenshot"
cat "$TMP/colors.txt"
px() { awk -v c="$1" '$1 == c { print $2 }' "$TMP/colors.txt"; }
[ "$(px d62728)" -gt 1500 ] || fail "too few red bar pixels: $(px d62728)"
[ "$(px 1f77b4)" -gt 800 ] || fail "too few blue bar pixels: $(px 1f77b4)"
[ "$(px 0f766e)" -gt 1000 ] || fail "too few gate bar pixels: $(px 0f766e)"
[ "$(awk '$1 == "distinct" { print $2 }' "$TMP/colors.txt")" -gt 50 ] || fail "screenshot has too few colours"
echo "PASS view_chromium: DOM has the charts, screenshot $SIZE bytes shows them"

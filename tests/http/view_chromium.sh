#!/usr/bin/env bash
# view_chromium.sh -- the analysts' pages in a real browser: headless
# Chromium (Debian package `chromium`) driven through the DevTools protocol
# (rs_cdp, --remote-debugging-pipe) against the real `riskstream serve`.
#
#   view_chromium.sh RISKSTREAM_BIN RS_PNG_COLORS_BIN RS_CDP_BIN [OUT_DIR]
#
# 1. A model trained on one generated card stream scores another (seed 7,
#    200 cards, 3 days) through `serve` (embedded Kafka, private Redis, the
#    HTTP API with a bearer token).  In Chromium:
#    - the queue asks for the token (sign-in page), then lists the alerts
#      newest first; the filter form (min score + entity, then decision)
#      narrows it to exactly the rows Redis says;
#    - the search box finds the newest alert's event id; its case view shows
#      the event's own fields (amount, counterparty, mcc, country, channel
#      as in the input file), the entity's history with this event marked,
#      an amount trend, reasons that are each a contribution raising the
#      risk;
#    - "Confirm fraud" produces a Label that kcat reads back from the labels
#      topic (value 1, the event's entity), the outcome is in Redis and on
#      the page, the service consumed the label (riskstream_labels_total);
#    - the entity page, "nothing found", sign-out;
#    - a hostile record (stored with redis-cli) shows its reason as text
#      only, and its screenshot holds the chart colours (rs_png_colors).
# 2. A sensors stream through `serve` with the sensors preset: the case
#    view of a reading shows the sensor values and a trend chart per
#    sensor, reasons in the preset's nouns (readings, machine).
# Skips (exit 0, with a message) only when chromium is not installed.
# The screenshots of docs/audit.md are written to OUT_DIR when given
# (docs/img/).
set -euo pipefail

RS=${1:?usage: view_chromium.sh RISKSTREAM_BIN RS_PNG_COLORS_BIN RS_CDP_BIN [OUT_DIR]}
PNGC=${2:?usage: view_chromium.sh RISKSTREAM_BIN RS_PNG_COLORS_BIN RS_CDP_BIN [OUT_DIR]}
CDP=${3:?usage: view_chromium.sh RISKSTREAM_BIN RS_PNG_COLORS_BIN RS_CDP_BIN [OUT_DIR]}
OUT=${4:-}

CHROME=""
for c in chromium chromium-browser google-chrome; do
  if command -v "$c" >/dev/null 2>&1; then CHROME=$(command -v "$c"); break; fi
done
if [ -z "$CHROME" ]; then
  echo "SKIP view_chromium: chromium not installed (Debian: apt-get install chromium)"
  exit 0
fi
for tool in redis-server redis-cli kcat jq curl; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found"; exit 1; }
done

TMP=$(mktemp -d /tmp/rs-view-XXXXXX)
# Everything the service keeps (checkpoint, model store, learning logs,
# label delays) goes under $TMP, never into the machine's default state dir.
export RISKSTREAM_STATE_DIR="$TMP/state"
REDIS_PID=""; SERVE_PID=""
stop_serve() {
  if [ -n "$SERVE_PID" ]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=""
  fi
}
cleanup() {
  stop_serve
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL view_chromium: $*"
  [ -f "$TMP/serve.log" ] && tail -5 "$TMP/serve.log"
  exit 1
}
json() { jq -Rn --arg v "$1" '$v'; }
rcli() { redis-cli -s "$SOCK" "$@"; }

SOCK=$TMP/redis.sock
redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no \
  --dir "$TMP" --logfile "$TMP/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do rcli ping >/dev/null 2>&1 && break; sleep 0.1; done
rcli ping >/dev/null 2>&1 || fail "redis-server did not start"

export RS_VIEW_TOKEN="view T0ken/$$;="    # blanks, '/', ';', '=': the cookie encodes it
TOKEN_JS=$(json "$RS_VIEW_TOKEN")
AUTH="Authorization: Bearer $RS_VIEW_TOKEN"

# start_serve EXTRA_ARGS...: serve on the embedded Kafka with the HTTP API;
# sets BOOT and URL.
start_serve() {
  : >"$TMP/serve.out"
  "$RS" serve --redis "unix://$SOCK" --set http.enabled=true --set http.port=0 \
    --set http.token_env=RS_VIEW_TOKEN --set topics.partitions=2 \
    --set service.stats_interval=0 "$@" >"$TMP/serve.out" 2>"$TMP/serve.log" &
  SERVE_PID=$!
  URL=""; BOOT=""
  for _ in $(seq 300); do
    URL=$(sed -n 's/^http: //p' "$TMP/serve.out" 2>/dev/null | head -1 || true)
    BOOT=$(sed -n 's/^kafka bootstrap: //p' "$TMP/serve.out" 2>/dev/null | head -1 || true)
    [ -n "$URL" ] && [ -n "$BOOT" ] && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || fail "serve exited"
    sleep 0.1
  done
  fail "serve printed no http:/kafka bootstrap: line"
}

# wait_scores PREFIX N: until N score records are in Redis
wait_scores() {
  local n=0
  for _ in $(seq 600); do
    n=$(rcli --scan --pattern "$1score:*" | wc -l)
    [ "$n" -ge "$2" ] && return 0
    sleep 0.2
  done
  fail "only $n of $2 scores reached Redis"
}

# produce FILE: JSON lines to topics.events, keyed by entity id as the
# topic is meant to be (an entity's events stay in order on one partition)
produce() {
  jq -r '"\(.entity_id)\t\(tojson)"' "$1" >"$1.keyed"
  kcat -P -b "$BOOT" -t events -K $'\t' -l "$1.keyed" || fail "kcat produce $1"
}

cdp() { # cdp NAME: run $TMP/NAME.cdp
  RS_CDP_CHROME_LOG="$TMP/chrome.log" timeout 180 "$CDP" "$CHROME" "$TMP/profile" "$TMP/$1.cdp" \
    >"$TMP/$1.out" 2>"$TMP/$1.err" || { cat "$TMP/$1.out" "$TMP/$1.err"; fail "browser script $1"; }
}

# ------------------------------------------------------------------ cards
"$RS" gen --seed 11 --entities 600 --duration 20d --format csv --out "$TMP/train.csv" >/dev/null 2>&1
"$RS" train --input "$TMP/train.csv" --out "$TMP/model.bin" --label-delay 1d --quiet \
  >"$TMP/train.out" 2>&1 || { cat "$TMP/train.out"; fail "train"; }
"$RS" gen --seed 7 --entities 200 --duration 3d --out "$TMP/cards.jsonl" >/dev/null 2>&1
NCARDS=$(wc -l <"$TMP/cards.jsonl")

start_serve --model "$TMP/model.bin" --set model.label_delay=1d # as trained
produce "$TMP/cards.jsonl"
wait_scores "rs:" "$NCARDS"

NALERTS=$(rcli ZCARD rs:alerts)
[ "$NALERTS" -ge 5 ] || fail "only $NALERTS alerts: the trained model should raise some"
# the records as the HTTP API gives them (Redis holds them compact:
# redis.record_format)
rec() { curl -sf -H "$AUTH" "$URL/v1/scores/$1" || fail "GET /v1/scores/$1"; echo; }
for id in $(rcli ZRANGE rs:alerts 0 -1); do rec "$id"; done >"$TMP/alerts.jsonl"
ALERT=$(rcli ZREVRANGE rs:alerts 0 0)
ENT=$(rec "$ALERT" | jq -r .entity_id)
ALERT_T=$(rec "$ALERT" | jq -r .event_time_ms)
# the newest alert is the newest event time in the index (ties: highest id)
[ "$(jq -s -r 'max_by(.event_time_ms) | .event_time_ms' "$TMP/alerts.jsonl")" = "$ALERT_T" ] \
  || fail "ZREVRANGE's first is not the newest alert"
PAGE1=$(( NALERTS < 50 ? NALERTS : 50 ))
NFILT=$(jq -s --arg e "$ENT" '[.[] | select(.entity_id == $e and .score >= 0.9)] | length' "$TMP/alerts.jsonl")
NFILT=$(( NFILT < 50 ? NFILT : 50 ))
NREV=$(jq -s '[.[] | select(.decision == "review")] | length' "$TMP/alerts.jsonl")
NREV=$(( NREV < 50 ? NREV : 50 ))
# the event as it was produced
EV=$(jq -c --arg id "$ALERT" 'select(.id == $id)' "$TMP/cards.jsonl")
AMOUNT=$(printf '%.2f' "$(echo "$EV" | jq -r .amount)")
CP=$(echo "$EV" | jq -r .counterparty_id)
MCC=$(echo "$EV" | jq -r '.categorical_fields[] | select(.name == "mcc") | .value')
COUNTRY=$(echo "$EV" | jq -r '.categorical_fields[] | select(.name == "country") | .value')
CHANNEL=$(echo "$EV" | jq -r '.categorical_fields[] | select(.name == "channel") | .value')
echo "view_chromium: $NCARDS card events scored, $NALERTS alerts; newest alert $ALERT of $ENT"

# A hostile record, stored by a client we did not write.
HID='tx-2026-000042'
T0=$(( $(date +%s) * 1000 - 60000 ))
REC=$(cat <<EOF
{"event_id":"$HID","entity_id":"card-4242","score":0.9312,"decision":"decline","model_version":"seq-20261122-1","event_time_ms":$T0,"scored_at_ms":$((T0 + 14)),"latency_us":1834,"explanation":{"attended_events":[{"event_id":"tx-2026-000031","event_time_ms":$((T0 - 2400000)),"amount":12.5,"counterparty_id":"merchant-5411-0077","weight":0.46},{"event_id":"tx-2026-000017","event_time_ms":$((T0 - 14400000)),"amount":980,"counterparty_id":"merchant-7995-0003","weight":0.27},{"event_id":"tx-2026-000009","event_time_ms":$((T0 - 43200000)),"amount":42.1,"counterparty_id":"merchant-5812-0420","weight":0.12}],"feature_contributions":[{"name":"ent_ratio_mean_7d","value":8.3,"contribution":0.412,"text":"amount 8.3x this card's average over the last 7 days"},{"name":"ent_count_10m","value":3,"contribution":0.188,"text":"3 payments in the last 10 minutes, usually 0.02"},{"name":"ent_new_counterparty","value":1,"contribution":0.07,"text":"new merchant for this card"},{"name":"cp_count_1d","value":41,"contribution":-0.093,"text":"41 payments at this merchant in the last day, usually 38"},{"name":"ent_count_1h","value":1,"contribution":-0.151,"text":"1 payment in the last hour, usually 0.2"}],"experts":[{"expert":2,"gate_weight":0.71},{"expert":0,"gate_weight":0.21},{"expert":5,"gate_weight":0.08}],"reasons":["amount 8.3x this card's average over the last 7 days","3 payments in the last 10 minutes, usually 0.02","<img src=x onerror=alert(1)>"]},"flags":0,"schema_version":1,"event":{"type":"card_tx","counterparty_id":"<b>merchant-7995</b>","amount":912.4,"numeric_fields":[],"categorical_fields":[{"name":"mcc","value":"7995"},{"name":"country","value":"<script>x()</script>"}]}}
EOF
)
rcli SET "rs:score:$HID" "$REC" >/dev/null

A_JS=$(json "$ALERT"); E_JS=$(json "$ENT")
cat >"$TMP/cards.cdp" <<EOF
size 1200 1600
# the token first
goto $URL/v1/alerts/view
expect document.getElementById('login') !== null && document.title.indexOf('sign in') === 0
expect document.getElementById('queue') === null
eval (function () { document.getElementById('token').value = $TOKEN_JS; document.getElementById('login').requestSubmit(); return true; })()
wait 20 document.getElementById('queue') !== null && document.readyState === 'complete'
# newest first, the newest alert on top
expect (function () { var r = document.querySelectorAll('#queue tbody tr'); if (r.length !== $PAGE1) return false; for (var i = 1; i < r.length; i++) if (+r[i].dataset.t > +r[i - 1].dataset.t) return false; return r[0].dataset.id === $A_JS; })()
eval document.querySelectorAll('#queue tbody tr').length
shot $TMP/queue.png
# filter through the form: min score and entity
eval (function () { document.getElementById('f-min_score').value = '0.9'; document.getElementById('f-entity').value = $E_JS; document.getElementById('filters').requestSubmit(); return true; })()
wait 20 location.search.indexOf('min_score=0.9') >= 0 && document.readyState === 'complete' && document.getElementById('filters') !== null
expect (function () { var r = document.querySelectorAll('#queue tbody tr'); if (r.length !== $NFILT) return false; for (var i = 0; i < r.length; i++) { if (r[i].querySelector('a.entity').textContent !== $E_JS) return false; if (parseFloat(r[i].children[4].textContent) < 0.9) return false; } return true; })()
shot $TMP/queue_filtered.png
# the decision filter
eval (function () { document.getElementById('f-min_score').value = ''; document.getElementById('f-entity').value = ''; document.getElementById('f-decision').value = 'review'; document.getElementById('filters').requestSubmit(); return true; })()
wait 20 location.search.indexOf('decision=review') >= 0 && document.readyState === 'complete' && document.getElementById('filters') !== null
expect (function () { var r = document.querySelectorAll('#queue tbody tr'); if (r.length !== $NREV) return false; for (var i = 0; i < r.length; i++) if (r[i].querySelector('.badge').textContent !== 'review') return false; return true; })()
# search: the event id, from the search box
eval (function () { document.getElementById('q').value = $A_JS; document.querySelector('form.search').requestSubmit(); return true; })()
wait 20 location.pathname === '/v1/scores/' + encodeURIComponent($A_JS) + '/view' && document.readyState === 'complete'
# the event itself, as produced
expect document.querySelector('#event-fields .f-amount').textContent === '$AMOUNT'
expect document.querySelector('#event-fields .f-cp').textContent === $(json "$CP")
expect (function () { var t = {}; document.querySelectorAll('#event-fields div').forEach(function (d) { t[d.querySelector('dt').textContent] = d.querySelector('dd').textContent; }); return t.mcc === $(json "$MCC") && t.country === $(json "$COUNTRY") && t.channel === $(json "$CHANNEL"); })()
expect document.querySelectorAll('#trends svg.spark').length === 1
expect document.querySelector('#history tr.cur').dataset.id === $A_JS
expect document.querySelectorAll('#history a[href^="/v1/scores/"]').length >= 2
# each reason is the words of a contribution that raised the risk
expect (function () { var w = {}; document.querySelectorAll('#contrib tbody tr').forEach(function (tr) { w[tr.querySelector('td.words').textContent] = tr.querySelector('td.num').className; }); var r = document.querySelectorAll('#reasons li'); if (!r.length) return false; for (var i = 0; i < r.length; i++) { var txt = r[i].firstChild.nextSibling.textContent.trim(); if (w[txt] !== 'num pos') return false; } return true; })()
expect document.querySelectorAll('#contrib .bar.pos').length >= 1
expect document.querySelector('#contrib td.words').textContent.indexOf('_') < 0
shot $TMP/case.png
# the label action
eval (function () { document.getElementById('analyst').value = 'Ana Lyst'; document.getElementById('note').value = 'confirmed by the cardholder'; document.getElementById('btn-fraud').click(); return true; })()
wait 30 document.getElementById('verdict') !== null && document.readyState === 'complete'
expect document.getElementById('verdict').dataset.outcome === 'fraud'
expect document.getElementById('outcome').textContent.indexOf('Ana Lyst') >= 0
shot $TMP/case_labelled.png
# the entity page through its link
eval (function () { document.querySelector('a.entity').click(); return true; })()
wait 20 location.pathname === '/v1/entities/' + encodeURIComponent($E_JS) + '/view' && document.getElementById('events') !== null
expect (function () { var r = document.querySelectorAll('#events tbody tr'); for (var i = 1; i < r.length; i++) if (+r[i].dataset.t > +r[i - 1].dataset.t) return false; var me = document.querySelector('#events tr[data-id="' + $A_JS + '"] .ob'); return r.length > 0 && me !== null && me.textContent === 'fraud'; })()
shot $TMP/entity.png
# the queue knows it is labelled
goto $URL/v1/alerts/view?status=labelled
expect (function () { var r = document.querySelectorAll('#queue tbody tr'); return r.length === 1 && r[0].dataset.id === $A_JS; })()
goto $URL/v1/search?q=no-such-event
expect document.getElementById('notfound') !== null
# a hostile record: its strings are text
goto $URL/v1/scores/$HID/view
dom $TMP/hostile.html
size 1000 1400
shot $TMP/hostile.png
# sign out: the pages ask for the token again
eval (function () { document.getElementById('signout').click(); return true; })()
wait 20 location.pathname === '/login' && document.readyState === 'complete'
expect document.cookie.indexOf('rs_token=') < 0
goto $URL/v1/alerts/view
expect document.getElementById('login') !== null
EOF
cdp cards
cat "$TMP/cards.out"

# The Label on the topic, read back by a consumer we did not write.
found=""
for _ in $(seq 50); do
  kcat -C -b "$BOOT" -t labels -o beginning -e -q -f '%k\t%s\n' >"$TMP/labels.tsv" 2>/dev/null || true
  found=$(awk -F'\t' -v e="$ENT" '$1 == e { print $2 }' "$TMP/labels.tsv" \
            | jq -c --arg id "$ALERT" 'select(.event_id == $id)' | head -1)
  [ -n "$found" ] && break
  sleep 0.2
done
[ -n "$found" ] || fail "no Label for $ALERT on the labels topic"
echo "$found" | jq -e --arg e "$ENT" '.value == 1 and .entity_id == $e and .label_time_ms > 0' >/dev/null \
  || fail "wrong Label: $found"
[ "$(wc -l <"$TMP/labels.tsv")" -eq 1 ] || fail "expected one label on the topic"
rcli GET "rs:outcome:$ALERT" | jq -e '.outcome == "fraud" and .analyst == "Ana Lyst" and .value == 1' >/dev/null \
  || fail "outcome not in Redis"
# ... and the service consumed it and matched it to the pending event, so
# the model learns it (analyst decisions feed learning)
nlab=0; nmat=0
for _ in $(seq 100); do
  curl -fsS -H "$AUTH" "$URL/metrics" >"$TMP/metrics.txt" || true
  nlab=$(awk '$1 == "riskstream_labels_total" { print $2 }' "$TMP/metrics.txt")
  nmat=$(awk '$1 == "riskstream_labels_matched_total" { print $2 }' "$TMP/metrics.txt")
  [ "${nlab:-0}" -ge 1 ] && [ "${nmat:-0}" -ge 1 ] && break
  sleep 0.2
done
[ "${nlab:-0}" -ge 1 ] || fail "the service did not consume the label (riskstream_labels_total $nlab)"
[ "${nmat:-0}" -ge 1 ] || fail "the label did not reach a pending event (riskstream_labels_matched_total $nmat)"
echo "view_chromium: Label read back from the topic: $found; service labels_total $nlab, matched $nmat"

DOM=$TMP/hostile.html
count() { grep -o "$1" "$DOM" | wc -l; }
[ "$(count '<svg id="timeline"')" -eq 1 ] || fail "no timeline <svg> in the DOM"
[ "$(count '<table class="contrib" id="contrib"')" -eq 1 ] || fail "no contribution table in the DOM"
[ "$(count '<svg id="experts"')" -eq 1 ] || fail "no experts <svg> in the DOM"
[ "$(count '<circle')" -eq 3 ] || fail "expected 3 attention circles, DOM has $(count '<circle')"
[ "$(count 'class="bar pos"')" -eq 3 ] || fail "expected 3 red (raising) bars"
[ "$(count 'class="bar neg"')" -eq 2 ] || fail "expected 2 blue (lowering) bars"
grep -q '<img' "$DOM" && fail "the hostile reason became an <img> element"
grep -q '<b>merchant' "$DOM" && fail "the hostile counterparty became markup"
grep -q '&lt;img src=x onerror=alert(1)&gt;' "$DOM" || fail "the hostile reason is not shown as text"
grep -q '&lt;script&gt;x()&lt;/script&gt;' "$DOM" || fail "the hostile country is not shown as text"
[ "$(count '<script')" -eq 1 ] || fail "a script element besides /static/rs.js"
grep -q 'seq-20261122-1' "$DOM" || fail "model version missing"

PNG=$TMP/hostile.png
SIZE=$(stat -c %s "$PNG")
[ "$SIZE" -gt 20000 ] || fail "screenshot is only $SIZE bytes (blank page?)"
"$PNGC" "$PNG" d62728:60 1f77b4:60 0f766e:60 c92a2a:40 >"$TMP/colors.txt" || fail "cannot read the screenshot"
cat "$TMP/colors.txt"
px() { awk -v c="$1" '$1 == c { print $2 }' "$TMP/colors.txt"; }
[ "$(px d62728)" -gt 1500 ] || fail "too few red bar pixels: $(px d62728)"
[ "$(px 1f77b4)" -gt 800 ] || fail "too few blue bar pixels: $(px 1f77b4)"
[ "$(px 0f766e)" -gt 1000 ] || fail "too few gate bar pixels: $(px 0f766e)"
[ "$(awk '$1 == "distinct" { print $2 }' "$TMP/colors.txt")" -gt 50 ] || fail "screenshot has too few colours"
stop_serve

# ---------------------------------------------------------------- sensors
"$RS" gen --sensors --seed 7 --entities 4 --duration 12h --out "$TMP/sensors.jsonl" >/dev/null 2>&1
NSENS=$(wc -l <"$TMP/sensors.jsonl")
start_serve --set features.preset=sensors --set redis.key_prefix=rs2:
produce "$TMP/sensors.jsonl"
wait_scores "rs2:" "$NSENS"
SEV=$(jq -c 'select(.entity_id == "machine-1")' "$TMP/sensors.jsonl" | tail -1)
SID=$(echo "$SEV" | jq -r .id)
TEMP=$(echo "$SEV" | jq -r '.numeric_fields[] | select(.name == "temperature") | .value')
cat >"$TMP/sensors.cdp" <<EOF
size 1200 1500
goto $URL/v1/scores/$SID/view
eval (function () { document.getElementById('token').value = $TOKEN_JS; document.getElementById('login').requestSubmit(); return true; })()
wait 20 document.getElementById('event-fields') !== null && document.readyState === 'complete'
# the sensor values, no "amount 0.00", one trend chart per sensor
expect document.querySelector('#event-fields .f-amount') === null
expect (function () { var t = {}; document.querySelectorAll('#event-fields div').forEach(function (d) { t[d.querySelector('dt').textContent] = d.querySelector('dd').textContent; }); return parseFloat(t.temperature) === $TEMP && 'vibration' in t && 'pressure' in t && 'rpm' in t; })()
expect document.querySelectorAll('#trends svg.spark').length === 4
expect (function () { var c = document.querySelectorAll('#trends figcaption'); var n = []; c.forEach(function (x) { n.push(x.firstChild.textContent.trim()); }); return n.join(',') === 'temperature,vibration,pressure,rpm'; })()
expect document.querySelector('#history tr.cur').dataset.id === $(json "$SID")
# contributions in the preset's words
expect (function () { var w = document.querySelectorAll('#contrib td.words'); var t = ''; w.forEach(function (x) { t += x.textContent + '|'; }); return w.length > 0 && t.indexOf('_') < 0 && (t.indexOf('reading') >= 0 || t.indexOf('machine') >= 0 || t.indexOf('temperature') >= 0 || t.indexOf('vibration') >= 0 || t.indexOf('pressure') >= 0 || t.indexOf('rpm') >= 0); })()
shot $TMP/sensor.png
EOF
cdp sensors
stop_serve

if [ -n "$OUT" ]; then
  mkdir -p "$OUT"
  for f in queue case_labelled sensor; do
    cp "$TMP/$f.png" "$OUT/analyst_$f.png"
  done
fi
echo "PASS view_chromium: sign-in, queue newest first and filtered, search, case view with the event's fields, label read back from Kafka, entity page, sensor trends; screenshots show the charts"

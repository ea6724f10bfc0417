#!/usr/bin/env bash
# `riskstream train` bootstraps a model offline; `serve --model` starts from
# it.  A generated stream (6 days, 300 cards) is trained to a model file;
# the label delay is 1d and the horizon 2d, so that negatives are learned
# from most of the 6 days (with the 3d/5d defaults only day 1's events
# would be, and the model learns mostly "day 1 = genuine").  Checks:
#  - the summary line, a version of its own (not the untrained "...-0"),
#    no temporary file left, the exit codes of bad invocations (2 usage,
#    1 unreadable input / unwritable output, nothing written);
#  - the file loads in serve: with an unreachable Redis serve fails on
#    Redis (exit 1), not on the model; a truncated copy and a feature spec
#    the model was not trained for are refused (exit 2) naming the model;
#  - against `riskstream broker` and a private Redis, serve --model scores
#    the last 3 days of the stream (produced with kcat, keyed by card, from
#    a cold feature state) with the trained file's model_version on every
#    score (Kafka and Redis), and ranks them clearly better (ROC AUC
#    against the generator's labels) than an untrained model that sees the
#    same events; both AUCs are printed.
# usage: train_serve.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
BIN="${1:?riskstream binary}"; SRC="${2:?source dir}"
for tool in kcat jq redis-cli redis-server; do
  command -v "$tool" >/dev/null || { echo "train_serve: $tool not installed (ops/deps.sh installs it)"; exit 1; }
done
T="$(mktemp -d /tmp/rs-train.XXXXXX)"
# The service's state (learning logs, default checkpoint, model store,
# label delays) goes under $T, never into the machine's default state dir.
export RISKSTREAM_STATE_DIR="$T/state"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$SRC/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "train_serve FAIL: $*"; for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done; exit 1; }
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# One configuration for train and serve (the features must match: the
# declared label delay sets when label-aware features count a label, so it
# is in the file, not only on train's command line; a small publish_every
# gives the trained model a version step of its own).
cat >"$T/rs.yaml" <<'EOF'
model:
  label_delay: 1d
  publish_every: 100
  label_horizon: 2d
service:
  stats_interval: 0ms
EOF

"$BIN" gen --seed 7 --entities 300 --duration 6d --format csv --out "$T/hist.csv" 2>"$T/gen.log"
"$BIN" gen --seed 7 --entities 300 --duration 6d --out "$T/hist.jsonl" 2>>"$T/gen.log"
NEV=$(( $(wc -l <"$T/hist.csv") - 1 ))
[ "$NEV" -gt 1000 ] || fail "generator wrote only $NEV events"

# ---- train
M="$T/model.rsm"
rc=0; "$BIN" train --input "$T/hist.csv" --out "$M" --config "$T/rs.yaml" --label-delay 1d --quiet \
  >"$T/train.out" 2>"$T/train.log" || rc=$?
[ "$rc" -eq 0 ] || fail "train exited $rc"
summary="$(grep '^train:' "$T/train.out" || true)"
echo "train_serve: $summary"
grep -q "^train: $NEV events (0 refused, 0 bad lines), [0-9]* labels applied ([0-9]* in flight" <<<"$summary" ||
  fail "summary: $summary"
VER="$(echo "$summary" | sed -n 's/.*; version \([^;]*\);.*/\1/p')"
case "$VER" in seq-*-0|"") fail "trained version '$VER': want seq-<hash>-<n>, n > 0";; seq-*) ;; *) fail "version '$VER'";; esac
UPD="$(echo "$summary" | sed -n 's/.*seq: \([0-9]*\) updates.*/\1/p')"
[ "${UPD:-0}" -ge 100 ] || fail "only ${UPD:-0} updates"
[ -s "$M" ] || fail "no model file"
grep -q "wrote $M ($(stat -c %s "$M") bytes)" <<<"$summary" || fail "summary size differs from the file"
[ ! -e "$M.tmp" ] || fail "temporary file left behind"

# bad invocations: exit code, message, nothing written
expect() { # $1 rc $2 pattern $3.. args
  local want="$1" pat="$2"; shift 2
  local rc=0; "$BIN" train "$@" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "train $*: exit $rc, want $want ($(head -c 300 "$T/bad.err"))"
  grep -q -- "$pat" "$T/bad.err" || fail "train $*: no '$pat' in: $(head -c 300 "$T/bad.err")"
}
expect 2 "out MODEL_FILE is required" --input "$T/hist.csv"
expect 2 "input FILE is required" --out "$T/x.rsm"
expect 2 "kind 'gbm'" --input "$T/hist.csv" --out "$T/x.rsm" --kind gbm
expect 2 "label-delay" --input "$T/hist.csv" --out "$T/x.rsm" --label-delay soon
expect 2 "nosuch" --input "$T/hist.csv" --out "$T/x.rsm" --set model.nosuch=1
expect 1 "cannot read $T/none.csv" --input "$T/none.csv" --out "$T/x.rsm"
expect 1 "cannot write the model in $T/nodir" --input "$T/hist.csv" --out "$T/nodir/x.rsm"
[ ! -e "$T/x.rsm" ] || fail "a failed train wrote $T/x.rsm"
help="$("$BIN" train --help)" || fail "train --help"
case "$help" in *"usage: riskstream train"*) ;; *) fail "train --help" ;; esac

# the baseline kind trains and saves too
"$BIN" train --input "$T/hist.csv" --out "$T/lr.rsm" --kind lr --config "$T/rs.yaml" --label-delay 1d -q \
  >"$T/lr.out" 2>"$T/lr.log" || fail "train --kind lr"
grep -q "; lr: [0-9]* updates.*version lr-[0-9a-f]*-[1-9]" "$T/lr.out" || fail "lr summary: $(cat "$T/lr.out")"

# a broker and a private Redis for (a) and (b)
URL="$("$SRC/ops/redis.sh" start "$T/redis")"
"$BIN" broker --set topics.partitions=2 >"$T/broker.out" 2>"$T/broker.log" &
PIDS+=($!)
BOOT=""
for _ in $(seq 1 100); do
  BOOT="$(sed -n 's/^kafka bootstrap: //p' "$T/broker.out" 2>/dev/null || true)"; [ -n "$BOOT" ] && break; sleep 0.1
done
[ -n "$BOOT" ] || fail "broker did not start"
# ---- (a) the file loads in serve
rc=0; "$BIN" serve --model "$M" --config "$T/rs.yaml" --brokers "$BOOT" --redis unix:///nonexistent/redis.sock \
  >"$T/a.out" 2>"$T/a.log" || rc=$?
[ "$rc" -eq 1 ] || fail "serve --model with no Redis: exit $rc, want 1 (a model problem exits 2)"
grep -q "redis" "$T/a.log" || fail "serve did not fail on Redis"
grep -q "model $M" "$T/a.log" && fail "serve complained about the model"
rc=0; "$BIN" serve --model "$T/lr.rsm" --config "$T/rs.yaml" --brokers "$BOOT" --redis unix:///nonexistent/redis.sock \
  >"$T/a2.out" 2>"$T/a2.log" || rc=$?
[ "$rc" -eq 1 ] || fail "serve --model lr.rsm with no Redis: exit $rc, want 1"
head -c 4096 "$M" >"$T/trunc.rsm"
rc=0; "$BIN" serve --model "$T/trunc.rsm" --config "$T/rs.yaml" --brokers "$BOOT" --redis unix:///nonexistent/redis.sock \
  >"$T/a3.out" 2>"$T/a3.log" || rc=$?
[ "$rc" -eq 2 ] && grep -q "model $T/trunc.rsm: truncated" "$T/a3.log" || fail "truncated model: exit $rc"
rc=0; "$BIN" serve --model "$M" --config "$T/rs.yaml" --set features.preset=sensors \
  --brokers "$BOOT" --redis unix:///nonexistent/redis.sock >"$T/a4.out" 2>"$T/a4.log" || rc=$?
[ "$rc" -eq 2 ] && grep -q "model $M: .*features" "$T/a4.log" || fail "feature mismatch: exit $rc"
echo "train_serve: model loads in serve (fails on Redis only); truncated and mismatched models refused ($(elapsed) s)"

# ---- (b) serve --model against the broker and the private Redis
# The last 3 days of the history, no labels: with the horizon beyond the
# window (--set model.label_horizon=30d) serve makes no update, so every
# score must carry the file's version.
TMAX=$(jq -s 'map(.event_time_ms) | max' "$T/hist.jsonl")
jq -c "select(.event_time_ms > $TMAX - 3*86400000)" "$T/hist.jsonl" >"$T/tail.jsonl"
N=$(wc -l <"$T/tail.jsonl")
jq -r '.entity_id + "\t" + tojson' "$T/tail.jsonl" >"$T/tail.kv"
kcat -P -b "$BOOT" -t events -K '\t' -l "$T/tail.kv" || fail "kcat produce"

# trained: every score carries the trained version
"$BIN" serve --brokers "$BOOT" --redis "$URL" --group g-trained --config "$T/rs.yaml" \
  --set redis.key_prefix=trained: --set model.label_horizon=30d --model "$M" --max-events "$N" >"$T/trained.out" 2>"$T/trained.log" &
SP=$!; PIDS+=($SP)
rc=0; wait "$SP" || rc=$?
[ "$rc" -eq 0 ] || fail "serve --model exited $rc"
kcat -C -b "$BOOT" -t scores -o beginning -e -q -f '%s\n' >"$T/scores1.jsonl" 2>/dev/null || true
got=$(grep -c . "$T/scores1.jsonl" || true)
[ "$got" -eq "$N" ] || fail "serve --model: $got scores for $N events"
bad=$(jq -r "select(.model_version != \"$VER\") | .model_version" "$T/scores1.jsonl" | sort | uniq -c | head -3)
[ -z "$bad" ] || fail "scores with another version than $VER: $bad"
rec="$("$BIN" audit "$(jq -r .event_id "$T/scores1.jsonl" | head -1)" --json --redis "$URL" --set redis.key_prefix=trained:)"
[ "$(echo "$rec" | jq -r .model_version)" = "$VER" ] || fail "redis record: $rec"

# untrained: same events, fresh model of the same configuration
"$BIN" serve --brokers "$BOOT" --redis "$URL" --group g-fresh --config "$T/rs.yaml" \
  --set redis.key_prefix=fresh: --set model.label_horizon=30d --max-events "$N" >"$T/fresh.out" 2>"$T/fresh.log" &
SP=$!; PIDS+=($SP)
rc=0; wait "$SP" || rc=$?
[ "$rc" -eq 0 ] || fail "serve (untrained) exited $rc"
kcat -C -b "$BOOT" -t scores -o beginning -e -q -f '%s\n' 2>/dev/null |
  jq -c "select(.model_version != \"$VER\")" >"$T/scores0.jsonl" || true
[ "$(grep -c . "$T/scores0.jsonl" || true)" -eq "$N" ] || fail "untrained serve: wrong score count"
VER0="$(jq -r .model_version "$T/scores0.jsonl" | sort -u | tr '\n' ' ')"

# ROC AUC (Mann-Whitney, ties count 1/2) against the CSV's label column.
auc() { # $1 scores.jsonl
  jq -r '[.event_id, .score] | @tsv' "$1" | awk -F'\t' -v csv="$T/hist.csv" '
    BEGIN { FS = ","; getline hdr < csv; n = split(hdr, h, ",");
            for (i = 1; i <= n; i++) { if (h[i] == "id") ci = i; if (h[i] == "label") cl = i }
            while ((getline line < csv) > 0) { split(line, f, ","); lab[f[ci]] = f[cl] + 0 }
            FS = "\t" }
    { s[NR] = $2; y[NR] = lab[$1] >= 0.5 }
    END { np = 0; nn = 0; w = 0
          for (i = 1; i <= NR; i++) if (y[i]) { np++; for (j = 1; j <= NR; j++) if (!y[j]) {
            if (s[i] > s[j]) w += 1; else if (s[i] == s[j]) w += 0.5 } } else nn++
          if (np == 0 || nn == 0) { print "nan"; exit } printf "%.4f %d\n", w / (np * nn), np }'
}
read -r AUC1 P1 < <(auc "$T/scores1.jsonl")
read -r AUC0 P0 < <(auc "$T/scores0.jsonl")
echo "train_serve: $N events of the last 3 days served: trained $VER AUC $AUC1, untrained ${VER0% } AUC $AUC0 ($P1 positives)"
[ "$P1" -ge 5 ] || fail "only $P1 positives in the served events"
awk -v a="$AUC1" -v b="$AUC0" 'BEGIN { exit !(a >= 0.75 && a > b + 0.05) }' ||
  fail "trained AUC $AUC1 not clearly above the untrained $AUC0 (want >= 0.75 and +0.05)"
echo "train_serve: PASS ($(elapsed) s)"

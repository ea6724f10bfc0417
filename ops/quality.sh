#!/usr/bin/env bash
# ops/quality.sh [--size small|full] [--dir DIR] [--models LIST] [--jobs N]
#
# The quality bar of issue 11, measured: generate card streams of several
# shapes (label delay 7d / 30d, fraud rate 1 % / 0.1 %, all four patterns
# with compromised merchants that stay breached for 3 weeks), run
# `riskstream eval` on each with the DEFAULTS plus --label-delay only, and
# print one table (shape x model: ROC AUC, average precision, card
# precision@100 per test week averaged over days) with every command run.
# Nothing here is tuned to the generator: the eval is the one a user would
# run.
#
#   small  800 cards, 250 merchants, 120 days  (~0.2 M events per shape)
#   full   5000 cards, 2000 merchants, 120 days (~1.2 M events per shape)
#
# Needs build/riskstream (ops/build.sh).  Files go to DIR (default a temp
# dir, removed at exit unless --dir is given).  Exit 1 if a run fails.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RS="${RS:-$ROOT/build/riskstream}"
size=small dir="" models="" jobs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "quality.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$size" in
  small) ent=800 cps=250 days=120d ;;
  full) ent=5000 cps=2000 days=120d ;;
  *) echo "quality.sh: --size small|full" >&2; exit 2 ;;
esac
[ -x "$RS" ] || { echo "quality.sh: $RS not built (run ops/build.sh)" >&2; exit 1; }
keep=1
if [ -z "$dir" ]; then dir="$(mktemp -d)"; keep=0; fi
mkdir -p "$dir"
cleanup() { [ "$keep" = 1 ] || rm -rf "$dir"; }
trap cleanup EXIT

# shape name, label delay, fraud rate
shapes=(
  "d7-f1.0%   7d  0.01"
  "d7-f0.1%   7d  0.001"
  "d30-f1.0%  30d 0.01"
  "d30-f0.1%  30d 0.001"
)
mflag=()
[ -n "$models" ] && mflag=(--models "$models")

run_shape() {
  local name="$1" delay="$2" rate="$3" f="$dir/$1"
  local gen=("$RS" gen --seed 11 --entities "$ent" --counterparties "$cps"
             --duration "$days" --label-delay "$delay" --fraud-rate "$rate"
             --compromise-duration 21d --format csv --out "$f.csv"
             --truth-out "$f.truth.csv")
  local ev=("$RS" eval --input "$f.csv" --label-delay "$delay" --quiet
            --no-daily --truth "$f.truth.csv" "${mflag[@]}")
  {
    echo "\$ ${gen[*]}"
    local t0=$SECONDS
    nice -n 10 "${gen[@]}" 2>&1 | tail -1
    echo "\$ ${ev[*]}"
    nice -n 10 "${ev[@]}" > "$f.eval.txt" 2> "$f.eval.err" || {
      echo "FAILED (see $f.eval.err)"; tail -3 "$f.eval.err"; return 1; }
    echo "($((SECONDS - t0)) s)"
  } > "$f.log" 2>&1
}

t_all=$SECONDS
pids=()
for s in "${shapes[@]}"; do
  read -r name delay rate <<< "$s"
  run_shape "$name" "$delay" "$rate" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done

echo "quality.sh --size $size: $ent cards, $cps merchants, $days per shape; eval defaults + --label-delay"
echo "machine: $(uname -n), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); riskstream $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
for s in "${shapes[@]}"; do
  read -r name delay rate <<< "$s"
  cat "$dir/$name.log"
done
echo
printf '| %-10s | %-5s | %8s | %8s | %9s | %8s |\n' shape model "ROC AUC" "avg prec" "CP@100" "events"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------ ------- ---------- ---------- ----------- ----------
for s in "${shapes[@]}"; do
  read -r name delay rate <<< "$s"
  out="$dir/$name.eval.txt"
  [ -s "$out" ] || { printf '| %-10s | failed |\n' "$name"; continue; }
  nev=$(awk '/^overall:/ {print $2; exit}' "$out")
  # model rows of the overall table, then the "all days" row of the weekly
  # card-precision table (one column per model, same order)
  awk -v name="$name" -v nev="$nev" '
    /^model +ROC AUC/ { t = 1; next }
    t == 1 && NF >= 3 && $1 !~ /^\(/ { m[++n] = $1; auc[n] = $2; ap[n] = $3; next }
    t == 1 { t = 2 }
    /^all days/ { for (i = 1; i <= n; i++) cp[i] = $(NF - n + i) }
    END { for (i = 1; i <= n; i++)
            printf "| %-10s | %-5s | %8s | %8s | %9s | %8s |\n", name, m[i], auc[i], ap[i], cp[i], nev }' "$out"
done
echo
echo "total $((SECONDS - t_all)) s; eval outputs in $dir$([ "$keep" = 1 ] || echo ' (removed at exit: use --dir to keep them)')"
exit $fail

#!/usr/bin/env bash
# `riskstream bench` prints the command that reproduces its run: every
# phase and generator option it was given, with the effective value
# (--rate, --events, --seed, --entities, --duration, --sensors), and the
# --config, --set and --group given; a generator setting from the config
# file shows as its flag.  Small runs (a few hundred events per phase).
# usage: bench_command.sh RISKSTREAM_BINARY SOURCE_DIR
set -uo pipefail
BIN="${1:?binary}"
SRC="${2:?source dir}"
T="$(mktemp -d /tmp/rs-bench-cmd.XXXXXX)"
export RISKSTREAM_STATE_DIR="$T/state"
cleanup() { "$SRC/ops/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true; rm -rf "$T"; }
trap cleanup EXIT
fails=0
bad() { echo "bench_command FAIL: $*"; fails=$((fails + 1)); }
URL="$("$SRC/ops/redis.sh" start "$T/redis")" || { echo "bench_command: no redis-server"; exit 1; }

# run NAME ARGS...: bench with ARGS, its "command:" line into $T/NAME.cmd
run() {
  local name="$1"; shift
  "$BIN" bench --redis "$URL" "$@" >"$T/$name.out" 2>"$T/$name.err" ||
    { bad "$name: bench exited $? ($(tail -n 3 "$T/$name.err" | tr '\n' ' '))"; return 1; }
  sed -n 's/^command: \(.*\) (ops\/bench\.sh)$/\1/p' "$T/$name.out" >"$T/$name.cmd"
  [ -s "$T/$name.cmd" ] || bad "$name: no 'command:' line"
  echo "$name: $(cat "$T/$name.cmd")"
}
# has NAME WORDS: the command line holds WORDS (as one run of words)
has() { grep -qF -- " $2" "$T/$1.cmd" || bad "$1: command lacks '$2': $(cat "$T/$1.cmd")"; }

run flags --events 300 --rate 3000 --seed 9 --entities 300 --duration 2d \
  --sensors --set gen.sensors=3 --set 'service.review_threshold=0.6' --group gb
for w in "--rate 3000" "--events 300" "--seed 9" "--entities 300" "--duration 2d" \
         "--sensors" "--set gen.sensors=3" "--set service.review_threshold=0.6" "--group gb"; do
  has flags "$w"
done
grep -q -- "--redis" "$T/flags.cmd" && bad "flags: the private --redis URL is in the command"

# from a config file: the file is named and the value it set is shown
printf 'gen:\n  entities: 250\n  duration: 3d\n' >"$T/g.yaml"
run file --events 300 --rate 3000 --config "$T/g.yaml"
for w in "--entities 250" "--duration 3d" "--config $T/g.yaml" "--seed 42"; do
  has file "$w"
done
grep -q -- "--sensors" "$T/file.cmd" && bad "file: --sensors without it"

echo "bench_command: $fails failure(s)"
[ "$fails" -eq 0 ]

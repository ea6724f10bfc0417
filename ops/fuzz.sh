#!/usr/bin/env bash
# ops/fuzz.sh [SECONDS] -- build the libFuzzer targets with clang
# (RS_FUZZ=ON) and run each for SECONDS (default 30) on a scratch copy of
# its corpus in tests/fuzz/corpus/<target>.  Exits 1 on the first crash,
# leak, sanitizer report or oracle failure (the reproducer is kept in
# build-fuzz/artifacts/).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS="${1:-30}"
"$ROOT/ops/deps.sh" >/dev/null
if ! command -v clang >/dev/null || ! dpkg-query -W libclang-rt-14-dev >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
B="$ROOT/build-fuzz"
cmake -S "$ROOT" -B "$B" -DCMAKE_C_COMPILER=clang -DRS_FUZZ=ON -DRS_BUILD_TESTS=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
T=(fuzz_config fuzz_fmt fuzz_tz fuzz_event_json fuzz_event_pb fuzz_label_json fuzz_csv fuzz_rtf
   fuzz_model_file fuzz_ckpt_file fuzz_model_caches fuzz_dedup fuzz_model_sync fuzz_pstate fuzz_redis_rec
   fuzz_alertpol fuzz_coldstart)
cmake --build "$B" -j"$(nproc)" --target "${T[@]}" >/dev/null
mkdir -p "$B/artifacts"
for t in "${T[@]}"; do
  work="$(mktemp -d)"
  cp -r "$ROOT/tests/fuzz/corpus/$t/." "$work/" 2>/dev/null || true
  echo "fuzz: $t for ${SECS}s"
  "$B/tests/fuzz/$t" -max_total_time="$SECS" -max_len=65536 \
     -artifact_prefix="$B/artifacts/$t-" "$work" >"$B/artifacts/$t.log" 2>&1 || {
    echo "fuzz: $t FAILED, see $B/artifacts/$t.log"; tail -20 "$B/artifacts/$t.log"; exit 1; }
  grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$B/artifacts/$t.log" | tail -1 || true
  rm -rf "$work"
done
echo "fuzz: all targets ran ${SECS}s without a finding"

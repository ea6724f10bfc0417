#!/usr/bin/env bash
# The docs that come from the code are current, and the sample config loads:
#  - docs/config.md = `riskstream config --doc`, docs/riskstream.sample.yaml
#    = `riskstream config --sample`, and every generated block in README.md
#    and docs/*.md (tables of defaults, feature layouts) equals the output of
#    its command (ops/docs.sh --check; fix with ops/docs.sh);
#  - the checked-in sample loads and changes nothing (its effective config
#    is the default one), and so does a sample of a non-default config;
#  - the packaged /etc config (ops/packaging/riskstream.yaml) loads.
# usage: docs_generated.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
BIN="${1:?binary}"
SRC="${2:?source dir}"
T="$(mktemp -d /tmp/rs-docs-test.XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "docs_generated FAIL: $*"; exit 1; }

bash "$SRC/ops/docs.sh" --check "$BIN" || fail "generated docs are stale (run ops/docs.sh)"

"$BIN" config >"$T/default.yaml"
"$BIN" config --config "$SRC/docs/riskstream.sample.yaml" >"$T/from_sample.yaml" ||
  fail "docs/riskstream.sample.yaml does not load"
diff -u "$T/default.yaml" "$T/from_sample.yaml" || fail "the sample's values are not the defaults"
# Every table key of every section is in the sample, each after a comment.
keys=$(awk '/^[a-z_]+:/{sec=$1} /^  [a-z_.]+:/{print sec $1}' "$T/default.yaml" | sort -u)
for k in $keys; do
  sec="${k%%:*}"; key="${k#*:}"; key="${key%:}"
  awk -v s="$sec:" -v k="  $key:" '
    $0 ~ "^" s {in_s = 1; next}
    /^[a-z_]+:/ {in_s = 0}
    in_s && index($0, k) == 1 { if (prev ~ /^  #/) found = 1 }
    {prev = $0}
    END {exit found ? 0 : 1}' "$SRC/docs/riskstream.sample.yaml" ||
    fail "sample: ${sec}${key} missing or without its comment"
done
echo "docs_generated: sample has all $(echo "$keys" | wc -w) keys, each commented"

# A sample of a changed configuration keeps the change and still loads.
"$BIN" config --sample --set redis.ttl=3d --set kafka.client.id=x >"$T/s2.yaml"
"$BIN" config --config "$T/s2.yaml" >"$T/s2.dump"
grep -q '^  ttl: 3d$' "$T/s2.dump" && grep -q '^  client.id: "x"$' "$T/s2.dump" ||
  fail "sample of a changed config lost the change"

if [ -f "$SRC/ops/packaging/riskstream.yaml" ]; then
  "$BIN" config --config "$SRC/ops/packaging/riskstream.yaml" >/dev/null ||
    fail "ops/packaging/riskstream.yaml does not load"
fi
echo "docs_generated: PASS"

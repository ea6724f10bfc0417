#!/usr/bin/env bash
# ops/docs.sh [--check] [BINARY] -- regenerate the parts of the docs that
# come from the code, or (--check) fail listing the ones that are stale.
#
#   docs/config.md             riskstream config --doc
#   docs/riskstream.sample.yaml riskstream config --sample
#   blocks in README.md and docs/*.md between
#       <!-- BEGIN riskstream ARGS... -->      (output as it is: tables)
#       <!-- BEGIN code: riskstream ARGS... --> (output in a ``` block)
#       <!-- END -->
#     are replaced by the output of `BINARY ARGS...`, e.g.
#       <!-- BEGIN riskstream config --doc-table seq -->
#
# BINARY defaults to build/riskstream.  The test `docs_generated` runs
# `ops/docs.sh --check`; after changing a config table or a preset, run
# `ops/docs.sh` and commit the result.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CHECK=0
if [ "${1:-}" = "--check" ]; then CHECK=1; shift; fi
BIN="${1:-$ROOT/build/riskstream}"
[ -x "$BIN" ] || { echo "docs: $BIN not built (ops/build.sh)"; exit 2; }

T="$(mktemp -d /tmp/rs-docs.XXXXXX)"
trap 'rm -rf "$T"' EXIT
stale=()

# update FILE NEWFILE: replace FILE, or in check mode record it if it differs
update() {
  local file="$1" new="$2"
  if cmp -s "$file" "$new"; then return 0; fi
  if [ "$CHECK" = 1 ]; then
    stale+=("${file#"$ROOT"/}")
    diff -u "$file" "$new" | head -n 20 || true
  else
    cp "$new" "$file"
    echo "docs: updated ${file#"$ROOT"/}"
  fi
}

# Run the riskstream command of a marker (words split as a shell would
# not: the marker holds plain words only, no quotes).
run_marker() {
  local args="$1"
  # shellcheck disable=SC2086
  "$BIN" $args 2>"$T/err" || {
    echo "docs: '$args' failed: $(cat "$T/err")" >&2
    return 1
  }
}

"$BIN" config --doc >"$T/config.md"
update "$ROOT/docs/config.md" "$T/config.md"
"$BIN" config --sample >"$T/sample.yaml"
update "$ROOT/docs/riskstream.sample.yaml" "$T/sample.yaml"

for md in "$ROOT/README.md" "$ROOT"/docs/*.md; do
  [ "$md" = "$ROOT/docs/config.md" ] && continue
  grep -q '^<!-- BEGIN ' "$md" || continue
  out="$T/$(basename "$md")"
  : >"$out"
  inblock=0
  lineno=0
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    if [ "$inblock" = 1 ]; then
      if [ "$line" = "<!-- END -->" ]; then
        printf '%s\n' "$line" >>"$out"
        inblock=0
      fi
      continue
    fi
    printf '%s\n' "$line" >>"$out"
    case "$line" in
      "<!-- BEGIN code: riskstream "*" -->")
        args="${line#<!-- BEGIN code: riskstream }"; args="${args% -->}"
        { echo '```'; run_marker "$args"; echo '```'; } >>"$out" ||
          { echo "docs: ${md#"$ROOT"/}:$lineno"; exit 1; }
        inblock=1 ;;
      "<!-- BEGIN riskstream "*" -->")
        args="${line#<!-- BEGIN riskstream }"; args="${args% -->}"
        run_marker "$args" >>"$out" || { echo "docs: ${md#"$ROOT"/}:$lineno"; exit 1; }
        inblock=1 ;;
      "<!-- BEGIN "*)
        echo "docs: ${md#"$ROOT"/}:$lineno: marker must be '<!-- BEGIN [code: ]riskstream ARGS -->'"
        exit 1 ;;
    esac
  done <"$md"
  [ "$inblock" = 0 ] || { echo "docs: ${md#"$ROOT"/}: BEGIN without <!-- END -->"; exit 1; }
  update "$md" "$out"
done

if [ "$CHECK" = 1 ] && [ ${#stale[@]} -gt 0 ]; then
  echo "docs: stale (generated from the code; run ops/docs.sh and commit): ${stale[*]}"
  exit 1
fi
[ "$CHECK" = 1 ] && echo "docs: generated parts up to date"
exit 0

#!/usr/bin/env bash
# Every configuration key the parser takes is documented with its default,
# and no doc names a key or a default the parser does not have.  The
# parser's tables are read through `riskstream config` (the effective
# configuration with nothing set: every table key with its default, one
# renderer); the docs are parsed as text, independently of the renderer
# that writes docs/config.md (rs_conf_doc_markdown), so a default changed by
# hand in a doc, a row left behind after a key was renamed, or a key added
# to a table but not to the docs fails here:
#  - docs/config.md: one row per key of every section (and no other row),
#    the default cell equal to the parser's default;
#  - every other `| key | type | default |` table in README.md and docs/*.md
#    (generated `--doc-table` blocks and tables written by hand): keys
#    named `section.key`, each a parser key with the parser's default;
#  - docs/riskstream.sample.yaml: the same keys as the parser, each set to
#    its default.
# (docs_generated, label e2e, also regenerates the files and diffs them.)
# usage: docs_config_keys.sh RISKSTREAM_BINARY SOURCE_DIR
set -euo pipefail
export LC_ALL=C
BIN="${1:?binary}"
SRC="${2:?source dir}"
T="$(mktemp -d /tmp/rs-docs-keys.XXXXXX)"
trap 'rm -rf "$T"' EXIT
fails=0
bad() { echo "docs_config_keys FAIL: $*"; fails=$((fails + 1)); }

# The parser's keys and defaults: "section.key<TAB>value", quotes removed.
# (The kafka: section has no table: its keys pass through to librdkafka.)
"$BIN" config >"$T/dump.yaml"
awk '
  function unq(v) { if (v ~ /^".*"$/) { v = substr(v, 2, length(v) - 2); gsub(/\\"/, "\"", v) } return v }
  /^#/ { next }
  /^[a-z_]+:/ { sec = substr($1, 1, length($1) - 1); next }
  /^  [^ #][^:]*: / { k = $1; sub(/:$/, "", k); v = $0; sub(/^  [^:]*: /, "", v)
                       print sec "." k "\t" unq(v) }
' "$T/dump.yaml" | sort >"$T/parser.tsv"
n=$(wc -l <"$T/parser.tsv")
[ "$n" -gt 100 ] || { echo "docs_config_keys FAIL: only $n keys from '$BIN config'"; exit 1; }

# Markdown tables "| key | type | default |":
# "file:line US key US default US type" (US = \037: a default may be empty,
# which a tab-separated `read` would lose).
# In docs/config.md a bare key belongs to the section of the heading
# "## `section`" above it; elsewhere keys must be written section.key.
# Rows whose key is not a name (e.g. "*any*" of kafka:) are skipped.
md_rows() {
  awk -v cfg="$1" -v US=$'\037' '
    function cell(i,   c) { c = F[i]; gsub(/^ +| +$/, "", c); return c }
    /^## `[a-z_]+`/ { sec = $2; gsub(/`/, "", sec) }
    /^\| *key *\| *type *\| *default *\|/ { intab = 1; next }
    intab && /^\|[- |]+$/ { next }
    intab && /^\|/ {
      # split on " | " cell borders (an escaped \| stays in its cell)
      line = $0; gsub(/\\\|/, "\001", line); nf = split(line, F, "|")
      k = cell(2); ty = cell(3); d = cell(4); gsub(/\001/, "|", d)
      if (k !~ /^`?[a-z_][a-z0-9_.]*`?$/) next
      gsub(/`/, "", k)
      if (cfg) k = sec "." k
      if (d == "*(empty)*") d = ""
      else if (d ~ /^`.*`$/) d = substr(d, 2, length(d) - 2)
      print FILENAME ":" FNR US k US d US ty
      next
    }
    { intab = 0 }
  ' "$2"
}

# 1. docs/config.md: every parser key once, with its default.
md_rows 1 "$SRC/docs/config.md" >"$T/config_md.tsv"
cut -d $'\037' -f2 "$T/config_md.tsv" | sort | uniq -d | while read -r k; do
  echo "docs_config_keys FAIL: docs/config.md: $k has more than one row"
done | tee "$T/dups" ; [ -s "$T/dups" ] && fails=$((fails + 1))
cut -f1 "$T/parser.tsv" >"$T/parser.keys"
cut -d $'\037' -f2 "$T/config_md.tsv" | sort -u >"$T/config_md.keys"
for k in $(comm -23 "$T/parser.keys" "$T/config_md.keys"); do
  bad "docs/config.md: no row for the parser key $k"
done

# 2. every key table of the docs (config.md included), against the parser.
# A documented default is compared by meaning, through the parser: the rows
# of a file become one YAML file (every default quoted), which must load and
# give each key the parser's default ("24h" and "1d" are one default).
# Rows of list type (features.specs) have no default: they must load as [].
yq() { local v="${1//\\/\\\\}"; printf '"%s"' "${v//\"/\\\"}"; }
check_rows() { # check_rows TSV
  local where key doc ty sec="" s k
  : >"$T/doc.yaml"
  sort -t $'\037' -k2,2 "$1" >"$T/rows.sorted"
  while IFS=$'\037' read -r where key doc ty; do
    grep -q "^$key"$'\t' "$T/parser.tsv" || case "$ty" in
      list*) printf '%s:\n  %s: []\n' "${key%%.*}" "${key#*.}" >"$T/one.yaml"
             "$BIN" config --config "$T/one.yaml" >/dev/null 2>"$T/err" ||
               bad "$where: $key (list) does not load: $(cat "$T/err")"
             continue ;;
      *) bad "$where: $key is not a key of the parser"; continue ;;
    esac
    s="${key%%.*}"; k="${key#*.}"
    [ "$s" = "$sec" ] || { echo "$s:" >>"$T/doc.yaml"; sec="$s"; }
    echo "  $k: $(yq "$doc")" >>"$T/doc.yaml"
  done <"$T/rows.sorted"
  [ -s "$T/doc.yaml" ] || return 0
  if ! "$BIN" config --config "$T/doc.yaml" >"$T/doc.dump" 2>"$T/err"; then
    bad "${where%%:*}: the documented defaults do not load: $(cat "$T/err")"
    return 0
  fi
  while IFS=$'\037' read -r where key doc ty; do
    local got want
    got=$(dump_value "$T/doc.dump" "$key") || continue
    want=$(dump_value "$T/dump.yaml" "$key")
    [ "$got" = "$want" ] ||
      bad "$where: $key documented default '$doc' is $got, the parser's default is $want"
  done <"$T/rows.sorted"
}
# dump_value DUMP section.key: the key's value line in a `config` dump
dump_value() {
  awk -v s="${2%%.*}:" -v k="  ${2#*.}: " '
    $0 == s { f = 1; next } /^[a-z_]+:/ { f = 0 }
    f && index($0, k) == 1 { print substr($0, length(k) + 1); found = 1; exit }
    END { exit !found }' "$1"
}
check_rows "$T/config_md.tsv"
ntab=0
for md in "$SRC/README.md" "$SRC"/docs/*.md; do
  [ "$md" = "$SRC/docs/config.md" ] && continue
  md_rows 0 "$md" >"$T/rows.tsv"
  # a bare key outside config.md cannot be checked: its section is unknown
  awk -F'\037' '$2 !~ /\./ { print $1 ": key `" $2 "` without its section (write section.key)" }' \
    "$T/rows.tsv" | while read -r l; do echo "docs_config_keys FAIL: $l"; done | tee "$T/bare"
  [ -s "$T/bare" ] && fails=$((fails + 1))
  ntab=$((ntab + $(wc -l <"$T/rows.tsv")))
  awk -F'\037' '$2 ~ /\./' "$T/rows.tsv" >"$T/rows.full"
  check_rows "$T/rows.full"
done

# 3. the sample: the parser's keys, each at its default (comments skipped)
awk '
  function unq(v) { if (v ~ /^".*"$/) { v = substr(v, 2, length(v) - 2); gsub(/\\"/, "\"", v) } return v }
  /^ *#/ || /^ *$/ { next }
  /^[a-z_]+:/ { sec = $1; sub(/:.*/, "", sec); next }
  /^  [^ #][^:]*: / { k = $1; sub(/:$/, "", k); v = $0; sub(/^  [^:]*: /, "", v)
                       sub(/ +#.*/, "", v); print sec "." k "\t" unq(v) }
' "$SRC/docs/riskstream.sample.yaml" | sort >"$T/sample.tsv"
cut -f1 "$T/sample.tsv" >"$T/sample.keys"
for k in $(comm -23 "$T/parser.keys" "$T/sample.keys"); do
  bad "docs/riskstream.sample.yaml: no value for the parser key $k"
done
for k in $(comm -13 "$T/parser.keys" "$T/sample.keys"); do
  bad "docs/riskstream.sample.yaml: $k is not a key of the parser"
done
join -t $'\t' "$T/parser.tsv" "$T/sample.tsv" | awk -F'\t' '$2 != $3 {
    print "docs_config_keys FAIL: docs/riskstream.sample.yaml: " $1 ": \x27" $3 "\x27, the parser\x27s default is \x27" $2 "\x27" }' |
  tee "$T/sdiff"
[ -s "$T/sdiff" ] && fails=$((fails + 1))

echo "docs_config_keys: $n parser keys; docs/config.md $(wc -l <"$T/config_md.tsv") rows," \
     "other doc tables $ntab rows, sample $(wc -l <"$T/sample.tsv") keys; $fails failure(s)"
[ "$fails" -eq 0 ]

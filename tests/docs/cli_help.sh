#!/usr/bin/env bash
# Every subcommand's --help and flags against the code and the docs:
#  - the subcommands are those `riskstream --help` lists (the dispatcher's
#    table, ops/cli/main.c); each one's `--help` and `-h` print
#    "usage: riskstream CMD" on stdout and exit 0 (model: after `list` and
#    `rollback V` too);
#  - every long flag a subcommand parses -- the getopt_long rows of
#    ops/cli/cmd_CMD.c, the common rows (ops/cli/cli.c) when it merges them
#    (rs_cli_opts_merge), the harness rows (rs_cli_run_opts) for demo and
#    bench -- appears in its --help, and in README.md or the docs page of
#    that subcommand (the common flags in README.md);
#  - every --flag on a `riskstream CMD ...` line of README's command list
#    is one CMD parses (no stale flag);
#  - a common flag the subcommand refuses (rs_cli_common_unused; those of
#    gen, broker, audit, api and model also listed here) is exit 2 naming
#    it, and its --help does not list it (no option row, no [--flag] in
#    the usage); an unknown flag is exit 2 naming it; the exit codes
#    README states are the values of RS_EXIT_OK / RS_EXIT_RUNTIME /
#    RS_EXIT_USAGE.
# usage: cli_help.sh RISKSTREAM_BINARY SOURCE_DIR
set -uo pipefail
export LC_ALL=C
BIN="${1:?binary}"
SRC="${2:?source dir}"
T="$(mktemp -d /tmp/rs-cli-help.XXXXXX)"
trap 'rm -rf "$T"' EXIT
fails=0
bad() { echo "cli_help FAIL: $*"; fails=$((fails + 1)); }

# long option names of the getopt rows {"name", x_argument, ...} in a file
# (or in the lines a sed range selects)
rows() { grep -oE '\{"[a-z][a-z0-9-]*", *(no|required|optional)_argument' |
         sed -E 's/\{"([^"]*)".*/\1/'; }
common=$(rows <"$SRC/ops/cli/cli.c")
harness=$(sed -n '/^int rs_cli_run_opts/,/^}/p' "$SRC/ops/cli/cmd_demo.c" | rows)
[ -n "$common" ] && [ -n "$harness" ] || { echo "cli_help FAIL: no option rows found"; exit 1; }

# the page that documents each subcommand (README.md is read for all)
page() {
  case "$1" in
    gen) echo docs/generator.md ;;
    features) echo docs/features.md ;;
    eval | train) echo docs/eval.md ;;
    audit | api) echo docs/audit.md ;;
    model) echo docs/model.md ;;
    *) echo README.md ;;
  esac
}
has_flag() { grep -qE -- "--$1([^a-z0-9-]|\$)" "${@:2}"; }

"$BIN" --help >"$T/main" 2>&1 || bad "riskstream --help: exit $?"
cmds=$(awk '/^commands:/ { f = 1; next } f && /^  [a-z]/ { print $1 } f && /^$/ { f = 0 }' "$T/main")
[ "$(echo "$cmds" | wc -w)" -ge 10 ] || { echo "cli_help FAIL: commands: $cmds"; exit 1; }

for c in $cmds; do
  src="$SRC/ops/cli/cmd_$c.c"
  [ -f "$src" ] || { bad "$c: no $src"; continue; }
  for h in --help -h; do
    "$BIN" "$c" $h >"$T/help" 2>"$T/err"
    rc=$?
    [ "$rc" -eq 0 ] && grep -q "^usage: riskstream $c" "$T/help" ||
      bad "$c $h: exit $rc, stdout without 'usage: riskstream $c'"
  done
  "$BIN" "$c" --help >"$T/help" 2>/dev/null
  flags=$(rows <"$src")
  grep -q 'rs_cli_opts_merge' "$src" && flags="$flags $common"
  grep -q 'rs_cli_run_opts(' "$src" && flags="$flags $common $harness"
  flags=$(echo $flags | tr ' ' '\n' | sort -u)
  doc="$SRC/$(page "$c")"
  # common flags the subcommand refuses (rs_cli_common_unused): exit 2
  # naming the flag, and not in its help
  refused=$(grep -oE 'RS_CLI_NO_[A-Z]+' "$src" | sed 's/RS_CLI_NO_//' | tr A-Z a-z | sort -u)
  # the common flags each of these has no use for (pinned here: a flag
  # taken and ignored is a bug the code's own list would not show)
  case "$c" in
    gen) want="redis group" ;;      # produces or writes files
    broker) want="brokers redis" ;; # is the broker (--group: its changelog)
    audit) want="brokers group" ;;
    api) want="group" ;;
    model) want="brokers redis group" ;;
    demo|bench) want="brokers" ;;   # always on the embedded Kafka
    *) want="" ;;
  esac
  for f in $want; do
    echo "$refused" | grep -qx -- "$f" || refused="$refused $f"
  done
  for f in $refused; do
    # (bounded: taken and ignored, gen would write a stream and broker
    # serve until a signal)
    case "$c" in model) set -- list ;; audit) set -- x ;;
      gen) set -- --events 1 --out "$T/gen.out" ;; *) set -- ;; esac
    timeout 20 "$BIN" "$c" "$@" "--$f" x >/dev/null 2>"$T/err"
    rc=$?
    [ "$rc" -eq 2 ] && grep -q -- "--$f: not used by" "$T/err" ||
      bad "$c --$f: exit $rc (want 2 naming it), stderr: $(head -c 200 "$T/err")"
    # not offered: no option row, no [--flag ...] in the usage lines
    grep -qE -- "^ +(-[a-zA-Z], +)?--$f( |\$)|\[--$f[] ]" "$T/help" &&
      bad "$c: --$f is refused but listed in '$c --help'"
    flags=$(echo "$flags" | grep -vx -- "$f")
  done
  for f in $flags; do
    has_flag "$f" "$T/help" || bad "$c: --$f is parsed but not in '$c --help'"
    if echo "$common" | grep -qx -- "$f"; then
      has_flag "$f" "$SRC/README.md" || bad "$c: common flag --$f not in README.md"
    else
      has_flag "$f" "$SRC/README.md" "$doc" ||
        bad "$c: --$f is parsed but not in README.md$([ "$(page "$c")" = README.md ] || echo " nor $(page "$c")")"
    fi
  done
  echo "$flags" >"$T/flags.$c"
  # an unknown flag: exit 2, named (model reads its subcommand first)
  if [ "$c" = model ]; then set -- list; else set --; fi
  "$BIN" "$c" "$@" --no-such-flag >/dev/null 2>"$T/err"
  rc=$?
  [ "$rc" -eq 2 ] && grep -q -- "no-such-flag" "$T/err" ||
    bad "$c --no-such-flag: exit $rc (want 2), stderr: $(head -c 200 "$T/err")"
done
for a in "list --help" "rollback v1 --help" "list -h"; do
  # shellcheck disable=SC2086
  "$BIN" model $a >"$T/help" 2>"$T/err"
  rc=$?
  [ "$rc" -eq 0 ] && grep -q "^usage: riskstream model" "$T/help" ||
    bad "model $a: exit $rc, stdout without the usage"
done

# README's command list: every --flag of a `riskstream CMD` line is CMD's.
awk '/^## Commands/ { f = 1 } f && /^```$/ { n++; if (n == 2) exit; next }
     f && n == 1' "$SRC/README.md" >"$T/readme_cmds"
[ -s "$T/readme_cmds" ] || bad "README.md: no command list under '## Commands'"
cur=""
while IFS= read -r line; do
  case "$line" in
    "riskstream "*) w=${line#riskstream }; cur=${w%% *} ;;
  esac
  [ -f "$T/flags.$cur" ] || continue
  for f in $(echo "$line" | sed 's/#.*//' | grep -oE -- '--[a-z][a-z0-9-]*' | sed 's/^--//'); do
    grep -qx -- "$f" "$T/flags.$cur" ||
      bad "README.md command list: riskstream $cur --$f is not a flag of $cur"
  done
done <"$T/readme_cmds"

# exit codes: README and the main usage against common/common.h
for e in OK:0:success RUNTIME:1:runtime USAGE:2:usage; do
  name=${e%%:*}; rest=${e#*:}; want=${rest%%:*}; word=${rest#*:}
  v=$(awk -v n="RS_EXIT_$name" '$1 == "#define" && $2 == n { print $3 }' "$SRC/common/common.h")
  [ "$v" = "$want" ] || bad "common/common.h: RS_EXIT_$name is '$v', README says $want"
  grep -q "\*\*$want\*\* $word" "$SRC/README.md" || bad "README.md: no '**$want** $word'"
  grep -q "$want $word" "$T/main" || bad "riskstream --help: no '$want $word'"
done
"$BIN" >/dev/null 2>&1; rc=$?; [ "$rc" -eq 2 ] || bad "riskstream (no command): exit $rc"
grep -q -- "--version" "$T/main" || bad "riskstream --help does not name --version"
"$BIN" --version >"$T/v" 2>&1 && grep -q "riskstream" "$T/v" || bad "riskstream --version failed"
"$BIN" nope >/dev/null 2>"$T/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "nope" "$T/err" || bad "riskstream nope: exit $rc"

echo "cli_help: $(echo $cmds | wc -w) subcommands; $fails failure(s)"
[ "$fails" -eq 0 ]

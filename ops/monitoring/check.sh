#!/usr/bin/env bash
# ops/monitoring/check.sh METRICS_FILE -- check the Grafana dashboard and
# the Prometheus alert rules of this directory against what the service
# really exports:
#   1. promtool check rules riskstream-alerts.yml, and its unit tests
#      (promtool test rules riskstream-alerts.test.yml);
#   2. the dashboard is valid JSON and every panel query is valid PromQL
#      (each is checked by promtool as a recording rule, with Grafana's
#      $__rate_interval and $instance replaced);
#   3. every metric name used in the dashboard (queries and variables) and
#      in the rules (expressions and annotations) appears in METRICS_FILE, a
#      real /metrics scrape of `riskstream serve` (histogram names count
#      with their _bucket, _sum and _count series).
# tests/e2e/e2e_kcat.sh runs it on its scrape.  Needs promtool and jq.
set -euo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
METRICS="${1:?usage: check.sh METRICS_FILE (a /metrics scrape)}"
T="$(mktemp -d /tmp/rs-mon.XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "monitoring FAIL: $*"; exit 1; }

promtool check rules "$DIR/riskstream-alerts.yml" >"$T/out" 2>&1 || { cat "$T/out"; fail "promtool check rules"; }
(cd "$DIR" && promtool test rules riskstream-alerts.test.yml) >"$T/out" 2>&1 || { cat "$T/out"; fail "promtool test rules"; }
echo "monitoring: alert rules valid, their unit tests pass"

D="$DIR/riskstream-dashboard.json"
jq empty "$D" || fail "dashboard is not valid JSON"
jq -r '.. | objects | select(has("expr")) | .expr' "$D" >"$T/exprs"
jq -r '.templating.list[] | .definition // empty' "$D" >"$T/vars"
nexpr=$(grep -c . "$T/exprs" || true)
[ "$nexpr" -ge 10 ] || fail "dashboard has only $nexpr queries"
# Panel queries as recording rules (JSON is YAML), so promtool parses them.
sed 's/\$__rate_interval/5m/g; s/\$instance/.*/g' "$T/exprs" |
  jq -R -s 'split("\n") | map(select(length > 0)) |
            {groups: [{name: "dashboard", rules: (to_entries |
              map({record: ("dashboard:query_" + (.key | tostring)), expr: .value}))}]}' \
  >"$T/dash_rules.json"
promtool check rules "$T/dash_rules.json" >"$T/out" 2>&1 || { cat "$T/out"; fail "a dashboard query is not valid PromQL"; }
echo "monitoring: dashboard JSON valid, its $nexpr queries parse"

# Exported names: every "# TYPE name type" of the scrape, plus the series
# of histograms and summaries.
awk '$1 == "#" && $2 == "TYPE" {
       print $3
       if ($4 == "histogram") { print $3 "_bucket"; print $3 "_sum"; print $3 "_count" }
       if ($4 == "summary") { print $3 "_sum"; print $3 "_count" }
     }' "$METRICS" | sort -u >"$T/exported"
[ "$(wc -l <"$T/exported")" -ge 20 ] || fail "$METRICS holds only $(wc -l <"$T/exported") metric families: not a scrape"
cat "$T/exprs" "$T/vars" "$DIR/riskstream-alerts.yml" |
  grep -oE '(^|[^a-zA-Z0-9_])(riskstream|process)_[a-zA-Z0-9_]+' |
  sed 's/^[^a-z]//' | sort -u >"$T/used"
missing=$(comm -23 "$T/used" "$T/exported")
if [ -n "$missing" ]; then
  echo "monitoring: used in the dashboard or the rules but not exported by the service:"
  echo "$missing" | sed 's/^/  /'
  fail "unknown metric names"
fi
echo "monitoring: all $(wc -l <"$T/used") metric names used by the dashboard and the rules are exported"

# scaleout_lib.sh -- helpers shared by the scale-out e2e scripts
# (scaleout.sh, scaleout3.sh); sourced, not run.

ts() { date +%s.%N; }

# ids FILE...: distinct event ids (first tab-separated column)
ids() { cat "$@" 2>/dev/null | cut -f1 | sort -u | wc -l; }

# first_after LOG EPOCH: seconds from EPOCH to the first "assigned N
# partition(s)" line of a serve log at or after it (handover time)
first_after() {
  python3 - "$1" "$2" <<'PYEOF'
import sys, re, datetime
path, t0 = sys.argv[1], float(sys.argv[2])
for line in open(path, errors="replace"):
    m = re.match(r"ts=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z .*msg=\"assigned \d+ partition", line)
    if not m: continue
    t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
    if t >= t0: print("%.1f" % (t - t0)); break
PYEOF
}

#!/usr/bin/env python3
"""maint_breakdown.py -- where `eval --maintenance` misses the bar.

Usage:
  riskstream eval --input S.csv --labels S.labels.jsonl --maintenance \
      --set features.preset=sensors --set maintenance.horizon=24h \
      --models seq,lr --no-daily --scores-out S.scores.csv
  ops/eval/maint_breakdown.py S.csv S.scores.csv [--horizon 24h] [--by 20]

Replays the alert policy of docs/maintenance.md (defaults: threshold 0.3,
3 readings, 24 h cool-down; escalations are not replayed, so a column can
differ from eval's by a failure or two) over every score column of the file
(`score_<model>`: what the policy decides on, with the cold-start blend;
in maintenance mode also `score_own_<model>`, the models' own scores
before the blend, and `score_ref`, the reference alone), finds the
failures as eval does (the last reading of each run of readings labelled
"within the failure window" in the CSV's label column, per machine) and
prints, per model, the share caught at least a third of the horizon ahead:
  - over all failures after eval's warm-up (1.25 x (horizon + 1 h)),
  - for the runs cut by the end of the stream (the machine's failure is
    after the last reading: eval counts the last reading as the failure),
  - for the other (real) failures in time order, by groups of --by, and
    after the first group: the model's cold start in a prequential run is
    the first failures it ever learns from.
Pure standard library; reads the files once.
"""
import argparse
import collections
import csv


def dur_ms(s):
    units = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}
    for u in ("ms", "s", "m", "h", "d"):
        if s.endswith(u) and s[: -len(u)].replace(".", "", 1).isdigit():
            return int(float(s[: -len(u)]) * units[u])
    return int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("scores")
    ap.add_argument("--horizon", default="24h")
    ap.add_argument("--delay", default="1h", help="failure report delay "
                    "(eval's warm-up is 1.25 x (horizon + delay))")
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--readings", type=int, default=3)
    ap.add_argument("--cooldown", default="24h")
    ap.add_argument("--by", type=int, default=20)
    a = ap.parse_args()
    H, cool = dur_ms(a.horizon), dur_ms(a.cooldown)
    truth, ent, tt = {}, {}, {}
    with open(a.csv) as f:
        for r in csv.DictReader(f):
            truth[r["id"]] = int(r["label"])
            ent[r["id"]] = r["entity_id"]
            tt[r["id"]] = int(r["event_time_ms"])
    per = collections.defaultdict(list)
    with open(a.scores) as f:
        rd = csv.DictReader(f)
        cols = [c for c in rd.fieldnames if c.startswith("score_")]
        for r in rd:
            i = r["event_id"]
            per[ent[i]].append((tt[i], truth[i], [float(r[c]) for c in cols]))
    t0 = min(x[0] for L in per.values() for x in L)
    warm = t0 + int(1.25 * (H + dur_ms(a.delay)))
    for k, col in enumerate(cols):
        res = []  # (T, caught >= H/3, cut by the end of the stream)
        for L in per.values():
            L.sort(key=lambda x: x[0])
            above = below = 0
            opn = False
            last_alert = None
            ls = 0
            hist = []
            for i, (t, lab, s) in enumerate(L):
                s = s[k]
                if s >= a.threshold:
                    above, below = above + 1, 0
                else:
                    below, above = below + 1, 0
                    if opn and below >= a.readings:
                        opn = False
                dec = None
                if s >= a.threshold and above >= a.readings and not opn:
                    opn = True
                    if last_alert is not None and t - last_alert < cool:
                        dec = "silent"
                    else:
                        dec, last_alert = "alert", t
                hist.append((t, dec, opn))
                if lab == 1 and (i + 1 == len(L) or L[i + 1][1] == 0):
                    T = t
                    if T >= warm:
                        lead = None
                        if opn:  # the open episode, from its first reading
                            j = i
                            while j >= ls and hist[j][2]:
                                j -= 1
                            lead = T - L[j + 1][0]
                        # or the first alert within the horizon, if earlier
                        # (an episode opened silently after it is the same
                        # alerted problem: rs_alertpol_lead)
                        fa = [h[0] for h in hist[ls:i + 1]
                              if h[1] == "alert" and h[0] >= T - H]
                        if fa and (lead is None or T - fa[0] > lead):
                            lead = T - fa[0]
                        res.append((T, lead is not None and lead * 3 >= H,
                                    i + 1 == len(L)))
                    ls, above, below, opn, last_alert = i + 1, 0, 0, False, None
        res.sort()
        n, ok = len(res), sum(r[1] for r in res)
        cut = [r for r in res if r[2]]
        real = [r for r in res if not r[2]]
        groups = [real[g:g + a.by] for g in range(0, len(real), a.by)]
        later = real[a.by:]
        print(f"{col[6:]:5s} caught >= H/3: {ok}/{n} = {100 * ok / max(n, 1):.1f}%"
              f"; cut by the end of the stream {sum(r[1] for r in cut)}/{len(cut)}"
              f"; real failures in time order by {a.by}: "
              + " ".join(f"{sum(r[1] for r in g)}/{len(g)}" for g in groups)
              + (f"; after the first {a.by} (from day "
                 f"{(real[a.by - 1][0] - t0) / 86400000:.1f}): "
                 f"{sum(r[1] for r in later)}/{len(later)} = "
                 f"{100 * sum(r[1] for r in later) / max(len(later), 1):.1f}%"
                 if len(real) > a.by else ""))


if __name__ == "__main__":
    main()

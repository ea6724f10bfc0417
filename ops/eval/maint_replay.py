#!/usr/bin/env python3
"""maint_replay.py -- replay eval --maintenance's blend and alert policy.

Usage:
  riskstream eval --input S.csv --labels S.labels.jsonl --maintenance \\
      --set features.preset=sensors --set maintenance.horizon=24h \\
      --models seq,lr --no-daily --scores-out S.scores.csv
  ops/eval/maint_replay.py S.csv S.labels.jsonl S.scores.csv \\
      [--weight fleet|disagree] [--open M/N] [--readings K] [--check]

From the columns eval writes (`score_own_<model>`: the model's own score,
`score_ref`: the reference u with the machine's CUSUM), replays what eval
does after the models, in eval's order (a failure is applied when its
label arrives: the label file's label_time_ms):
  - the model's own alert policy and its record (n failures learned, c of
    them caught >= H/3 ahead by the own policy; rs_alertpol_lead);
  - the blend s = 1 - (1 - p)(1 - (1 - w) u), w = c / (n + n0), with
    --weight disagree (default, model/coldstart.c since session 12: w/2
    on a machine where u >= the threshold while the own policy has no
    episode open) or fleet (w everywhere, before);
  - the alert policy on s (model/maint.c: k consecutive readings open an
    episode, or with --open M/N M of the last N readings, k below close
    it; cool-down, escalation);
and counts as eval does (ops/eval/maint_eval.c): failures after the
warm-up (1.25 x horizon) caught at least a third of the horizon ahead
(the earlier of the open episode's start and the first alert within the
horizon) and healthy readings inside an open episode.  --check prints the
largest difference between the replayed blend and eval's `score_<model>`
(~1e-7 when the replay is eval's).  Exact on eval's own settings: the
figures are eval's to the failure.  Pure standard library.
"""
import argparse
import csv
import heapq
import json

from maint_breakdown import dur_ms  # the same duration syntax (ops/eval)


class Policy:
    """rs_alertpol: per machine [window bits, above, below, last alert,
    episode's first alert, open, level, opening]."""

    def __init__(self, a, H):
        self.thr, self.k, self.cool, self.esc = (a.threshold, a.readings,
                                                 dur_ms(a.cooldown),
                                                 a.escalation)
        self.m, self.n = (int(x) for x in a.open.split("/")) if a.open \
            else (self.k, self.k)
        self.H = H
        self.st = {}

    def fresh(self, e):
        self.st[e] = [0, 0, 0, None, None, 0, 0.0, 0]

    def step(self, e, t, x):
        m = self.st.get(e)
        if m is None:
            self.fresh(e)
            m = self.st[e]
        up = x >= self.thr
        m[0] = ((m[0] << 1) | up) & ((1 << self.n) - 1)
        if up:
            m[1], m[2] = m[1] + 1, 0
        else:
            m[2], m[1] = m[2] + 1, 0
            if m[5] and m[2] >= self.k:
                m[5] = 0
            return 0
        if bin(m[0]).count("1") < self.m:
            return 0
        if m[5]:
            if self.esc < 1 and x >= m[6] + self.esc:
                m[6], m[3] = x, t
                return 2
            return 0
        m[5], m[7], m[6] = 1, t, x
        if m[3] is not None and t - m[3] < self.cool:
            return 0
        m[3] = m[4] = t
        return 1

    def is_open(self, e):
        m = self.st.get(e)
        return bool(m and m[5])

    def lead(self, e, T):
        m = self.st.get(e)
        if not m:
            return -1
        lead = T - m[7] if m[5] and m[7] <= T else -1
        a = m[4]
        if a is not None and a <= T and T - a <= self.H and T - a > lead:
            lead = T - a
        return lead


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("labels")
    ap.add_argument("scores")
    ap.add_argument("--horizon", default="24h")
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--readings", type=int, default=3)
    ap.add_argument("--cooldown", default="24h")
    ap.add_argument("--escalation", type=float, default=0.25)
    ap.add_argument("--open", default="", help="M/N: M of the last N "
                    "readings open an episode (default: --readings in a row)")
    ap.add_argument("--weight", choices=("fleet", "disagree"),
                    default="disagree")
    ap.add_argument("--sensors", type=int, default=4,
                    help="n0, the sensors the reference reads")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    H = dur_ms(a.horizon)
    avail = {}
    with open(a.labels) as f:
        for line in f:
            d = json.loads(line)
            avail[d["event_id"]] = d["label_time_ms"]
    t, ent, lab, ids = [], [], [], []
    names = {}
    with open(a.csv) as f:
        for r in csv.DictReader(f):
            t.append(int(r["event_time_ms"]))
            ent.append(names.setdefault(r["entity_id"], len(names)))
            lab.append(int(r["label"]))
            ids.append(r["id"])
    pos = {i: k for k, i in enumerate(ids)}
    N = len(t)
    sc = [None] * N
    with open(a.scores) as f:
        rd = csv.DictReader(f)
        models = [c[10:] for c in rd.fieldnames if c.startswith("score_own_")]
        for r in rd:
            sc[pos[r["event_id"]]] = ([float(r["score_own_" + m]) for m in models],
                                      [float(r["score_" + m]) for m in models],
                                      float(r["score_ref"]))
    # eval's failures: the last positive of each run, per machine; truth:
    # within the horizon before the machine's next failure
    per = {}
    for k in range(N):
        per.setdefault(ent[k], []).append(k)
    fail, truth = [0] * N, [0] * N
    for L in per.values():
        for j, k in enumerate(L):
            nxt = j + 1 < len(L) and lab[L[j + 1]] == 1
            fail[k] = lab[k] == 1 and not nxt
        nf = None
        for k in reversed(L):
            if fail[k]:
                nf = t[k]
            truth[k] = nf is not None and t[k] >= nf - H
    warm = t[0] + int(1.25 * H)
    for mi, model in enumerate(models):
        own, pol = Policy(a, H), Policy(a, H)
        n = c = 0
        heap = []
        dec, opn = bytearray(N), bytearray(N)
        maxdiff = 0.0
        for i in range(N):
            while heap and heap[0][0] <= t[i]:
                _, T, e = heapq.heappop(heap)
                ld = own.lead(e, T)
                n += 1
                c += ld >= 0 and ld * 3 >= H
                own.fresh(e)
                pol.fresh(e)
            e = ent[i]
            p, u = sc[i][0][mi], sc[i][2]
            own.step(e, t[i], p)
            w = c / (n + a.sensors) if a.sensors else 1.0
            if a.weight == "disagree" and u >= a.threshold and not own.is_open(e):
                w *= 0.5
            s = 1 - (1 - p) * (1 - (1 - w) * u)
            maxdiff = max(maxdiff, abs(s - sc[i][1][mi]))
            dec[i] = pol.step(e, t[i], s) != 0
            opn[i] = pol.is_open(e)
            if fail[i]:
                heapq.heappush(heap, (avail.get(ids[i], t[i]), t[i], e))
        nfail = ok = hn = ho = 0
        for L in per.values():
            L = [k for k in L if t[k] >= warm]
            for b0, i in enumerate(L):
                if not truth[i]:
                    hn += 1
                    ho += opn[i]
                if not fail[i]:
                    continue
                nfail += 1
                T, fa = t[i], None
                b = b0
                while opn[i] and b >= 0 and opn[L[b]]:
                    fa = t[L[b]]
                    b -= 1
                for b in range(b0, -1, -1):
                    j = L[b]
                    if t[j] < T - H:
                        break
                    if dec[j] and (fa is None or t[j] < fa):
                        fa = t[j]
                ok += fa is not None and (T - fa) * 3 >= H
        print(f"{model:5s} caught >= H/3: {ok}/{nfail} = "
              f"{100 * ok / max(nfail, 1):.1f}%; healthy readings in alert "
              f"{100 * ho / max(hn, 1):.2f}%"
              + (f"; blend vs eval's column: max diff {maxdiff:.1e}"
                 if a.check else ""))


if __name__ == "__main__":
    main()

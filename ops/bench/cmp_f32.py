#!/usr/bin/env python3
"""cmp_f32.py A B [--dim N]: compare two bench_model --dump files (records
of 1 score + N contributions, float32): max abs difference of the scores
and of the contributions, and how many values differ at all."""
import argparse, struct, sys

ap = argparse.ArgumentParser()
ap.add_argument("a"); ap.add_argument("b")
ap.add_argument("--dim", type=int, default=17)
o = ap.parse_args()
A, B = open(o.a, "rb").read(), open(o.b, "rb").read()
if len(A) != len(B):
    sys.exit("different lengths: %d vs %d" % (len(A), len(B)))
n = len(A) // 4
fa, fb = struct.unpack("<%df" % n, A), struct.unpack("<%df" % n, B)
rec = o.dim + 1
ds = dc = 0.0
ns = nc = 0
for i in range(n):
    d = abs(fa[i] - fb[i])
    if i % rec == 0:
        ds = max(ds, d); ns += fa[i] != fb[i]
    else:
        dc = max(dc, d); nc += fa[i] != fb[i]
print("%d events: scores max |diff| %.3g (%d differ), contributions max "
      "|diff| %.3g (%d of %d differ)" % (n // rec, ds, ns, dc, nc, n - n // rec))

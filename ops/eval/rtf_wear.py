#!/usr/bin/env python3
"""rtf_wear.py -- an independent run-to-failure file for `eval --maintenance`.

Usage: ops/eval/rtf_wear.py [SEED] > rtf.txt      (docs/maintenance.md)

Not riskstream's generator: turbofan-like units, one row per cycle,
`unit cycle s1 s2 s3 sensor1..14`, each unit failing at its last cycle
(128-362 cycles); an exponential wear index (0 at the start, 1 at the
failure) drives 8 of the 14 sensors up or down by 4-8 noise sds; sensors
at different scales (5-600) with machine-to-machine offsets.  With seed 3
the driven sensors are 3, 7, 8, 9, 11, 12, 13, 14.  Pure standard library.
"""
import math, random, sys
random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
units = 100
base = [random.uniform(5, 600) for _ in range(14)]
noise = [b * random.uniform(0.001, 0.004) for b in base]
gain = [0] * 14
for j in random.sample(range(14), 8):
    gain[j] = random.choice((-1, 1)) * noise[j] * random.uniform(4, 8)
for u in range(1, units + 1):
    L = random.randint(128, 362)
    off = [random.gauss(0, noise[j]) for j in range(14)]
    a = random.uniform(3, 6)
    for c in range(1, L + 1):
        w = (math.exp(a * c / L) - 1) / (math.exp(a) - 1)  # 0 .. 1 at failure
        row = [u, c, random.gauss(0, 0.002), random.gauss(0, 0.0003), 100.0]
        row += [base[j] + off[j] + gain[j] * w + random.gauss(0, noise[j]) for j in range(14)]
        print(" ".join(str(x) if i < 2 else f"{x:.4f}" for i, x in enumerate(row)))

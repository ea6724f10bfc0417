#!/usr/bin/env python3
"""rtf_wear.py -- an independent run-to-failure file for `eval --maintenance`.

Usage: ops/eval/rtf_wear.py [SEED [CONDITIONS]] > rtf.txt  (docs/maintenance.md)

Not riskstream's generator: turbofan-like units, one row per cycle,
`unit cycle s1 s2 s3 sensor1..14`, each unit failing at its last cycle
(128-362 cycles); an exponential wear index (0 at the start, 1 at the
failure) drives 8 of the 14 sensors up or down by 4-8 noise sds; sensors
at different scales (5-600) with machine-to-machine offsets.  With seed 3
the driven sensors are 3, 7, 8, 9, 11, 12, 13, 14.  Pure standard library.

With CONDITIONS = K (1-6; default 0: the file is byte for byte the one
without the argument) every cycle runs in one of K operating conditions,
drawn at random per cycle as in multi-condition turbofan data: s1..s3 are
that condition's settings (altitude, Mach, throttle angle of the six
conditions of such data, with noise) and every sensor moves by the
condition's effect, -10..+10 noise sds per sensor and condition (larger
than the wear).  Those draws come from a stream of their own, so the
units, wear and noise are the same as in the file without conditions.
"""
import math, random, sys
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 3
K = int(sys.argv[2]) if len(sys.argv) > 2 else 0
if not 0 <= K <= 6:
    sys.exit("rtf_wear.py: CONDITIONS must be 0-6")
random.seed(seed)
rc = random.Random(seed + 1000003)
SETTINGS = [(0.0, 0.0, 100.0), (10.0, 0.25, 100.0), (20.0, 0.70, 100.0),
            (25.0, 0.62, 60.0), (35.0, 0.84, 100.0), (42.0, 0.84, 100.0)]
units = 100
base = [random.uniform(5, 600) for _ in range(14)]
noise = [b * random.uniform(0.001, 0.004) for b in base]
gain = [0] * 14
for j in random.sample(range(14), 8):
    gain[j] = random.choice((-1, 1)) * noise[j] * random.uniform(4, 8)
effect = [[noise[j] * rc.uniform(-10, 10) for j in range(14)] for _ in range(K)]
for u in range(1, units + 1):
    L = random.randint(128, 362)
    off = [random.gauss(0, noise[j]) for j in range(14)]
    a = random.uniform(3, 6)
    for c in range(1, L + 1):
        w = (math.exp(a * c / L) - 1) / (math.exp(a) - 1)  # 0 .. 1 at failure
        row = [u, c, random.gauss(0, 0.002), random.gauss(0, 0.0003), 100.0]
        row += [base[j] + off[j] + gain[j] * w + random.gauss(0, noise[j]) for j in range(14)]
        if K:
            k = rc.randrange(K)
            row[2:5] = [SETTINGS[k][0] + rc.gauss(0, 0.002),
                        SETTINGS[k][1] + rc.gauss(0, 0.0003), SETTINGS[k][2]]
            for j in range(14):
                row[5 + j] += effect[k][j]
        print(" ".join(str(x) if i < 2 else f"{x:.4f}" for i, x in enumerate(row)))

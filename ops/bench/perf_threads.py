#!/usr/bin/env python3
"""ops/bench/perf_threads.py -- where serve's CPU goes at max rate, per thread
(issue 12): the e2e bench's burst (N events pre-produced to a separate
`riskstream broker`, 32 partitions, a fresh Redis and state.dir), serve
started under `perf record` (CPU samples with DWARF call graphs; started
under perf, so every thread is followed from its creation), stopped by
service.max_events=N, then the scores topic read back for the window: the
first to the last score's Kafka timestamp (start-up and the final
checkpoint left out, as e2e.py's CPU µs/event).

Per thread group (the scoring thread = main; rs-worker-*; librdkafka's
rdk:broker1 threads one by one, numbered in creation order: their roles
show in their symbols, e.g. sendmsg's _copy_from_iter = the scores
producer); then the top --top self symbols of each (% of the group's
samples).  With --children SYM..., the share of main's and the workers'
samples under each function (inclusive).  µs/event = samples / frequency /
events: perf's own unwinding slows serve down, so the shares are the
figure, not the absolute rate.

The mock keeps ~5 MB per partition: at most ~80 000 events (32 partitions),
or the first scores are gone before they are read.

  python3 ops/bench/perf_threads.py [--bin build/riskstream] [--events 80000]
      [--freq 3999] [--top 15] [--set KEY=VALUE ...] [--children SYM ...]
      [--keep DIR]   (keep perf.data there, for perf report)
"""
import argparse, collections, os, re, shutil, subprocess, sys, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, Rig, keyed_events, logger, serve_cmd, stop_proc  # noqa: E402

log = logger("perf_threads")


def samples(data, window):
    """[(pid, tid, comm, [frames leaf first: (sym, dso)])] in window
    ("t0,t1", CLOCK_MONOTONIC s)."""
    txt = subprocess.run(["perf", "script", "-i", data, "--time", window, "--no-inline",
                          "-F", "comm,pid,tid,ip,sym,dso"],
                         capture_output=True, text=True, errors="replace").stdout
    out = []
    for blk in txt.split("\n\n"):
        lines = [x for x in blk.split("\n") if x.strip()]
        m = re.match(r"\s*(.+?)\s+(\d+)/(\d+)\s*$", lines[0]) if lines else None
        if not m:
            continue
        frames = []
        for x in lines[1:]:
            p = x.strip().split(None, 1)
            if len(p) < 2:
                continue
            f = re.match(r"(.*?)(\+0x[0-9a-f]+)? \((.*)\)$", p[1])
            sym, dso = (f.group(1), os.path.basename(f.group(3))) if f else (p[1], "?")
            frames.append((f"[{dso}]" if sym == "[unknown]" else sym, dso))
        if frames:
            out.append((int(m.group(2)), int(m.group(3)), m.group(1), frames))
    return out


def group_of(pid, tid, comm, rdk_rank):
    if tid == pid:
        return "main (scoring thread)"
    if comm.startswith("rs-worker"):
        return "rs-worker"
    if comm == "rdk:broker1":
        return f"rdk:broker1 #{rdk_rank[tid]}"
    if comm.startswith("rdk:"):
        return "rdk:main + rdk:broker-1 (all handles)"
    return comm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "riskstream"))
    ap.add_argument("--events", type=int, default=80000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--freq", type=int, default=3999, help="perf -F (default 3999)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--children", nargs="*", default=[], metavar="SYM",
                    help="functions whose inclusive share of main's and the workers' samples is printed")
    ap.add_argument("--keep", metavar="DIR", help="copy perf.data there")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    lines = keyed_events(a.bin, a.events, a.seed)
    load0 = open("/proc/loadavg").read().split()[0]
    rig = Rig("riskstream-perf-threads.")
    proc, ok = None, False
    try:
        broker = rig.start_broker(a.bin, a.partitions)
        pre = rig.path("events.kv")
        with open(pre, "wb") as f:
            f.writelines(lines)
        subprocess.run(["kcat", "-P", "-b", broker.addr, "-t", "events", "-K", "\t", "-l", pre],
                       check=True, stderr=subprocess.DEVNULL)
        rig.start_redis()
        log(f"{len(lines)} events pre-produced; serve under perf record -F {a.freq}")
        sets = [x for kv in a.sets for x in ("--set", kv)] + ["--set", f"service.max_events={len(lines)}"]
        data = rig.path("perf.data")
        cmd = ["perf", "record", "-q", "-k", "mono", "-F", str(a.freq), "--call-graph", "dwarf,8192",
               "-o", data, "--"] + serve_cmd(a.bin, rig, "profile", rig.path("state"), sets)
        with open(rig.path("serve.log"), "wb") as plog:
            proc = subprocess.Popen(cmd, stdout=plog, stderr=subprocess.STDOUT)
            rc = proc.wait(a.timeout)
        if rc != 0:
            raise RuntimeError(f"perf/serve exited {rc} (log {rig.path('serve.log')})")
        log("serve done; reading the scores topic for the window")
        scores = rig.read_scores(ids=False)
        prev = -1
        while scores.count() != prev and scores.count() < len(lines):
            prev = scores.count()
            time.sleep(1)
        if scores.count() < len(lines):
            raise RuntimeError(f"{scores.count()} of {len(lines)} scores left in the topic "
                               "(the mock's retention dropped the first): fewer --events")
        with scores.lock:
            ts = sorted(r[0] for r in scores.rows)
        mono = time.time() - time.monotonic()
        window = f"{ts[0] / 1000 - mono:.4f},{ts[-1] / 1000 - mono:.4f}"
        span = (ts[-1] - ts[0]) / 1000
        log(f"perf script over {window} (CLOCK_MONOTONIC s)")
        smp = samples(data, window)
        if a.keep:
            os.makedirs(a.keep, exist_ok=True)
            shutil.copy(data, os.path.join(a.keep, "perf.data"))
        ok = True
    finally:
        if proc and proc.poll() is None:
            stop_proc(proc)
        rig.stop()
        rig.cleanup(ok)
    n = len(lines)
    per = 1e6 / a.freq / n  # µs of CPU per event per sample
    rdk = sorted({t for _, t, c, _ in smp if c == "rdk:broker1"})
    rank = {t: i + 1 for i, t in enumerate(rdk)}
    tot, self_, inc = collections.Counter(), collections.defaultdict(collections.Counter), \
        collections.defaultdict(collections.Counter)
    for pid, tid, comm, fr in smp:
        g = group_of(pid, tid, comm, rank)
        tot[g] += 1
        self_[g][fr[0][0]] += 1
        if a.children and g in ("main (scoring thread)", "rs-worker"):
            for s in {x[0] for x in fr} & set(a.children):
                inc[g][s] += 1
    allt = sum(tot.values())
    print(f"command: ops/bench/perf_threads.py {' '.join(sys.argv[1:])}; load {load0} -> "
          f"{open('/proc/loadavg').read().split()[0]}")
    print(f"{n} events, first to last score {span:.3f} s ({n / span:.0f} ev/s under perf); "
          f"{allt} samples at {a.freq} Hz = {allt * per:.2f} µs of CPU per event\n")
    print("| thread group | samples | share | CPU µs/event |\n|---|---:|---:|---:|")
    for g, c in tot.most_common():
        print(f"| {g} | {c} | {100 * c / allt:.1f} % | {c * per:.2f} |")
    for g, c in tot.most_common():
        if c < allt * 0.01:
            continue
        print(f"\n### {g}: {c} samples, top {a.top} self symbols (% of the group)\n")
        print("| # | self % | symbol |\n|---:|---:|---|")
        for i, (s, k) in enumerate(self_[g].most_common(a.top)):
            print(f"| {i + 1} | {100 * k / c:.1f} | `{s}` |")
    for g in inc:
        print(f"\n{g}, inclusive (% of the group, µs/event):")
        for s in a.children:
            print(f"  {s}: {100 * inc[g][s] / tot[g]:.1f} %, {inc[g][s] * per:.3f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""ops/bench/timeline.py -- where a max-rate run of `riskstream serve` waits
(issue 12): the e2e bench's burst (N events pre-produced to a separate
`riskstream broker`, 32 partitions, a fresh Redis and state.dir), with a
timeline of it.

Per bin (default 50 ms, from the first to the last score's Kafka timestamp):
  scored   scores on the scores topic with their Kafka timestamp in the bin
           (the create time: taken when serve hands the record to its producer)
  per thread group of serve (main = the scoring thread; rs-ingest, rs-worker-*,
  rs-redis, rs-trainer, rdk:* = librdkafka's), the broker and redis-server
  processes, the bench's scores reader (kcat-scores) and this process (bench):
  run % (on a CPU) / rq % (runnable, waiting for a CPU: the cores were busy),
  and for the scoring thread idle % (neither: it slept, waiting for something);
  from /proc/PID/task/TID/schedstat (ns), sampled every --sample ms; box: the
  whole machine's busy CPU (/proc/stat, 10 ms ticks).
Then the totals over the window, and, with --perf, the off-CPU (sleeping)
time of the scoring thread and rs-ingest inside the window by the user stack
where each went to sleep (`perf record -e sched:sched_switch --call-graph
dwarf` on serve, plus a machine-wide sched_switch record for the wake-ups).

--read picks how the scores are read (ts, full, after: see --help): with
"after" the bench's reader is off the machine while serve runs.
--produce-batch N pre-produces with kcat -X batch.num.messages=N (the mock
broker answers a Fetch with ONE message set per partition, i.e. one producer
batch: small batches show whether the read rate follows them).
--compare BIN / --compare-set K=V: a second run per round with another binary
or settings (same events), interleaved, for an A/B in one run.

  python3 ops/bench/timeline.py [--events 100000] [--bin build/riskstream]
      [--bin-ms 50] [--set KEY=VALUE ...] [--perf] [--produce-batch N]
      [--read ts,full,after] [--rounds N] [--compare BIN] [--compare-set K=V]
"""
import argparse, collections, os, re, statistics, subprocess, sys, threading, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, TICK, Rig, cpu_ticks, keyed_events, logger, serve_cmd, stop_proc  # noqa: E402

log = logger("timeline")


def group_of(name):
    """The thread group a thread name belongs to."""
    if name.startswith(b"rdk:"):
        return "rdk:" + (name[4:].split(b"/")[0].decode(errors="replace") if b"/" in name
                         else name[4:].decode(errors="replace"))
    for pre in (b"rs-worker", b"rs-pool", b"rs-prefault"):
        if name.startswith(pre):
            return pre.decode()
    return name.decode(errors="replace")


def schedstat(pid):
    """{tid: (name, run ns, runqueue wait ns)} of a process's threads."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                run, wait, _ = f.read().split()
            with open(f"/proc/{pid}/task/{t}/comm", "rb") as f:
                name = f.read().strip()
        except (OSError, ValueError):
            continue
        out[int(t)] = (name, int(run), int(wait))
    return out


def box_stat():
    """{0: ('box', busy ns, 0)}: the machine's busy CPU time (/proc/stat,
    all CPUs, everything but idle and iowait)."""
    busy = cpu_ticks(None)[0]
    return {0: (b"box", busy * 1e9 / TICK, 0)}


class Sampler(threading.Thread):
    """Every period_ms: (wall ms, {label: schedstat(pid)}) of the processes."""
    def __init__(self, procs, period_ms):
        super().__init__(daemon=True)
        self.procs, self.period, self.samples, self.run_ = procs, period_ms / 1000.0, [], True
        self.start()

    def run(self):
        while self.run_:
            t = time.time() * 1000.0
            snap = {k: schedstat(p) for k, p in self.procs.items()}
            snap["box"] = box_stat()
            self.samples.append((t, snap))
            time.sleep(self.period)


def series(samples, label, pid_main):
    """{group: [(t, run ns, rq ns)]} summed over the group's threads; the
    scoring thread (tid == pid) is group 'main'."""
    out = collections.defaultdict(list)
    for t, snap in samples:
        acc = collections.defaultdict(lambda: [0, 0])
        for tid, (name, run, wait) in snap.get(label, {}).items():
            g = "main" if (tid == pid_main and label == "serve") else \
                (group_of(name) if label == "serve" else label)
            acc[g][0] += run
            acc[g][1] += wait
        for g, (run, wait) in acc.items():
            out[g].append((t, run, wait))
    return out


def at(seq, t):
    """(run ns, rq ns) at wall time t (linear between samples)."""
    if not seq:
        return (0, 0)
    if t <= seq[0][0]:
        return seq[0][1:]
    for a, b in zip(seq, seq[1:]):
        if a[0] <= t <= b[0]:
            f = (t - a[0]) / max(b[0] - a[0], 1e-9)
            return (a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f)
    return seq[-1][1:]


def offcpu(perf_out, perf_in, tids, lo=None, hi=None):
    """{tid: {stack: [ns off CPU, sleeps, longest ns]}} from two sched_switch recordings (-k mono):
    perf_out of serve (-p, DWARF stacks: each switch-out of a thread of
    `tids` in a sleep state, with its user frames) and perf_in of the whole
    machine without stacks (the switch-in that ends the sleep is recorded in
    the context of whatever ran before, mostly another process).  Each sleep
    counts the part of it inside [lo, hi] (CLOCK_MONOTONIC s; None: all)."""
    outs = collections.defaultdict(list)  # tid -> [(t, stack)]
    txt = subprocess.run(["perf", "script", "-i", perf_out, "-F", "tid,time,event,trace,ip,sym"],
                         capture_output=True, text=True, errors="replace").stdout
    cur = None
    for line in txt.split("\n") + [""]:
        if not line.strip():
            if cur:
                _, t, trace, stack = cur
                m = re.search(r"prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+)", trace)
                if m and int(m.group(1)) in tids and not m.group(2).startswith("R"):
                    # user frames only (the kernel's are the sleep itself)
                    outs[int(m.group(1))].append((t, tuple(x for x in stack if not x.startswith("[k]"))[:8]))
            cur = None
            continue
        if cur is None:
            m = re.match(r"\s*(\d+)\s+([\d.]+):\s+sched:sched_switch:\s*(.*)", line)
            if m:
                cur = (int(m.group(1)), float(m.group(2)), m.group(3), [])
            continue
        parts = line.strip().split(None, 1)
        if len(parts) == 2:  # kernel addresses are the upper half
            cur[3].append(("[k]" if parts[0].startswith("ffff") else "") + parts[1])
    ins = collections.defaultdict(list)  # tid -> [t switched in]
    txt = subprocess.run(["perf", "script", "-i", perf_in, "-F", "time,trace"],
                         capture_output=True, text=True, errors="replace").stdout
    for line in txt.split("\n"):
        m = re.match(r"\s*([\d.]+):.*next_pid=(\d+)", line)
        if m and int(m.group(2)) in tids:
            ins[int(m.group(2))].append(float(m.group(1)))
    out = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0, 0]))
    for tid, evs in outs.items():
        tin = ins[tid]
        j = 0
        for t0, st in evs:
            while j < len(tin) and tin[j] < t0:
                j += 1
            if j == len(tin):
                break
            a, b = (t0, tin[j]) if lo is None else (max(t0, lo), min(tin[j], hi))
            if b > a:
                x = out[tid][st]
                x[0] += int((b - a) * 1e9)
                x[1] += 1
                x[2] = max(x[2], int((b - a) * 1e9))
    return out


class Gone:
    """A process that exited well (for Scores.wait)."""
    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        return None


def run_one(a, sbin, lines, tag, defer="ts", extra=()):
    rig = Rig("riskstream-timeline.")
    proc = sampler = perf = perf_in = None
    try:
        broker = rig.start_broker(a.bin, a.partitions)
        pre = rig.path("events.kv")
        with open(pre, "wb") as f:
            f.writelines(lines)
        kc = ["kcat", "-P", "-b", broker.addr, "-t", "events", "-K", "\t", "-l", pre]
        if a.produce_batch:
            kc[2:2] = ["-X", f"batch.num.messages={a.produce_batch}"]
        subprocess.run(kc, check=True, stderr=subprocess.DEVNULL)
        redis = rig.start_redis()
        scores = None if defer == "after" else rig.read_scores(ids=defer == "full")
        plog = open(rig.path("serve.log"), "wb")
        sets = [x for kv in list(a.sets) + list(extra) for x in ("--set", kv)]
        if defer == "after":  # serve stops (gracefully) after the burst
            sets += ["--set", f"service.max_events={len(lines)}"]
        cmd = serve_cmd(sbin, rig, "timeline", rig.path("state"), sets)
        proc = subprocess.Popen(cmd, stdout=plog, stderr=plog)
        procs = {"serve": proc.pid, "broker": broker.p.pid, "redis": redis.p.pid, "bench": os.getpid()}
        if scores:
            procs["kcat-scores"] = scores.p.pid
        sampler = Sampler(procs, a.sample)
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "-q", "-k", "mono", "-e", "sched:sched_switch", "--call-graph",
                                     "dwarf,8192", "-p", str(proc.pid), "-o", rig.path("perf.data")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            perf_in = subprocess.Popen(["perf", "record", "-q", "-k", "mono", "-a", "-e", "sched:sched_switch",
                                        "-o", rig.path("perf-in.data")],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if defer == "after":
            # the schedstat of serve's threads is kept from its last sample
            # before it exits: the window ends before that
            rc = proc.wait(a.timeout)
            if rc != 0:
                raise RuntimeError(f"serve exited {rc} (log {rig.path('serve.log')})")
            scores = rig.read_scores(ids=False)
            proc = Gone(proc.pid)
            prev = -1
            while scores.count() != prev and scores.count() < len(lines):
                prev = scores.count()
                time.sleep(1)
            if scores.count() < len(lines):
                raise RuntimeError(f"--read after: {scores.count()} of {len(lines)} scores left in the "
                                   "topic (the mock's retention dropped the first): fewer --events")
            scores.wait(len(lines), a.timeout, proc)
        else:
            scores.wait(len(lines), a.timeout, proc)
            time.sleep(0.2)
        sampler.run_ = False
        sampler.join()
        with scores.lock:
            ts = sorted(r[0] for r in scores.rows[:len(lines)])
        pstats = {}
        if perf:
            for x in (perf, perf_in):
                x.send_signal(2)
                x.wait()
            tids = {proc.pid} | {t for t, (n, _, _) in schedstat(proc.pid).items() if n == b"rs-ingest"}
            names = {t: n for t, (n, _, _) in schedstat(proc.pid).items()}
            mono = time.time() - time.monotonic()  # wall - monotonic, s
            pstats = (offcpu(rig.path("perf.data"), rig.path("perf-in.data"), tids, ts[0] / 1000.0 - mono, ts[-1] / 1000.0 - mono),
                      names)
        plog.flush()
        stats = [l for l in open(rig.path("serve.log"), errors="replace") if "batch_mean=" in l]
        return report(a, tag, sampler.samples, proc.pid, ts, pstats, stats[-1:] if stats else [])
    finally:
        if sampler:
            sampler.run_ = False
        for x in (perf, perf_in):
            if x and x.poll() is None:
                x.send_signal(2)
                x.wait()
        if not isinstance(proc, Gone):
            stop_proc(proc)
        rig.stop()
        rig.cleanup(True)


def report(a, tag, samples, pid, ts, pstats, stats):
    first, last = ts[0], ts[-1]
    span = max(last - first, 1) / 1000.0
    ser = series(samples, "serve", pid)
    ser.update(series(samples, "broker", None))
    others = ("broker", "redis", "kcat-scores", "bench", "box")
    for o in others[1:]:
        ser.update(series(samples, o, None))
    groups = ["main"] + sorted(g for g in ser if g not in ("main",) + others
                               and at(ser[g], last)[0] - at(ser[g], first)[0] > 1e6) + list(others)
    print(f"\n## {tag}: {len(ts)} events, first to last score {span:.3f} s, {len(ts) / span:.0f} ev/s\n")
    print("per bin: scored events; run % / rq % (runnable, no CPU free) of each thread group "
          "(a group of k threads can reach k x 100 %); main's idle % = 100 - run - rq (it waited)\n")
    hdr = "| t ms | scored | main run/rq/idle | " + " | ".join(groups[1:]) + " |"
    print(hdr)
    print("|" + "---:|" * (3 + len(groups) - 1))
    b = a.bin_ms
    cnt = collections.Counter(int((x - first) // b) for x in ts)
    nb = int((last - first) // b) + 1
    for i in range(nb):
        t0, t1 = first + i * b, first + (i + 1) * b
        cells = []
        for g in groups:
            r0, q0 = at(ser[g], t0)
            r1, q1 = at(ser[g], t1)
            run, rq = (r1 - r0) / (b * 1e4), (q1 - q0) / (b * 1e4)
            cells.append((run, rq))
        m = cells[0]
        print(f"| {i * b} | {cnt.get(i, 0)} | {m[0]:.0f}/{m[1]:.0f}/{max(0, 100 - m[0] - m[1]):.0f} | "
              + " | ".join(f"{r:.0f}/{q:.0f}" for r, q in cells[1:]) + " |")
    print(f"\ntotals over the window ({span:.3f} s): CPU µs/event and cores per group "
          "(run), runqueue wait in cores (rq)")
    tot_run = 0.0
    for g in groups:
        r0, q0 = at(ser[g], first)
        r1, q1 = at(ser[g], last)
        if g not in others:
            tot_run += r1 - r0
        print(f"  {g}: {(r1 - r0) / 1e3 / len(ts):.2f} µs/ev, run {(r1 - r0) / 1e9 / span:.2f} cores, "
              f"rq {(q1 - q0) / 1e9 / span:.2f}")
    r0, q0 = at(ser["main"], first)
    r1, q1 = at(ser["main"], last)
    idle = span - (r1 - r0) / 1e9 - (q1 - q0) / 1e9
    print(f"  serve (all threads): {tot_run / 1e3 / len(ts):.2f} µs/ev, {tot_run / 1e9 / span:.2f} cores; "
          f"scoring thread idle (waiting) {idle:.3f} s of {span:.3f} s ({100 * idle / span:.0f} %)")
    for l in stats:
        print(f"  serve's last stats line: {l.strip()}")
    if pstats:
        off, names = pstats
        print("\noff-CPU (sleeping, not runnable) time of the scoring thread and rs-ingest "
              "inside the window, by user stack at the switch-out (top 8 frames), "
              "perf sched:sched_switch:")
        for tid, st in off.items():
            total = sum(v[0] for v in st.values())
            nm = "main" if tid == pid else names.get(tid, b"?").decode()
            print(f"  {nm} (tid {tid}): {total / 1e9:.3f} s off CPU")
            for stack, (ns, cnt, mx) in sorted(st.items(), key=lambda x: -x[1][0])[:a.perf_top]:
                print(f"    {ns / 1e9:7.3f} s in {cnt} sleeps, longest {mx / 1e6:.1f} ms  {' < '.join(stack) or '?'}")
    return len(ts) / span


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "riskstream"))
    ap.add_argument("--compare", metavar="BIN", help="the same burst with this binary after (A/B)")
    ap.add_argument("--compare-set", dest="compare_sets", action="append", default=[], metavar="KEY=VALUE",
                    help="the compare run (or, without --compare, a second run of --bin) also gets "
                         "--set KEY=VALUE (repeatable)")
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bin-ms", type=float, default=50)
    ap.add_argument("--sample", type=float, default=10, help="sampling period, ms (default 10)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--produce-batch", type=int, default=0,
                    help="kcat -X batch.num.messages=N for the pre-production (default: kcat's)")
    ap.add_argument("--perf", action="store_true", help="off-CPU stacks (perf sched_switch, DWARF)")
    ap.add_argument("--perf-top", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--read", default="ts",
                    help="comma list, each a run per round, of how the scores topic is read: ts (while "
                         "serve runs, timestamps only: e2e.py's default), full (while serve runs, with "
                         "the event ids: e2e.py --burst-reader full; kcat and the bench's parsing share "
                         "the cores with serve), after (serve stops by service.max_events=N, then the "
                         "topic is read: serve alone with its broker and Redis; the mock keeps ~5 MB per "
                         "partition, so at most ~80 000 events with 32 partitions, or the first scores "
                         "are gone); default ts")
    a = ap.parse_args()
    lines = keyed_events(a.bin, a.events, a.seed)
    print(f"command: ops/bench/timeline.py {' '.join(sys.argv[1:])}; load "
          f"{open('/proc/loadavg').read().split()[0]}")
    runs = [(a.bin, a.bin, ())]
    if a.compare or a.compare_sets:
        runs.append((a.compare or a.bin, f"[{a.compare or a.bin}{''.join(' --set ' + x for x in a.compare_sets)}]",
                     a.compare_sets))
    modes = a.read.split(",")
    res = collections.defaultdict(list)
    for r in range(a.rounds):
        for sbin, tag, extra in runs:
            for d in modes:
                t = f"{tag}, scores read {d}, round {r}"
                res[(tag, d)].append(run_one(a, sbin, lines, t, d, extra))
    print("\nevents/s per run (median):")
    for (tag, d), v in res.items():
        print(f"  {tag}, scores read {d}: "
              f"{statistics.median(v):.0f} ({', '.join(f'{x:.0f}' for x in v)})")
    print(f"\nload at the end {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()

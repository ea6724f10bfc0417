#!/usr/bin/env python3
"""ops/serve_workers.py BINARY REDIS_URL -- steady-state `riskstream serve`
throughput and CPU per event for several service.workers values (issue 12.2).

A separate `riskstream broker` process (32 partitions), EVENTS (default
100 000) events pre-produced with `riskstream gen --rate 0`, a private Redis
(flushed before each run: start one with ops/redis.sh), a fresh consumer group
and state directory per run; runs interleaved, ROUNDS (3) rounds.  From
serve's stats lines (every 500 ms) and /proc: events/s, process CPU per event
and the CPU of the scoring thread + rs-worker threads per event, between the
first line with scored >= 5000 and the last one before max_events (start-up
and the final checkpoint are left out).  Prints a table of medians.

Environment: WORKERS="1 2" (the value "base" runs BASE_BIN without the key),
EVENTS, ROUNDS, EXTRA="--set k=v ...", BOOT=host:port (reuse a broker that
KEEP=1 left running with its events), PERF=prefix (perf record the window).
Example:
  URL=$(ops/redis.sh start /tmp/rs-r) && \
  EVENTS=300000 python3 ops/serve_workers.py build/riskstream $URL"""
import os, subprocess, sys, tempfile, time, statistics, re
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench"))
import benchlib as bl  # noqa: E402
BIN = sys.argv[1]
REDIS = sys.argv[2]
N = int(os.environ.get("EVENTS", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
WORKERS = os.environ.get("WORKERS", "1 2").split()
EXTRA = os.environ.get("EXTRA", "").split()

def cpu(pid):
    c = bl.cpu_ticks(pid)
    if c is None:
        raise FileNotFoundError(f"/proc/{pid}/stat")
    return c[0] / bl.TICK

def scpu(pid):
    """CPU of the scoring thread (the main thread) and the rs-worker threads."""
    if not os.path.isdir(f"/proc/{pid}/task"):
        raise FileNotFoundError(f"/proc/{pid}/task")
    return sum(ticks for tid, name, ticks in bl.tasks(pid)
               if tid == pid or name.startswith(b"rs-worker")) / bl.TICK

boot = os.environ.get("BOOT")
br = None
if not boot:
    br = bl.Broker(BIN, None, 32, nice=10, log_level="warn")
    boot = br.addr
    print("broker", boot, br.p.pid, flush=True)
    subprocess.run(["nice", "-n", "10", BIN, "gen", "--brokers", boot, "--events", str(N),
                    "--seed", "42", "--entities", "20000", "-l", "warn", "--rate", "0",
                    "--set", "topics.partitions=32"], check=True, stdout=subprocess.DEVNULL)
    if os.environ.get("KEEP"):
        print("kept broker", boot, br.p.pid); sys.exit(0)
res = {w: [] for w in WORKERS}
sock = REDIS.replace("unix://", "")
for r in range(ROUNDS):
    for w in WORKERS:
        subprocess.run(["redis-cli", "-s", sock, "flushall"], stdout=subprocess.DEVNULL)
        b = BIN if w != "base" else os.environ["BASE_BIN"]
        cmd = ["nice", "-n", "10", b, "serve", "--brokers", boot, "--redis", REDIS,
               "--group", f"g-{w}-{r}-{time.time_ns()}", "-l", "info",
               "--set", f"service.max_events={N}",
               "--set", "service.stats_interval=500ms", "--set", "topics.partitions=32",
               ] + EXTRA
        if w != "base": cmd += ["--set", f"service.workers={w}"]
        sd = tempfile.mkdtemp(prefix="rs-serve-workers-")
        cmd += ["--set", f"state.dir={sd}"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        pts = []
        perf = None
        last_bm = "?"
        for line in p.stdout:
            m = re.search(r"mod=service msg=\"scored=(\d+)", line)
            if m:
                try:
                    pts.append((time.monotonic(), cpu(p.pid), int(m.group(1)), scpu(p.pid)))
                except FileNotFoundError:
                    pass
                if os.environ.get("PERF") and int(m.group(1)) >= 5000 and not perf:
                    perf = subprocess.Popen(["perf", "record", "-F", os.environ.get("PF","999")] + (["--call-graph", "dwarf,8192"] if os.environ.get("DWARF") else []) + ["-p", str(p.pid), "-o",
                                             os.environ["PERF"] + f".{w}"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bm = re.search(r"batch_mean=([0-9.]+)", line)
            if bm: last_bm = bm.group(1)
            if "serve:" in line or "level=error" in line:
                print("   ", line.strip()[:200], flush=True)
        p.wait()
        if perf: perf.wait()
        subprocess.run(["rm", "-rf", sd])
        pts = [x for x in pts if 5000 <= x[2] < N]
        if len(pts) < 2:
            print("run", w, r, "too few points", pts); continue
        (t0, c0, n0, s0), (t1, c1, n1, s1) = pts[0], pts[-1]
        ev = n1 - n0
        rate, cpe = ev / (t1 - t0), (c1 - c0) / ev * 1e6
        spe = (s1 - s0) / ev * 1e6
        res[w].append((rate, cpe, (c1 - c0) / (t1 - t0), spe))
        print(f"round {r} workers={w}: {rate:.0f} ev/s, {cpe:.1f} us CPU/event "
              f"(scoring+workers threads {spe:.1f}), "
              f"{(c1-c0)/(t1-t0):.2f} cores ({ev} events in {t1-t0:.2f} s), batch_mean {last_bm}", flush=True)
if br: br.stop()
print("\n| workers | events/s (median of %d) | process CPU us/event | scoring + worker threads CPU us/event | cores used |" % ROUNDS)
print("|---:|---:|---:|---:|---:|")
for w in WORKERS:
    if res[w]:
        print(f"| {w} | {statistics.median(x[0] for x in res[w]):.0f} | "
              f"{statistics.median(x[1] for x in res[w]):.1f} | "
              f"{statistics.median(x[3] for x in res[w]):.1f} | "
              f"{statistics.median(x[2] for x in res[w]):.2f} |")

#!/usr/bin/env python3
"""ops/bench/scaleout.py -- throughput of 1, 2, 3 ... `riskstream serve` instances
in one consumer group on the same input (issue 13; a benchmark, not a test).

Per run (N instances; the runs interleave N = 1, 2, 3 per round):
  1. a fresh `riskstream broker` as its own process (--partitions, default 32) and
     a fresh private redis-server (unix socket in the run's temp dir);
  2. the input -- one `riskstream gen` file (the same bytes for every run) --
     produced with kcat, keyed by entity, before any instance starts: a
     backlog (produced while they run, kcat's ~9 000 ev/s was measured);
  3. N `serve` instances of one group started at once, each with a fresh
     state.dir, kafka.fetch.wait.max.ms=5 (the mock holds every fetch that
     long), a 6 s session: they join the group's first generation together
     (the mock's coordinator waits ~5 s for members before it assigns), so
     no rebalance interrupts the run -- the "assigned" log lines per
     instance are printed to show it;
  4. events/s = events / (last - first score's Kafka timestamp), read back
     from the scores topic with kcat; CPU per instance = utime + stime from
     /proc/PID/stat sampled every 50 ms over the same interval; per event of
     the stream (CPU of all instances / events) and per event the instance
     scored (its CPU / its share); the broker's and redis' cores too.
Prints a Markdown table with the command.

  ops/bench/scaleout.py [--bin build/riskstream] [--events 100000] [--instances 1,2,3]
                        [--rounds 1] [--partitions 32] [--set key=value ...]
"""
import argparse, calendar, os, re, shutil, signal, subprocess, sys, tempfile, time, urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, CpuSampler, Rig, keyed_events, logger, produce_file, serve_cmd  # noqa: E402

log = logger("scaleout")


def metric(url, name):
    try:
        txt = urllib.request.urlopen(url + "/metrics", timeout=2).read().decode()
    except OSError:
        return None
    for line in txt.splitlines():
        p = line.split()
        if len(p) == 2 and p[0] == name:
            return float(p[1])
    return None


def logts(txt):
    """Kafka-comparable ms of the last 'assigned' line of a serve log."""
    ms = re.findall(r'ts=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z[^\n]*msg="assigned', txt)
    if not ms:
        return 0.0
    d, frac = ms[-1]
    return (calendar.timegm(time.strptime(d, "%Y-%m-%dT%H:%M:%S")) + float("0" + (frac or ""))) * 1000.0


def run(a, n, kv, round_no):
    rig = Rig("riskstream-scaleout.")
    tmp = rig.tmp
    procs, samplers, urls = [], [], []
    try:
        broker = rig.start_broker(a.bin, a.partitions)
        redis = rig.start_redis(tcp=False)
        t0 = time.time()
        produce_file(broker.addr, kv)  # the backlog, before any instance
        t_prod = time.time() - t0
        scores = rig.read_scores()
        # all N at once: they join the group's first generation together
        # (the coordinator waits for members before its first assignment),
        # so no rebalance interrupts the run (checked: "assigned" log lines)
        for i in range(n):
            out = open(os.path.join(tmp, f"s{i}.out"), "wb")
            err = open(os.path.join(tmp, f"s{i}.log"), "wb")
            cmd = serve_cmd(a.bin, rig, "bench", rig.path(f"state{i}"),
                            ["--set", "kafka.consumer.session.timeout.ms=6000",
                             "--set", "http.enabled=true", "--set", "http.port=0",
                             "--set", "service.stats_interval=0ms"] + a.serve_set)
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=err))
        samplers = [CpuSampler(p.pid) for p in procs]
        bs, rsamp = CpuSampler(broker.p.pid), CpuSampler(redis.p.pid)
        for i in range(n):
            url = None
            for _ in range(300):
                m = re.search(r"^http: (\S+)", open(os.path.join(tmp, f"s{i}.out")).read(), re.M)
                if m:
                    url = m.group(1)
                    break
                time.sleep(0.1)
            if not url:
                raise RuntimeError(f"instance {i} printed no http address")
            urls.append(url)
        scores.wait(a.events, a.timeout, procs[0])
        with scores.lock:
            rows = list(scores.rows)
        first, last = min(r[0] for r in rows), max(r[0] for r in rows)
        span = max(last - first, 1) / 1000.0
        parts = [metric(u, "riskstream_partitions_assigned") or 0 for u in urls]
        cpu = [s.at(last) - s.at(first) for s in samplers]
        logs = [open(os.path.join(tmp, f"s{i}.log"), errors="replace").read() for i in range(n)]
        asg = [t.count('msg="assigned') for t in logs]
        # the window after the last assignment of any instance (no rebalance
        # in it): its events/s and CPU
        t_a = max(logts(t) for t in logs)
        w0 = max(first, t_a)
        nw = sum(1 for r in rows if r[0] >= w0)
        wspan = max(last - w0, 1) / 1000.0
        wcpu = sum(sm.at(last) - sm.at(w0) for sm in samplers)
        res = dict(n=n, events=a.events, lines=len(rows), span=span, eps=a.events / span,
                   prod_s=t_prod, parts=[int(p) for p in parts],
                   cpu=cpu, cpu_us_stream=sum(cpu) / a.events * 1e6,
                   cores=sum(cpu) / span, assigned=asg, w_events=nw,
                   w_eps=nw / wspan if nw > 1000 else float("nan"),
                   w_cpu_us=wcpu / nw * 1e6 if nw > 1000 else float("nan"),
                   broker_cores=(bs.at(last) - bs.at(first)) / span,
                   redis_cores=(rsamp.at(last) - rsamp.at(first)) / span,
                   load=os.getloadavg()[0])
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        # each instance's share: its final "serve: N events scored" line
        scored = []
        for i in range(n):
            m = re.search(r"^serve: (\d+) events scored", open(os.path.join(tmp, f"s{i}.out")).read(), re.M)
            scored.append(int(m.group(1)) if m else 0)
        res.update(scored=scored, cpu_us_own=[c / max(x, 1) * 1e6 for c, x in zip(cpu, scored)])
        log(f"round {round_no}, {n} instance(s): {res['eps']:.0f} ev/s, {res['cpu_us_stream']:.1f} us CPU "
            f"per event of the stream, {res['cores']:.2f} cores, partitions {res['parts']}, "
            f"scored {scored}, assignments {asg}, {len(rows)} score lines, load {res['load']:.1f}")
        return res
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()
        rig.stop()
        if a.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "riskstream"))
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--instances", default="1,2,3")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--set", dest="serve_set_kv", action="append", default=[])
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    a.serve_set = [x for kv in a.serve_set_kv for x in ("--set", kv)]
    ns = [int(x) for x in a.instances.split(",")]
    tmp = tempfile.mkdtemp(prefix="riskstream-scaleout-in.")
    try:
        kv = os.path.join(tmp, "ev.kv")
        with open(kv, "wb") as g:
            g.writelines(keyed_events(a.bin, a.events, 7, duration=None, entities=20000))
        res = {n: [] for n in ns}
        for r in range(a.rounds):
            for n in ns:
                res[n].append(run(a, n, kv, r + 1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cmd = "ops/bench/scaleout.py " + " ".join(sys.argv[1:])
    print(f"scale-out: {a.events} events (cards, 20 000 entities) produced with kcat before the instances "
          f"start (a backlog); the N instances start at once; {a.partitions} partitions; {os.cpu_count()} cores, "
          f"{os.uname().release}; every run of {a.rounds} round(s)")
    print(f"command: {cmd}\n")
    print("| round | instances | events/s, first to last score | x 1 instance (same round) | CPU us per event "
          "of the stream (all instances) | CPU us per event scored, per instance | cores used (instances) | "
          "broker / redis cores | partitions per instance | assignments per instance | after the last "
          "assignment: events, events/s, CPU us per event | load avg |")
    print("|---:|---:|---:|---:|---:|---|---:|---|---|---|---|---:|")
    for r in range(a.rounds):
        base = res[ns[0]][r]["eps"]
        for n in ns:
            x = res[n][r]
            print(f"| {r + 1} | {n} | {x['eps']:.0f} | {x['eps'] / base:.2f} | {x['cpu_us_stream']:.1f} | "
                  f"{' / '.join('%.1f' % c for c in x['cpu_us_own'])} | {x['cores']:.2f} | "
                  f"{x['broker_cores']:.2f} / {x['redis_cores']:.2f} | "
                  f"{' / '.join(str(p // 2) for p in x['parts'])} | {' / '.join(str(y) for y in x['assigned'])} | "
                  f"{x['w_events']}, {x['w_eps']:.0f}, {x['w_cpu_us']:.1f} | {x['load']:.1f} |")


if __name__ == "__main__":
    main()

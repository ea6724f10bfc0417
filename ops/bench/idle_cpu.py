#!/usr/bin/env python3
"""ops/bench/idle_cpu.py -- where `riskstream serve` spends its CPU when idle or
paced (issue 12): per-thread CPU (utime + stime from /proc/PID/task/*/stat,
threads grouped by name), with no input and at a fixed input rate.

  python3 ops/bench/idle_cpu.py [--bin B] [--compare B2] [--rates 0,2000]
                                [--seconds 5] [--rounds 2] [--set K=V]...
                                [--perf DIR]

Per round, binary and rate: a fresh `riskstream broker` (32 partitions) and
redis-server, `serve` started on empty topics (kafka.fetch.wait.max.ms=5 as in
ops/bench/e2e.py), the group joined and 1 s settled, --warmup seconds of input at the rate (not
measured: the start-up's one-time work), then --seconds of input at
the rate (0 = none: the idle service) written to a kcat producer (linger.ms=0).
Printed per binary and rate (median of the rounds): serve's cores, CPU µs per
event (rate > 0), the latency (score's - event's Kafka timestamp, ms), and the
cores of each thread group (rdk:* = librdkafka's threads, summed by name) and
the mean messages per poll (serve's stats line, service.stats_interval=1s).
cores are over the phase; CPU µs per event until the phase's last score is out.
--perf DIR also records `perf record` of serve over each phase into DIR (the
first round only; call graphs: frame pointers, or PERF_CG=dwarf,16384).
"""
import argparse, os, re, shutil, signal, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

log = bl.logger("e2e")
ROOT = bl.ROOT


def threads(pid):
    """{thread name: CPU seconds} of a process, summed over threads of that name."""
    out = {}
    for _, name, ticks in bl.tasks(pid):
        name = re.sub(r"\d+$", "#", name.decode(errors="replace"))  # rdk:broker1, rdk:broker2 -> rdk:broker#
        out[name] = out.get(name, 0.0) + ticks / bl.TICK
    return out


def wakeups(pid):
    """{thread name: voluntary context switches} of a process (each one a
    sleep and a wake-up: condvar waits, poll/epoll timeouts), summed by name."""
    out = {}
    for tid, name, _ in bl.tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
                m = re.search(rb"\nvoluntary_ctxt_switches:\s*(\d+)", f.read())
        except OSError:
            continue
        name = re.sub(r"\d+$", "#", name.decode(errors="replace"))
        out[name] = out.get(name, 0) + (int(m.group(1)) if m else 0)
    return out


def one_c(a, sbin, rate, tag):
    """--rig c: bench_pace paces (1 ms steps, linger.ms=0) and reads the
    scores back; the CPU of every process of the box over the phase: serve
    (and by thread), the broker, redis-server, bench_pace, the machine."""
    rig = bl.Rig("riskstream-idle.")
    tmp = rig.tmp
    p = None
    res = {}
    try:
        rig.start_broker(a.bin, 32)
        rig.start_redis()
        br = rig.broker
        p, slog = bl.serve_on(rig, sbin, "idle", ["--set", "service.stats_interval=1s"] + a.serve_set)
        # the events file's first lines warm up, the next ones are measured
        w = int(rate * a.warmup) if rate > 0 else 0
        if w:
            bl.pace_c(a.pace_bin, br.addr, a.events_file, rate, skip=0, count=w, timeout=a.timeout)
            time.sleep(0.5)
        pids = {"serve": p.pid, "broker": br.p.pid, "redis": rig.redis.p.pid, "box": None}
        c0 = {k: bl.cpu_ticks(v)[0] / bl.TICK for k, v in pids.items()}
        th0, wk0, w0 = threads(p.pid), wakeups(p.pid), time.time()
        n, pr = 0, None
        if rate > 0:
            n = int(rate * a.seconds)
            pr = bl.pace_c(a.pace_bin, br.addr, a.events_file, rate, skip=w, count=n, timeout=a.timeout)
        else:
            time.sleep(a.seconds)
        th1, wk1, w1 = threads(p.pid), wakeups(p.pid), time.time()
        c1 = {k: bl.cpu_ticks(v)[0] / bl.TICK for k, v in pids.items()}
        span = w1 - w0
        res.update(cores=(c1["serve"] - c0["serve"]) / span,
                   th={k: (th1.get(k, 0) - th0.get(k, 0)) / span for k in th1},
                   wk={k: (wk1.get(k, 0) - wk0.get(k, 0)) / span for k in wk1},
                   procs={k: (c1[k] - c0[k]) / span for k in ("broker", "redis", "box")},
                   load=os.getloadavg()[0])
        if n:
            res["procs"]["rig"] = pr["rig_cpu_us"] * n / 1e6 / span
            res["cpu_us"] = (c1["serve"] - c0["serve"]) / n * 1e6
            res.update(p50=pr["handed"][0], p99=pr["handed"][1], p999=pr["handed"][2])
            bm = re.findall(rb"batch_mean=([\d.]+)", open(slog, "rb").read())
            if bm:
                res["batch"] = float(bm[-1])
        log(f"{tag}: {res['cores']:.3f} cores, {res.get('cpu_us', float('nan')):.1f} us/ev, "
            f"p50/p99/p99.9 {res.get('p50')}/{res.get('p99')}/{res.get('p999')} ms, "
            f"others {' '.join(f'{k} {v:.2f}' for k, v in res['procs'].items())}, "
            f"wakeups/s {sum(res['wk'].values()):.0f}, batch mean {res.get('batch')}, load {res['load']:.1f}")
    except Exception as ex:  # noqa: BLE001
        res["error"] = str(ex)
        log(f"{tag}: FAILED: {ex} (logs in {tmp})")
    finally:
        bl.stop_proc(p)
        rig.stop()
        rig.cleanup("error" not in res)
    return res


def one(a, sbin, rate, lines, tag, perf_out):
    rig = bl.Rig("riskstream-idle.")
    tmp = rig.tmp
    p = pf = None
    res = {}
    try:
        rig.start(a.bin, 32)
        br, sc = rig.broker, rig.scores
        p, slog = bl.serve_on(rig, sbin, "idle", ["--set", "service.stats_interval=1s"] + a.serve_set)
        if a.warmup > 0 and rate > 0:
            # past the start-up's one-time work (prefault, the first learning
            # log segment, first laps of the rings): not in the measured phase
            w = int(rate * a.warmup)
            bl.produce_paced(br.addr, lines[-w:], rate)
            sc.wait(w, a.timeout, p)
            time.sleep(0.5)
        if perf_out:
            pf = subprocess.Popen(["perf", "record", "--call-graph", os.environ.get("PERF_CG", "fp"), "-F", "499",
                                   "-p", str(p.pid), "-o", perf_out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
        th0, c0, w0 = threads(p.pid), bl.cpu_ticks(p.pid)[0], time.time()
        n = 0
        if rate > 0:
            n = int(rate * a.seconds)
            base = sc.count()
            bl.produce_paced(br.addr, lines[:n], rate)
        else:
            time.sleep(a.seconds)
        th1, c1, w1 = threads(p.pid), bl.cpu_ticks(p.pid)[0], time.time()
        if pf:
            pf.send_signal(signal.SIGINT)
            pf.wait(60)
        span = w1 - w0
        res.update(cores=(c1 - c0) / bl.TICK / span,
                   th={k: (th1.get(k, 0) - th0.get(k, 0)) / span for k in th1},
                   load=os.getloadavg()[0])
        if n:
            sc.wait(base + n, a.timeout, p)
            # per event: until the last score is out (a serve that fell behind
            # still works after the input stopped)
            res["cpu_us"] = (bl.cpu_ticks(p.pid)[0] - c0) / bl.TICK / n * 1e6
            ids = {bl.EV_ID_RE.search(l).group(1) for l in lines[:n]}
            evt = bl.event_times(br.addr, ids)
            with sc.lock:
                rows = list(sc.rows)
            lat = sorted(ts - evt[i] for ts, i in rows if i in evt)
            res.update(p50=bl.pct(lat, .5), p99=bl.pct(lat, .99))
            # messages per poll: serve's stats line (batch_mean, since start)
            bm = re.findall(rb"batch_mean=([\d.]+)", open(slog, "rb").read())
            if bm:
                res["batch"] = float(bm[-1])
        log(f"{tag}: {res['cores']:.3f} cores, {res.get('cpu_us', float('nan')):.1f} us/ev, "
            f"p50/p99 {res.get('p50')}/{res.get('p99')} ms, batch mean {res.get('batch')}, load {res['load']:.1f}")
    except Exception as ex:  # noqa: BLE001
        res["error"] = str(ex)
        log(f"{tag}: FAILED: {ex} (logs in {tmp})")
    finally:
        if pf and pf.poll() is None:
            pf.kill()
            pf.wait()
        bl.stop_proc(p)
        rig.stop()
        rig.cleanup("error" not in res)
    return res


def main():
    ap = argparse.ArgumentParser(prog="ops/bench/idle_cpu.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "riskstream"))
    ap.add_argument("--compare", help="another riskstream binary, interleaved in the same rounds")
    ap.add_argument("--rates", default="0,2000", help="comma list of events/s (0 = no input)")
    ap.add_argument("--seconds", type=float, default=5, help="length of each phase")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=float, default=2,
                    help="seconds of input at the rate before each paced phase, not measured (default 2)")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--perf", metavar="DIR", help="perf record -g serve over each phase of round 0 into DIR")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--rig", choices=("py", "c"), default="py",
                    help="py (default): a kcat producer paced from Python, a kcat scores reader; c = "
                         "ops/bench/bench_pace as e2e.py's paced phases (reaches 30 000 ev/s and more): the "
                         "table then adds the cores of the broker, redis-server, the rig and the whole "
                         "machine over the phase, serve's wake-ups (voluntary context switches) per second by "
                         "thread, and p99.9 (no --perf)")
    a = ap.parse_args()
    a.serve_set = [x for kv in a.sets for x in ("--set", kv)]
    rates = [float(r) for r in a.rates.split(",")]
    bins = [a.bin] + ([a.compare] if a.compare else [])
    lines = bl.keyed_events(a.bin, max(1, int(max(rates) * (a.seconds + a.warmup))), 42)
    if a.rig == "c":
        a.pace_bin = bl.pace_bin(a.bin)
        evdir = tempfile.mkdtemp(prefix="riskstream-idle-ev.")
        a.events_file = os.path.join(evdir, "events.kv")
        with open(a.events_file, "wb") as f:
            f.writelines(lines)
    if a.perf:
        os.makedirs(a.perf, exist_ok=True)
    res = {}
    for r in range(a.rounds):
        for rate in rates:
            for bi, b in enumerate(bins):
                po = (os.path.join(a.perf, f"perf-{bi}-{rate:.0f}.data") if a.perf and r == 0 else None)
                tag = f"round {r} {b} {rate:.0f} ev/s"
                res.setdefault((b, rate), []).append(
                    one_c(a, b, rate, tag) if a.rig == "c" else one(a, b, rate, lines, tag, po))
    if a.rig == "c":
        shutil.rmtree(evdir, ignore_errors=True)
    med = bl.median
    print(f"\nriskstream serve CPU when idle / paced: against `riskstream broker` (32 partitions), "
          f"{a.seconds:g} s per phase, median of {a.rounds} interleaved rounds; load average at the end "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}")
    dbin = os.path.join(ROOT, "build", "riskstream")
    print(f"command: python3 ops/bench/idle_cpu.py{'' if a.bin == dbin else ' --bin ' + a.bin} --rates {a.rates} --seconds {a.seconds:g} --rounds {a.rounds} "
          f"--warmup {a.warmup:g}{' --rig c' if a.rig == 'c' else ''}"
          f"{''.join(' --set ' + kv for kv in a.sets)}{' --compare ' + a.compare if a.compare else ''}\n")
    if a.rig == "c":
        print("| binary | ev/s | cores | CPU µs/event | p50 / p99 / p99.9 ms | messages per poll | "
              "cores by thread (median, > 0.002) | cores of the others: broker, redis, rig (bench_pace), "
              "the whole box | serve's wake-ups/s: all, by thread (>= 20) |")
        print("|---|---:|---:|---:|---:|---:|---|---|---|")
    else:
        print("| binary | ev/s | cores | CPU µs/event | p50 / p99 ms | messages per poll | cores by thread (median, > 0.002) |")
        print("|---|---:|---:|---:|---:|---:|---|")
    for rate in rates:
        for b in bins:
            ok = [x for x in res[(b, rate)] if "error" not in x]
            if not ok:
                print(f"| {b} | {rate:.0f} | failed |||||{'||' if a.rig == 'c' else ''}")
                continue
            names = sorted({k for x in ok for k in x["th"]})
            th = sorted(((med([x["th"].get(k, 0) for x in ok]), k) for k in names), reverse=True)
            ths = ", ".join(f"{k} {v:.3f}" for v, k in th if v > 0.002)
            lat = (f"{med([x['p50'] for x in ok]):.0f} / {med([x['p99'] for x in ok]):.0f}" if rate > 0 else "-")
            cu = f"{med([x['cpu_us'] for x in ok]):.1f}" if rate > 0 else "-"
            bm = [x["batch"] for x in ok if "batch" in x]
            bms = f"{med(bm):.1f}" if bm else "-"
            if a.rig == "c":
                if rate > 0:
                    lat += f" / {med([x['p999'] for x in ok]):.0f}"
                pr = ", ".join(f"{k} {med([x['procs'].get(k, 0) for x in ok]):.2f}"
                               for k in ("broker", "redis", "rig", "box") if rate > 0 or k != "rig")
                wk = sorted(((med([x["wk"].get(k, 0) for x in ok]), k) for k in names), reverse=True)
                wks = f"{sum(v for v, _ in wk):.0f}: " + ", ".join(f"{k} {v:.0f}" for v, k in wk if v >= 20)
                print(f"| {b} | {rate:.0f} | {med([x['cores'] for x in ok]):.3f} | {cu} | {lat} | {bms} | "
                      f"{ths} | {pr} | {wks} |")
                continue
            print(f"| {b} | {rate:.0f} | {med([x['cores'] for x in ok]):.3f} | {cu} | {lat} | {bms} | {ths} |")


if __name__ == "__main__":
    main()

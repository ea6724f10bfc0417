#!/usr/bin/env python3
"""ops/bench/e2e_lat.py -- where the latency of `riskstream serve` goes at a
paced rate (issue 12).  Companion of ops/bench/e2e.py (same broker, Redis and
events; run it after `ops/build.sh`):

  python3 ops/bench/e2e_lat.py [--bin B] [--compare B2] [--rates 2000,10000]
                               [--seconds 6] [--rounds 2] [--set K=V]...
                               [--control] [--keep DIR] [--rig c|py]
                               [--visible] [--step-us US]

Per round, binary and rate: a fresh `riskstream broker` (32 partitions) and
redis-server, `serve` started on empty topics (kafka.fetch.wait.max.ms=5 as
in e2e.py), the group joined, then events produced (linger.ms=0) at the
rate for --seconds by the paced rig: --rig c (default) ops/bench/bench_pace,
one C process that paces in 1 ms ticks (--step-us), produces and reads the
scores back (5-9 µs of CPU per event at 25 000 ev/s, the Python rig below
12-17); --rig py the rig before session 12 (a Python
pacer writing to a kcat producer in 5 ms steps, a kcat scores reader
parsed in Python), kept for comparison.  Printed per row (median of the
rounds): the latency the e2e bench measures (score's Kafka timestamp - the
event's produce time, ms: the score's is taken when it is handed to the
producer), the rig's own CPU per event over the phase, the pacer's lag
p99 (how late the rig produced: the box), with --visible produced -> the
score's record SET seen on Redis (keyevent notifications), and serve's
own split of it from its exit summary (`serve: latency p50/p99 ms: ...`):
event produced -> polled (broker, fetch, the consumer's queue while the
scoring thread is busy), polled -> handed to the producer (the batch:
counterparty stage wait, features, model, records), handed -> delivered (Kafka
acknowledged and Redis written, per batch: not in the measured latency); the
counterparty stage's wait per event (its log); messages per batch p50/p99
and the longest checkpoint pause (serve's summary; older builds: '-', or
the pause from their last stats line with --set service.stats_interval=1s);
serve's CPU per event; the broker's and redis-server's CPU per event and how busy the whole
box was over the paced phase (all CPUs, /proc/stat: near 100 % the run
queue, not riskstream, sets the tail; the box is shared).  A binary
without the split (older builds) shows '-'
there.

--control adds a plain kcat consumer of the events topic beside serve (same
fetch.wait.max.ms), each line stamped as this process reads it: its
produced -> read p50/p99 is the part of the latency that the producer, the
broker and the machine's scheduler make without riskstream -- when it
equals serve's produced -> polled, that tail is not serve's.  --keep DIR
copies each run's serve log there; with --set service.trace_slow=20ms
(new builds only) it holds every slow turn of the scoring loop, split by
stage.
"""
import argparse, os, re, shutil, signal, subprocess, sys, tempfile, threading, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

log = bl.logger("e2e")

ROOT = bl.ROOT
SPLIT_RE = re.compile(rb"serve: latency p50/p99 ms: produced -> polled ([\d.]+)/([\d.]+), polled -> handed "
                      rb"to the producer ([\d.]+)/([\d.]+), handed -> delivered ([\d.]+)/([\d.]+)")
CPW_RE = re.compile(rb"wait p50 (\d+) us, p99 (\d+) us")
BATCH_RE = re.compile(rb"serve: batch messages p50/p99/p99.9: (\d+)/(\d+)/(\d+)")
CKPT_RE = re.compile(rb"(\d+) checkpoints, longest pause ([\d.]+) ms")
CKPT_STATS_RE = re.compile(rb" checkpoints=(\d+) ckpt_max_pause_ms=([\d.]+)")


class Control(threading.Thread):
    """--control: a kcat consumer of the events topic beside serve (the
    same fetch.wait.max.ms), each line stamped when this process reads it:
    produced -> read without riskstream, the part of the latency that the
    producer, the broker and the box's scheduler make."""
    def __init__(self, broker):
        super().__init__(daemon=True)
        self.p = subprocess.Popen(["kcat", "-C", "-b", broker, "-t", "events", "-o", "end", "-u", "-q",
                                   "-X", "fetch.wait.max.ms=5", "-f", "%T\n"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, bufsize=0)
        self.lat = []
        self.start()

    def run(self):
        buf = b""
        while True:
            chunk = self.p.stdout.read1(65536) if hasattr(self.p.stdout, "read1") else self.p.stdout.read(65536)
            if not chunk:
                break
            now = time.time() * 1000.0
            buf += chunk
            *done, buf = buf.split(b"\n")
            self.lat.extend(now - int(x) for x in done if x)

    def stop(self):
        self.p.terminate()
        self.p.wait()


def one(a, sbin, rate, lines, tag):
    rig = bl.Rig("riskstream-lat.")
    tmp = rig.tmp
    p = None
    res = {}
    try:
        if a.rig == "py":
            rig.start(a.bin, 32)
        else:  # bench_pace reads the scores itself
            rig.start_broker(a.bin, 32)
            rig.start_redis()
        br, sc = rig.broker, rig.scores
        p, slog = bl.serve_on(rig, sbin, "lat", a.serve_set)
        ctl = Control(br.addr) if a.control else None
        if ctl:
            time.sleep(1.0)  # its partitions assigned (kcat -C reads from the end)
        c0, b0, m0, t0 = bl.cpu_ticks(p.pid)[0], bl.cpu_ticks(br.p.pid)[0], bl.cpu_ticks(None)[0], time.time()
        r0 = bl.cpu_ticks(rig.redis.p.pid)[0]
        if a.rig == "py":
            s0, k0 = bl.self_cpu(), bl.cpu_ticks(sc.p.pid)[0]
            kp = bl.produce_paced(br.addr, lines, rate, a.linger or 0)
            sc.wait(len(lines), a.timeout, p)
            # the rig's CPU over the phase: this process (pacer, scores
            # reader thread), the kcat producer and the kcat scores reader
            res["rig"] = ((bl.self_cpu() - s0) + kp + (bl.cpu_ticks(sc.p.pid)[0] - k0) / bl.TICK) \
                / len(lines) * 1e6
        else:
            pr = bl.pace_c(a.pace_bin, br.addr, a.events_file, rate, count=len(lines),
                           redis_sock=rig.redis.sock if a.visible else None, timeout=a.timeout,
                           step_us=a.step_us, linger=a.linger or 0)
            res["rig"] = pr["rig_cpu_us"]
            res["lag"] = pr["lag"][1]
            if a.visible:
                res["vis"] = pr["visible_ms"][:3]
        c1, b1, m1, t1 = bl.cpu_ticks(p.pid)[0], bl.cpu_ticks(br.p.pid)[0], bl.cpu_ticks(None)[0], time.time()
        res["rcpu"] = (bl.cpu_ticks(rig.redis.p.pid)[0] - r0) / bl.TICK / len(lines) * 1e6
        if a.rig == "py":
            ids = {bl.EV_ID_RE.search(l).group(1) for l in lines}
            evt = bl.event_times(br.addr, ids)
            with sc.lock:
                rows = list(sc.rows)
            lat = sorted(ts - evt[i] for ts, i in rows if i in evt)
        else:
            lat = None  # bench_pace's percentiles
        if ctl:
            ctl.stop()
            cl = sorted(ctl.lat)
            res["ctl"] = [bl.pct(cl, .5), bl.pct(cl, .99), bl.pct(cl, .999), len(cl)]
        if lat is None:
            res.update(p50=pr["handed"][0], p99=pr["handed"][1], p999=pr["handed"][2])
        else:
            res.update(p50=bl.pct(lat, .5), p99=bl.pct(lat, .99), p999=bl.pct(lat, .999))
        res.update(
                   cpu=(c1 - c0) / bl.TICK / len(lines) * 1e6, load=os.getloadavg()[0],
                   bcpu=(b1 - b0) / bl.TICK / len(lines) * 1e6,
                   busy=100.0 * (m1 - m0) / bl.TICK / ((t1 - t0) * (os.cpu_count() or 1)))
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        txt = open(slog, "rb").read()
        if a.keep:
            os.makedirs(a.keep, exist_ok=True)
            with open(os.path.join(a.keep, re.sub(r"[^\w.-]+", "_", tag) + ".log"), "wb") as f:
                f.write(txt)
        m = BATCH_RE.search(txt)
        if m:
            res["batch"] = [int(x) for x in m.groups()]
        m = CKPT_RE.search(txt)
        if not m:  # older builds: the last stats line (service.stats_interval)
            m = ([None] + list(CKPT_STATS_RE.finditer(txt)))[-1]
        if m:
            res["ckpt"] = [int(m.group(1)), float(m.group(2))]
        m = SPLIT_RE.search(txt)
        if m:
            res["split"] = [float(x) for x in m.groups()]
        m = CPW_RE.search(txt)
        if m:
            res["cpw"] = [int(x) / 1000.0 for x in m.groups()]
        log(f"{tag}: p50/p99/p99.9 {res['p50']}/{res['p99']}/{res['p999']} ms, split {res.get('split')}, "
            f"cpstage wait {res.get('cpw')}, control {res.get('ctl')}, batch p50/p99/p99.9 {res.get('batch')}, "
            f"checkpoints / longest pause ms {res.get('ckpt')}, {res['cpu']:.1f} us/ev, "
            f"broker {res['bcpu']:.1f} us/ev, Redis {res['rcpu']:.1f} us/ev, rig {res['rig']:.1f} us/ev, "
            f"visible {res.get('vis')}, pacer lag p99 {res.get('lag')} ms, box busy {res['busy']:.0f} %, "
            f"load {res['load']:.1f}")
    except Exception as ex:  # noqa: BLE001
        res["error"] = str(ex)
        log(f"{tag}: FAILED: {ex} (logs in {tmp})")
    finally:
        if p and p.poll() is None:
            p.kill()
            p.wait()
        rig.stop()
        rig.cleanup("error" not in res)
    return res


def main():
    ap = argparse.ArgumentParser(prog="ops/bench/e2e_lat.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "riskstream"))
    ap.add_argument("--compare", help="another riskstream binary, interleaved in the same rounds")
    ap.add_argument("--rates", default="2000,10000", help="comma list of events/s")
    ap.add_argument("--seconds", type=float, default=6, help="length of each paced phase")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--control", action="store_true",
                    help="also read the events topic with a plain kcat consumer beside serve and print its "
                         "produced -> read p50/p99/p99.9: the latency that is not riskstream's")
    ap.add_argument("--producer-linger", dest="linger", type=float, metavar="MS",
                    help="the paced kcat producer's linger.ms (default 0, as e2e.py): the broker's cost "
                         "per produce request is part of what the box spends at a paced rate")
    ap.add_argument("--keep", metavar="DIR", help="copy each run's serve log to DIR/<round_binary_rate>.log "
                    "(with --set service.trace_slow=20ms: the slow turns of the scoring loop)")
    ap.add_argument("--rig", choices=("c", "py"), default="c",
                    help="the paced rig: c = ops/bench/bench_pace (one C process: pacer, producer, scores "
                         "reader; 5-9 µs of CPU per event at 25 000 ev/s), py = the Python pacer writing to a kcat "
                         "producer and a kcat scores reader parsed here (before session 12: 12-17 µs "
                         "per event at 25 000 ev/s, 0.3-0.4 of the 2-core box)")
    ap.add_argument("--visible", action="store_true",
                    help="(--rig c) also time produced -> the score's record SET on Redis (keyevent "
                         "notifications of the private redis-server)")
    ap.add_argument("--step-us", type=int, default=1000, help="(--rig c) the pacer's tick (default 1000 µs)")
    a = ap.parse_args()
    if a.rig == "py" and a.visible:
        ap.error("--visible needs --rig c")
    a.serve_set = [x for kv in a.sets for x in ("--set", kv)]
    rates = [float(r) for r in a.rates.split(",")]
    bins = [a.bin] + ([a.compare] if a.compare else [])
    lines = bl.keyed_events(a.bin, int(max(rates) * a.seconds), 42)
    a.pace_bin = bl.pace_bin(a.bin) if a.rig == "c" else None
    evdir = tempfile.mkdtemp(prefix="riskstream-lat-ev.")
    a.events_file = os.path.join(evdir, "events.kv")
    with open(a.events_file, "wb") as f:
        f.writelines(lines)
    res = {}
    for r in range(a.rounds):
        for rate in rates:
            for b in bins:
                res.setdefault((b, rate), []).append(
                    one(a, b, rate, lines[:int(rate * a.seconds)], f"round {r} {b} {rate:.0f} ev/s"))
    shutil.rmtree(evdir, ignore_errors=True)
    med = bl.median
    print(f"\nriskstream latency split: serve against `riskstream broker` (32 partitions), paced input "
          f"({'ops/bench/bench_pace' if a.rig == 'c' else 'Python pacer + kcat, --rig py'}), "
          f"median of {a.rounds} interleaved rounds; load average at the end "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"command: python3 ops/bench/e2e_lat.py --rates {a.rates} --seconds {a.seconds:g} --rounds {a.rounds}"
          f"{' --control' if a.control else ''} --rig {a.rig}{' --visible' if a.visible else ''}"
          f"{f' --producer-linger {a.linger:g}' if a.linger is not None else ''}{''.join(' --set ' + kv for kv in a.sets)}{' --compare ' + a.compare if a.compare else ''}\n")
    print("| binary | ev/s | p50 / p99 / p99.9 ms | produced -> polled p50 / p99 | polled -> handed p50 / p99 "
          "| cpstage wait per event p50 / p99 | handed -> delivered p50 / p99 | messages per batch p50 / p99 "
          "| control reader p50 / p99 | checkpoint pause max ms | CPU µs/event | broker CPU µs/event "
          "| Redis CPU µs/event | rig CPU µs/event | Redis visible p50 / p99 | pacer lag p99 ms "
          "| box busy % | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rate in rates:
        for b in bins:
            ok = [x for x in res[(b, rate)] if "error" not in x]
            if not ok:
                print(f"| {b} | {rate:.0f} | failed |||||||")
                continue
            sp = [x["split"] for x in ok if "split" in x]
            cw = [x["cpw"] for x in ok if "cpw" in x]
            f = lambda i: f"{med([s[i] for s in sp]):.1f}" if sp else "-"  # noqa: E731
            g = lambda i: f"{med([s[i] for s in cw]):.1f}" if cw else "-"  # noqa: E731
            bt = [x["batch"] for x in ok if "batch" in x]
            ct = [x["ctl"] for x in ok if "ctl" in x]
            ck = [x["ckpt"] for x in ok if "ckpt" in x]
            cks = f"{med([c[1] for c in ck]):.2f}" if ck else "-"
            h = lambda v, i: f"{med([s[i] for s in v]):.0f}" if v else "-"  # noqa: E731

            def q(k, i):
                v = [x[k] if i is None else x[k][i] for x in ok if k in x]
                return f"{med(v):.1f}" if v else "-"
            print(f"| {b} | {rate:.0f} | {med([x['p50'] for x in ok]):.0f} / {med([x['p99'] for x in ok]):.0f} / "
                  f"{med([x['p999'] for x in ok]):.0f} | {f(0)} / {f(1)} | {f(2)} / {f(3)} | {g(0)} / {g(1)} | "
                  f"{f(4)} / {f(5)} | {h(bt, 0)} / {h(bt, 1)} | {h(ct, 0)} / {h(ct, 1)} | {cks} | "
                  f"{med([x['cpu'] for x in ok]):.1f} | {med([x['bcpu'] for x in ok]):.1f} | "
                  f"{med([x['rcpu'] for x in ok]):.1f} | {med([x['rig'] for x in ok]):.1f} | {q('vis', 0)} / {q('vis', 1)} | "
                  f"{q('lag', None)} | {med([x['busy'] for x in ok]):.0f} | {med([x['load'] for x in ok]):.1f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""ops/bench/e2e_lat.py -- where the latency of `riskstream serve` goes at a
paced rate (issue 12).  Companion of ops/bench/e2e.py (same broker, Redis and
events; run it after `ops/build.sh`):

  python3 ops/bench/e2e_lat.py [--bin B] [--compare B2] [--rates 2000,10000]
                               [--seconds 6] [--rounds 2] [--set K=V]...

Per round, binary and rate: a fresh `riskstream broker` (32 partitions) and
redis-server, `serve` started on empty topics (kafka.fetch.wait.max.ms=5 as
in e2e.py), the group joined, then events written to a kcat producer
(linger.ms=0) at the rate for --seconds.  Printed per row (median of the
rounds): the latency the e2e bench measures (score's Kafka timestamp - the
event's: the score's is taken when it is handed to the producer), and serve's
own split of it from its exit summary (`serve: latency p50/p99 ms: ...`):
event produced -> polled (broker, fetch, the consumer's queue while the
scoring thread is busy), polled -> handed to the producer (the batch:
counterparty stage wait, features, model, records), handed -> delivered (Kafka
acknowledged and Redis written, per batch: not in the measured latency); the
counterparty stage's wait per event (its log); serve's CPU per event.  A
binary without the split (older builds) shows '-' there.
"""
import argparse, os, re, signal, statistics, subprocess, sys, tempfile, time, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402

ROOT = e2e.ROOT
SPLIT_RE = re.compile(rb"serve: latency p50/p99 ms: produced -> polled ([\d.]+)/([\d.]+), polled -> handed "
                      rb"to the producer ([\d.]+)/([\d.]+), handed -> delivered ([\d.]+)/([\d.]+)")
CPW_RE = re.compile(rb"wait p50 (\d+) us, p99 (\d+) us")


def one(a, sbin, rate, lines, tag):
    tmp = tempfile.mkdtemp(prefix="riskstream-lat.")
    br = rd = sc = p = None
    res = {}
    try:
        br = e2e.Broker(a.bin, tmp, 32)
        rd = e2e.Redis(tmp, False)
        sc = e2e.Scores(br.addr, "scores")
        log = os.path.join(tmp, "serve.log")
        p = subprocess.Popen([sbin, "serve", "--brokers", br.addr, "--redis", rd.url(), "--group", "lat",
                              "--set", "kafka.fetch.wait.max.ms=5", "--set", f"state.dir={tmp}/state"]
                             + a.serve_set, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        t0 = time.time()
        while b'msg="assigned' not in open(log, "rb").read():
            if time.time() - t0 > 60 or p.poll() is not None:
                raise RuntimeError("serve did not get its partitions")
            time.sleep(0.05)
        time.sleep(1.0)
        c0 = e2e.cpu_ticks(p.pid)[0]
        e2e.produce_paced(br.addr, lines, rate)
        sc.wait(len(lines), a.timeout, p)
        c1 = e2e.cpu_ticks(p.pid)[0]
        ids = {e2e.EV_ID_RE.search(l).group(1) for l in lines}
        evt = e2e.event_times(br.addr, ids)
        with sc.lock:
            rows = list(sc.rows)
        lat = sorted(ts - evt[i] for ts, i in rows if i in evt)
        res.update(p50=e2e.pct(lat, .5), p99=e2e.pct(lat, .99), p999=e2e.pct(lat, .999),
                   cpu=(c1 - c0) / e2e.TICK / len(lines) * 1e6, load=os.getloadavg()[0])
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        txt = open(log, "rb").read()
        m = SPLIT_RE.search(txt)
        if m:
            res["split"] = [float(x) for x in m.groups()]
        m = CPW_RE.search(txt)
        if m:
            res["cpw"] = [int(x) / 1000.0 for x in m.groups()]
        e2e.log(f"{tag}: p50/p99/p99.9 {res['p50']}/{res['p99']}/{res['p999']} ms, split {res.get('split')}, "
                f"cpstage wait {res.get('cpw')}, {res['cpu']:.1f} us/ev, load {res['load']:.1f}")
    except Exception as ex:  # noqa: BLE001
        res["error"] = str(ex)
        e2e.log(f"{tag}: FAILED: {ex} (logs in {tmp})")
    finally:
        if p and p.poll() is None:
            p.kill()
            p.wait()
        for x in (sc, rd, br):
            if x:
                try:
                    x.stop()
                except Exception:  # noqa: BLE001
                    pass
        if "error" not in res:
            shutil.rmtree(tmp, ignore_errors=True)
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
    a = ap.parse_args()
    a.serve_set = [x for kv in a.sets for x in ("--set", kv)]
    rates = [float(r) for r in a.rates.split(",")]
    bins = [a.bin] + ([a.compare] if a.compare else [])
    tmp = tempfile.mkdtemp(prefix="riskstream-lat-gen.")
    gen = os.path.join(tmp, "ev.jsonl")
    n = int(max(rates) * a.seconds)
    subprocess.run([a.bin, "gen", "--seed", "42", "--events", str(n), "--duration", "120d", "--out", gen],
                   check=True, stderr=subprocess.DEVNULL)
    ent = re.compile(rb'"entity_id":\s*"([^"]+)"')
    lines = [ent.search(l).group(1) + b"\t" + l for l in open(gen, "rb") if ent.search(l)]
    shutil.rmtree(tmp, ignore_errors=True)
    res = {}
    for r in range(a.rounds):
        for rate in rates:
            for b in bins:
                res.setdefault((b, rate), []).append(
                    one(a, b, rate, lines[:int(rate * a.seconds)], f"round {r} {b} {rate:.0f} ev/s"))
    med = lambda v: statistics.median(v) if v else float("nan")  # noqa: E731
    print(f"\nriskstream latency split: serve against `riskstream broker` (32 partitions), paced kcat input, "
          f"median of {a.rounds} interleaved rounds; load average at the end "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"command: python3 ops/bench/e2e_lat.py --rates {a.rates} --seconds {a.seconds:g} --rounds {a.rounds}"
          f"{''.join(' --set ' + kv for kv in a.sets)}{' --compare ' + a.compare if a.compare else ''}\n")
    print("| binary | ev/s | p50 / p99 / p99.9 ms | produced -> polled p50 / p99 | polled -> handed p50 / p99 "
          "| cpstage wait per event p50 / p99 | handed -> delivered p50 / p99 | CPU µs/event | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
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
            print(f"| {b} | {rate:.0f} | {med([x['p50'] for x in ok]):.0f} / {med([x['p99'] for x in ok]):.0f} / "
                  f"{med([x['p999'] for x in ok]):.0f} | {f(0)} / {f(1)} | {f(2)} / {f(3)} | {g(0)} / {g(1)} | "
                  f"{f(4)} / {f(5)} | {med([x['cpu'] for x in ok]):.1f} | {med([x['load'] for x in ok]):.1f} |")


if __name__ == "__main__":
    main()

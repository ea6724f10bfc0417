#!/usr/bin/env python3
"""ops/bench/e2e.py -- the end-to-end benchmark of `riskstream serve` against a
broker running as its own process, with the Python peer beside it (issue 12).
Run it through `ops/bench.sh e2e [options]`; it prints Markdown tables.

Per round and per system (the rounds interleave the systems, so a burst of load
from elsewhere on the machine hits every system, not one):
  1. a fresh `riskstream broker --set topics.partitions=32` (its own process) and a
     fresh private redis-server (unix socket in a temp dir; the peer, which only
     speaks TCP, gets a loopback port picked free just before); riskstream gets a
     fresh state.dir in the same temp dir (no learning log, checkpoint or model
     version of an earlier run);
  2. N events (default 100 000) from `riskstream gen` (one file, the same bytes for
     every system) pre-produced to `events` with kcat, keyed by entity;
  3. the system starts; the burst is measured on the scores topic, the same way
     for every system, by ops/bench/bench_watch (--burst-reader wm, the default):
     a small C process that fetches no score's payload while the burst runs. It
     polls the topic's high watermarks (one ListOffsets request for the 32
     partitions every --watch-ms, 5 ms) until N scores are on the topic (visible
     to a consumer), fetches each partition's first record of the burst as soon
     as it is there (the mock broker keeps only ~5 MB per partition) and, once
     the count is reached, each partition's last record: the burst's first and
     last score's Kafka timestamps are the min of the first records' and the max
     of the last records' (a partition's records are appended in produce order),
     i.e. the same two timestamps a reader of every score finds (checked per
     round with --burst-reader check: identical). Its own CPU is ~0.01-0.03 of a
     core (before session 13 kcat read every ~6 KB score, timestamps only: ~0.3
     of the 2-core box at 60 000 scores/s, taken from the system, the broker and
     redis-server alike; kept as --burst-reader ts, and full with the event ids).
       max:         N / (last - first score's Kafka timestamp); CPU = utime + stime
                    of the system's process (/proc/PID/stat, sampled every 50 ms)
                    over the same interval; cores used = CPU / interval.
       first score: first score's Kafka timestamp - the moment the process was
                    started (pre-produced input: start-up, group join, first batch).
     The Kafka timestamp is the score's create time (taken when the system hands
     it to its producer); the watermarks' own times (when the first and the Nth
     score were seen on the topic) give a second events/s, printed as a check:
     the last score is seen a poll (+ the producer's linger) after its
     timestamp, the first one later still (a system's first produce request).
     The paced phases' scores (they need the event ids) are read by the paced
     rig, after the burst.
  4. then events are produced at a fixed rate (--rate, default 2000 ev/s) and at 50 %
     of the max this system just reached, each for --lat-seconds (default 5 s), by
     the paced rig, the same for every system: --rig c (default) ops/bench/bench_pace, one
     C process that paces in 1 ms ticks, produces (linger.ms=0) and reads the scores back
     (5-9 µs of CPU per event at 25 000 ev/s); --rig py the Python pacer
     writing to a kcat producer and a kcat reader (before session 12; 12-17 µs per event
     there, 0.3-0.4 of the 2 cores it measured); latency = score's
     Kafka timestamp - the event's produce time (ms; the score's is its create time, taken
     when serve hands it to the producer: linger.ms and the produce round trip are not in
     it; ops/bench/e2e_lat.py splits the latency and shows that part).
Each figure is the median of the rounds; the ratio is events/s over the peer's.
The max phase is bound by the whole machine's CPU (the system, the broker,
redis-server and the bench's own processes together keep both cores busy: the
"whole machine busy" figure; the bench's share, its burst reader and this
Python process -- its wait and the /proc samplers -- is printed beside it),
not by one thread; ops/bench/timeline.py shows it per
50 ms and per thread (running, waiting for a CPU, asleep).
riskstream runs with kafka.fetch.wait.max.ms=5 and the peer gets the same setting
injected (the mock broker holds every EMPTY fetch that long, even when data arrives
meanwhile; a fetch that finds data is answered at once).
"""
import argparse, calendar, json, os, re, shutil, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (ROOT, bench_tool, EV_ID_RE, TICK, CpuSampler, Rig, cpu_ticks, event_times, keyed_events,  # noqa: E402
                      logger, med, pace_bin, pace_c, pct, produce_file, produce_paced, self_cpu, serve_cmd,
                      stop_proc)

# Peer launcher: the peer's file stays as it is; its consumer gets the same
# fetch.wait.max.ms as riskstream's.
PEER_WRAP = r'''
import sys, runpy, confluent_kafka
_C = confluent_kafka.Consumer

def _consumer(conf, *a, **k):
    conf = dict(conf); conf.setdefault("fetch.wait.max.ms", 5)
    return _C(conf, *a, **k)
confluent_kafka.Consumer = _consumer
path = sys.argv[1]; sys.argv = sys.argv[1:]
runpy.run_path(path, run_name="__main__")
'''

def proc_mem_mb(pid):
    """{'hwm_mb', 'rss_mb'} of process pid from /proc/PID/status ({} if gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    out["hwm_mb" if k == "VmHWM" else "rss_mb"] = int(v.split()[0]) / 1024.0
    except OSError:
        pass
    return out


log = logger("e2e")
# the burst readers' names in the tables
RDR = {"wm": "bench_watch", "ts": "kcat, timestamps", "full": "kcat, ids", "check": "bench_watch + kcat"}


def watch_bin(rs):
    """ops/bench/bench_watch beside the riskstream binary rs."""
    return bench_tool(rs, "bench_watch", "--burst-reader ts")


class Watch:
    """bench_watch on the scores topic: started (its start offsets known)
    before the system is; wait() returns its figures (a dict) once `count`
    scores are on the topic: first_ts_ms / last_ts_ms (the Kafka
    timestamps of the burst's first and last score), the watermarks'
    timeline, each partition's end offset."""
    def __init__(self, wbin, broker, count, poll_ms, timeout):
        self.p = subprocess.Popen([wbin, "--brokers", broker, "--count", str(count),
                                   "--poll-us", str(int(poll_ms * 1000)), "--timeout", str(timeout)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if self.p.stdout.readline().strip() != b"ready":
            self.p.wait()
            raise RuntimeError(f"bench_watch did not start: {self.p.stderr.read().decode().strip()[-300:]}")

    def wait(self, proc):
        while self.p.poll() is None:
            if proc.poll() is not None:
                raise RuntimeError(f"system exited ({proc.returncode}) before its burst's scores were in")
            time.sleep(0.02)
        out = self.p.stdout.read().decode().strip().splitlines()
        try:
            w = json.loads(out[-1])
        except (ValueError, IndexError):
            raise RuntimeError(f"bench_watch failed ({self.p.returncode}): "
                               f"{self.p.stderr.read().decode().strip()[-300:]}")
        if self.p.returncode != 0:
            raise RuntimeError(f"timeout: {w['total']} of {w['count']} scores")
        if w["first_lost"] or w["first_records"] < sum(1 for v in w["end"].values() if v > 0) \
                or w["last_records"] < w["first_records"]:
            raise RuntimeError(f"bench_watch: first records {w['first_records']} ({w['first_lost']} dropped "
                               f"by the broker before they were read), last records {w['last_records']}")
        return w

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def run_system(a, sysdef, lines, round_no):
    name, kind, extra, sbin, reader = sysdef
    rig = Rig("riskstream-e2e.")
    tmp = rig.tmp
    proc = sampler = bsampler = rsampler = watch = None
    xsamplers = []
    res = {"name": name}
    try:
        broker = rig.start_broker(a.bin, a.partitions)
        pre = rig.path("events.kv")
        with open(pre, "wb") as f:
            f.writelines(lines[:a.events])
        produce_file(broker.addr, pre)
        redis = rig.start_redis(tcp=(kind == "peer"))
        # the burst's scores: the watermarks and a few records' timestamps
        # (wm), every score's timestamp (ts) or timestamp and id (full)
        scores = None
        if reader in ("wm", "check"):
            watch = Watch(a.watch_bin, broker.addr, a.events, a.watch_ms, a.timeout)
        if reader != "wm":
            scores = rig.read_scores(ids=reader == "full")
        plog = open(rig.path("system.log"), "wb")
        t_start = time.time() * 1000.0
        if kind == "peer":
            cmd = [a.python, "-c", PEER_WRAP, a.peer_script, "--brokers", broker.addr,
                   "--redis-port", str(redis.port), "--count", str(len(lines)),
                   "--in-topic", "events", "--out-topic", "scores",
                   "--fields", "id,entity_id,counterparty_id,event_time_ms,amount"]
        else:
            # a fresh state directory (learning logs, checkpoint, model store) per
            # system and round: without one every run would resume the previous
            # run's state in the default directory (and two runs at once share it)
            cmd = serve_cmd(sbin, rig, f"bench-{round_no}", rig.path("state"), a.serve_set + extra)
        proc = subprocess.Popen(cmd, stdout=plog, stderr=plog)
        sampler = CpuSampler(proc.pid, None if kind == "peer" else b"rs-prefault")
        bsampler, rsampler = CpuSampler(broker.p.pid), CpuSampler(redis.p.pid)
        # the machine, and the bench's own share of it: this process (its
        # wait and the samplers), the watcher, the kcat reader
        xsamplers = [CpuSampler(None), CpuSampler(os.getpid())] + \
            [CpuSampler(x.p.pid) for x in (watch, scores) if x]
        if watch:
            w = watch.wait(proc)
            first, last = w["first_ts_ms"], w["last_ts_ms"]
            burst_pos = {int(k): v - 1 for k, v in w["end"].items() if v > 0}
            tl = w["timeline"]
            # scores on the topic by the burst's half-time (the watermarks)
            mid_n = max([n for t, n in tl if t <= (first + last) / 2] or [0])
            wm_span = max(w["done_wm_ms"] - w["first_wm_ms"], 1) / 1000.0
            res.update(eps_wm=a.events / wm_span, polls=w["polls"],
                       # how much later the watermarks showed the first / last score
                       first_wm_ms=w["first_wm_ms"] - first, done_wm_ms=w["done_wm_ms"] - last)
        if scores:
            scores.wait(a.events, a.timeout, proc)
            with scores.lock:
                rows = list(scores.rows[:a.events])
                burst_pos = dict(scores.pos)
            r_first, r_last = min(r[0] for r in rows), max(r[0] for r in rows)
            if not watch:
                first, last = r_first, r_last
                mid_n = sum(1 for r in rows if r[0] < (first + last) / 2)
            res.update(eps_reader=a.events / (max(r_last - r_first, 1) / 1000.0),
                       first_reader_ms=r_first - first, last_reader_ms=r_last - last)
        span = max(last - first, 1) / 1000.0
        # the system's memory at the end of the burst: its peak resident set
        # (VmHWM) and its resident set now (VmRSS), MB, /proc/PID/status
        res.update(proc_mem_mb(proc.pid))
        cpu = sampler.at(last) - sampler.at(first)
        res.update(eps=a.events / span, cpu_us=cpu / a.events * 1e6, cores=cpu / span,
                   pf_us=(sampler.at(last, 3) - sampler.at(first, 3)) / a.events * 1e6,
                   # the burst's second half only: past the start-up's
                   # one-time work (prefault, first laps of the rings)
                   cpu2_us=(sampler.at(last) - sampler.at((first + last) / 2)) * 1e6
                   / max(1, a.events - mid_n),
                   faults=(sampler.at(last, 2) - sampler.at(first, 2)) / a.events,
                   first_s=(first - t_start) / 1000.0,
                   broker_cores=(bsampler.at(last) - bsampler.at(first)) / span,
                   redis_cores=(rsampler.at(last) - rsampler.at(first)) / span,
                   box_cores=(xsamplers[0].at(last) - xsamplers[0].at(first)) / span,
                   bench_cores=sum(x.at(last) - x.at(first) for x in xsamplers[1:]) / span,
                   self_cores=(xsamplers[1].at(last) - xsamplers[1].at(first)) / span,
                   reader_cores=sum(x.at(last) - x.at(first) for x in xsamplers[2:]) / span,
                   reader_us=sum(x.at(last) - x.at(first) for x in xsamplers[2:]) / a.events * 1e6,
                   self_us=(xsamplers[1].at(last) - xsamplers[1].at(first)) / a.events * 1e6,
                   load=os.getloadavg()[0])
        for x in xsamplers:
            x.run_ = False
        if a.rig == "c":
            # bench_pace reads the paced phases' scores itself (from the
            # topic's end when it starts)
            if rig.scores:
                rig.scores.stop()
            rig.scores = scores = None
        elif reader != "full":
            # the paced phases need the event ids: a full reader, past the
            # burst (read again up to its end, not kept: the mock's
            # retention may have dropped its start) before they begin
            scores = rig.read_scores(after_ts=last)
            end = time.time() + a.timeout
            while not scores.reached(burst_pos):
                if time.time() > end:
                    raise RuntimeError("the scores reader did not get past the burst")
                time.sleep(0.05)
        if kind != "peer":
            # riskstream's own log: start -> subscribed (its start-up) and the
            # consumer group's join (the broker's, not ours) before assignment
            plog.flush()
            with open(rig.path("system.log"), "rb") as f:
                txt = f.read()
            def logts(pat):
                m = re.search(rb'ts=(\S+)Z[^\n]*' + pat, txt)
                if not m:
                    return float("nan")
                t = time.strptime(m.group(1)[:19].decode(), "%Y-%m-%dT%H:%M:%S")
                return (calendar.timegm(t) + float("0" + m.group(1)[19:].decode())) * 1000.0
            sub, asg = logts(rb'subscribed to'), logts(rb'msg="assigned')
            res.update(ready_s=(sub - t_start) / 1000.0, join_s=(asg - sub) / 1000.0,
                       after_asg_s=(first - asg) / 1000.0)
            # riskstream's start-up split: exec + configuration (the first log
            # line) | features, model, state and trainer (its first version)
            # | Redis writer, producer, consumer (subscribed)
            cfg, mdl = logts(rb'preallocates about'), logts(rb'model version \S+ published')
            res.update(cfg_s=(cfg - t_start) / 1000.0, model_s=(mdl - cfg) / 1000.0,
                       sinks_s=(sub - mdl) / 1000.0)
        # latency phases on fresh events
        off = a.events
        for tag, rate in (("fixed", a.rate), ("half", res["eps"] / 2)):
            n = int(rate * a.lat_seconds)
            if off + n > len(lines):
                n = len(lines) - off
            chunk = lines[off:off + n]
            off += n
            if a.rig == "c":
                t0 = time.time() * 1000.0
                pr = pace_c(a.pace_bin, broker.addr, a.events_file, rate, skip=off - n, count=n,
                            timeout=a.timeout)
                t1 = time.time() * 1000.0
                pcpu = (sampler.at(t1) - sampler.at(t0)) / n * 1e6
                res[tag] = (rate, *pr["handed"][:3], pr["scores"], pcpu, pr["rig_cpu_us"])
                continue
            before = scores.count()
            s0, k0 = self_cpu(), cpu_ticks(scores.p.pid)[0]
            kp = produce_paced(broker.addr, chunk, rate)
            scores.wait(before + n, a.timeout, proc)
            # the rig's CPU over the phase: this process (pacer, reader
            # thread, samplers), the kcat producer, the kcat scores reader
            rig_us = ((self_cpu() - s0) + kp + (cpu_ticks(scores.p.pid)[0] - k0) / TICK) / n * 1e6
            ids = {EV_ID_RE.search(l).group(1) for l in chunk}
            evt = event_times(broker.addr, ids)
            with scores.lock:
                rows = scores.rows[before:]
            lat = sorted(ts - evt[i] for ts, i in rows if i in evt)
            t0, t1 = min(r[0] for r in rows), max(r[0] for r in rows)
            pcpu = (sampler.at(t1) - sampler.at(t0)) / max(len(rows) - 1, 1) * 1e6
            res[tag] = (rate, pct(lat, .5), pct(lat, .99), pct(lat, .999), len(lat), pcpu, rig_us)
        chk = (f" (watermarks {res['eps_wm']:.0f}: first/last score seen {res['first_wm_ms']:+.0f}/"
               f"{res['done_wm_ms']:+.0f} ms" if "eps_wm" in res else "") + \
            (f"{'; ' if 'eps_wm' in res else ' ('}kcat reader {res['eps_reader']:.0f}, its first/last "
             f"score {res['first_reader_ms']:+.0f}/{res['last_reader_ms']:+.0f} ms"
             if "eps_wm" in res and "eps_reader" in res else "") + (")" if "eps_wm" in res else "")
        log(f"round {round_no} {name}: {res['eps']:.0f} ev/s{chk}, {res['cpu_us']:.1f} us/ev, "
            f"{res['cores']:.2f} cores, rig {res['reader_cores']:.2f} + {res['self_cores']:.2f} cores, "
            f"first score {res['first_s']:.2f} s, "
            f"fixed p50/p99 {res['fixed'][1]}/{res['fixed'][2]} ms, "
            f"half {res['half'][0]:.0f} ev/s p50/p99 {res['half'][1]}/{res['half'][2]} ms")
    except Exception as e:  # noqa: BLE001 -- a failed system is a row, not the end of the run
        res["error"] = str(e)
        log(f"round {round_no} {name}: FAILED: {e} (logs in {tmp})")
        a.keep_tmp = True
    finally:
        for x in (sampler, bsampler, rsampler) + tuple(xsamplers):
            if x:
                x.run_ = False
        if watch:
            watch.stop()
        stop_proc(proc)
        rig.stop()
        rig.cleanup("error" not in res)  # on a failure the logs stay
    return res


def main():
    ap = argparse.ArgumentParser(prog="ops/bench.sh e2e", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "riskstream"),
                    help="the riskstream binary (default build/riskstream)")
    ap.add_argument("--events", type=int, default=100000, help="events pre-produced (default 100000)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds, the median is shown (default 3)")
    ap.add_argument("--rate", type=float, default=2000, help="fixed-rate phase, events/s")
    ap.add_argument("--lat-seconds", type=float, default=5, help="length of each paced phase (default 5)")
    ap.add_argument("--partitions", type=int, default=32, help="events topic partitions (default 32)")
    ap.add_argument("--seed", type=int, default=42, help="riskstream gen --seed")
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for the scores of a phase")
    ap.add_argument("--peer", action="store_true", help="also run the Python peer")
    ap.add_argument("--burst-reader", default="wm", metavar="wm|ts|full|check[,...]",
                    help="how the bench measures the max-rate burst, on the same cores as the system: "
                         "wm = ops/bench/bench_watch: the scores topic's high watermarks every --watch-ms "
                         "and the Kafka timestamps of each partition's first and last score only (no "
                         "payload fetched during the burst; ~0.01-0.03 of a core); ts = kcat reads every "
                         "score, timestamps only (~3 µs of CPU per score, ~0.3 of the 2 cores at 60 000 "
                         "scores/s; before session 13); full = timestamps and event ids (~7 µs, before "
                         "session 8); check = wm and ts on the same burst, the figures from wm and ts's "
                         "beside them in the log (the rig then costs both); a comma list (e.g. wm,ts) runs "
                         "each system once with each, interleaved in the same rounds, as rows marked "
                         "[reader], the ratio to the peer's row with the same reader; the paced phases "
                         "always read ids, after the burst (default wm)")
    ap.add_argument("--watch-ms", type=float, default=5,
                    help="--burst-reader wm: how often the watermarks are polled (ms, default 5): "
                         "only when the burst is seen complete and the check figure depend on it")
    ap.add_argument("--peer-script", default=os.path.join(ROOT, "..", "shared", "peer", "python_peer.py"))
    ap.add_argument("--python", default="/usr/bin/python3", help="the peer's interpreter (Debian's)")
    ap.add_argument("--systems", default="seq,seq-noexpl,lr,workers",
                    help="comma list of seq, seq-noexpl, lr, workers (1 and 2, if serve has service.workers)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to every riskstream serve as --set KEY=VALUE (repeatable)")
    ap.add_argument("--compare", metavar="BIN",
                    help="another riskstream binary (e.g. main's build): each riskstream system also runs "
                         "with it, interleaved in the same rounds, as a row marked [BIN]")
    ap.add_argument("--rig", choices=("c", "py"), default="c",
                    help="the paced phases' rig (the same for every system): c = ops/bench/bench_pace (one "
                         "C process paces, produces and reads the scores back; 5-9 µs of CPU per event at "
                         "25 000 ev/s), "
                         "py = the Python pacer writing to a kcat producer and a kcat scores reader parsed "
                         "here (before session 12; 12-17 µs per event at 25 000 ev/s, 0.3-0.4 of the "
                         "2-core box)")
    a = ap.parse_args()
    a.readers = a.burst_reader.split(",")
    if not a.readers or any(r not in RDR for r in a.readers):
        sys.exit(f"e2e: --burst-reader {a.burst_reader}: expected a comma list of {', '.join(RDR)}")
    a.serve_set = [x for kv in a.sets for x in ("--set", kv)]
    a.keep_tmp = False
    # service.workers rows only when this serve has the key (it is rejected, exit 2, otherwise)
    has_workers = subprocess.run([a.bin, "config", "--set", "service.workers=2"],
                                 capture_output=True).returncode == 0
    systems = []
    if a.peer:
        if not os.path.exists(a.peer_script):
            sys.exit(f"e2e: --peer: {a.peer_script} not found (--peer-script)")
        systems.append(("Python peer", "peer", []))
    want = a.systems.split(",")
    if "seq" in want:
        systems.append(("seq, explanations on (default)", "rs", []))
    if "seq-noexpl" in want:
        systems.append(("seq, explanations off", "rs", ["--set", "service.explain=false"]))
    if "lr" in want:
        systems.append(("lr", "rs", ["--set", "model.kind=lr"]))
    if "workers" in want and has_workers:
        for w in (1, 2):
            systems.append((f"seq, explanations on, service.workers={w}", "rs",
                            ["--set", f"service.workers={w}"]))
    if a.compare:
        systems = [y for s in systems
                   for y in ([s] if s[1] != "rs" else [(f"{s[0]} [{a.compare}]", "rs", s[2], a.compare), s])]
    # (name, kind, extra arguments, binary, burst reader)
    systems = [(s[0] + (f" [{r}]" if len(a.readers) > 1 else ""), s[1], s[2], s[3] if len(s) > 3 else a.bin, r)
               for s in systems for r in a.readers]
    # one generated stream: N pre-produced + paced chunks for the latency phases
    total = a.events + int(a.rate * a.lat_seconds) + 150000
    lines = keyed_events(a.bin, total, a.seed)
    a.pace_bin = pace_bin(a.bin) if a.rig == "c" else None
    a.watch_bin = watch_bin(a.bin) if {"wm", "check"} & set(a.readers) else None
    evdir = tempfile.mkdtemp(prefix="riskstream-e2e-ev.")
    a.events_file = os.path.join(evdir, "events.kv")  # bench_pace's input
    with open(a.events_file, "wb") as f:
        f.writelines(lines)
    log(f"{len(lines)} events generated; systems: {', '.join(s[0] for s in systems)}"
        f"{'' if has_workers else ' (serve has no service.workers: no worker rows)'}")
    results = {s[0]: [] for s in systems}
    for r in range(a.rounds):
        for s in systems:
            results[s[0]].append(run_system(a, s, lines, r))
    shutil.rmtree(evdir, ignore_errors=True)
    machine = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2; nproc; "
                              "cut -d' ' -f1-3 /proc/loadavg"], capture_output=True, text=True).stdout.split("\n")
    print(f"\nriskstream e2e bench: {a.events} events pre-produced to `riskstream broker` "
          f"({a.partitions} partitions, its own process), fresh broker + redis-server + state.dir per system and round, "
          f"median of {a.rounds} interleaved rounds")
    print(f"machine: {machine[0].strip()}, {machine[1]} cores, load average at the end {machine[2]}")
    print(f"command: ops/bench.sh e2e --events {a.events} --rounds {a.rounds} --rate {a.rate:.0f} "
          f"--lat-seconds {a.lat_seconds:g}{' --peer' if a.peer else ''} --systems {a.systems}"
          f" --burst-reader {a.burst_reader} --rig {a.rig}"
          f"{''.join(' --set ' + kv for kv in a.sets)}{' --compare ' + a.compare if a.compare else ''}\n")
    # the peer's events/s with each burst reader
    peer_eps = {s[4]: med([x["eps"] for x in results[s[0]] if "error" not in x])
                for s in systems if s[1] == "peer"}
    print(f"| system | events/s | CPU µs/event | cores used | ratio to peer | first score s "
          f"| p50 / p99 / p99.9 ms at {a.rate:.0f} ev/s | 50 % of max: ev/s, p50 / p99 / p99.9 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in systems:
        ok = [x for x in results[s[0]] if "error" not in x]
        if not ok:
            print(f"| {s[0]} | failed: {results[s[0]][0].get('error', '?')} |||||||")
            continue
        eps = med([x["eps"] for x in ok])
        fx = [med([x["fixed"][i] for x in ok]) for i in range(1, 4)]
        hf = [med([x["half"][i] for x in ok]) for i in range(0, 4)]
        pe = peer_eps.get(s[4], float("nan"))
        ratio = f"{eps / pe:.1f}×" if pe == pe and pe > 0 else "–"
        print(f"| {s[0]} | {eps:.0f} | {med([x['cpu_us'] for x in ok]):.1f} | "
              f"{med([x['cores'] for x in ok]):.2f} | {ratio} | {med([x['first_s'] for x in ok]):.2f} | "
              f"{fx[0]:.0f} / {fx[1]:.0f} / {fx[2]:.0f} | {hf[0]:.0f}: {hf[1]:.0f} / {hf[2]:.0f} / {hf[3]:.0f} |")
    rs_ok = [(s[0], [x for x in results[s[0]] if "error" not in x and "ready_s" in x]) for s in systems]
    rs_ok = [(n, v) for n, v in rs_ok if v]
    if rs_ok:
        print("\nfirst score after start, from riskstream's log (median s): start -> consumer subscribed "
              "(riskstream's own start-up) | subscribed -> partitions assigned (the broker's group join) "
              "| assigned -> first score on the topic")
        for n, v in rs_ok:
            print(f"  {n}: {med([x['ready_s'] for x in v]):.2f} | {med([x['join_s'] for x in v]):.2f} "
                  f"| {med([x['after_asg_s'] for x in v]):.2f}; start-up split: start -> configuration read "
                  f"{med([x.get('cfg_s', float('nan')) for x in v]):.2f} | -> features, model, state, trainer "
                  f"{med([x.get('model_s', float('nan')) for x in v]):.2f} | -> Redis, producer, consumer subscribed "
                  f"{med([x.get('sinks_s', float('nan')) for x in v]):.2f}")
    print("\nwhere the cores went during the max phase (median cores: the system | the broker process "
          f"| redis-server | the bench's own: its burst reader ({' or '.join(RDR[r] for r in a.readers)}) + this Python process "
          "(its wait and the /proc samplers) | the whole machine busy, /proc/stat; "
          "the system's page faults per event, /proc minflt + majflt), and per round events/s (noise) with the 1-min load average when it ended:")
    for s in systems:
        ok = [x for x in results[s[0]] if "error" not in x]
        if ok:
            print(f"  {s[0]}: {med([x['cores'] for x in ok]):.2f} | {med([x['broker_cores'] for x in ok]):.2f} "
                  f"| {med([x['redis_cores'] for x in ok]):.2f} | {med([x.get('reader_cores', float('nan')) for x in ok]):.2f} "
                  f"+ {med([x.get('self_cores', float('nan')) for x in ok]):.2f} "
                  f"({med([x.get('reader_us', float('nan')) for x in ok]):.2f} + "
                  f"{med([x.get('self_us', float('nan')) for x in ok]):.2f} µs per score) "
                  f"| {med([x.get('box_cores', float('nan')) for x in ok]):.2f} of {os.cpu_count()}; page faults/event "
                  f"{med([x.get('faults', float('nan')) for x in ok]):.2f}; memory at the end of the burst "
                  f"(VmHWM / VmRSS) {med([x.get('hwm_mb', float('nan')) for x in ok]):.0f} / "
                  f"{med([x.get('rss_mb', float('nan')) for x in ok]):.0f} MB; of the CPU µs/event, the start-up prefault "
                  f"thread (rs-prefault) {med([x.get('pf_us', float('nan')) for x in ok]):.1f}; CPU µs/event over the second "
                  f"half of the burst {med([x.get('cpu2_us', float('nan')) for x in ok]):.1f}; CPU µs/event when paced at {a.rate:.0f} ev/s "
                  f"{med([x['fixed'][5] for x in ok]):.1f}, at 50 % of max {med([x['half'][5] for x in ok]):.1f}; "
                  f"the paced rig's own CPU µs/event ({a.rig}) at {a.rate:.0f} ev/s "
                  f"{med([x['fixed'][6] for x in ok]):.1f}, at 50 % of max {med([x['half'][6] for x in ok]):.1f}; "
                  + (f"events/s from the watermarks' own times (check) {med([x['eps_wm'] for x in ok]):.0f}; "
                     if all("eps_wm" in x for x in ok) else "")
                  + (f"events/s from the kcat reader's timestamps (check) {med([x['eps_reader'] for x in ok]):.0f}; "
                     if s[4] == "check" else "")
                  + "rounds: "
                  + ", ".join(f"{x['eps']:.0f} (load {x['load']:.1f})" if "error" not in x else "failed"
                              for x in results[s[0]]))
    print("\nevents/s = events / (last - first score's Kafka timestamp"
          + (", the first and last record of each partition of the scores topic, fetched by bench_watch, "
             "which polls the high watermarks until every score is in (--burst-reader wm)"
             if {"wm", "check"} & set(a.readers) else "")
          + (", every score read by kcat (--burst-reader ts, full)" if {"ts", "full"} & set(a.readers) else "") +
          "); CPU = utime+stime of the "
          "system's process over that interval (/proc, 10 ms ticks); first score = its Kafka timestamp "
          "- process start; latency = score's - event's Kafka timestamp (ms).")
    failed = any("error" in x for v in results.values() for x in v)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

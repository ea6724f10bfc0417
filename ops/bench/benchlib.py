"""ops/bench/benchlib.py -- the set-up the end-to-end benches share
(ops/bench/e2e.py, e2e_lat.py, idle_cpu.py, perf_threads.py, scaleout.py and
ops/serve_workers.py); not a bench itself.

  Rig                a run's temp dir with a fresh `riskstream broker` (its own
                     process), a private redis-server and the scores topic read
                     back (Broker, Redis, Scores), stopped and cleaned up as one;
  keyed_events       one `riskstream gen` stream as kcat key<TAB>line records;
  produce_file, produce_paced, event_times
                     kcat in and out of the events topic (the old paced rig:
                     --rig py);
  pace_bin, pace_c   the paced rig in C (ops/bench/bench_pace.c): produces
                     at a fixed rate, reads the scores back, its figures;
  serve_on, serve_cmd, spawn_logged, wait_assigned, stop_proc
                     `riskstream serve` on a rig: started and its group joined;
                     its command line (the benches' common settings), its start
                     with a log, the wait for its partitions; its end;
  cpu_ticks, tasks, thread_ticks, CpuSampler, self_cpu
                     CPU and page faults from /proc;
  pct, med, median   the figures; logger: progress lines on stderr.

A bench imports it after `sys.dont_write_bytecode = True` (no __pycache__ in
the source tree) with ops/bench on sys.path.
"""
import json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICK = os.sysconf("SC_CLK_TCK")
EV_ID_RE = re.compile(rb'"id":\s*"([^"]+)"')
SC_ID_RE = re.compile(rb'"event_id":\s*"([^"]+)"')
ENT_RE = re.compile(rb'"entity_id":\s*"([^"]+)"')


def logger(prefix):
    """A function printing "PREFIX: msg" lines to stderr (the benches' progress)."""
    def log(msg):
        print(f"{prefix}: {msg}", file=sys.stderr, flush=True)
    return log


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_ticks(pid):
    """(utime + stime ticks, minor + major page faults) of a process; pid
    None: (the whole machine's busy ticks, all CPUs, from /proc/stat: all
    but idle and iowait; 0)."""
    if pid is None:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v[:8]) - v[3] - v[4], 0
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            st = f.read()
    except OSError:
        return None
    fields = st[st.rindex(b")") + 2:].split()
    # utime, stime (fields 14, 15); minflt, majflt (fields 10, 12)
    return int(fields[11]) + int(fields[12]), int(fields[7]) + int(fields[9])


def tasks(pid):
    """(tid, name, utime + stime ticks) of each thread of a process (none if
    it is gone); a thread that ends meanwhile is left out."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out = []
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(b")") + 2:].split()
        out.append((int(t), st[st.index(b"(") + 1:st.rindex(b")")], int(fields[11]) + int(fields[12])))
    return out


def thread_ticks(pid, name):
    """utime + stime ticks of the process's threads called `name` (0 if none)."""
    return sum(ticks for _, n, ticks in tasks(pid) if n == name)


def pct(xs, q):
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def med(vals):
    """Median of the values that are not NaN (NaN if none)."""
    vals = [v for v in vals if v == v]
    return statistics.median(vals) if vals else float("nan")


def median(vals):
    """Median (NaN if no values)."""
    return statistics.median(vals) if vals else float("nan")


class Broker:
    """`riskstream broker` as its own process; addr is its bootstrap address.
    Its log goes to tmp/broker.log (tmp None: this process's stderr); nice
    and log_level, if set, are passed to nice(1) and -l."""
    def __init__(self, rs, tmp, partitions, nice=None, log_level=None):
        self.log = open(os.path.join(tmp, "broker.log"), "wb") if tmp else None
        cmd = (["nice", "-n", str(nice)] if nice is not None else []) + \
            [rs, "broker", "--set", f"topics.partitions={partitions}"] + \
            (["-l", log_level] if log_level else [])
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log)
        line = self.p.stdout.readline().decode()
        m = re.match(r"kafka bootstrap: (\S+)", line)
        if not m:
            raise RuntimeError(f"broker did not start: {line!r}")
        self.addr = m.group(1)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill(); self.p.wait()
        if self.log:
            self.log.close()


class Redis:
    def __init__(self, tmp, tcp):
        self.dir = tmp
        self.port = free_port() if tcp else 0
        self.sock = os.path.join(tmp, "redis.sock")
        self.p = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                   "--unixsocket", self.sock, "--unixsocketperm", "700",
                                   "--save", "", "--appendonly", "no", "--dir", tmp,
                                   "--logfile", os.path.join(tmp, "redis.log")])
        for _ in range(100):
            if subprocess.run(["redis-cli", "-s", self.sock, "ping"], capture_output=True).stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def url(self):
        return f"unix://{self.sock}"

    def stop(self):
        self.p.terminate()
        self.p.wait()


class Scores(threading.Thread):
    """Reads the scores topic (kcat) as it fills: rows of (Kafka ts ms,
    event id), and pos: the highest offset read of each partition.
    ids=False: timestamps only (event id None): kcat prints no payload and
    nothing is parsed, which costs the machine less than half as much per
    score (measured: 3.2 against 7 µs of kcat + Python CPU), so a max-rate
    burst measured with it shares its cores with less of the bench.
    after_ts: rows up to that Kafka timestamp are read (pos) but not kept
    (a reader started after a burst read by another one)."""
    def __init__(self, broker, topic, ids=True, after_ts=None):
        super().__init__(daemon=True)
        self.ids, self.after_ts, self.pos = ids, after_ts, {}
        self.p = subprocess.Popen(["kcat", "-C", "-b", broker, "-t", topic, "-o", "beginning",
                                   "-u", "-q", "-f", "%T\t%p\t%o\t%s\n" if ids else "%T\t%p\t%o\n"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.rows, self.lock = [], threading.Lock()
        self.start()

    def run(self):
        for line in self.p.stdout:
            f = line.split(b"\t", 3)
            if len(f) < 3:
                continue
            ts, part, off = int(f[0]), int(f[1]), int(f[2])
            eid = None
            if self.ids:
                m = SC_ID_RE.search(f[3]) if len(f) > 3 else None
                if not m:
                    continue
                eid = m.group(1)
            with self.lock:
                self.pos[part] = max(off, self.pos.get(part, -1))
                if self.after_ts is None or ts > self.after_ts:
                    self.rows.append((ts, eid))

    def reached(self, pos):
        """1 if every partition of pos ({partition: offset}) was read up
        to its offset."""
        with self.lock:
            return all(self.pos.get(k, -1) >= v for k, v in pos.items())

    def count(self):
        with self.lock:
            return len(self.rows)

    def wait(self, n, timeout, proc):
        end = time.time() + timeout
        while self.count() < n:
            if time.time() > end:
                raise RuntimeError(f"timeout: {self.count()} of {n} scores")
            if proc.poll() is not None:
                raise RuntimeError(f"system exited ({proc.returncode}) after {self.count()} of {n} scores")
            time.sleep(0.02)

    def stop(self):
        self.p.terminate()
        self.p.wait()


class CpuSampler(threading.Thread):
    """CPU of process pid (None: of the whole machine) every 50 ms."""
    def __init__(self, pid, thread=None):
        super().__init__(daemon=True)
        self.pid, self.samples, self.run_, self.thread = pid, [], True, thread
        self.start()

    def run(self):
        while self.run_:
            c = cpu_ticks(self.pid)
            if c is None:
                break
            # what=3: the CPU of the threads named self.thread (riskstream's
            # start-up prefault, rs-prefault, common.c), part of what=1
            th = thread_ticks(self.pid, self.thread) / TICK if self.thread else 0.0
            self.samples.append((time.time() * 1000.0, c[0] / TICK, c[1], th))
            time.sleep(0.05)

    def at(self, t_ms, what=1):
        """CPU seconds (what=2: page faults) at wall time t_ms (linear between samples)."""
        s = [(x[0], x[what]) for x in self.samples]
        if not s:
            return float("nan")
        if t_ms <= s[0][0]:
            return s[0][1]
        for (t0, c0), (t1, c1) in zip(s, s[1:]):
            if t0 <= t_ms <= t1:
                return c0 + (c1 - c0) * (t_ms - t0) / max(t1 - t0, 1e-9)
        return s[-1][1]


def stop_all(*objs):
    """stop() each object that is there, whatever the others do."""
    for x in objs:
        if x:
            try:
                x.stop()
            except Exception:  # noqa: BLE001
                pass


class Rig:
    """One run's temp dir (tmp) and what it starts there: a broker (its own
    process), a private redis-server, the scores topic read back.  start()
    brings up all three in that order; a bench that does something between
    them calls start_broker, start_redis and read_scores itself.  stop()
    stops whatever was started; cleanup(ok) then removes tmp, or on a
    failure only its state/ (GBs of preallocated learning log: the logs
    stay for a look)."""
    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.broker = self.redis = self.scores = None

    def start_broker(self, rs, partitions=32):
        self.broker = Broker(rs, self.tmp, partitions)
        return self.broker

    def start_redis(self, tcp=False):
        self.redis = Redis(self.tmp, tcp)
        return self.redis

    def read_scores(self, topic="scores", ids=True, after_ts=None):
        """A reader of the topic (Scores); a second call stops the first."""
        if self.scores:
            self.scores.stop()
        self.scores = Scores(self.broker.addr, topic, ids, after_ts)
        return self.scores

    def start(self, rs, partitions=32, tcp=False):
        self.start_broker(rs, partitions)
        self.start_redis(tcp)
        self.read_scores()
        return self

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def stop(self):
        stop_all(self.scores, self.redis, self.broker)

    def cleanup(self, ok):
        shutil.rmtree(self.tmp if ok else self.path("state"), ignore_errors=True)


def keyed_events(rs, n, seed, duration="120d", entities=None):
    """n events of `riskstream gen --seed seed` (over duration, among
    entities if set) as kcat -K '\\t' records: entity id, TAB, the JSON
    line (bytes, newline kept)."""
    tmp = tempfile.mkdtemp(prefix="riskstream-bench-gen.")
    try:
        gen = os.path.join(tmp, "events.jsonl")
        cmd = [rs, "gen", "--seed", str(seed), "--events", str(n)]
        cmd += ["--duration", duration] if duration else []
        cmd += ["--entities", str(entities)] if entities else []
        subprocess.run(cmd + ["--out", gen], check=True, stderr=subprocess.DEVNULL)
        lines = []
        with open(gen, "rb") as f:
            for l in f:
                m = ENT_RE.search(l)
                if m:
                    lines.append(m.group(1) + b"\t" + l)
        return lines
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def produce_file(broker, path):
    subprocess.run(["kcat", "-P", "-b", broker, "-t", "events", "-K", "\t", "-l", path],
                   check=True, stderr=subprocess.DEVNULL)


def produce_paced(broker, lines, rate, linger=0):
    """Write keyed lines to a kcat producer at `rate` per second (5 ms steps);
    `linger` is the producer's linger.ms (e2e_lat.py --producer-linger).
    Returns the kcat producer's CPU seconds (its rusage)."""
    p = subprocess.Popen(["kcat", "-P", "-b", broker, "-t", "events", "-K", "\t", "-X", f"linger.ms={linger}"],
                         stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    t0, sent, step = time.time(), 0, 0.005
    while sent < len(lines):
        due = min(len(lines), int((time.time() - t0) * rate) + 1)
        if due > sent:
            p.stdin.write(b"".join(lines[sent:due]))
            p.stdin.flush()
            sent = due
        time.sleep(step)
    p.stdin.close()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_utime + ru.ru_stime


def self_cpu():
    """CPU seconds of this process (all its threads) so far."""
    t = os.times()
    return t.user + t.system


def bench_tool(rs, name, otherwise):
    """ops/bench/<name> of the build that holds the riskstream binary rs
    (B/ops/bench/<name>), else of build/; `otherwise` ends the error."""
    for d in (os.path.dirname(os.path.abspath(rs)), os.path.join(ROOT, "build")):
        p = os.path.join(d, "ops", "bench", name)
        if os.access(p, os.X_OK):
            return p
    raise RuntimeError(f"ops/bench/{name} not built (ops/build.sh builds it beside riskstream); "
                       f"or use {otherwise}")


def pace_bin(rs):
    """The bench_pace rig (ops/bench/bench_pace.c) beside rs."""
    return bench_tool(rs, "bench_pace", "--rig py")


def pace_c(pbin, broker, path, rate, skip=0, count=None, redis_sock=None, timeout=120, step_us=1000,
           scores="scores", linger=0):
    """Events `skip`..`skip+count` of the keyed file `path` (kcat -K '\t'
    lines) produced at `rate` by bench_pace, which reads their scores (and
    with redis_sock the records' SETs) back: its --json figures as a dict
    (handed/read/visible_ms/lag: [p50, p99, p99.9, max] ms; rig_cpu_us: its
    own CPU per event).  Raises when it could not run or read every score."""
    cmd = [pbin, "--brokers", broker, "--in", path, "--rate", str(rate), "--skip", str(skip),
           "--timeout", str(timeout), "--step-us", str(step_us), "--scores", scores,
           "--linger-ms", str(int(linger)), "--json"]
    cmd += ["--count", str(count)] if count is not None else []
    cmd += ["--redis", redis_sock] if redis_sock else []
    r = subprocess.run(cmd, capture_output=True)
    try:
        res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"bench_pace failed ({r.returncode}): {r.stderr.decode().strip()[-300:]}")
    if r.returncode != 0:
        raise RuntimeError(f"bench_pace: {res['scores']} of {res['events']} scores "
                           f"({res['visible']} visible on Redis) before its timeout")
    return res


def event_times(broker, ids):
    """Kafka timestamps (ms) of the events whose id is in `ids`."""
    out = subprocess.run(["kcat", "-C", "-b", broker, "-t", "events", "-o", "beginning", "-e", "-q",
                          "-f", "%T\t%s\n"], capture_output=True).stdout
    res = {}
    for line in out.split(b"\n"):
        ts, _, rest = line.partition(b"\t")
        m = EV_ID_RE.search(rest)
        if m and m.group(1) in ids:
            res[m.group(1)] = int(ts)
    return res


def serve_cmd(sbin, rig, group, state_dir, sets=()):
    """`serve` on the rig's broker and Redis, consumer group `group`, a
    fresh state.dir, kafka.fetch.wait.max.ms=5 (the mock broker holds every
    EMPTY fetch that long), then `sets` (more arguments, e.g. --set K=V)."""
    return [sbin, "serve", "--brokers", rig.broker.addr, "--redis", rig.redis.url(),
            "--group", group, "--set", "kafka.fetch.wait.max.ms=5",
            "--set", f"state.dir={state_dir}"] + list(sets)


def spawn_logged(cmd, log):
    """Start cmd with its stdout and stderr into the file at path `log`."""
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)


def wait_assigned(log, proc, timeout=60):
    """Until serve (writing its log to path `log`) has its partitions."""
    t0 = time.time()
    while b'msg="assigned' not in open(log, "rb").read():
        if time.time() - t0 > timeout or proc.poll() is not None:
            raise RuntimeError("serve did not get its partitions")
        time.sleep(0.05)


def serve_on(rig, sbin, group, sets=(), settle=1.0):
    """`serve` (binary sbin) on the rig, log in tmp/serve.log, a state.dir
    in tmp/state: started, its partitions assigned, then `settle` seconds
    left to it.  Returns (process, log path)."""
    log = rig.path("serve.log")
    p = spawn_logged(serve_cmd(sbin, rig, group, rig.path("state"), sets), log)
    try:
        wait_assigned(log, p)
    except Exception:
        p.kill(); p.wait()
        raise
    time.sleep(settle)
    return p, log


def stop_proc(p, timeout=60):
    """SIGTERM a process that still runs; SIGKILL after timeout seconds."""
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill(); p.wait()

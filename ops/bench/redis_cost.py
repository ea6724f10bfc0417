#!/usr/bin/env python3
"""ops/bench/redis_cost.py -- what `riskstream serve`'s score store costs
Redis per event (issue 12 item 3): commands, bytes, CPU and memory.

Per round and per binary (--bin, and --compare BIN interleaved in the same
rounds, so load from elsewhere on the machine hits both):
  1. a fresh `riskstream broker` (its own process) and a fresh private
     redis-server (unix socket), N events (`riskstream gen`, the same bytes
     for every binary) pre-produced to `events`;
  2. serve runs until all N scores are on the scores topic and Redis holds
     every score record (DBSIZE stops growing), then is stopped (SIGTERM:
     its writer drains); Redis's statistics were reset just before serve
     started (CONFIG RESETSTAT), so they are serve's alone;
  3. from Redis's INFO: commands per event (and per command: calls per
     event, usec_per_call), bytes Redis read per event
     (total_net_input_bytes), Redis CPU per event (used_cpu_user + sys:
     getrusage of redis-server, the whole run: the burst and the few idle
     seconds around it), Redis memory per event (used_memory, less the
     empty server's), and over the burst (first to last score) Redis's
     cores from /proc as e2e.py measures them.
Counts and bytes are exact for a run; CPU is a timing: compare only the
binaries of one run, with the load printed.

  python3 ops/bench/redis_cost.py --events 50000 --rounds 2 \\
      --compare /work/s9-base/riskstream
"""
import argparse, os, subprocess, sys, time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (ROOT, CpuSampler, Rig, keyed_events, logger, med,  # noqa: E402
                      produce_file, serve_cmd, stop_proc)

log = logger("redis_cost")


def info(sock, section):
    """INFO <section> as a dict of str -> str."""
    out = subprocess.run(["redis-cli", "-s", sock, "INFO", section], capture_output=True,
                         text=True, check=True).stdout
    d = {}
    for line in out.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            d[k] = v.strip()
    return d


def cli(sock, *args):
    return subprocess.run(["redis-cli", "-s", sock] + list(args), capture_output=True,
                          text=True, check=True).stdout.strip()


def cmdstats(sock):
    """{command: (calls, usec_per_call)}."""
    r = {}
    for k, v in info(sock, "commandstats").items():
        if not k.startswith("cmdstat_"):
            continue
        f = dict(x.split("=", 1) for x in v.split(","))
        r[k[8:]] = (int(f["calls"]), float(f["usec_per_call"]))
    return r


def run(a, name, sbin, lines, rnd):
    rig = Rig("riskstream-rcost.")
    proc = None
    res = {"name": name}
    try:
        broker = rig.start_broker(a.bin, a.partitions)
        pre = rig.path("events.kv")
        with open(pre, "wb") as f:
            f.writelines(lines)
        produce_file(broker.addr, pre)
        redis = rig.start_redis()
        sock = redis.sock
        mem0 = int(info(sock, "memory")["used_memory"])
        cli(sock, "CONFIG", "RESETSTAT")
        c0 = info(sock, "cpu")
        cpu0 = float(c0["used_cpu_user"]) + float(c0["used_cpu_sys"])
        scores = rig.read_scores(ids=False)
        plog = open(rig.path("serve.log"), "wb")
        proc = subprocess.Popen(serve_cmd(sbin, rig, f"rcost-{rnd}", rig.path("state"),
                                          [x for kv in a.sets for x in ("--set", kv)]),
                                stdout=plog, stderr=plog)
        rsampler = CpuSampler(redis.p.pid)
        scores.wait(len(lines), a.timeout, proc)
        with scores.lock:
            rows = list(scores.rows[:len(lines)])
        first, last = min(r[0] for r in rows), max(r[0] for r in rows)
        span = max(last - first, 1) / 1000.0
        # Redis holds every record once DBSIZE stops growing
        prev, t_end = -1, time.time() + a.timeout
        while time.time() < t_end:
            n = int(cli(sock, "DBSIZE"))
            if n == prev:
                break
            prev = n
            time.sleep(0.5)
        rsampler.run_ = False
        stop_proc(proc)
        proc = None
        st, cs, c1 = info(sock, "stats"), cmdstats(sock), info(sock, "cpu")
        mem = int(info(sock, "memory")["used_memory"])
        ev = len(lines)
        cs.pop("info", None); cs.pop("dbsize", None); cs.pop("config", None)
        res.update(
            events=ev, keys=int(cli(sock, "DBSIZE")),
            cmds=sum(c for c, _ in cs.values()) / ev,
            per_cmd={k: (c / ev, u) for k, (c, u) in cs.items()},
            in_bytes=int(st["total_net_input_bytes"]) / ev,
            cpu_us=(float(c1["used_cpu_user"]) + float(c1["used_cpu_sys"]) - cpu0) / ev * 1e6,
            burst_us=(rsampler.at(last) - rsampler.at(first)) / ev * 1e6,
            redis_cores=(rsampler.at(last) - rsampler.at(first)) / span,
            eps=ev / span, mem=(mem - mem0) / ev, load=os.getloadavg()[0])
        # the stored records: mean value bytes of the score records
        lua = ("local t, n = 0, 0 for _, k in ipairs(redis.call('keys', ARGV[1])) do "
               "t = t + redis.call('strlen', k) n = n + 1 end return {t, n}")
        t, n = (int(x) for x in cli(sock, "EVAL", lua, "0", "rs:score:*").split())
        res.update(rec_bytes=t / max(n, 1), cpu_user_us=(float(c1["used_cpu_user"]) - float(c0["used_cpu_user"])) / ev * 1e6)
        log(f"round {rnd} {name}: {res['cmds']:.2f} cmds/ev, {res['in_bytes']:.0f} B/ev in, "
            f"redis {res['cpu_us']:.2f} us/ev (user {res['cpu_user_us']:.2f}; burst {res['burst_us']:.2f}), "
            f"{res['mem']:.0f} B/ev memory, {res['eps']:.0f} ev/s")
    except Exception as e:  # noqa: BLE001 -- a failed run is a row
        res["error"] = str(e)
        log(f"round {rnd} {name}: FAILED: {e} (logs in {rig.tmp})")
    finally:
        stop_proc(proc)
        rig.stop()
        rig.cleanup("error" not in res)
    return res


def main():
    ap = argparse.ArgumentParser(prog="ops/bench/redis_cost.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "riskstream"))
    ap.add_argument("--compare", metavar="BIN", help="a second binary, interleaved")
    ap.add_argument("--events", type=int, default=50000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    lines = keyed_events(a.bin, a.events, a.seed)
    systems = ([(f"[{a.compare}]", a.compare)] if a.compare else []) + [(a.bin, a.bin)]
    res = {s[0]: [] for s in systems}
    for r in range(a.rounds):
        for name, b in systems:
            res[name].append(run(a, name, b, lines, r))
    print(f"\n{a.events} events (riskstream gen --seed {a.seed}), {a.partitions} partitions, "
          f"median of {a.rounds} round(s); load {os.getloadavg()[0]:.2f} at the end; "
          f"`{' '.join(sys.argv)}`\n")
    print("| binary | cmds/ev | bytes in/ev | Redis CPU µs/ev (run) | Redis CPU µs/ev (burst) "
          "| Redis cores (burst) | memory B/ev | score record B | ev/s | keys |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, _ in systems:
        ok = [x for x in res[name] if "error" not in x]
        if not ok:
            print(f"| {name} | failed |")
            continue
        print(f"| {name} | {med([x['cmds'] for x in ok]):.3f} | {med([x['in_bytes'] for x in ok]):.0f} "
              f"| {med([x['cpu_us'] for x in ok]):.2f} | {med([x['burst_us'] for x in ok]):.2f} "
              f"| {med([x['redis_cores'] for x in ok]):.2f} | {med([x['mem'] for x in ok]):.0f} "
              f"| {med([x['rec_bytes'] for x in ok]):.0f} "
              f"| {med([x['eps'] for x in ok]):.0f} | {ok[0]['keys']} |")
    print("\nper command (calls per event, usec_per_call: Redis's own time in the command, "
          "without reading and parsing it)\n")
    print("| binary | command | calls/ev | usec_per_call |")
    print("|---|---|---:|---:|")
    for name, _ in systems:
        ok = [x for x in res[name] if "error" not in x]
        if not ok:
            continue
        for cmd in sorted(ok[0]["per_cmd"]):
            v = [x["per_cmd"].get(cmd, (0, 0)) for x in ok]
            print(f"| {name} | {cmd} | {med([c for c, _ in v]):.3f} | {med([u for _, u in v]):.2f} |")


if __name__ == "__main__":
    main()

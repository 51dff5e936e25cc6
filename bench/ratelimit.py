#!/usr/bin/env python3
"""The cost of the farm rate limits on Redis (issue 16): the same load through mxfront with the core
relay alone (filters = ["relay_control"]) and with every kind of limit the ratelimit filter has,
counted farm-wide in a real loopback redis-server (tests/harness/redis_harness.py), side by side in
one run, both relaying over QMQP to Postfix's qmqp-sink.

The limits server has [redis] (which also makes the AUTH failure counts farm-wide: [auth]
address/login/network failure limits are set, but the mx listener offers no AUTH, so they cost
nothing per MX connection) and filters = ["ratelimit", "relay_control"] with eleven limits: every
key (client, client_net, sender, sender_domain, user) for every phase it may count at (connections
at connect: client keys only; messages at MAIL; recipients at each RCPT) and every action
(tempfail, disconnect, score). "user" limits count authenticated clients only, so on MX they are
configured but never counted. Every limit is 10^9 per window: nothing may be refused (the bench
measures the cost of counting, not its action). Every final reply is checked: the refusals are
counted and printed (they must be 0), and so are the checks Redis did not answer (fail open).

* throughput: N messages, one per SMTP session, C at once, sent by Postfix's smtp-source (C, 4 KB
  messages; --client smtp-source, the default: the client is not the bottleneck) or by C Python
  client processes (--client python, one ~4 KB message of bench/sender_auth.py's per session),
  the two servers interleaved (the order alternates each repetition), median of R;
  the ratio limits/core; mxfront's CPU per message (utime+stime from /proc/PID/stat), and
  redis-server's for the limits server;
* added latency at concurrency 1: p50/p99 of connect .. final 250 (this includes the connect-phase
  check before the banner) and of MAIL .. final 250, limits minus core, median of R rounds;
* Redis commands per message: INFO commandstats before the first and after the last message to the
  limits server (the core server does not talk to Redis; INFO itself is left out), calls / messages
  sent to the limits server in between, in total and per command.
Usage: bench/ratelimit.py [-n 1500] [-c 1,50] [-r 3] [--latency 300] [--client smtp-source|python]
                          [--mxfront build/mxfront]"""
import argparse
import multiprocessing
import os
import signal
import socket
import statistics
import sys
import time
from contextlib import ExitStack

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
from mxharness import HarnessError, Mxfront, QmqpSink  # noqa: E402
from redis_harness import RedisServer  # noqa: E402
import sender_auth  # noqa: E402  (bench/: the ~4 KB message, reading a reply)
from benchlib import cpu_trees, smtp_source  # noqa: E402

LIMITS = {"connections": 10000, "connections_per_ip": 10000}  # one client address drives all the load
BIG = 1000000000  # the filter's largest limit: never reached
SENDER = "bounce@bench.test"
SCRIPT_COMMANDS = ("incr", "pexpire", "get")  # what the counting script calls (filters/ratelimit/counters.cc)


def rate_limits():
    def lim(name, key, what, window, action="tempfail", **kw):
        return {"name": name, "key": key, "what": what, "limit": BIG, "window": window, "action": action, **kw}
    return [
        lim("client_conns", "client", "connections", 60, "disconnect"),
        lim("net_conns", "client_net", "connections", 600, skip_authenticated=True),
        lim("client_msgs", "client", "messages", 600),
        lim("net_msgs", "client_net", "messages", 3600, "disconnect"),
        lim("sender_msgs", "sender", "messages", 3600, "score", score=3),
        lim("domain_msgs", "sender_domain", "messages", 3600),
        lim("user_msgs", "user", "messages", 3600),
        lim("client_rcpts", "client", "recipients", 600),
        lim("sender_rcpts", "sender", "recipients", 3600, "score", score=3),
        lim("domain_rcpts", "sender_domain", "recipients", 86400),
        lim("user_rcpts", "user", "recipients", 86400, "disconnect"),
    ]


def limits_config(redis_address):
    return {"log": {"level": "warn"}, "limits": LIMITS,
            "redis": {"address": redis_address},
            "auth": {"address_failure_limit": 10, "login_failure_limit": 20, "network_failure_limit": 50},
            "ratelimit": {"ipv4_prefix": 24, "ipv6_prefix": 64},
            "ratelimit.limit": rate_limits(),
            "profile.mx": {"filters": ["ratelimit", "relay_control"], "reject_score": 10, "tag_score": 5}}


def session(port, data):
    """One SMTP session with one message: (final code or the first unexpected one, connect..final and
    MAIL..final seconds). A dropped or timed-out connection gives code 0."""
    t0 = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            f = s.makefile("rb")
            code = sender_auth.reply(f)
            if code != 220:
                return code, None
            for cmd, want in ((b"EHLO bench.client\r\n", 250), (None, 0), (f"MAIL FROM:<{SENDER}>\r\n".encode(), 250),
                              (b"RCPT TO:<bob@example.org>\r\n", 250), (b"DATA\r\n", 354)):
                if cmd is None:
                    t1 = time.perf_counter()
                    continue
                s.sendall(cmd)
                code = sender_auth.reply(f)
                if code != want:
                    return code, None
            s.sendall(data + b".\r\n")
            code = sender_auth.reply(f)
            t2 = time.perf_counter()
            s.sendall(b"QUIT\r\n")
            return code, (t2 - t0, t2 - t1)
    except (OSError, ConnectionError):
        return 0, None


def worker(args):
    """n sessions: (accepted, {refusal code: count})."""
    port, data, n = args
    ok, bad = 0, {}
    for _ in range(n):
        code, _t = session(port, data)
        if code == 250:
            ok += 1
        else:
            bad[code] = bad.get(code, 0) + 1
    return ok, bad


def pool_init():
    """Client processes: Ctrl-C and SIGTERM are the main process's business; Pool.terminate() (on any
    exit of main) kills them with SIGTERM, which must not go through main's handler."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def kill_stray_children():
    """Last on exit: a pool worker forked while the pool was being torn down (Ctrl-C, SIGTERM)
    can miss Pool.terminate() and hang on a lock forever; everything else is stopped by then, so
    any child still there is one of those: SIGKILL it, by PID."""
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            try:
                os.kill(int(d), signal.SIGKILL)
                os.waitpid(int(d), 0)
            except (OSError, ChildProcessError):
                pass


def redis_cmd(port, *args, timeout=10):
    """One command on a fresh connection; the reply's bulk string (INFO) or simple line, as text."""
    req = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req.encode())
        f = s.makefile("rb")
        head = f.readline()
        if head[:1] == b"$":
            n = int(head[1:])
            return f.read(n + 2)[:n].decode() if n >= 0 else ""
        if head[:1] == b"-":
            raise HarnessError(f"redis: {head.decode().strip()}")
        return head[1:].decode().strip()


def commandstats(port):
    """{command: calls} from INFO commandstats."""
    out = {}
    for line in redis_cmd(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[8:].split(":", 1)
            out[name] = int(dict(kv.split("=") for kv in rest.split(","))["calls"])
    return out


def pcts(times):
    t = sorted(times)
    return t[len(t) // 2] * 1000, t[min(len(t) - 1, int(len(t) * 0.99))] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1500, help="messages per throughput run")
    ap.add_argument("-c", default="1,50", help="concurrencies (client processes)")
    ap.add_argument("-r", type=int, default=3, help="repetitions (median)")
    ap.add_argument("--latency", type=int, default=300, help="messages per server and round of the latency runs")
    ap.add_argument("--client", choices=("smtp-source", "python"), default="smtp-source",
                    help="the throughput runs' client (the latency runs use the Python client)")
    ap.add_argument("--mxfront", default=os.path.join(REPO, "build", "mxfront"))
    args = ap.parse_args()
    os.environ["MXFRONT_BIN"] = args.mxfront
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the ExitStack stops everything
    data = sender_auth.report_message()
    concurrencies = [int(x) for x in args.c.split(",")]
    start = time.monotonic()
    with ExitStack() as stack:
        stack.callback(kill_stray_children)  # runs last
        sink = stack.enter_context(QmqpSink())
        redis = stack.enter_context(RedisServer())
        servers = {"core relay": Mxfront([sink.address], config={"log": {"level": "warn"}, "limits": LIMITS}),
                   "farm limits": Mxfront([sink.address], config=limits_config(redis.address))}
        for mx in servers.values():
            stack.callback(mx.kill)
            mx.start()
        pid = {k: mx.proc.pid for k, mx in servers.items()}
        sent = {k: 0 for k in servers}
        refused = {k: {} for k in servers}

        def run(k, c, n, pool):
            if args.client == "smtp-source" and pool is not None:  # refusals make smtp-source fail: all 250
                smtp_source(servers[k].port, c, n, sender=SENDER)
                sent[k] += n
                return n
            if c == 1:
                res = [worker((servers[k].port, data, n))]
            else:
                res = pool.map(worker, [(servers[k].port, data, n // c)] * c)
            for ok, bad in res:
                sent[k] += ok + sum(bad.values())
                for code, m in bad.items():
                    refused[k][code] = refused[k].get(code, 0) + m
            return sum(ok + sum(bad.values()) for ok, bad in res)

        before = commandstats(redis.port)
        for k in servers:  # warm-up; also shows that the limits really count in Redis
            run(k, 1, 20, None)
        keys = int(redis_cmd(redis.port, "DBSIZE"))
        if keys == 0:
            raise HarnessError("the limits server wrote no key to Redis: the ratelimit filter is not counting there")
        print(f"# {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start; "
              f"{args.n} messages of {len(data)} bytes per run, one per SMTP session; median of {args.r}; "
              f"servers interleaved; client {args.client}; {len(rate_limits())} limits, {keys} Redis keys after the warm-up")
        print(f"{'server':>12} | {'c':>3} | {'msg/s':>6} | {'mxfront CPU/msg':>15} | {'redis CPU/msg':>13} | limits/core")
        pool = stack.enter_context(multiprocessing.Pool(max(concurrencies), initializer=pool_init))
        names = list(servers)
        for c in concurrencies:
            rate = {k: [] for k in servers}
            cpu = {k: [] for k in servers}
            rcpu = {k: [] for k in servers}
            for r in range(args.r):
                for k in names[r % 2:] + names[:r % 2]:
                    roots = {"mx": pid[k], "redis": redis.proc.pid}
                    b = cpu_trees(roots)
                    t0 = time.monotonic()
                    done = run(k, c, args.n, pool)
                    rate[k].append(done / (time.monotonic() - t0))
                    a = cpu_trees(roots)
                    cpu[k].append((a["mx"] - b["mx"]) / done * 1e6)
                    rcpu[k].append((a["redis"] - b["redis"]) / done * 1e6)
            med = {k: statistics.median(v) for k, v in rate.items()}
            for k in servers:
                ratio = f"{med[k] / med['core relay']:.2f}" if k != "core relay" else ""
                print(f"{k:>12} | {c:>3} | {med[k]:>6.0f} | {statistics.median(cpu[k]):>12.0f} us | "
                      f"{statistics.median(rcpu[k]):>10.0f} us | {ratio}", flush=True)

        print(f"\nlatency at concurrency 1, {args.latency} messages per server and round (after 5 untimed), "
              f"median of {args.r} rounds:")
        lat = {k: [] for k in servers}
        for r in range(args.r):
            for k in names[r % 2:] + names[:r % 2]:
                run(k, 1, 5, None)
                conn, mail = [], []
                for _ in range(args.latency):
                    code, t = session(servers[k].port, data)
                    sent[k] += 1
                    if code != 250:
                        refused[k][code] = refused[k].get(code, 0) + 1
                        continue
                    conn.append(t[0])
                    mail.append(t[1])
                lat[k].append(pcts(conn) + pcts(mail))
        after = commandstats(redis.port)
        p = {k: [statistics.median(x[i] for x in v) for i in range(4)] for k, v in lat.items()}
        base = p["core relay"]
        for k in servers:
            added = "" if k == "core relay" else "   added " + ", ".join(
                f"+{p[k][i] - base[i]:.3f} / +{p[k][i + 1] - base[i + 1]:.3f} ms" for i in (0, 2))
            print(f"  {k:<12} connect..250 p50 {p[k][0]:.3f} p99 {p[k][1]:.3f} ms; "
                  f"MAIL..250 p50 {p[k][2]:.3f} p99 {p[k][3]:.3f} ms{added}")

        n = sent["farm limits"]
        diff = {c: after.get(c, 0) - before.get(c, 0) for c in after if c not in ("info", "dbsize")}  # the bench's own
        diff = {c: v for c, v in diff.items() if v > 0}
        inner = {c: v for c, v in diff.items() if c in SCRIPT_COMMANDS}
        calls = {c: v for c, v in diff.items() if c not in SCRIPT_COMMANDS}
        print(f"\nRedis commands per message to the limits server ({n} messages; the bench's INFO and DBSIZE left out):")
        print(f"  sent by mxfront: {sum(calls.values()) / n:.3f} per message: "
              + ", ".join(f"{c.upper()} {v / n:.3f} ({v})" for c, v in sorted(calls.items(), key=lambda x: -x[1])))
        print(f"  run inside the script (counted by commandstats too): {sum(inner.values()) / n:.3f} per message: "
              + ", ".join(f"{c.upper()} {v / n:.3f} ({v})" for c, v in sorted(inner.items(), key=lambda x: -x[1])))
        for k, mx in servers.items():
            bad = sum(refused[k].values())
            print(f"# {k}: {sent[k]} messages, {sent[k] - bad} got 250, {bad} did not"
                  + (f" {dict(sorted(refused[k].items()))} (0 = dropped/timeout)  ** REFUSALS: check the setup **"
                     if bad else ""))
        log = servers["farm limits"].log()
        print(f"# farm limits: fall-back to local counts logged {log.count('counting on this instance only')} times; "
              f"mxfront log lines at warn: {len(log.splitlines())}")
        for line in log.splitlines()[:5]:
            print(f"#   {line[:200]}")
        print(f"# load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end; "
              f"{time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""mxfront + rspamd against Postfix smtpd + the same rspamd as a milter (issue 15): five servers
side by side in one run, the same message, the same rspamd instance.

* "mxfront core"     mxfront, filters = ["relay_control"], relaying over QMQP to Postfix's qmqp-sink;
* "mxfront+rspamd"   the same plus the rspamd filter (HTTP /checkv2 to rspamd's normal worker);
* "postfix"          a private Postfix (own config and queue directory under /tmp, started as root):
                     smtpd on loopback -> cleanup -> queue -> qmgr -> smtp -> Postfix's smtp-sink
                     (relayhost = [127.0.0.1]:port; no DNS anywhere: smtpd_peername_lookup = no,
                     smtp_dns_support_level = disabled);
* "postfix+rspamd"   a second such Postfix with smtpd_milters = inet:127.0.0.1:<rspamd proxy>,
                     milter_protocol = 6, milter_default_action = tempfail; rspamd's proxy worker in
                     milter mode scanning itself (self_scan), tests/harness/rspamd_harness.py;
* "postfix+rspamd/unix"  a third one, the same milter on its unix socket (smtpd_milters = unix:PATH):
                     over TCP, Postfix's milter client writes the no-reply commands (MAIL, RCPT, headers,
                     body) as separate small packets without TCP_NODELAY, and Nagle against the
                     receiver's delayed ACK stalls ~40 ms per message; a unix socket has no Nagle.

The rspamd is real (tests/harness/rspamd_harness.py: private config, DNS pointed at a black hole,
network modules disabled), one normal worker (mxfront's) and one proxy worker (Postfix's).
The message is the ~4 KB plain-text one of bench/sender_auth.py, the same bytes every time; it is
clean (rspamd: no action), which a GTUBE message refused by both rspamd setups confirms first.

* throughput: C client processes, one message per SMTP session, N messages, the servers
  interleaved (the order rotates each repetition), median of R runs; msg/s and the CPU time per
  message (user+sys from /proc/PID/stat, children reaped by a process counted through its cutime/
  cstime) of each process tree: mxfront; Postfix's master and everything under it (smtpd, cleanup,
  qmgr, trivial-rewrite, smtp, postlogd, ...); rspamd (main and workers). After each Postfix run
  the script waits until the queue is empty, so the Postfix CPU includes the delivery to smtp-sink;
  the msg/s figure is the SMTP side only (the 250 after the queue file is written);
* added latency at concurrency 1: MAIL .. final reply, p50/p99 (median over R rounds), each system
  with rspamd minus the same system without.
Usage: bench/rspamd.py [-n 600] [-c 1,20] [-r 3] [--latency 300] [--mxfront build/mxfront]"""
import argparse
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
from mxharness import (HarnessError, Mxfront, PostfixQmqp, QmqpSink, _stop_process, free_port,  # noqa: E402
                       wait_listening)
from rspamd_harness import GTUBE, Rspamd  # noqa: E402
import sender_auth  # noqa: E402  (bench/: the message, the SMTP client, the process pool, the latency)
from benchlib import cpu_trees  # noqa: E402

LIMITS = {"connections": 10000, "connections_per_ip": 10000}


class SmtpSink:
    """Postfix's smtp-sink on a free loopback port: accepts every message and discards it."""

    def __init__(self):
        self.port = None
        self.proc = None

    def __enter__(self):
        if not shutil.which("smtp-sink"):
            raise HarnessError("smtp-sink missing: apt-get install postfix")
        self.port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(["smtp-sink", "-4", *user, "127.0.0.1:%d" % self.port, "256"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_listening(self.port, 10, alive=lambda: self.proc.poll() is None):
            self.__exit__()
            raise HarnessError("smtp-sink did not start")
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM)
            self.proc = None


class PostfixSmtpd(PostfixQmqp):
    """The harness's private Postfix (PostfixQmqp) with smtpd instead of qmqpd on its port, relaying
    every recipient to smtp-sink; with `milter` ("inet:HOST:PORT" or "unix:PATH"), that as its smtpd milter."""

    def __init__(self, sink_port, milter=None):
        extra = ("virtual_mailbox_domains =\n"  # nothing local: everything goes to the relayhost
                 f"relayhost = [127.0.0.1]:{sink_port}\n"
                 "smtp_dns_support_level = disabled\n"
                 "smtpd_peername_lookup = no\n"
                 "smtpd_client_connection_count_limit = 0\n")
        if milter:
            extra += (f"smtpd_milters = {milter}\n"
                      "milter_default_action = tempfail\nmilter_protocol = 6\n")
        super().__init__(extra_main_cf=extra)

    def _configure(self):
        super()._configure()
        mc = self.etc / "master.cf"
        text, n = re.subn(rf"(?m)^(127\.0\.0\.1:{self.port} +inet .*) qmqpd$", r"\1 smtpd", mc.read_text())
        if n != 1:
            raise HarnessError("PostfixQmqp's master.cf has no qmqpd line for its port")
        mc.write_text(text)
        past = time.time() - 60  # Postfix waits for a main.cf/master.cf younger than ~2 s
        for f in ("main.cf", "master.cf"):
            os.utime(self.etc / f, (past, past))

    def drain(self, timeout=120.0):
        """Wait until the queue is empty (every accepted message delivered to smtp-sink)."""
        deadline = time.monotonic() + timeout
        while self.queued():
            if time.monotonic() > deadline:
                raise HarnessError(f"Postfix queue not empty after {timeout} s:\n{self.log()[-2000:]}")
            time.sleep(0.05)


def wait_hyperscan(rs, timeout=120.0):
    """rspamd's hs_helper compiles the regexps (fresh DBDIR: every start) for some seconds after /ping;
    until the workers load the result, scans run on the slower fallback and the compile eats a core."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = rs.log()
        if all(re.search(rf"\({w}\) .*hyperscan database of \d+ regexps has been loaded", log)
               for w in ("normal", "rspamd_proxy")):
            return True
        time.sleep(0.5)
    print(f"# warning: rspamd's workers did not report a loaded hyperscan database within {timeout:.0f} s")
    return False


def expect_refused(port, data, who):
    try:
        sender_auth.one(port, data)
    except RuntimeError as e:
        if "refused: 5" in str(e):
            return
        raise
    raise HarnessError(f"{who}: GTUBE was accepted: rspamd is not in the path")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=600, help="messages per throughput run")
    ap.add_argument("-c", default="1,20", help="concurrencies (client processes)")
    ap.add_argument("-r", type=int, default=3, help="repetitions (median)")
    ap.add_argument("--latency", type=int, default=300, help="messages per server and round of the latency runs")
    ap.add_argument("--mxfront", default=os.path.join(REPO, "build", "mxfront"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (Postfix master, rspamd as _rspamd)")
    os.environ["MXFRONT_BIN"] = args.mxfront
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally clauses stop everything
    data = sender_auth.report_message()
    gtube = data.replace(b"\r\n\r\n", f"\r\n\r\n{GTUBE}\r\n".encode(), 1)
    concurrencies = [int(x) for x in args.c.split(",")]
    with ExitStack() as stack:
        qsink = stack.enter_context(QmqpSink())
        ssink = stack.enter_context(SmtpSink())
        rs = Rspamd()
        stack.callback(rs.stop)
        rs.start()
        servers = {
            "mxfront core": Mxfront([qsink.address], config={"log": {"level": "warn"}, "limits": LIMITS}),
            "mxfront+rspamd": Mxfront([qsink.address], config={
                "log": {"level": "warn"}, "limits": LIMITS, "rspamd": {"servers": [rs.address]},
                "profile.mx": {"filters": ["relay_control", "rspamd"]}}),
            "postfix": PostfixSmtpd(ssink.port),
            "postfix+rspamd": PostfixSmtpd(ssink.port, milter=f"inet:127.0.0.1:{rs.proxy_port}"),
            "postfix+rspamd/unix": PostfixSmtpd(ssink.port, milter=f"unix:{rs.proxy_socket}"),
        }
        for s in servers.values():
            stack.callback(s.kill if isinstance(s, Mxfront) else s.stop)
            s.start()
        wait_hyperscan(rs)
        pid = {k: s.proc.pid for k, s in servers.items()}
        with_rspamd = {"mxfront+rspamd": "mxfront core", "postfix+rspamd": "postfix", "postfix+rspamd/unix": "postfix"}
        for k in with_rspamd:
            expect_refused(servers[k].port, gtube, k)
        for k, s in servers.items():  # warm-up; a refusal here is a setup error
            for _ in range(5):
                sender_auth.one(s.port, data)
            if isinstance(s, PostfixSmtpd):
                s.drain()

        print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; {args.n} messages "
              f"of {len(data)} bytes per run, one per SMTP session; median of {args.r}; servers interleaved")
        print(f"{'server':>19} | {'c':>3} | {'msg/s':>6} | {'server CPU/msg':>14} | {'rspamd CPU/msg':>14} | "
              f"{'with/without':>12}")
        pool = stack.enter_context(multiprocessing.Pool(max(concurrencies)))
        for c in concurrencies:
            runs = {k: [] for k in servers}
            cpu = {k: [] for k in servers}
            rcpu = {k: [] for k in servers}
            names = list(servers)
            for r in range(args.r):
                for k in names[r % len(names):] + names[:r % len(names)]:
                    roots = {"server": pid[k], "rspamd": rs.proc.pid}
                    before = cpu_trees(roots)
                    t0 = time.monotonic()
                    done = sum(pool.map(sender_auth.worker, [(servers[k].port, data, args.n // c)] * c))
                    rate = done / (time.monotonic() - t0)
                    if isinstance(servers[k], PostfixSmtpd):
                        servers[k].drain()
                    after = cpu_trees(roots)
                    runs[k].append(rate)
                    cpu[k].append((after["server"] - before["server"]) / done * 1e6)
                    rcpu[k].append((after["rspamd"] - before["rspamd"]) / done * 1e6)
            med = {k: statistics.median(v) for k, v in runs.items()}
            for k in servers:
                ratio = f"{med[k] / med[with_rspamd[k]]:.2f}" if k in with_rspamd else ""
                print(f"{k:>19} | {c:>3} | {med[k]:>6.0f} | {statistics.median(cpu[k]):>11.0f} us | "
                      f"{statistics.median(rcpu[k]):>11.0f} us | {ratio:>12}", flush=True)

        print(f"\nlatency at concurrency 1, MAIL .. final reply, {args.latency} messages per server and round, "
              f"median of {args.r} rounds:")
        lat = {k: [] for k in servers}
        for _ in range(args.r):
            for k, s in servers.items():
                for _ in range(5):
                    sender_auth.one(s.port, data)
                lat[k].append(sender_auth.latency(s.port, data, args.latency))
                if isinstance(s, PostfixSmtpd):
                    s.drain()
        p = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in lat.items()}
        for k in servers:
            added = ""
            if k in with_rspamd:
                b = p[with_rspamd[k]]
                added = f"   rspamd adds +{p[k][0] - b[0]:.3f} / +{p[k][1] - b[1]:.3f} ms"
            print(f"  {k:<19} p50 {p[k][0]:.3f} ms  p99 {p[k][1]:.3f} ms{added}")
        for k, s in servers.items():  # nothing deferred or bounced: every message went to smtp-sink
            if isinstance(s, PostfixSmtpd):
                log = s.log()
                print(f"# {k}: {log.count('status=sent')} delivered to smtp-sink, "
                      f"{log.count('status=deferred')} deferred, {log.count('status=bounced')} bounced")
        print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()

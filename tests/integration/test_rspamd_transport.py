"""The rspamd filter's transport end to end: smtplib -> mxfront (profile mx: relay_control, rspamd) ->
REAL rspamd (Debian package, private config, loopback only), directly or through a REAL HAProxy in
`mode http` -> REAL Postfix qmqpd -> Maildir. Keep-alive reuse through the proxy, idle connections
closed at once when the proxy closes them, no CLOSE_WAIT left towards rspamd, failover past a server
that accepts no connection (rspamd.connect_timeout), /health following a killed and restarted rspamd,
and the bound on exchanges in flight (a message waits for a free slot, within the timeout).

Run from the repo root:  python3 -m unittest -v tests/integration/test_rspamd_transport.py
(env MXFRONT_BIN = the binary; needs root for Postfix and to start rspamd as _rspamd)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import rspamd_harness  # noqa: E402
from haproxy_harness import Haproxy  # noqa: E402
from mxharness import (Mxfront, PostfixQmqp, free_port, http_get, slow_factor, smtp_send,  # noqa: E402
                       to_toml, unique_marker, wait_health_dependency)
from rspamd_harness import GTUBE, Rspamd  # noqa: E402

SENDER = rspamd_harness.TEST_SENDER
RCPT = rspamd_harness.TEST_RCPT


rspamd_config = rspamd_harness.mxfront_config


mail = rspamd_harness.clean_mail


def send(port, msg):
    return smtp_send(port, SENDER, [RCPT], msg, timeout=60)


def metric(admin, name, labels):
    """The value of mxfront_<name>{labels} on /metrics (0 when absent)."""
    m = re.search(rf"^mxfront_{name}\{{{re.escape(labels)}\}} (\d+)$", http_get(admin, "/metrics")[1], re.M)
    return int(m.group(1)) if m else 0


def tcp_states_towards(port):
    """States (hex, as in /proc/net/tcp) of the sockets whose remote port is `port`, but TIME_WAIT
    (06: closed by both sides; no descriptor)."""
    states = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] != "06":
                    states.append(fields[3])
    return states


class HttpHaproxy(Haproxy):
    """HAProxy in `mode http` in front of one rspamd: keep-alive towards its clients (HAProxy's
    default, `timeout http-keep-alive` = keep_alive), whatever rspamd answers. counters() reads the
    frontend's connections (stot) and HTTP requests (req_tot) from `show stat`."""

    def __init__(self, rspamd_port, keep_alive="10s"):
        super().__init__([("rspamd", rspamd_port, "")])
        self.keep_alive = keep_alive

    def config(self):
        return f"""\
global
    log stdout format raw local0 info
    stats socket {self.dir}/admin.sock mode 600 level admin
    nbthread 1

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive {self.keep_alive}

frontend fe_rspamd
    bind 127.0.0.1:{self.port}
    default_backend be_rspamd

backend be_rspamd
    server rspamd 127.0.0.1:{self.backends[0][1]}
"""

    def counters(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(os.path.join(self.dir, "admin.sock"))
        s.sendall(b"show stat\n")
        data = b""
        while d := s.recv(65536):
            data += d
        s.close()
        lines = data.decode(errors="replace").splitlines()
        names = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(names, line.split(",")))
            if row.get("pxname") == "fe_rspamd" and row.get("svname") == "FRONTEND":
                return {"connections": int(row["stot"]), "requests": int(row["req_tot"] or 0)}
        raise AssertionError(f"no fe_rspamd FRONTEND row in show stat:\n{data!r}")


class SamePortRspamd(Rspamd):
    """The harness's rspamd, restartable on the same ports (what mxfront's config names)."""

    def restart(self):
        ports = [self.port, self.controller_port, self.proxy_port]
        self.stop()
        with mock.patch.object(rspamd_harness, "free_port", side_effect=ports):
            self.start()


class FullListener:
    """A loopback listener whose accept queue is full (listen(0) and connections never accepted):
    a new connection's SYN goes unanswered, as from a server that drops connections without
    refusing them."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(8):
            if not self._connects():
                return
        raise AssertionError("the accept queue of listen(0) never filled")

    def _connects(self):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(0.5)
        try:
            c.connect(("127.0.0.1", self.port))
        except OSError:
            c.close()
            return False
        self.fillers.append(c)
        return True

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


class RspamdTransportTest(unittest.TestCase):
    """One Postfix and one rspamd for the class; each test starts its own mxfront (and proxy)."""

    @classmethod
    def setUpClass(cls):
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.rs = Rspamd()
        cls.addClassCleanup(cls.rs.stop)
        cls.rs.start()

    def mxfront(self, servers, check_interval=3600, **rspamd):
        """mxfront with /metrics; its /ping checks of the servers (own connections) only every
        `check_interval` s, so that they do not show among the sockets a test counts."""
        admin = free_port()
        mx = Mxfront([self.pf.address], rspamd_config(servers, admin=admin, check_interval=check_interval, **rspamd))
        self.addCleanup(mx.kill)
        mx.start()
        mx.admin = admin
        return mx

    def diag(self, mx, rs=None, proxy=None):
        rs = rs or self.rs
        return (f"\n--- mxfront log ---\n{mx.log()[-3000:]}\n--- postfix maillog ---\n{self.pf.log()[-1500:]}"
                f"\n--- rspamd ---\n{rs.log()[-2000:]}" + (f"\n--- haproxy ---\n{proxy.log()[-2000:]}" if proxy else ""))

    def assert_relayed_and_scanned(self, marker, mx):
        got = self.pf.deliveries(20, 1, match=marker.encode())
        self.assertEqual(len(got), 1, self.diag(mx))
        head = got[0].data.split(b"\n\n", 1)[0]
        self.assertRegex(head, rb"(?m)^X-Spamd-Result: default: False ", head.decode(errors="replace"))

    def proxy(self, keep_alive="10s"):
        p = HttpHaproxy(self.rs.port, keep_alive)
        self.addCleanup(p.stop)
        p.start()
        return p

    # ------------------------------------------------------------------------------------------
    def test_keep_alive_through_haproxy_reuses_a_few_connections_for_many_messages(self):
        proxy = self.proxy()
        mx = self.mxfront([f"127.0.0.1:{proxy.port}"], idle_timeout=5)
        # the /health check's GET /ping at start (its own connection, "Connection: close") first
        deadline = time.monotonic() + 15
        while (before := proxy.counters())["requests"] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(before["requests"], 1, "the /health check's ping went through the proxy")
        n = 10
        for i in range(n):
            marker = unique_marker(f"ka{i}")
            code, text = send(mx.port, mail(marker))
            self.assertEqual(code, 250, text + self.diag(mx, proxy=proxy))
            self.assert_relayed_and_scanned(marker, mx)
        code, text = send(mx.port, mail(unique_marker("ka-gtube"), f"{GTUBE}\r\n"))
        self.assertEqual(code, 554, text + self.diag(mx, proxy=proxy))
        after = proxy.counters()
        c = {k: after[k] - before[k] for k in after}
        self.assertEqual(c["requests"], n + 1, f"{before} -> {after}" + self.diag(mx, proxy=proxy))
        # two I/O threads: at most one connection each (sessions in sequence)
        self.assertLessEqual(c["connections"], 2, f"{c}: HAProxy accepted that many connections from mxfront")
        self.assertGreaterEqual(metric(mx.admin, "rspamd_connections_total", 'event="reused"'), n + 1 - 2)
        self.assertEqual(mx.close_wait_count(), 0)

    def test_an_idle_connection_the_proxy_closes_is_closed_at_once_and_the_next_message_opens_one(self):
        proxy = self.proxy(keep_alive="500ms")
        mx = self.mxfront([f"127.0.0.1:{proxy.port}"], idle_timeout=30)
        for i in range(3):
            marker = unique_marker(f"idle{i}")
            self.assertEqual(send(mx.port, mail(marker))[0], 250, self.diag(mx, proxy=proxy))
            self.assert_relayed_and_scanned(marker, mx)
        self.assertIn("01", tcp_states_towards(proxy.port), "a kept connection while the proxy keeps it")
        baseline_opened = metric(mx.admin, "rspamd_connections_total", 'event="opened"')
        # the proxy closes its idle side after 500 ms; mxfront's idle_timeout (30 s) is far off: the
        # wait on the idle socket sees the EOF and closes it, so no CLOSE_WAIT and no FIN_WAIT2 pile up
        deadline = time.monotonic() + 5 * slow_factor()
        while tcp_states_towards(proxy.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(tcp_states_towards(proxy.port), [], "mxfront closed the sockets the proxy closed")
        self.assertEqual(mx.close_wait_count(), 0)
        marker = unique_marker("after-idle")
        code, text = send(mx.port, mail(marker))
        self.assertEqual(code, 250, text + self.diag(mx, proxy=proxy))
        self.assert_relayed_and_scanned(marker, mx)
        self.assertEqual(metric(mx.admin, "rspamd_connections_total", 'event="opened"'), baseline_opened + 1)
        self.assertEqual(metric(mx.admin, "rspamd_messages_total", 'result="error"'), 0)

    def test_rspamd_direct_closes_each_connection_and_none_stays_in_close_wait(self):
        mx = self.mxfront([self.rs.address])
        n = 6
        for i in range(n):
            marker = unique_marker(f"direct{i}")
            self.assertEqual(send(mx.port, mail(marker))[0], 250, self.diag(mx))
            self.assert_relayed_and_scanned(marker, mx)
        # rspamd 3.4's worker answers "Connection: close": nothing is kept, nothing reused
        self.assertEqual(metric(mx.admin, "rspamd_connections_total", 'event="opened"'), n)
        self.assertEqual(metric(mx.admin, "rspamd_connections_total", 'event="reused"'), 0)
        time.sleep(0.5)
        self.assertEqual(mx.close_wait_count(), 0)
        self.assertNotIn("08", tcp_states_towards(self.rs.port), "a CLOSE_WAIT socket towards rspamd")

    def test_failover_past_a_server_that_accepts_no_connection_within_connect_timeout(self):
        full = FullListener()
        self.addCleanup(full.close)
        mx = self.mxfront([full.address, self.rs.address], timeout=10, connect_timeout=1)
        t0 = time.monotonic()
        code, text = send(mx.port, mail(unique_marker("failover-gtube"), f"{GTUBE}\r\n"))
        elapsed = time.monotonic() - t0
        self.assertEqual(code, 554, text + self.diag(mx))
        self.assertIn("Gtube pattern", text)
        self.assertLess(elapsed, 6 * slow_factor(), "refused well within the filter's timeout (10 s)")
        self.assertTrue(mx.wait_log(r"reason=\"rspamd action=reject score=\S+ server=" + re.escape(self.rs.address), 5),
                        self.diag(mx))
        self.assertGreaterEqual(metric(mx.admin, "rspamd_server_failures_total", f'server="{full.address}"'), 1)
        marker = unique_marker("failover-clean")
        self.assertEqual(send(mx.port, mail(marker))[0], 250, self.diag(mx))
        self.assert_relayed_and_scanned(marker, mx)

    def test_connect_timeout_not_shorter_than_timeout_is_a_config_error_with_its_line(self):
        mx = Mxfront([self.pf.address], rspamd_config([self.rs.address], timeout=2, connect_timeout=2))
        tmp = tempfile.mkdtemp(prefix="mxtest-check.")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "mxfront.toml")
        with open(path, "w") as f:
            f.write(to_toml(mx.build_config()))
        p = subprocess.run([mx.binary, "--check-config", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stderr, re.escape(path) + r":\d+: .*rspamd\.connect_timeout \(2 s\) must be shorter than "
                         r"rspamd\.timeout \(2 s\)")

    def test_health_shows_a_killed_rspamd_down_and_up_again_after_restart(self):
        rs = SamePortRspamd()
        self.addCleanup(rs.stop)
        rs.start()
        mx = self.mxfront([rs.address], check_interval=0.2)
        self.assertTrue(wait_health_dependency(mx.admin, rs.address, True), self.diag(mx, rs))
        rs.kill()
        d = wait_health_dependency(mx.admin, rs.address, False)
        self.assertTrue(d, self.diag(mx, rs))
        code, text = send(mx.port, mail(unique_marker("killed")))
        self.assertEqual(code, 451, text + self.diag(mx, rs))
        rs.restart()
        self.assertTrue(wait_health_dependency(mx.admin, rs.address, True), self.diag(mx, rs))
        marker = unique_marker("restarted")
        self.assertEqual(send(mx.port, mail(marker))[0], 250, self.diag(mx, rs))
        self.assert_relayed_and_scanned(marker, mx)

    def test_with_max_connections_1_concurrent_messages_wait_for_the_slot_then_time_out_with_on_error(self):
        rs = Rspamd()
        self.addCleanup(rs.stop)
        rs.start()
        mx = self.mxfront([rs.address], max_connections=1, timeout=6)
        self.assertEqual(send(mx.port, mail(unique_marker("warm")))[0], 250, self.diag(mx, rs))
        baseline = mx.warm_up()

        def concurrently(markers):
            results = {}

            def one(m):
                t0 = time.monotonic()
                results[m] = send(mx.port, mail(m)) + (time.monotonic() - t0,)
            threads = [threading.Thread(target=one, args=(m,)) for m in markers]
            for t in threads:
                t.start()
            return threads, results

        # rspamd paused briefly: the messages wait for the one slot, none goes to on_error
        os.killpg(rs.proc.pid, signal.SIGSTOP)
        try:
            markers = [unique_marker(f"wait{i}") for i in range(4)]
            threads, results = concurrently(markers)
            time.sleep(1.0)
            towards = [s for s in tcp_states_towards(rs.port) if s in ("01", "02")]  # ESTABLISHED, SYN_SENT
            self.assertLessEqual(len(towards), 1, f"exchanges in flight with max_connections=1: {towards}")
        finally:
            os.killpg(rs.proc.pid, signal.SIGCONT)
        for t in threads:
            t.join(60)
        for m in markers:
            self.assertEqual(results[m][0], 250, f"{m}: {results[m]}" + self.diag(mx, rs))
            self.assert_relayed_and_scanned(m, mx)
        # paused past the timeout: the waiting messages get on_error's 451 within it
        os.killpg(rs.proc.pid, signal.SIGSTOP)
        try:
            markers = [unique_marker(f"late{i}") for i in range(3)]
            threads, results = concurrently(markers)
            for t in threads:
                t.join(60)
        finally:
            os.killpg(rs.proc.pid, signal.SIGCONT)
        for m in markers:
            code, text, elapsed = results[m]
            self.assertEqual(code, 451, f"{m}: {results[m]}" + self.diag(mx, rs))
            self.assertLess(elapsed, 6 + 4 * slow_factor(), "answered within the filter's timeout")
        self.assertTrue(mx.wait_log(r"filter=rspamd phase=data verdict=tempfail .*busy \(1 exchanges in flight until the timeout\)", 5)
                        or mx.wait_log(r"filter=rspamd phase=data verdict=tempfail \(timeout\)", 1), self.diag(mx, rs))
        # the server keeps serving, and its descriptors come back
        marker = unique_marker("after")
        self.assertEqual(send(mx.port, mail(marker))[0], 250, self.diag(mx, rs))
        self.assert_relayed_and_scanned(marker, mx)
        self.assertLessEqual(mx.wait_fd_baseline(baseline, 10 * slow_factor()), baseline,
                             "fds back to their baseline" + self.diag(mx, rs))
        self.assertEqual(mx.close_wait_count(), 0)
        mx.check_alive()


if __name__ == "__main__":
    unittest.main()

"""The scale-out farm on loopback: a real HAProxy (TCP mode, send-proxy-v2, HTTP health checks on
each instance's /readyz) in front of three mxfront instances relaying to a real Postfix qmqpd.
During a bounded load, one instance is killed with SIGKILL and another drained with SIGTERM.

Asserted: every message a client got 250 for is in the Maildir (exactly once per 250); HAProxy
marks the killed and the draining instance DOWN within its health-check window; the surviving
instance keeps taking mail; the logs show the clients' own addresses (from PROXY v2).

Run from the repo root:  python3 -m unittest -v tests/integration/test_farm.py"""
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from haproxy_harness import Haproxy  # noqa: E402
from mxharness import Mxfront, PostfixQmqp, SmtpConn, free_port, unique_marker  # noqa: E402

INTER_MS = 300
FALL = 2
CLIENTS = 4                 # concurrent senders
MESSAGES_PER_CLIENT = 60    # bounded load


def send_one(port, source, marker):
    """One SMTP transaction through the balancer; returns the final reply code (None = no answer)."""
    try:
        c = SmtpConn(port, timeout=10, source=source)
    except OSError:
        return None
    try:
        if c.greeting[0] != 220:
            return c.greeting[0]
        for line in ("EHLO client.test", "MAIL FROM:<farm@example.net>", "RCPT TO:<bob@example.org>"):
            code = c.cmd(line)[0]
            if code is None or code >= 400:
                return code
        if c.cmd("DATA")[0] != 354:
            return None
        code = c.cmd(f"Subject: {marker}\r\nX-Marker: {marker}\r\n\r\nfarm body {marker}\r\n.")[0]
        c.cmd("QUIT")
        return code
    except OSError:
        return None
    finally:
        c.close()


class FarmTest(unittest.TestCase):

    def setUp(self):
        self.pf = PostfixQmqp()
        self.addCleanup(self.pf.stop)
        self.pf.start()
        self.instances = []
        for i in range(3):
            admin = free_port()
            mx = Mxfront([self.pf.address], config={
                "server": {"hostname": f"mx{i}.test", "io_threads": 1, "shutdown_timeout": 15},
                "listener": [{"address": "127.0.0.1:0", "profile": "mx", "proxy_protocol": True,
                              "proxy_trusted": ["127.0.0.1/32"]}],
                "admin": {"address": f"127.0.0.1:{admin}"},
            })
            self.addCleanup(mx.kill)
            mx.start()
            self.instances.append((f"mx{i}", mx, admin))
        self.lb = Haproxy([(name, mx.port, f"port {admin}") for name, mx, admin in self.instances],
                          http_check="/readyz", inter=f"{INTER_MS}ms", fall=FALL, rise=1)
        self.addCleanup(self.lb.stop)
        self.lb.start()
        self.wait_status(lambda s: all(s.get(n, ("",))[0] == "UP" for n, _, _ in self.instances), 10, "all UP")

    def wait_status(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.lb.servers()
            if pred(s):
                return time.monotonic()
            time.sleep(0.05)
        self.fail(f"haproxy never reported {what}: {self.lb.servers()}\n{self.lb.log()[-2000:]}")

    def test_kill_one_drain_one_under_load_loses_nothing(self):
        results = []           # (marker, code, source)
        lock = threading.Lock()
        start = threading.Barrier(CLIENTS + 1)

        def client(n):
            source = f"127.0.0.{10 + n}"
            start.wait()
            for i in range(MESSAGES_PER_CLIENT):
                marker = unique_marker(f"farm{n}-{i}")
                code = send_one(self.lb.port, source, marker)
                with lock:
                    results.append((marker, code, source))
                time.sleep(0.02)

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(1.0)
        _, killed, _ = self.instances[0]
        killed.expected_exit = True
        os.kill(killed.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        _, drained, _ = self.instances[1]
        drained.expected_exit = True
        os.kill(drained.pid, signal.SIGTERM)
        t_drain = time.monotonic()
        window = 3 * FALL * INTER_MS / 1000 + 1.0  # the check window, with room for a busy machine
        t_down = self.wait_status(lambda s: s["mx0"][0] == "DOWN", window + 5, "mx0 DOWN")
        t_drain_down = self.wait_status(lambda s: s["mx1"][0].startswith("DOWN") or s["mx1"][0] == "NOLB",
                                        window + 5, "mx1 DOWN")
        for t in threads:
            t.join(120)
        self.assertEqual(drained.proc.wait(30), 0, "the drained instance exits 0")

        ok = [m for m, code, _ in results if code == 250]
        self.assertEqual(len(results), CLIENTS * MESSAGES_PER_CLIENT)
        self.assertGreater(len(ok), len(results) // 2, f"most messages go through: {len(ok)}/{len(results)}")
        delivered = self.pf.deliveries(30, len(ok))
        bodies = [d.data for d in delivered]
        for m in ok:
            n = sum(1 for b in bodies if m.encode() in b)
            self.assertEqual(n, 1, f"message {m} got 250 but is in the Maildir {n} times")
        # After the kill and the drain, mx2 alone takes the traffic: the last messages went through.
        tail = [code for _, code, _ in results[-CLIENTS * 5:]]
        self.assertTrue(all(code == 250 for code in tail), f"late messages: {tail}")
        _, survivor, _ = self.instances[2]
        survivor.check_alive()
        log = survivor.log()
        for n in range(CLIENTS):
            self.assertIn(f"client=127.0.0.{10 + n}", log, "the real client address (PROXY v2) is logged")
        print(f"\n  farm: {len(ok)}/{len(results)} told 250, all delivered once; "
              f"mx0 DOWN {t_down - t_kill:.2f}s after SIGKILL, mx1 DOWN {t_drain_down - t_drain:.2f}s after SIGTERM")


if __name__ == "__main__":
    unittest.main()

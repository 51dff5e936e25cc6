"""Farm-wide rate limits (issue 16, the ratelimit filter), end to end: a REAL redis-server, a REAL
Postfix qmqpd as mailbox server, and a farm of THREE mxfront instances behind a REAL HAProxy (TCP
mode, send-proxy-v2, round robin, HTTP checks on /readyz), every instance counting in the same Redis.

Covers:
  * a per-client limit of N messages holds across the three instances: the N messages are spread
    over all three, and message N+1 gets 451 4.7.1 naming the limit, whichever instance takes it;
  * a per-sender limit holds across the instances the same way (one sender, several clients);
  * action "disconnect" (recipients per sender): 421 4.7.0 at the RCPT past the limit, and the
    connection is closed;
  * Redis paused (SIGSTOP) then stopped: mail keeps flowing on local counters (every message of
    the run gets 250), /metrics counts the fallbacks, the change is logged, /health shows the
    dependency down; every 250 of the test is in the Maildir exactly once.

Run from the repo root:  python3 -m unittest -v tests/integration/test_ratelimit.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix, redis-server, haproxy)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from haproxy_harness import Haproxy  # noqa: E402
from mxharness import Mxfront, PostfixQmqp, SmtpConn, free_port, http_get, unique_marker, wait_health_dependency  # noqa: E402
from redis_harness import RedisServer  # noqa: E402

PER_CLIENT = 5   # messages per client address and hour
PER_SENDER = 4   # messages per envelope sender and hour
RCPT_LIMIT = 10  # recipients per envelope sender and hour, then 421 and close


def limit(name, key, what, n, action="tempfail"):
    return {"name": name, "key": key, "what": what, "limit": n, "window": 3600, "action": action}


class Attempt:
    """One SMTP transaction through the balancer: which instance greeted, each step's reply."""

    def __init__(self, port, source, sender, marker):
        self.marker, self.instance, self.mail, self.final, self.closed = marker, None, None, None, False
        c = SmtpConn(port, timeout=10, source=source)
        try:
            self.instance = c.greeting[1].split()[1] if c.greeting[0] == 220 else None
            c.cmd("EHLO client.test")
            self.mail = c.cmd(f"MAIL FROM:<{sender}>")
            if self.mail[0] != 250:
                self.closed = c.closed_by_server(3.0)
                return
            if c.cmd("RCPT TO:<bob@example.org>")[0] != 250 or c.cmd("DATA")[0] != 354:
                return
            self.final = c.cmd(f"Subject: {marker}\r\nX-Marker: {marker}\r\n\r\nbody {marker}\r\n.")
            c.cmd("QUIT")
        finally:
            c.close()

    @property
    def accepted(self):
        return self.final is not None and self.final[0] == 250


class RateLimitFarmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.instances = []
        for i in range(3):
            admin = free_port()
            mx = Mxfront([cls.pf.address], config={
                "server": {"hostname": f"mx{i}.test", "io_threads": 1, "shutdown_timeout": 5},
                "listener": [{"address": "127.0.0.1:0", "profile": "mx", "proxy_protocol": True,
                              "proxy_trusted": ["127.0.0.1/32"]}],
                "admin": {"address": f"127.0.0.1:{admin}", "check_interval": 0.2, "check_rise": 1, "check_fall": 1},
                "redis": {"address": cls.redis.address, "timeout": 0.2},
                "profile.mx": {"filters": ["ratelimit", "relay_control"]},
                "ratelimit.limit": [limit("per_client", "client", "messages", PER_CLIENT),
                                    limit("per_sender", "sender", "messages", PER_SENDER),
                                    limit("sender_rcpts", "sender", "recipients", RCPT_LIMIT, "disconnect")],
            })
            cls.addClassCleanup(mx.kill)
            mx.start()
            cls.instances.append((f"mx{i}", mx, admin))
        cls.lb = Haproxy([(name, mx.port, f"port {admin}") for name, mx, admin in cls.instances],
                         http_check="/readyz", inter="300ms", fall=2, rise=1)
        cls.addClassCleanup(cls.lb.stop)
        cls.lb.start()
        deadline = time.monotonic() + 15
        while not all(cls.lb.servers().get(n, ("",))[0] == "UP" for n, _, _ in cls.instances):
            if time.monotonic() > deadline:
                raise AssertionError(f"haproxy never saw the three instances UP: {cls.lb.servers()}")
            time.sleep(0.05)
        cls.accepted = []  # markers told 250 during the whole class

    def tearDown(self):
        for _, mx, _ in self.instances:
            mx.check_alive()

    def diag(self):
        return "".join(f"\n--- {n} log ---\n{mx.log()[-2500:]}" for n, mx, _ in self.instances)

    def send(self, source, sender):
        a = Attempt(self.lb.port, source, sender, unique_marker("rl"))
        if a.accepted:
            self.accepted.append(a.marker)
        return a

    def metric(self, admin, name):
        _, text = http_get(admin, "/metrics")
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith(f"mxfront_{name}{{") or l.startswith(f"mxfront_{name} "))

    def wait_dependency(self, admin, up, timeout=10.0):
        return wait_health_dependency(admin, "(ratelimit)", up, timeout) is not None

    def test_1_per_client_limit_holds_across_the_three_instances(self):
        src = "127.0.0.31"
        ok = [self.send(src, f"c{i}@example.net") for i in range(PER_CLIENT)]
        for a in ok:
            self.assertTrue(a.accepted, f"message within the limit refused: {a.mail} {a.final}{self.diag()}")
        self.assertEqual({a.instance for a in ok}, {"mx0.test", "mx1.test", "mx2.test"},
                         "the messages within the limit were not spread over the three instances")
        over = [self.send(src, f"c{PER_CLIENT + i}@example.net") for i in range(3)]  # one per instance
        self.assertEqual({a.instance for a in over}, {"mx0.test", "mx1.test", "mx2.test"})
        for a in over:
            self.assertEqual(a.mail[0], 451, f"{a.instance} let message {PER_CLIENT + 1}+ through: {a.mail}{self.diag()}")
            self.assertIn("4.7.1", a.mail[1])
            self.assertIn("per_client", a.mail[1])
        self.assertTrue(self.send("127.0.0.32", "other@example.net").accepted, "another client is not limited")
        for name, mx, _ in self.instances:
            self.assertTrue(mx.wait_log(r"ratelimit id=\S+ client=127\.0\.0\.31 limit=per_client key=\"?127\.0\.0\.31\"? "
                                        r"count=\d+ limit=5 window=3600 action=tempfail"), f"no hit logged on {name}")

    def test_2_per_sender_limit_holds_across_instances_and_clients(self):
        sender = "Bulk@Example.NET"
        ok = [self.send(f"127.0.0.{40 + i}", sender) for i in range(PER_SENDER)]
        self.assertTrue(all(a.accepted for a in ok), f"{[(a.mail, a.final) for a in ok]}{self.diag()}")
        a = self.send("127.0.0.50", sender.lower())  # the same sender, lower-cased, from a new client
        self.assertEqual(a.mail[0], 451, f"per-sender limit not held: {a.mail}{self.diag()}")
        self.assertIn("per_sender", a.mail[1])
        hits = sum(self.metric(admin, "ratelimit_hits_total") for _, _, admin in self.instances)
        self.assertGreaterEqual(hits, 1)

    def test_3_disconnect_answers_421_and_closes(self):
        c = SmtpConn(self.lb.port, timeout=10, source="127.0.0.60")
        try:
            self.assertEqual(c.greeting[0], 220)
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("MAIL FROM:<many@example.net>")[0], 250)
            for i in range(RCPT_LIMIT):
                code = c.cmd(f"RCPT TO:<r{i}@example.org>")
                self.assertEqual(code[0], 250, f"recipient {i + 1} of {RCPT_LIMIT} refused: {code}{self.diag()}")
            code = c.cmd(f"RCPT TO:<r{RCPT_LIMIT}@example.org>")
            self.assertEqual(code[0], 421, f"{code}{self.diag()}")
            self.assertIn("4.7.0", code[1])
            self.assertIn("sender_rcpts", code[1])
            self.assertTrue(c.closed_by_server(3.0), "the connection stays open after 421")
        finally:
            c.close()

    def test_4_redis_paused_then_stopped_mail_flows_on_local_counters(self):
        admins = [admin for _, _, admin in self.instances]
        for admin in admins:
            self.assertTrue(self.wait_dependency(admin, True), self.diag())
        before = sum(self.metric(admin, "ratelimit_redis_fallback_total") for admin in admins)
        self.redis.pause()
        try:
            paused = [self.send(f"127.0.0.{70 + i}", f"p{i}@example.net") for i in range(6)]
        finally:
            self.redis.resume()
        self.redis.stop()
        try:
            stopped = [self.send(f"127.0.0.{80 + i}", f"s{i}@example.net") for i in range(6)]
            for a in paused + stopped:
                self.assertTrue(a.accepted, f"refused while Redis failed: {a.mail} {a.final}{self.diag()}")
            after = sum(self.metric(admin, "ratelimit_redis_fallback_total") for admin in admins)
            self.assertGreaterEqual(after - before, 12, "the fallbacks are not counted in /metrics")
            for admin in admins:
                self.assertTrue(self.wait_dependency(admin, False), "/health still shows redis up")
            for name, mx, _ in self.instances:
                self.assertTrue(mx.wait_log(r"ratelimit: redis \S+ failed .*counting on this instance only"),
                                f"fallback not logged on {name}")
            # the limits still hold per instance: one client sending 3 * PER_CLIENT + 1 is refused
            over = [self.send("127.0.0.90", f"q{i}@example.net") for i in range(3 * PER_CLIENT + 3)]
            self.assertTrue(any(a.mail and a.mail[0] == 451 for a in over), "no local limit while Redis is down")
        finally:
            self.redis.start()
        for admin in admins:
            self.assertTrue(self.wait_dependency(admin, True), f"/health does not show redis up again{self.diag()}")
        self.assertTrue(self.send("127.0.0.91", "back@example.net").accepted)
        delivered = self.pf.deliveries(30, len(self.accepted))
        bodies = [d.data for d in delivered]
        for m in self.accepted:
            n = sum(1 for b in bodies if m.encode() in b)
            self.assertEqual(n, 1, f"message {m} got 250 but is in the Maildir {n} times")


if __name__ == "__main__":
    unittest.main()

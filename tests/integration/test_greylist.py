"""Greylisting shared by a farm (issue 16, the greylist filter), end to end: a REAL redis-server,
a REAL Postfix qmqpd as mailbox server and TWO mxfront instances (A and B) deciding in the same
Redis, with greylist.delay = 2 s. Waits only ever sleep past the configured delay; nothing asserts
an elapsed time.

Covers:
  * a triplet greylisted at A (451 4.7.1 "Greylisted" at RCPT) is still greylisted at B before
    the delay, accepted at B after it (the message is delivered), then accepted at A at once;
  * an allow-listed client network is never greylisted, on either instance;
  * Redis stopped: mail is not refused because of it — a triplet first seen at A before the
    outage is accepted at A after the delay (the local table mirrored Redis), a new one is
    greylisted by the local table (the greylist reply, never a "Redis down" error), the fallbacks
    are counted in /metrics, logged, and /health shows the dependency down.

Run from the repo root:  python3 -m unittest -v tests/integration/test_greylist.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix and redis-server)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, SmtpConn, free_port, http_get, unique_marker, wait_health_dependency  # noqa: E402
from redis_harness import RedisServer  # noqa: E402

DELAY = 2             # greylist.delay (s)
PAST_DELAY = DELAY + 1.5  # a generous sleep past it


class Transaction:
    """One SMTP transaction with one recipient: the RCPT reply and, when accepted, the final reply."""

    def __init__(self, port, source, sender, rcpt="bob@example.org"):
        self.marker = unique_marker("gl")
        self.rcpt, self.final = None, None
        c = SmtpConn(port, timeout=10, source=source)
        try:
            c.cmd("EHLO client.test")
            c.cmd(f"MAIL FROM:<{sender}>")
            self.rcpt = c.cmd(f"RCPT TO:<{rcpt}>")
            if self.rcpt[0] == 250 and c.cmd("DATA")[0] == 354:
                self.final = c.cmd(f"Subject: {self.marker}\r\nX-Marker: {self.marker}\r\n\r\nbody {self.marker}\r\n.")
            c.cmd("QUIT")
        finally:
            c.close()

    @property
    def greylisted(self):
        return self.rcpt[0] == 451 and "4.7.1" in self.rcpt[1] and "Greylisted" in self.rcpt[1]

    @property
    def accepted(self):
        return self.final is not None and self.final[0] == 250


class GreylistFarmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.instances = []
        for name in ("a", "b"):
            admin = free_port()
            mx = Mxfront([cls.pf.address], config={
                "server": {"hostname": f"mx-{name}.test", "io_threads": 1, "shutdown_timeout": 5},
                "admin": {"address": f"127.0.0.1:{admin}", "check_interval": 0.2, "check_rise": 1, "check_fall": 1},
                "redis": {"address": cls.redis.address, "timeout": 0.2},
                "profile.mx": {"filters": ["greylist", "relay_control"]},
                "greylist": {"delay": DELAY, "retry_window": 60, "client_allow": ["127.0.0.99/32"]},
            })
            cls.addClassCleanup(mx.kill)
            mx.start()
            cls.instances.append((mx, admin))
        (cls.a, cls.a_admin), (cls.b, cls.b_admin) = cls.instances
        cls.accepted = []

    def tearDown(self):
        for mx, _ in self.instances:
            mx.check_alive()

    def diag(self):
        return "".join(f"\n--- {mx.port} log ---\n{mx.log()[-2500:]}" for mx, _ in self.instances)

    def send(self, mx, source, sender, rcpt="bob@example.org"):
        t = Transaction(mx.port, source, sender, rcpt)
        if t.accepted:
            self.accepted.append(t.marker)
        return t

    def metric(self, admin, name):
        _, text = http_get(admin, "/metrics")
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith(f"mxfront_{name}{{") or l.startswith(f"mxfront_{name} "))

    def wait_dependency(self, admin, up, timeout=10.0):
        return wait_health_dependency(admin, "(greylist)", up, timeout) is not None

    def assert_delivered(self, markers):
        bodies = [d.data for d in self.pf.deliveries(30, len(self.accepted))]
        for m in markers:
            n = sum(1 for b in bodies if m.encode() in b)
            self.assertEqual(n, 1, f"message {m} got 250 but is in the Maildir {n} times")

    def test_1_the_farm_shares_a_triplet(self):
        for _, admin in self.instances:
            self.assertTrue(self.wait_dependency(admin, True), self.diag())
        first = self.send(self.a, "127.0.0.21", "Sender@Example.NET")
        self.assertTrue(first.greylisted, f"first sight at A not greylisted: {first.rcpt}{self.diag()}")
        early = self.send(self.b, "127.0.0.22", "sender@example.net")  # same /24, same sender (case), same rcpt
        self.assertTrue(early.greylisted, f"B accepted before the delay: {early.rcpt}{self.diag()}")
        time.sleep(PAST_DELAY)
        late = self.send(self.b, "127.0.0.21", "sender@example.net")
        self.assertTrue(late.accepted, f"B refused after the delay: {late.rcpt} {late.final}{self.diag()}")
        again = self.send(self.a, "127.0.0.21", "sender@example.net")
        self.assertTrue(again.accepted, f"A does not know the triplet B passed: {again.rcpt} {again.final}{self.diag()}")
        other = self.send(self.a, "127.0.0.21", "sender@example.net", "carol@example.org")
        self.assertTrue(other.greylisted, "another recipient is another triplet")
        self.assertTrue(self.a.wait_log(r"greylist id=\S+ client=127\.0\.0\.21 sender=\"?sender@example\.net\"? "
                                        r"rcpt=\"?bob@example\.org\"? result=greylisted .*store=redis"), self.diag())
        self.assertTrue(self.b.wait_log(r"greylist id=\S+ client=127\.0\.0\.21 .* result=passed_after_delay .*store=redis"),
                        self.diag())
        self.assertTrue(self.a.wait_log(r"greylist id=\S+ client=127\.0\.0\.21 .* result=known .*store=redis"), self.diag())
        self.assertGreaterEqual(self.metric(self.b_admin, "greylist_results_total"), 2)
        self.assert_delivered([late.marker, again.marker])

    def test_2_an_allowlisted_client_is_never_greylisted(self):
        for mx, _ in self.instances:
            t = self.send(mx, "127.0.0.99", "fresh@example.net", "dave@example.org")
            self.assertTrue(t.accepted, f"allow-listed client greylisted: {t.rcpt} {t.final}{self.diag()}")
        self.assertTrue(self.a.wait_log(r"greylist id=\S+ client=127\.0\.0\.99 .* result=allowlisted why=client"))

    def test_3_redis_stopped_mail_is_not_refused_for_it(self):
        for _, admin in self.instances:
            self.assertTrue(self.wait_dependency(admin, True), self.diag())
        seen = self.send(self.a, "127.0.0.31", "before@example.net")
        self.assertTrue(seen.greylisted, f"{seen.rcpt}{self.diag()}")
        before = self.metric(self.a_admin, "greylist_redis_fallback_total")
        self.redis.stop()
        try:
            self.assertTrue(self.wait_dependency(self.a_admin, False), "/health still shows redis up")
            new = self.send(self.a, "127.0.0.41", "during@example.net")
            self.assertTrue(new.greylisted, f"a new triplet is not greylisted by the local table: {new.rcpt}{self.diag()}")
            time.sleep(PAST_DELAY)
            retried = self.send(self.a, "127.0.0.31", "before@example.net")
            self.assertTrue(retried.accepted, f"refused while Redis is down: {retried.rcpt} {retried.final}{self.diag()}")
            new_again = self.send(self.a, "127.0.0.41", "during@example.net")
            self.assertTrue(new_again.accepted, f"{new_again.rcpt} {new_again.final}{self.diag()}")
            after = self.metric(self.a_admin, "greylist_redis_fallback_total")
            self.assertGreaterEqual(after - before, 3, "the fallbacks are not counted in /metrics")
            self.assertTrue(self.a.wait_log(r"greylist: redis \S+ failed .*deciding on this instance only"), self.diag())
            self.assertTrue(self.a.wait_log(r"greylist id=\S+ client=127\.0\.0\.31 .* result=passed_after_delay .*store=local"))
        finally:
            self.redis.start()
        self.assertTrue(self.wait_dependency(self.a_admin, True), f"/health does not show redis up again{self.diag()}")
        self.assert_delivered([retried.marker, new_again.marker])


if __name__ == "__main__":
    unittest.main()

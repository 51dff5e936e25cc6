"""Farm-wide AUTH failure counts on Redis (issue 16, first slice), end to end: a REAL redis-server,
TWO mxfront instances sharing it (submissions with TLS, a users file, a REAL Postfix qmqpd), real
clients over implicit TLS.

Covers:
  * a guesser alternating between the two instances is refused (454 4.7.0, before any password
    check) at the same failure count as against one instance (auth.address_failure_limit), and
    the wait grows across the instances;
  * Redis stopped: logins still work (fail open), the fallbacks are counted in /metrics, /health
    shows the redis dependency down; Redis started again: /health shows it up and the counts are
    shared again.

Run from the repo root:  python3 -m unittest -v tests/integration/test_redis_auth.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix, and redis-server)."""
import base64
import json
import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, free_port, http_get  # noqa: E402
from redis_harness import RedisServer  # noqa: E402
from tls_harness import TestPki, profile_overrides, users_file  # noqa: E402

DELAY = 0.2
LIMIT = 4  # auth.address_failure_limit


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class RedisAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.users = users_file(os.path.join(cls.pki.dir, "users"))
        cls.redis = RedisServer(password="farm-secret")
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        pw = os.path.join(cls.pki.dir, "redis-password")
        with open(pw, "w") as f:
            f.write("farm-secret\n")
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.mx, cls.admin = [], []
        for _ in range(2):
            admin = free_port()
            cfg = profile_overrides(
                cls.pki.server.cert, cls.pki.server.key, {"type": "file", "users_file": cls.users},
                auth={"failure_delay": DELAY, "failure_limit": 3, "max_delay": 2, "address_failure_limit": LIMIT,
                      "login_failure_limit": 0, "failure_window": 120})
            cfg["relay"] = {"local_domains": ["example.org"], "postmaster": "alice@example.org"}
            cfg["redis"] = {"address": cls.redis.address, "password_file": pw, "timeout": 0.2}
            cfg["admin"] = {"address": f"127.0.0.1:{admin}", "check_interval": 0.2, "check_rise": 1, "check_fall": 1}
            mx = Mxfront([cls.pf.address], cfg)
            cls.addClassCleanup(mx.kill)
            mx.start()
            cls.mx.append(mx)
            cls.admin.append(admin)
        cls.ctx = cls.pki.client_context()

    def tearDown(self):
        for mx in self.mx:
            mx.check_alive()

    def diag(self):
        return "".join(f"\n--- mxfront {i} log ---\n{mx.log()[-3000:]}" for i, mx in enumerate(self.mx))

    def auth_plain(self, instance, source, user, password):
        """One AUTH PLAIN on a fresh implicit-TLS connection to instance 0 or 1: (code, text, seconds)."""
        port = self.mx[instance].listeners[2][1]
        with smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.test", timeout=15, context=self.ctx,
                              source_address=(source, 0)) as c:
            c.ehlo("client.test")
            t0 = time.monotonic()
            code, text = c.docmd("AUTH", "PLAIN " + b64(b"\0" + user.encode() + b"\0" + password.encode()))
            return code, text.decode(errors="replace"), time.monotonic() - t0

    def redis_dependency(self, instance):
        status, body = http_get(self.admin[instance], "/health")
        for d in json.loads(body)["dependencies"]:
            if d["name"] == self.redis.address:
                return d
        self.fail(f"no redis dependency in /health: {body}")

    def wait_redis_up(self, instance, up, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.redis_dependency(instance)["up"] == up:
                return True
            time.sleep(0.1)
        return False

    def fallbacks(self, instance):
        _, text = http_get(self.admin[instance], "/metrics")
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith("mxfront_redis_fallbacks_total{"))

    def test_1_a_guesser_spread_over_two_instances_is_refused_at_the_same_count(self):
        for i in range(2):
            self.assertTrue(self.wait_redis_up(i, True), self.diag())
        src = "127.0.0.60"
        times = []
        for i in range(LIMIT):  # alternating: 0, 1, 0, 1
            code, text, t = self.auth_plain(i % 2, src, f"guess{i}@example.org", "x")
            self.assertEqual(code, 535, text + self.diag())
            times.append(t)
        print(f"\nfailures alternating over two instances (s): {times}")
        for a, b in zip(times, times[1:]):
            self.assertGreater(b, a + DELAY * 0.5, f"the wait does not grow across the instances: {times}")
        for i in range(2):
            code, text, _ = self.auth_plain(i, src, "alice@example.org", "alicepw")  # the right password
            self.assertEqual((code, text[:5]), (454, "4.7.0"), f"instance {i} not throttled: {code} {text}{self.diag()}")
        code, text, _ = self.auth_plain(1, "127.0.0.61", "alice@example.org", "alicepw")
        self.assertEqual(code, 235, f"another address is not affected: {text}")

    def test_2_redis_down_fails_open_then_shared_again(self):
        self.redis.stop()
        try:
            for i in range(2):
                self.assertTrue(self.wait_redis_up(i, False), f"/health still shows redis up{self.diag()}")
            self.assertIn("redis", self.redis_dependency(0)["kind"])
            before = self.fallbacks(0)
            code, text, _ = self.auth_plain(0, "127.0.0.70", "alice@example.org", "alicepw")
            self.assertEqual(code, 235, f"login refused while Redis is down: {text}{self.diag()}")
            code, text, _ = self.auth_plain(0, "127.0.0.71", "nobody@example.org", "x")
            self.assertEqual(code, 535, text)
            self.assertGreater(self.fallbacks(0), before, "the fallback is not counted in /metrics")
            self.assertTrue(self.mx[0].wait_log(r"redis 127\.0\.0\.1:\d+ down"), self.diag())
        finally:
            self.redis.start()
        for i in range(2):
            self.assertTrue(self.wait_redis_up(i, True), f"/health does not show redis up again{self.diag()}")
        self.assertTrue(self.mx[0].wait_log(r"redis 127\.0\.0\.1:\d+ up"), self.diag())
        src = "127.0.0.72"
        for i in range(LIMIT):
            self.assertEqual(self.auth_plain(i % 2, src, f"again{i}@example.org", "x")[0], 535)
        code, text, _ = self.auth_plain(0, src, "alice@example.org", "alicepw")
        self.assertEqual((code, text[:5]), (454, "4.7.0"), f"counts not shared after the restart: {text}{self.diag()}")


if __name__ == "__main__":
    unittest.main()

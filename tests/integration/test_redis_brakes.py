"""Farm-wide brakes on Redis (issue 16: AUTH failures, refused recipients per client address), end to
end: a REAL redis-server, a farm of THREE mxfront instances behind a REAL HAProxy (TCP mode,
send-proxy-v2, round robin, HTTP checks on /readyz; one frontend for SMTP, one for implicit-TLS
submissions, and one more with instance 0 alone), a users file, a REAL Postfix qmqpd, real clients.

Covers:
  * a password guesser whose connections are spread over the three instances is refused (454 4.7.0,
    before any password check) at the same failure count as a guesser against one instance
    (auth.address_failure_limit), and its attempts reached all three instances (their logs);
  * Redis stopped: logins still work (fail open), the fallbacks are counted in /metrics, /health
    shows the redis dependency down; Redis started again: up, and the AUTH counts are shared again;
  * a recipient harvester opening many connections through HAProxy, each refused fewer recipients
    than the per-session soft limit, is slowed from the address's soft limit on and gets 421 4.7.0
    at the farm-wide address count (limits.address_rejected_recipients), whichever instance has it;
    its next session still has a valid recipient accepted, and closes at its first refused one;
  * Redis stopped: the address counts are each instance's (more refusals pass than the farm-wide
    limit, a valid recipient is accepted), the fallbacks are counted, /health shows the dependency
    down; Redis started again: up, and the address count is farm-wide again.

Run from the repo root:  python3 -m unittest -v tests/integration/test_redis_brakes.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix, redis-server, haproxy)."""
import base64
import json
import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from haproxy_harness import Haproxy  # noqa: E402
from mxharness import Mxfront, PostfixQmqp, SmtpConn, free_port, http_get  # noqa: E402
from redis_harness import RedisServer  # noqa: E402
from tls_harness import TestPki, profile_overrides, users_file  # noqa: E402

DELAY = 0.2       # auth.failure_delay and limits.rejected_recipient_delay
LIMIT = 6         # auth.address_failure_limit
RCPT_SOFT = 4     # limits.address_rejected_recipients_soft
RCPT_HARD = 10    # limits.address_rejected_recipients
PER_SESSION = 2   # unknown recipients per harvesting session (below limits.rejected_recipients_soft = 3)
INSTANCES = {"mx0.test", "mx1.test", "mx2.test"}


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class RedisBrakesFarmTest(unittest.TestCase):
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
        for i in range(3):
            admin = free_port()
            cfg = profile_overrides(
                cls.pki.server.cert, cls.pki.server.key, {"type": "file", "users_file": cls.users},
                auth={"failure_delay": DELAY, "failure_limit": 3, "max_delay": 2, "address_failure_limit": LIMIT,
                      "login_failure_limit": 0, "failure_window": 120},
                limits={"rejected_recipients_soft": 3, "rejected_recipients": 6, "rejected_recipient_delay": DELAY,
                        "address_rejected_recipients_soft": RCPT_SOFT, "address_rejected_recipients": RCPT_HARD,
                        "rejected_recipients_window": 120})
            for listener in cfg["listener"]:  # every client comes through HAProxy
                listener.update({"proxy_protocol": True, "proxy_trusted": ["127.0.0.1/32"]})
            cfg["server"] = {"hostname": f"mx{i}.test"}
            cfg["relay"] = {"local_domains": ["example.org"], "postmaster": "alice@example.org"}
            cfg["redis"] = {"address": cls.redis.address, "password_file": pw, "timeout": 0.2}
            cfg["admin"] = {"address": f"127.0.0.1:{admin}", "check_interval": 0.2, "check_rise": 1, "check_fall": 1}
            mx = Mxfront([cls.pf.address], cfg)
            cls.addClassCleanup(mx.kill)
            mx.start()
            cls.mx.append(mx)
            cls.admin.append(admin)

        def balancer(listener, which):
            lb = Haproxy([(f"mx{i}", cls.mx[i].listeners[listener][1], f"port {cls.admin[i]}") for i in which],
                         http_check="/readyz", inter="300ms", fall=2, rise=1)
            cls.addClassCleanup(lb.stop)
            lb.start()
            deadline = time.monotonic() + 15
            while not all(lb.servers().get(f"mx{i}", ("",))[0] == "UP" for i in which):
                if time.monotonic() > deadline:
                    raise AssertionError(f"haproxy never saw the instances UP: {lb.servers()}")
                time.sleep(0.05)
            return lb

        cls.smtp_lb = balancer(0, range(3))         # the mx listeners
        cls.auth_lb = balancer(2, range(3))         # the implicit-TLS submissions listeners
        cls.auth_one_lb = balancer(2, [0])          # instance 0's alone
        cls.ctx = cls.pki.client_context()

    def tearDown(self):
        for mx in self.mx:
            mx.check_alive()

    def diag(self):
        return "".join(f"\n--- mxfront {i} log ---\n{mx.log()[-3000:]}" for i, mx in enumerate(self.mx))

    # ---- helpers ---------------------------------------------------------------------------------
    def auth_plain(self, lb, source, user, password):
        """One AUTH PLAIN on a fresh implicit-TLS connection through `lb`: (code, text, instance)."""
        with smtplib.SMTP_SSL("127.0.0.1", lb.port, local_hostname="client.test", timeout=15, context=self.ctx,
                              source_address=(source, 0)) as c:
            code, hello = c.ehlo("client.test")
            self.assertEqual(code, 250, hello)
            instance = hello.decode().split()[0]  # the instance's hostname
            code, text = c.docmd("AUTH", "PLAIN " + b64(b"\0" + user.encode() + b"\0" + password.encode()))
            return code, text.decode(errors="replace"), instance

    def guess_until_refused(self, lb, source, prefix):
        """Wrong passwords through `lb` until the answer is not 535: (failures, that answer, instances)."""
        instances = []
        for i in range(3 * LIMIT):
            code, text, instance = self.auth_plain(lb, source, f"{prefix}{i}@example.org", "x")
            instances.append(instance)
            if code != 535:
                return i, (code, text), instances
        self.fail(f"{source}: never refused after {3 * LIMIT} failures{self.diag()}")

    def harvest(self, source, unknown, valid=False):
        """One session through the SMTP balancer: (instance, [(code, line, seconds)] per RCPT, closed).
        `valid`: a known recipient first. A 421 after a refusal is the answer read for the next
        command (the next RCPT, or QUIT after the last): it ends the list, and the session."""
        c = SmtpConn(self.smtp_lb.port, timeout=15, source=source)
        replies = []
        try:
            self.assertEqual(c.greeting[0], 220, c.greeting)
            instance = c.greeting[1].split()[1]
            self.assertEqual(c.cmd("EHLO harvester.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<h@example.net>")[0], 250)
            rcpts = (["bob@example.org"] if valid else []) + [f"u{time.monotonic_ns()}-{i}@example.org"
                                                              for i in range(unknown)]
            for r in rcpts + [None]:
                t0 = time.monotonic()
                try:
                    code, line, _ = c.cmd(f"RCPT TO:<{r}>" if r else "QUIT")
                except OSError:
                    code, line = None, ""
                if code in (421, None):
                    replies.append((code, line, 0.0))
                    return instance, replies, c.closed_by_server(3)
                if r:
                    replies.append((code, line, time.monotonic() - t0))
            return instance, replies, False
        finally:
            c.close()

    def metric(self, name, label=""):
        total = 0.0
        for admin in self.admin:
            _, text = http_get(admin, "/metrics")
            total += sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                         if l.startswith(f"mxfront_{name}{{") and label in l)
        return total

    def redis_dependency(self, instance):
        status, body = http_get(self.admin[instance], "/health")
        for d in json.loads(body)["dependencies"]:
            if d["name"] == self.redis.address:
                return d
        self.fail(f"no redis dependency in /health: {body}")

    def wait_redis_up(self, up, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.redis_dependency(i)["up"] == up for i in range(3)):
                return True
            time.sleep(0.1)
        return False

    # ---- AUTH ------------------------------------------------------------------------------------
    def test_1_a_guesser_spread_over_three_instances_is_refused_at_the_same_count_as_against_one(self):
        self.assertTrue(self.wait_redis_up(True), self.diag())
        one, (code, text), _ = self.guess_until_refused(self.auth_one_lb, "127.0.0.59", "one")
        self.assertEqual((code, text[:5]), (454, "4.7.0"), text + self.diag())
        farm, (code, text), instances = self.guess_until_refused(self.auth_lb, "127.0.0.60", "guess")
        self.assertEqual((code, text[:5]), (454, "4.7.0"), text + self.diag())
        print(f"\nfailures before 454: one instance {one}, the farm {farm} (over {instances})")
        self.assertEqual(one, LIMIT)
        self.assertEqual(farm, one, "the farm refuses the guesser at another count than one instance")
        self.assertEqual(set(instances[:farm]), INSTANCES, "the failures did not reach all three instances")
        for i, mx in enumerate(self.mx):
            self.assertTrue(mx.wait_log(r"auth id=\S+ client=127\.0\.0\.60 user=\S+ mechanism=PLAIN result=failed"),
                            f"no failure of the guesser logged on instance {i}{self.diag()}")
        refused = [self.auth_plain(self.auth_lb, "127.0.0.60", "alice@example.org", "alicepw") for _ in range(3)]
        self.assertEqual({r[2] for r in refused}, INSTANCES)
        for code, text, instance in refused:  # the right password, on every instance
            self.assertEqual((code, text[:5]), (454, "4.7.0"), f"{instance} not throttled: {code} {text}{self.diag()}")
        code, text, _ = self.auth_plain(self.auth_lb, "127.0.0.61", "alice@example.org", "alicepw")
        self.assertEqual(code, 235, f"another address is not affected: {text}")

    def test_2_redis_down_auth_fails_open_then_shared_again(self):
        self.redis.stop()
        try:
            self.assertTrue(self.wait_redis_up(False), f"/health still shows redis up{self.diag()}")
            self.assertIn("redis", self.redis_dependency(0)["kind"])
            before = self.metric("redis_fallbacks_total", 'counts="auth"')
            code, text, _ = self.auth_plain(self.auth_lb, "127.0.0.70", "alice@example.org", "alicepw")
            self.assertEqual(code, 235, f"login refused while Redis is down: {text}{self.diag()}")
            code, text, _ = self.auth_plain(self.auth_lb, "127.0.0.71", "nobody@example.org", "x")
            self.assertEqual(code, 535, text)
            self.assertGreater(self.metric("redis_fallbacks_total", 'counts="auth"'), before,
                               "the fallback is not counted in /metrics")
            for mx in self.mx:
                self.assertTrue(mx.wait_log(r"redis 127\.0\.0\.1:\d+ down .*AUTH failure counts are this instance's only"),
                                self.diag())
        finally:
            self.redis.start()
        self.assertTrue(self.wait_redis_up(True), f"/health does not show redis up again{self.diag()}")
        self.assertTrue(self.mx[0].wait_log(r"redis 127\.0\.0\.1:\d+ up .*AUTH failure counts are farm-wide"), self.diag())
        failures, (code, text), _ = self.guess_until_refused(self.auth_lb, "127.0.0.72", "again")
        self.assertEqual((failures, code, text[:5]), (LIMIT, 454, "4.7.0"),
                         f"counts not shared after the restart: {text}{self.diag()}")

    # ---- recipient harvesting ----------------------------------------------------------------------
    def test_3_a_harvester_over_many_connections_is_slowed_then_closed_at_the_farm_wide_count(self):
        self.assertTrue(self.wait_redis_up(True), self.diag())
        src = "127.0.0.80"
        sessions, refusals = [], []  # refusals: (address count, code, seconds)
        while len(refusals) < RCPT_HARD and len(sessions) < RCPT_HARD:
            instance, replies, closed = self.harvest(src, PER_SESSION)
            sessions.append((instance, replies, closed))
            for code, line, t in replies:
                if code == 550:
                    refusals.append((len(refusals) + 1, line, t))
            if closed:
                break
        print(f"\nharvesting sessions: {[(s[0], [(r[0], round(r[2], 2)) for r in s[1]], s[2]) for s in sessions]}")
        self.assertEqual(len(refusals), RCPT_HARD, f"{sessions}{self.diag()}")
        self.assertEqual({s[0] for s in sessions}, INSTANCES, "the sessions were not spread over the three instances")
        for n, line, t in refusals:
            self.assertTrue(line.startswith("550 5.1.1"), line)
            if n <= RCPT_SOFT:
                self.assertLess(t, DELAY * 0.75, f"refusal {n} waited {t}: {refusals}")
            else:  # (n - soft) steps: the address's wait (each session alone is below its own soft limit)
                self.assertGreaterEqual(t, (n - RCPT_SOFT) * DELAY * 0.9, f"refusal {n} did not wait: {refusals}")
        for instance, replies, closed in sessions[:-1]:
            self.assertFalse(closed, f"{instance} closed a session before the address's hard limit: {sessions}")
        instance, replies, closed = sessions[-1]
        self.assertEqual(replies[-1][0], 421, f"no 421 at the address's {RCPT_HARD}th refusal: {sessions}{self.diag()}")
        self.assertTrue(closed, "not closed after 421")
        self.assertTrue(any(mx.wait_log(rf"reject id=\S+ client=127\.0\.0\.80 .* refused=\d address_refused={RCPT_HARD} "
                                        r"closing=\"too many rejected recipients from the address\"", 0.5)
                            for mx in self.mx), self.diag())
        self.assertGreaterEqual(self.metric("rejected_recipient_closes_total", 'scope="address"'), 1)
        # Its next session: a valid recipient is still taken, the first refused one closes.
        instance, replies, closed = self.harvest(src, 1, valid=True)
        self.assertEqual(replies[0][0], 250, f"{instance}: valid recipient refused: {replies}")
        self.assertEqual([r[0] for r in replies[1:]], [550, 421], f"{instance}: {replies}{self.diag()}")
        self.assertTrue(closed)
        # Another address is not affected.
        instance, replies, closed = self.harvest("127.0.0.81", PER_SESSION)
        self.assertEqual([r[0] for r in replies], [550] * PER_SESSION)
        self.assertTrue(all(r[2] < DELAY * 0.75 for r in replies), replies)

    def test_4_redis_down_recipient_counts_fall_back_to_each_instance_then_farm_wide_again(self):
        self.redis.stop()
        try:
            self.assertTrue(self.wait_redis_up(False), f"/health still shows redis up{self.diag()}")
            before = self.metric("redis_fallbacks_total", 'counts="rcpt"')
            src = "127.0.0.90"
            sessions = [self.harvest(src, PER_SESSION, valid=True) for _ in range(6)]  # 12 refusals, 4 per instance
            self.assertEqual({s[0] for s in sessions}, INSTANCES)
            for instance, replies, closed in sessions:
                self.assertEqual([r[0] for r in replies], [250] + [550] * PER_SESSION,
                                 f"{instance}: the farm-wide count still applies with Redis down: {sessions}{self.diag()}")
                self.assertFalse(closed)
            self.assertGreaterEqual(self.metric("redis_fallbacks_total", 'counts="rcpt"') - before, 12,
                                    "the fallbacks are not counted in /metrics")
            for mx in self.mx:
                self.assertTrue(mx.wait_log(r"redis 127\.0\.0\.1:\d+ down .*refused-recipient counts are this instance's only"),
                                self.diag())
        finally:
            self.redis.start()
        self.assertTrue(self.wait_redis_up(True), f"/health does not show redis up again{self.diag()}")
        for mx in self.mx:
            self.assertTrue(mx.wait_log(r"redis 127\.0\.0\.1:\d+ up .*refused-recipient counts are farm-wide"), self.diag())
        src, refused = "127.0.0.91", 0
        for _ in range(RCPT_HARD):
            instance, replies, closed = self.harvest(src, PER_SESSION)
            refused += sum(1 for r in replies if r[0] == 550)
            if closed:
                break
        self.assertEqual((refused, closed), (RCPT_HARD, True), f"not farm-wide again after the restart{self.diag()}")


if __name__ == "__main__":
    unittest.main()

"""Redis paused, killed and restarted UNDER LOAD (issue 16): a REAL redis-server shared by the
farm-wide features (the ratelimit filter's counts, the AUTH failure counts), a REAL Postfix qmqpd
as the mailbox server, mxfront with two I/O threads, and four client threads sending mail without
pause (Python smtplib, one message per session) through the whole run.

The run: Redis up → paused (SIGSTOP: every Redis answer times out) → resumed → killed (SIGKILL:
connections refused) → started again on the same port. Asserted:
  * no message is refused for it: every session of the run gets its 250 (fail open: local counts);
  * no 250 is lost: every message told 250 is in the Maildir exactly once;
  * fds come back to the baseline once the load stops (no socket leaked by the drops and reconnects);
  * /health shows the Redis dependency down during the outage and up again after the restart, the
    fallbacks are counted in /metrics, and both changes are logged.

Run from the repo root:  python3 -m unittest -v tests/integration/test_redis_chaos.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix, and redis-server)."""
import os
import smtplib
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, free_port, http_get, unique_marker, wait_health_dependency  # noqa: E402
from redis_harness import RedisServer  # noqa: E402

BIG = 1000000  # no limit is ever reached: a refusal in this test can only come from the outage
CLIENTS = 4


class Load:
    """CLIENTS threads sending one message per SMTP session until stop(): (marker, code, text) each."""

    def __init__(self, port):
        self.port, self.results, self.stop_flag = port, [], threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def _one(self, i):
        marker = unique_marker(f"chaos{i}")
        msg = (f"From: <c{i}@example.net>\r\nTo: <bob@example.org>\r\nSubject: {marker}\r\n\r\n"
               f"chaos {marker}\r\n").encode()
        try:
            with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test", timeout=30) as c:
                c.sendmail(f"c{i}@example.net", ["bob@example.org"], msg)
            return marker, 250, ""
        except smtplib.SMTPResponseException as e:
            return marker, e.smtp_code, str(e.smtp_error)
        except smtplib.SMTPRecipientsRefused as e:
            code, text = next(iter(e.recipients.values()))
            return marker, code, str(text)
        except (smtplib.SMTPException, OSError) as e:
            return marker, 0, repr(e)

    def _run(self, i):
        while not self.stop_flag.is_set():
            r = self._one(i)
            with self.lock:
                self.results.append(r)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(60)

    def count(self):
        with self.lock:
            return len(self.results)


class RedisChaosTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.admin = free_port()
        cls.mx = Mxfront([cls.pf.address], config={
            "server": {"hostname": "mx.test", "io_threads": 2},
            "admin": {"address": f"127.0.0.1:{cls.admin}", "check_interval": 0.2, "check_rise": 1, "check_fall": 1},
            "redis": {"address": cls.redis.address, "timeout": 0.2},
            "auth": {"address_failure_limit": 10, "login_failure_limit": 20, "network_failure_limit": 50},
            "limits": {"connections": 1000, "connections_per_ip": 1000},
            "profile.mx": {"filters": ["ratelimit", "relay_control"]},
            "ratelimit.limit": [
                {"name": "conns", "key": "client", "what": "connections", "limit": BIG, "window": 60},
                {"name": "msgs", "key": "client", "what": "messages", "limit": BIG, "window": 600},
                {"name": "sender", "key": "sender", "what": "messages", "limit": BIG, "window": 600},
                {"name": "rcpts", "key": "sender_domain", "what": "recipients", "limit": BIG, "window": 3600},
            ],
        })
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-4000:]}"

    def wait_dependency(self, up, timeout=15.0):
        return wait_health_dependency(self.admin, "(ratelimit)", up, timeout) is not None

    def metric(self, name):
        _, text = http_get(self.admin, "/metrics")
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(f"mxfront_{name}{{") or line.startswith(f"mxfront_{name} "))

    def phase(self, load, name, seconds, at_least=5, timeout=60.0):
        """Lets the load run for `seconds` and until `at_least` more sessions ended; records the count."""
        start, t0 = load.count(), time.monotonic()
        while (time.monotonic() - t0 < seconds or load.count() - start < at_least) and time.monotonic() - t0 < timeout:
            time.sleep(0.05)
        self.phases.append((name, load.count() - start))
        self.assertGreaterEqual(load.count() - start, at_least, f"the load stalled while {name}: {self.phases}{self.diag()}")

    def test_paused_killed_restarted_under_load(self):
        self.assertTrue(self.wait_dependency(True), f"redis never shown up{self.diag()}")
        # Warm-up: sessions on both I/O threads, so each has its Redis client before the baseline.
        self.phases = []
        warm = Load(self.mx.port).start()
        self.phase(warm, "warming up", 0.5, 20)
        warm.stop()
        self.assertTrue(all(code == 250 for _, code, _ in warm.results), warm.results)
        baseline = self.mx.settled_fd_count()
        fallbacks_before = self.metric("ratelimit_redis_fallback_total")

        load = Load(self.mx.port).start()
        try:
            self.phase(load, "redis up", 1.5)
            self.redis.pause()
            try:
                self.phase(load, "redis paused", 3)
            finally:
                self.redis.resume()
            self.phase(load, "redis resumed", 1)
            self.redis.stop()  # SIGKILL
            try:
                self.phase(load, "redis killed", 2)
                self.assertTrue(self.wait_dependency(False), f"/health never showed redis down{self.diag()}")
                self.phase(load, "redis down", 1)
            finally:
                self.redis.start()  # same port
            self.assertTrue(self.wait_dependency(True), f"/health never showed redis up again{self.diag()}")
            self.phase(load, "redis restarted", 2)
        finally:
            load.stop()

        refused = [r for r in load.results if r[1] != 250]
        self.assertEqual(refused, [], f"sessions not answered 250 during the outage{self.diag()}")
        self.assertGreater(len(load.results), 100, "too little load to judge")
        accepted = [m for m, code, _ in load.results if code == 250]
        delivered = self.pf.deliveries(60, len(accepted) + len(warm.results))
        bodies = [d.data for d in delivered]
        for m in accepted:
            n = sum(1 for b in bodies if m.encode() in b)
            self.assertEqual(n, 1, f"message {m} got 250 but is in the Maildir {n} times")
        self.assertGreater(self.metric("ratelimit_redis_fallback_total"), fallbacks_before,
                           "the fallbacks are not counted in /metrics")
        self.assertTrue(self.mx.wait_log(r"ratelimit: redis \S+ failed .*counting on this instance only"), self.diag())
        self.assertTrue(self.mx.wait_log(r"ratelimit: counting farm-wide in redis"), self.diag())
        # The client sockets closed, Redis reconnected: the descriptors are those of the baseline.
        n = self.mx.wait_fd_baseline(baseline, timeout=15)
        self.assertLessEqual(n, baseline, f"fds {n} after the run, {baseline} before: a leak{self.diag()}")
        self.assertEqual(self.mx.close_wait_count(), 0, "CLOSE_WAIT sockets left")
        # And the counts are farm-wide again: the restarted Redis (no persistence) started empty, so
        # the ratelimit keys in it were written after the restart.
        after = Load(self.mx.port).start()
        self.phase(after, "after the run", 0.5, 10)
        after.stop()
        self.assertTrue(all(code == 250 for _, code, _ in after.results), after.results)
        keys = self.redis_keys()
        self.assertTrue(any(k.startswith("mxfront:rl:msgs:") for k in keys), f"nothing counted in Redis: {keys}")
        self.mx.check_alive()
        print(f"\n[chaos] sessions per phase: {self.phases}; fds {baseline} -> {n}", file=sys.stderr)

    def redis_keys(self):
        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=5) as s:
            s.sendall(b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n")
            f = s.makefile("rb")
            head = f.readline()
            n = int(head[1:])
            keys = []
            for _ in range(max(n, 0)):
                f.readline()
                keys.append(f.readline().strip().decode())
            return keys


if __name__ == "__main__":
    unittest.main()

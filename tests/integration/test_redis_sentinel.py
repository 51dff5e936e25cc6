"""Redis behind Sentinel (issue 16): mxfront finds the master through REAL redis-sentinel instances
and follows a REAL failover. A master redis-server, a replica (replicaof), three sentinels
(quorum 2), one mxfront (submissions with TLS, a users file, a REAL Postfix qmqpd) whose [redis]
names only the sentinels and the master's name.

Covers:
  * at start the master is asked of the sentinels: the farm-wide AUTH failure counts land in the
    master, /health shows the dependency "master <name> (sentinel)" up;
  * the master killed: the sentinels promote the replica, mxfront (which saw its connection drop)
    asks them again, connects to the new master (ROLE checked), /health shows it up again, and new
    failures are counted in the new master; logins keep working throughout (fail open).

Run from the repo root:  python3 -m unittest -v tests/integration/test_redis_sentinel.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix, redis-server and
redis-sentinel)."""
import base64
import json
import os
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, free_port, http_get  # noqa: E402
from redis_harness import RedisSentinel, RedisServer  # noqa: E402
from tls_harness import TestPki, profile_overrides, users_file  # noqa: E402

MASTER = "mxfarm"
DEP = f"master {MASTER} (sentinel)"


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10).stdout


class RedisSentinelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.users = users_file(os.path.join(cls.pki.dir, "users"))
        cls.master = RedisServer()
        cls.addClassCleanup(cls.master.close)
        cls.master.start()
        cls.replica = RedisServer(extra_args=["--replicaof", "127.0.0.1", str(cls.master.port)])
        cls.addClassCleanup(cls.replica.close)
        cls.replica.start()
        deadline = time.monotonic() + 15
        while "master_link_status:up" not in redis_cli(cls.replica.port, "INFO", "replication"):
            if time.monotonic() > deadline:
                raise AssertionError("the replica does not sync with the master")
            time.sleep(0.1)
        cls.sentinels = []
        for _ in range(3):
            s = RedisSentinel(MASTER, cls.master.address, quorum=2, down_after_ms=1000, failover_timeout_ms=5000)
            cls.addClassCleanup(s.close)
            s.start()
            cls.sentinels.append(s)
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.admin = free_port()
        cfg = profile_overrides(cls.pki.server.cert, cls.pki.server.key, {"type": "file", "users_file": cls.users},
                                auth={"failure_delay": 0.1, "failure_limit": 3, "max_delay": 1,
                                      "address_failure_limit": 50, "login_failure_limit": 0, "failure_window": 120})
        cfg["relay"] = {"local_domains": ["example.org"], "postmaster": "alice@example.org"}
        cfg["redis"] = {"sentinels": [s.address for s in cls.sentinels], "master_name": MASTER, "timeout": 0.3}
        cfg["admin"] = {"address": f"127.0.0.1:{cls.admin}", "check_interval": 0.2, "check_rise": 1, "check_fall": 1}
        cls.mx = Mxfront([cls.pf.address], cfg)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        cls.ctx = cls.pki.client_context()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return (f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}"
                + "".join(f"\n--- sentinel {i} ---\n{s.log()[-1200:]}" for i, s in enumerate(self.sentinels)))

    def auth_plain(self, source, user, password):
        port = self.mx.listeners[2][1]
        with smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.test", timeout=15, context=self.ctx,
                              source_address=(source, 0)) as c:
            c.ehlo("client.test")
            code, text = c.docmd("AUTH", "PLAIN " + b64(b"\0" + user.encode() + b"\0" + password.encode()))
            return code, text.decode(errors="replace")

    def dependency(self):
        status, body = http_get(self.admin, "/health")
        for d in json.loads(body)["dependencies"]:
            if d["name"] == DEP:
                return d
        self.fail(f"no dependency {DEP!r} in /health: {body}")

    def wait_up(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dependency()["up"]:
                return True
            time.sleep(0.1)
        return False

    def farm_keys(self, port):
        return [k for k in redis_cli(port, "--scan", "--pattern", "mxfront:*").split() if k]

    def test_master_found_through_sentinels_and_followed_after_a_failover(self):
        self.assertTrue(self.wait_up(10), "redis never up through the sentinels" + self.diag())
        self.assertTrue(self.mx.wait_log(rf"redis {MASTER_RE} up \(connected to 127\.0\.0\.1:{self.master.port}\)", 5),
                        self.diag())
        self.assertEqual(self.auth_plain("127.0.0.81", "guess1@example.org", "x")[0], 535)
        deadline = time.monotonic() + 5
        while not self.farm_keys(self.master.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(self.farm_keys(self.master.port), "the failure count is in the master" + self.diag())

        self.master.stop()  # the master dies; the sentinels promote the replica
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if f"127.0.0.1\n{self.replica.port}" in redis_cli(self.sentinels[0].port, "SENTINEL",
                                                                "get-master-addr-by-name", MASTER):
                break
            time.sleep(0.2)
        else:
            self.fail("the sentinels did not promote the replica" + self.diag())
        # logins work while Redis is being replaced (fail open)
        self.assertEqual(self.auth_plain("127.0.0.82", "alice@example.org", "alicepw")[0], 235, self.diag())
        self.assertTrue(self.wait_up(20), "redis not up again after the failover" + self.diag())
        self.assertTrue(self.mx.wait_log(rf"redis {MASTER_RE} up \(connected to 127\.0\.0\.1:{self.replica.port}\)", 5),
                        "mxfront connected to the new master" + self.diag())
        before = len(self.farm_keys(self.replica.port))
        self.assertEqual(self.auth_plain("127.0.0.83", "guess2@example.org", "x")[0], 535)
        deadline = time.monotonic() + 5
        while len(self.farm_keys(self.replica.port)) <= before and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertGreater(len(self.farm_keys(self.replica.port)), before,
                           "new failures are counted in the new master" + self.diag())


MASTER_RE = rf"master {MASTER} \(sentinel\)"

if __name__ == "__main__":
    unittest.main()

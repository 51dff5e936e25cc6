"""TLS to Redis (issue 16), end to end: a REAL redis-server with only a tls-port and client
certificates required (tls-auth-clients yes), a REAL Postfix qmqpd as mailbox server, and mxfront
instances with [redis] tls = true and the ratelimit filter.

Covers:
  * two instances with the CA and a client certificate share one per-client limit: the messages
    within it are spread over both, the next one is refused by either (the shared count proves the
    TLS traffic), redis-cli --tls sees mxfront's keys, /health shows the redis dependency up;
  * a CA that did not sign the server's certificate, no client certificate, a wrong
    tls_server_name: each instance shows the dependency down with its reason (certificate
    verification, ...) in /health and its log, and mail still flows (fail open);
  * a missing tls_ca_file and a lone tls_cert_file are config errors (file:line, exit 1);
  * Redis restarted on the same port: the dependency comes back up and the count is shared again.

Run from the repo root:  python3 -m unittest -v tests/integration/test_redis_tls.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix, redis-server, openssl)."""
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import (Mxfront, PostfixQmqp, SmtpConn, free_port, health_dependency, to_toml,  # noqa: E402
                       unique_marker, wait_health_dependency)
from redis_harness import RedisServer, RedisTls  # noqa: E402
from tls_harness import TestPki  # noqa: E402

LIMIT = 4  # messages per client address and hour


def send(mx, source, sender):
    """One message to instance `mx` from `source`: (MAIL reply, final reply or None)."""
    c = SmtpConn(mx.port, timeout=10, source=source)
    try:
        c.cmd("EHLO client.test")
        mail = c.cmd(f"MAIL FROM:<{sender}>")
        if mail[0] != 250:
            return mail, None
        if c.cmd("RCPT TO:<bob@example.org>")[0] != 250 or c.cmd("DATA")[0] != 354:
            return mail, None
        marker = unique_marker("tls")
        final = c.cmd(f"Subject: {marker}\r\n\r\nbody {marker}\r\n.")
        c.cmd("QUIT")
        return mail, final
    finally:
        c.close()


class RedisTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.client_cert = cls.pki.issue("redis-client", cn="mxfront.test", usage="clientAuth")
        cls.other_pki = TestPki()  # its CA signed nothing the server has
        cls.addClassCleanup(cls.other_pki.close)
        cls.redis = RedisServer(tls=RedisTls(cls.pki.server.cert, cls.pki.server.key, cls.pki.ca_cert))
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.instances = [cls.start_instance(f"mx{i}.test") for i in range(2)]

    @classmethod
    def redis_section(cls, **over):
        r = {"address": cls.redis.address, "timeout": 0.5, "tls": True, "tls_ca_file": cls.pki.ca_cert,
             "tls_cert_file": cls.client_cert.cert, "tls_key_file": cls.client_cert.key}
        r.update(over)
        return {k: v for k, v in r.items() if v is not None}

    @classmethod
    def config(cls, hostname, admin, **redis):
        return {
            "server": {"hostname": hostname, "io_threads": 1, "shutdown_timeout": 5},
            "admin": {"address": f"127.0.0.1:{admin}", "check_interval": 0.2, "check_rise": 1, "check_fall": 1},
            "redis": cls.redis_section(**redis),
            "profile.mx": {"filters": ["ratelimit", "relay_control"]},
            "ratelimit.limit": [{"name": "per_client", "key": "client", "what": "messages", "limit": LIMIT,
                                 "window": 3600, "action": "tempfail"}],
        }

    @classmethod
    def start_instance(cls, hostname, **redis):
        admin = free_port()
        mx = Mxfront([cls.pf.address], config=cls.config(hostname, admin, **redis))
        cls.addClassCleanup(mx.kill)
        mx.start()
        mx.admin = admin
        return mx

    def tearDown(self):
        for mx in self.instances:
            mx.check_alive()

    def diag(self, *extra):
        return "".join(f"\n--- {mx.config_path} log ---\n{mx.log()[-2500:]}" for mx in (*self.instances, *extra))

    def dependency(self, mx):
        return health_dependency(mx.admin, "(ratelimit)")

    def wait_dependency(self, mx, up, timeout=15.0):
        return wait_health_dependency(mx.admin, "(ratelimit)", up, timeout)

    def test_1_limit_holds_across_two_instances_over_tls(self):
        for mx in self.instances:
            self.assertIsNotNone(self.wait_dependency(mx, True), f"redis not up over TLS{self.diag()}")
        src = "127.0.0.31"
        for i in range(LIMIT):
            mail, final = send(self.instances[i % 2], src, f"c{i}@example.net")
            self.assertEqual(final and final[0], 250, f"message {i + 1} within the limit refused: {mail} {final}"
                             f"{self.diag()}")
        for mx in self.instances:
            mail, _ = send(mx, src, "over@example.net")
            self.assertEqual(mail[0], 451, f"{mx.config_path}: message {LIMIT + 1} let through: {mail}{self.diag()}")
            self.assertIn("per_client", mail[1])
        keys = self.redis.cli("--scan", "--pattern", "mxfront:*", cert=self.client_cert.cert, key=self.client_cert.key)
        self.assertEqual(keys.returncode, 0, keys.stderr)
        self.assertTrue(keys.stdout.split(), f"no mxfront key in Redis: {keys.stdout!r} {keys.stderr}")
        self.assertTrue(any("127.0.0.31" in k for k in keys.stdout.split()), keys.stdout)
        plain = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis.port), "PING"],
                               capture_output=True, text=True, timeout=30)
        self.assertNotIn("PONG", plain.stdout, "the server answers plain TCP: the test proves nothing")

    def check_down(self, reason, **redis):
        mx = self.start_instance("bad.test", **redis)
        try:
            d = self.wait_dependency(mx, False)
            self.assertIsNotNone(d, f"/health shows redis up{self.diag(mx)}")
            deadline = time.monotonic() + 10
            while not re.search(reason, d["passive_error"]) and time.monotonic() < deadline:
                time.sleep(0.2)
                d = self.dependency(mx)
            self.assertRegex(d["passive_error"], reason, f"{d}{self.diag(mx)}")
            self.assertTrue(mx.wait_log(r"ratelimit: redis \S+ down \(.*" + reason), f"reason not logged{self.diag(mx)}")
            mail, final = send(mx, "127.0.0.40", "open@example.net")
            self.assertEqual(final and final[0], 250, f"mail does not flow with Redis down: {mail} {final}{self.diag(mx)}")
            mx.check_alive()
        finally:
            mx.kill()

    def test_2_unknown_ca_is_down_with_its_reason_and_mail_flows(self):
        self.check_down("certificate verification failed", tls_ca_file=self.other_pki.ca_cert)

    def test_3_no_client_certificate_is_down(self):
        # TLS 1.3: the server refuses the missing certificate after the handshake, with an alert that
        # the client reads, or that a reset overtakes when the client's first command is on its way.
        self.check_down("certificate required|Connection reset by peer", tls_cert_file=None, tls_key_file=None)

    def test_4_wrong_server_name_is_down(self):
        self.check_down("certificate verification failed: hostname mismatch", tls_server_name="other.test")

    def test_5_right_server_name_is_up(self):
        mx = self.start_instance("named.test", tls_server_name="mx.test")
        try:
            self.assertIsNotNone(self.wait_dependency(mx, True), f"redis not up with tls_server_name{self.diag(mx)}")
        finally:
            mx.kill()

    def check_config_error(self, pattern, **redis):
        mx = Mxfront([self.pf.address], config=self.config("cfg.test", free_port(), **redis))
        path = os.path.join(self.redis.dir, f"bad-{unique_marker('cfg')}.toml")
        with open(path, "w") as f:
            f.write(to_toml(mx.build_config()))
        p = subprocess.run([mx.binary, "--config", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout + p.stderr, rf"{path}:\d+: {pattern}")

    def test_6_bad_tls_files_are_config_errors(self):
        self.check_config_error(r"redis\.tls_ca_file: cannot load '/nonexistent/ca\.pem'", tls_ca_file="/nonexistent/ca.pem")
        self.check_config_error(r"redis\.tls_cert_file and redis\.tls_key_file go together", tls_key_file=None)

    def test_7_redis_restarted_dependency_back_up(self):
        for mx in self.instances:
            self.assertIsNotNone(self.wait_dependency(mx, True), self.diag())
        self.redis.stop()
        try:
            for mx in self.instances:
                self.assertIsNotNone(self.wait_dependency(mx, False), f"/health still shows redis up{self.diag()}")
        finally:
            self.redis.start()
        for mx in self.instances:
            self.assertIsNotNone(self.wait_dependency(mx, True), f"redis not back up over TLS{self.diag()}")
        src = "127.0.0.50"  # the count is shared again (the restarted Redis starts empty)
        for i in range(LIMIT):
            mail, final = send(self.instances[i % 2], src, f"r{i}@example.net")
            self.assertEqual(final and final[0], 250, f"{mail} {final}{self.diag()}")
        mail, _ = send(self.instances[0], src, "over@example.net")
        self.assertEqual(mail[0], 451, f"the limit is not shared after the restart: {mail}{self.diag()}")


if __name__ == "__main__":
    unittest.main()

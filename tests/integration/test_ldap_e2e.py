"""mxfront end to end against a REAL OpenLDAP slapd (slapd_harness.Slapd): the same server as
test_tls_auth.py (three listeners, [tls], [auth], REAL Postfix qmqpd) with only [directory] changed
from the users file to LDAP, as the README promises ("by changing config only").

Covers: RCPT on mx for valid / unknown / disabled / alternate addresses and filter-injection
attempts; AUTH through an LDAP bind (PLAIN and LOGIN, by mail and by uid, sender ownership from the
entry) and its failures (wrong / empty password, unknown user, disabled account, injection);
slapd stopped mid-run (451 4.3.0 / 454 4.7.0, then 250 again after a restart without restarting
mxfront); slapd hung with SIGSTOP and directory.timeout = 1 (451 within a few seconds, recovery
after SIGCONT); failover from a closed port to slapd. slapd that cannot start fails the tests.

Run from the repo root:  python3 -m unittest -v tests/integration/test_ldap_e2e.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix)."""
import json
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
sys.path.insert(0, HERE)
from mxharness import Mxfront, QmqpSink, free_port, http_get, unique_marker  # noqa: E402
from slapd_harness import ROOT_DN, ROOT_PW, SUFFIX, Slapd  # noqa: E402
from tls_harness import SmtpTls, profile_overrides  # noqa: E402
from test_tls_auth import TlsAuthServer, b64, plain_response, run_swaks  # noqa: E402

_counter = [0]
DIRECTORY_THREADS = 2  # the default directory.threads


def fresh(tag):
    """An address nobody has looked up yet (so no cache entry can answer for it)."""
    _counter[0] += 1
    return f"{tag}-{os.getpid()}-{_counter[0]}-{time.monotonic_ns() % 1000000}"


def ldap_connections(mx, slapd):
    """mxfront's established TCP connections to slapd (its persistent directory connections)."""
    out = subprocess.run(["ss", "-tanpH", "state", "established", f"( dport = :{slapd.port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    return sum(1 for line in out.splitlines() if f"pid={mx.pid}," in line)


def ldap_directory(uris, timeout=1):
    return {"type": "ldap", "uris": list(uris), "base_dn": SUFFIX, "timeout": timeout}


class LdapE2ETest(TlsAuthServer, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.slapd = Slapd()
        cls.addClassCleanup(cls.slapd.close)
        cls.slapd.start()
        cls.start_stack(directory=ldap_directory([cls.slapd.uri]))
        cls.baseline -= ldap_connections(cls.mx, cls.slapd)  # 0: warm-up does no lookups

    def tearDown(self):
        if self.slapd.paused:
            self.slapd.resume()
        if self.slapd.proc is None:
            self.slapd.start()
        super().tearDown()

    def diag(self):
        return super().diag() + f"\n--- slapd log ---\n{self.slapd.log()[-1500:]}"

    def assert_no_leak(self):
        """The fd count, not counting the directory's persistent connections to slapd (at most
        one per directory thread and purpose), returns to the baseline; no CLOSE_WAIT."""
        deadline = time.monotonic() + 5
        while True:
            ldap = ldap_connections(self.mx, self.slapd)
            n = self.mx.fd_count() - ldap
            if n <= self.baseline or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        self.assertLessEqual(n, self.baseline, f"fd count {n} (+{ldap} to slapd) did not return to the baseline "
                                               f"{self.baseline}{self.diag()}")
        self.assertLessEqual(ldap, 2 * DIRECTORY_THREADS, f"{ldap} connections to slapd{self.diag()}")
        cw = self.mx.close_wait_count()
        self.assertEqual(cw, 0, f"{cw} CLOSE_WAIT sockets left in mxfront{self.diag()}")

    def rcpt(self, c, address):
        code, lines = c.cmd(f"RCPT TO:<{address}>")
        return code, lines[-1] if lines else ""

    def mx_session(self, tls=False):
        c = self.session("mx", tls=tls)
        code, lines = c.cmd("MAIL FROM:<someone@example.net>")
        self.assertEqual(code, 250, lines)
        return c

    # ------------------------------------------------------------------------------------------
    def test_only_the_directory_section_differs_from_the_users_file_setup(self):
        file_setup = profile_overrides(self.pki.server.cert, self.pki.server.key,
                                       {"type": "file", "users_file": self.users})
        ours = dict(self.mx.overrides)
        self.assertEqual(ours.pop("directory")["type"], "ldap")
        file_setup.pop("directory")
        self.assertEqual(ours, file_setup)

    # ------------------------------------------------------------------------------------------
    # recipients on mx
    # ------------------------------------------------------------------------------------------
    def test_rcpt_valid_unknown_disabled_alternate(self):
        with self.mx_session() as c:
            for rcpt, want in (("bob@example.org", "250 2.1.5"), ("alice@example.org", "250 2.1.5"),
                               ("alias-alice@example.org", "250 2.1.5"), ("BOB@Example.ORG", "250 2.1.5"),
                               ("nobody@example.org", "550 5.1.1"), ("carol@example.org", "550 5.2.1"),
                               ("uid=bob@example.org", "550 5.1.1"), ("victim@elsewhere.test", "554 5.7.1")):
                with self.subTest(rcpt=rcpt):
                    code, last = self.rcpt(c, rcpt)
                    self.assertEqual(last[:9], want, f"{rcpt}: {last}{self.diag()}")
        self.assertTrue(self.mx.wait_log(r"reject id=\S+ client=127\.0\.0\.1 rcpt=\"nobody@example\.org\""), self.diag())

    def test_rcpt_filter_injection_is_never_accepted(self):
        attempts = ["*@example.org", "*)(uid=*@example.org", "*)(mail=*@example.org", "*@*",
                    "alice*@example.org", "*lice@example.org", "\\2a@example.org", "bob@example.org)(mail=*",
                    "(mail=*)@example.org", "*)(|(mail=*@example.org", "al*ce@example.org", "bob\\00@example.org",
                    '"*"@example.org', '"*)(uid=*"@example.org']
        with self.mx_session() as c:
            for a in attempts:
                with self.subTest(address=a):
                    code, last = self.rcpt(c, a)
                    self.assertIsNotNone(code, f"connection closed at {a!r}{self.diag()}")
                    self.assertNotEqual(code, 250, f"{a!r} accepted: {last}")
                    self.assertTrue(500 <= code < 600, f"{a!r}: expected 550 or a 5xx syntax error, got {last}"
                                                       f"{self.diag()}")
                    if code == 550:
                        self.assertEqual(last[:9], "550 5.1.1", last)
            # the session and the directory are fine afterwards
            code, last = self.rcpt(c, "bob@example.org")
            self.assertEqual(code, 250, last)
        self.assertEqual([d for d in self.pf.deliveries() if d.recipient and "*" in d.recipient], [])

    def test_swaks_starttls_delivery_to_an_ldap_recipient(self):
        marker = unique_marker("ldap-mx")
        p = run_swaks("--port", str(self.mx_port), "--tls", "--from", "sender@example.net",
                      "--to", "bob@example.org,alias-alice@example.org", "--header", f"Subject: {marker}")
        self.assertEqual(p.returncode, 0, f"swaks failed:\n{p.stdout}\n{p.stderr}{self.diag()}")
        ds = self.pf.deliveries(10, 2, match=marker.encode())
        self.assertEqual(sorted(d.recipient for d in ds), ["alias-alice@example.org", "bob@example.org"], self.diag())
        for d in ds:
            self.assertEqual(self.tls_received(d.data).group("proto"), b"ESMTPS")
        p = run_swaks("--port", str(self.mx_port), "--tls", "--from", "sender@example.net", "--to", "carol@example.org")
        self.assertEqual(p.returncode, 24, f"disabled recipient: swaks exit {p.returncode}\n{p.stdout}")

    # ------------------------------------------------------------------------------------------
    # AUTH through an LDAP bind
    # ------------------------------------------------------------------------------------------
    def test_swaks_auth_plain_and_login_via_ldap_bind_relay(self):
        marker = unique_marker("ldap-auth")
        for mech, user, pw, sender, to in (("PLAIN", "alice@example.org", "alicepw", "alice@example.org", "a@far.test"),
                                           ("LOGIN", "bob", "bobpw", "bob@example.org", "b@far.test")):
            with self.subTest(mechanism=mech):
                p = run_swaks("--port", str(self.sub_port), "--tls", "--auth", mech, "--auth-user", user,
                              "--auth-password", pw, "--from", sender, "--to", to, "--header", f"Subject: {marker}")
                self.assertEqual(p.returncode, 0, f"swaks failed:\n{p.stdout}\n{p.stderr}{self.diag()}")
                self.assertTrue(self.mx.wait_log(rf"auth id=\S+ client=127\.0\.0\.1 user=\"{re.escape(user)}\" "
                                                 rf"mechanism={mech} result=ok"), self.diag())
        p = run_swaks("--port", str(self.subs_port), "--tlsc", "--auth", "PLAIN", "--auth-user", "alice",
                      "--auth-password", "alicepw", "--from", "alias-alice@example.org", "--to", "c@far.test",
                      "--header", f"Subject: {marker}")
        self.assertEqual(p.returncode, 0, f"swaks failed:\n{p.stdout}\n{p.stderr}{self.diag()}")
        ds = self.pf.deliveries(10, 3, match=marker.encode())
        self.assertEqual(sorted(d.recipient for d in ds), ["a@far.test", "b@far.test", "c@far.test"], self.diag())
        for d in ds:
            self.assertEqual(self.tls_received(d.data).group("proto"), b"ESMTPSA")
        self.assertNotIn("alicepw", self.mx.log())

    def test_sender_ownership_comes_from_the_ldap_entry(self):
        with self.session("submissions") as c:
            self.login(c, "alice", "alicepw")
            for sender, want in (("bob@example.org", "553 5.7.1"), ("alice@example.org", "250 2.1.0")):
                code, lines = c.cmd(f"MAIL FROM:<{sender}>")
                self.assertEqual(lines[-1][:9], want, f"{sender}: {lines}")
                c.cmd("RSET")
            code, lines = c.cmd("MAIL FROM:<alias-alice@example.org>")
            self.assertEqual(lines[-1][:9], "250 2.1.0", f"alternate address as sender: {lines}")

    def test_auth_failures_via_ldap(self):
        cases = [("alice@example.org", "wrong"), ("alice", ""), ("alice@example.org", ""),
                 ("nobody@example.org", "x"), ("carol@example.org", "carolpw"), ("carol", "carolpw"),
                 ("*", "alicepw"), ("*)(uid=*", "alicepw"), ("alice)(uid=*", "alicepw"),
                 ("uid=alice,ou=people," + SUFFIX, "alicepw")]
        for user, password in cases:
            with self.subTest(user=user, password=password), self.session("submissions") as c:
                code, lines = c.cmd(f"AUTH PLAIN {plain_response(user, password)}")
                self.assertNotEqual(code, 235, f"AUTH as {user!r}/{password!r} succeeded: {lines}")
                self.assertIn(lines[-1][:9], ("535 5.7.8", "501 5.5.2"), f"{user!r}/{password!r}: {lines}"
                                                                        f"{self.diag()}")
        # anonymous-bind trap: LOGIN with an empty password
        with self.session("submission") as c:
            self.assertEqual(c.cmd("AUTH LOGIN")[0], 334)
            self.assertEqual(c.cmd(b64("alice"))[0], 334)
            code, lines = c.cmd("")
            self.assertNotEqual(code, 235, f"empty password accepted: {lines}")

    # ------------------------------------------------------------------------------------------
    # directory faults
    # ------------------------------------------------------------------------------------------
    def test_slapd_stopped_gives_451_then_250_after_restart(self):
        pid = self.mx.pid
        erin = fresh("erin")
        self.slapd.add_user(erin, "erinpw", mail=f"{erin}@example.org")
        with self.mx_session() as c:  # a directory that works: warm connections in mxfront
            self.assertEqual(self.rcpt(c, "bob@example.org")[0], 250)
        self.slapd.stop()
        with self.mx_session() as c:
            for rcpt in (f"{erin}@example.org", f"{fresh('ghost')}@example.org", f"{fresh('ghost')}@example.org"):
                t0 = time.monotonic()
                code, last = self.rcpt(c, rcpt)
                self.assertEqual(last[:9], "451 4.3.0", f"{rcpt} with slapd down: {last}{self.diag()}")
                self.assertLess(time.monotonic() - t0, 5)
        with self.session("submissions") as c:
            code, lines = c.cmd(f"AUTH PLAIN {plain_response('alice@example.org', 'alicepw')}")
            self.assertEqual(lines[-1][:9], "454 4.7.0", f"AUTH with slapd down: {lines}{self.diag()}")
        self.assertTrue(self.mx.wait_log(r"auth id=\S+ .*user=\"alice@example\.org\" result=unavailable"), self.diag())
        self.slapd.start()
        with self.mx_session() as c:
            code, last = self.rcpt(c, f"{erin}@example.org")
            self.assertEqual(last[:9], "250 2.1.5", f"after slapd restart: {last}{self.diag()}")
            self.assertEqual(self.rcpt(c, f"{fresh('ghost')}@example.org")[1][:9], "550 5.1.1")
            for _ in range(4):  # exercise every directory worker
                self.assertEqual(self.rcpt(c, f"{fresh('ghost')}@example.org")[1][:9], "550 5.1.1")
        with self.session("submissions") as c:
            self.login(c, "alice@example.org", "alicepw")
        self.assertEqual(self.mx.pid, pid, "mxfront was restarted")
        self.assertTrue(self.mx.alive())
        self.assert_no_leak()

    def test_slapd_paused_gives_451_within_a_few_seconds(self):
        frank = fresh("frank")
        self.slapd.add_user(frank, "frankpw", mail=f"{frank}@example.org")
        self.slapd.pause()
        try:
            with self.mx_session() as c:
                t0 = time.monotonic()
                code, last = self.rcpt(c, f"{frank}@example.org")
                elapsed = time.monotonic() - t0
                self.assertEqual(last[:9], "451 4.3.0", f"hung slapd: {last} after {elapsed:.1f}s{self.diag()}")
                self.assertLess(elapsed, 5, "directory.timeout = 1 not honoured")
                t0 = time.monotonic()
                code, last = self.rcpt(c, f"{fresh('ghost')}@example.org")
                self.assertEqual(last[:9], "451 4.3.0", last)
                self.assertLess(time.monotonic() - t0, 5)
            with self.session("submissions") as c:
                t0 = time.monotonic()
                code, lines = c.cmd(f"AUTH PLAIN {plain_response('bob@example.org', 'bobpw')}")
                self.assertEqual(lines[-1][:9], "454 4.7.0", f"AUTH with slapd hung: {lines}")
                self.assertLess(time.monotonic() - t0, 5)
        finally:
            self.slapd.resume()
        with self.mx_session() as c:
            code, last = self.rcpt(c, f"{frank}@example.org")
            self.assertEqual(last[:9], "250 2.1.5", f"after SIGCONT: {last}{self.diag()}")
        with self.session("submissions") as c:
            self.login(c, "bob@example.org", "bobpw")
        self.assert_no_leak()

    def test_failover_from_a_closed_port_to_slapd(self):
        closed = f"ldap://127.0.0.1:{free_port()}"
        mx2 = Mxfront([self.pf.address], profile_overrides(self.pki.server.cert, self.pki.server.key,
                                                            ldap_directory([closed, self.slapd.uri])))
        self.addCleanup(mx2.kill)
        mx2.start()
        (_, mx_port), _, (_, subs_port) = mx2.listeners
        with SmtpTls(mx_port, self.ctx) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<someone@example.net>")[0], 250)
            for rcpt, want in (("bob@example.org", "250 2.1.5"), (f"{fresh('ghost')}@example.org", "550 5.1.1"),
                               ("carol@example.org", "550 5.2.1")):
                code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
                self.assertEqual(lines[-1][:9], want, f"{rcpt}: {lines}\n{mx2.log()[-3000:]}")
        with SmtpTls(subs_port, self.ctx, implicit=True) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            code, lines = c.cmd(f"AUTH PLAIN {plain_response('alice@example.org', 'alicepw')}")
            self.assertEqual(code, 235, f"{lines}\n{mx2.log()[-3000:]}")
        mx2.check_alive()


class LdapHealthTest(unittest.TestCase):
    """/health checks the directory the way a lookup uses it: connect, bind as the configured DN,
    read the base. A wrong bind password (every RCPT would get 451) shows the server down with the
    bind error — not "up" because its port answers — and the right one shows it up."""

    @classmethod
    def setUpClass(cls):
        cls.slapd = Slapd()
        cls.addClassCleanup(cls.slapd.close)
        cls.slapd.start()
        cls.sink = QmqpSink().__enter__()
        cls.addClassCleanup(cls.sink.__exit__, None, None, None)

    def health_of(self, password):
        pw = os.path.join(self.slapd.dir, f"bindpw-{self._testMethodName}")
        with open(pw, "w") as f:
            f.write(password + "\n")
        port = free_port()
        mx = Mxfront([self.sink.address], config={
            "directory": dict(ldap_directory([self.slapd.uri], timeout=2), bind_dn=ROOT_DN, bind_password_file=pw),
            "admin": {"address": f"127.0.0.1:{port}", "check_interval": 0.2, "check_fall": 1, "check_rise": 1}})
        self.addCleanup(mx.kill)
        mx.start()
        deadline = time.monotonic() + 15
        dep = {}
        while time.monotonic() < deadline:
            deps = {d["name"]: d for d in json.loads(http_get(port, "/health")[1])["dependencies"]}
            dep = deps.get(self.slapd.uri, {})
            if dep.get("checked"):
                break
            time.sleep(0.1)
        self.assertEqual(dep.get("kind"), "ldap", dep)
        return dep

    def test_a_wrong_bind_password_shows_the_directory_down(self):
        dep = self.health_of("not-the-password")
        self.assertFalse(dep["up"], dep)
        self.assertIn(f"bind as {ROOT_DN}", dep["last_error"])

    def test_the_right_bind_password_shows_the_directory_up(self):
        dep = self.health_of(ROOT_PW)
        self.assertTrue(dep["up"], dep)


if __name__ == "__main__":
    unittest.main()

"""TLS and AUTH end to end: mxfront with three listeners (mx, submission, submissions), a users
file (directory.type = "file"), a throwaway CA (tls_harness), a REAL Postfix qmqpd delivering into
Maildirs, and real clients: swaks, Python smtplib / ssl, raw sockets.

Covers: STARTTLS on mx (ESMTPS), STARTTLS + AUTH PLAIN / LOGIN on submission and implicit TLS + AUTH
on submissions (ESMTPSA, relay to an external domain), no AUTH before TLS (538), 530 without AUTH,
535 with a growing delay, 421 at the failure limit, AUTH cancel / bad base64, sender ownership
(553, alternate address), the STARTTLS command-injection defence (CVE-2011-0411), handshake garbage
and silence, no relay without AUTH on any profile, TLS 1.1 refused, tls.min_version = "1.3",
certificate reload on SIGHUP (also with a broken certificate) and --check-config of bad [tls].
After every fault case the fd count goes back to its baseline and no CLOSE_WAIT socket is left.

Run from the repo root:  python3 -m unittest -v tests/integration/test_tls_auth.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix)."""
import base64
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import (HarnessError, Mxfront, PostfixQmqp, SmtpConn, free_port, mxfront_bin, to_toml,  # noqa: E402
                       unique_marker, wait_listening)
from tls_harness import (SERVER_NAME, SmtpTls, TestPki, command, ehlo_keywords, peer_certificate,  # noqa: E402
                         profile_overrides, read_reply, tls11_context, users_file)

# Our Received header when TLS was used (LF line ends, as QMQP carries it).
TLS_RECEIVED_RE = re.compile(
    rb"^Received: from (?P<helo>\S+) \((?P<addr>[^)]*)\)\n"
    rb"\t\(using (?P<version>TLSv1\.[0-9]) with cipher (?P<cipher>[A-Za-z0-9_-]+)\)\n"
    rb"\tby (?P<host>\S+) \(mxfront\) with (?P<proto>E?SMTPS?A?) id (?P<id>[^;\s]+)"
    rb"(?:\n\tfor <?(?P<rcpt>[^>;\s]+)>?)?; (?P<date>[^\n]+)\n", re.M)

SWAKS_TIMEOUT = 60


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def plain_response(user, password):
    return b64(f"\0{user}\0{password}")


def run_swaks(*args):
    if not shutil.which("swaks"):
        raise HarnessError("swaks missing (apt-get install swaks libnet-ssleay-perl)")
    return subprocess.run(["swaks", "--server", "127.0.0.1", "--ehlo", "client.test", "--timeout", "15", *args],
                          capture_output=True, text=True, timeout=SWAKS_TIMEOUT)


class TlsAuthServer:
    """Shared set-up: PKI + users file + Postfix qmqpd + mxfront (mx, submission, submissions)."""

    @classmethod
    def start_stack(cls, directory=None, limits=None, extra=None):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.users = users_file(os.path.join(cls.pki.dir, "users"))
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        directory = directory or {"type": "file", "users_file": cls.users}
        cfg = profile_overrides(cls.pki.server.cert, cls.pki.server.key, directory, limits=limits)
        cfg.update(extra or {})
        cls.mx = Mxfront([cls.pf.address], cfg)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        (_, cls.mx_port), (_, cls.sub_port), (_, cls.subs_port) = cls.mx.listeners
        cls.ctx = cls.pki.client_context()
        cls.baseline = cls.warm_up()

    @classmethod
    def warm_up(cls):
        """Plain and TLS sessions on every listener (lazy per-thread state done); returns the
        settled fd count, the leak baseline."""
        cls.mx.warm_up()
        for _ in range(2):
            peer_certificate(cls.mx_port, cls.ctx, starttls=True)
            peer_certificate(cls.sub_port, cls.ctx, starttls=True)
            peer_certificate(cls.subs_port, cls.ctx)
        return cls.mx.settled_fd_count()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return (f"\n--- mxfront log ---\n{self.mx.log()[-4000:]}"
                f"\n--- postfix maillog ---\n{self.pf.log()[-2000:]}")

    def assert_no_leak(self):
        n = self.mx.wait_fd_baseline(self.baseline, 5)
        self.assertLessEqual(n, self.baseline, f"fd count {n} did not return to the baseline {self.baseline}"
                                               f"{self.diag()}")
        cw = self.mx.close_wait_count()
        self.assertEqual(cw, 0, f"{cw} CLOSE_WAIT sockets left in mxfront{self.diag()}")

    def assert_still_serves(self):
        cert, version, _ = peer_certificate(self.subs_port, self.ctx)
        self.assertEqual(cert["serialNumber"], self.pki.server.serial)
        cert, version, _ = peer_certificate(self.mx_port, self.ctx, starttls=True)
        self.assertEqual(cert["serialNumber"], self.pki.server.serial)

    def one_delivery(self, marker, recipient, timeout=10):
        ds = [d for d in self.pf.deliveries(timeout, 1, match=marker.encode()) if d.recipient == recipient]
        self.assertEqual(len(ds), 1, f"expected one delivery to {recipient}{self.diag()}")
        return ds[0]

    def tls_received(self, data):
        m = TLS_RECEIVED_RE.search(data)
        self.assertIsNotNone(m, f"no mxfront Received header with a TLS clause in:\n{data[:1500]!r}")
        return m

    def session(self, which, tls=True):
        """An SmtpTls client after EHLO: which = 'mx' | 'submission' (STARTTLS when tls) |
        'submissions' (implicit TLS)."""
        if which == "submissions":
            c = SmtpTls(self.subs_port, self.ctx, implicit=True)
        else:
            c = SmtpTls(self.mx_port if which == "mx" else self.sub_port, self.ctx)
        try:
            self.assertEqual(c.greeting[0], 220, c.greeting)
            code, lines = c.cmd("EHLO client.test")
            self.assertEqual(code, 250, lines)
            if tls and which != "submissions":
                c.starttls()
                code, lines = c.cmd("EHLO client.test")
                self.assertEqual(code, 250, lines)
            c.ehlo = ehlo_keywords(lines)
        except BaseException:
            c.close()
            raise
        return c

    def login(self, c, user="alice@example.org", password="alicepw"):
        code, lines = c.cmd(f"AUTH PLAIN {plain_response(user, password)}")
        self.assertEqual(code, 235, f"AUTH as {user}: {lines}{self.diag()}")
        self.assertTrue(lines[-1].startswith("235 2.7.0"), lines)


class TlsAuthTest(TlsAuthServer, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_stack()

    # ------------------------------------------------------------------------------------------
    # delivery over TLS, with and without AUTH
    # ------------------------------------------------------------------------------------------
    def test_swaks_starttls_on_mx_is_delivered_with_esmtps_and_tls_version(self):
        marker = unique_marker("mx-tls")
        p = run_swaks("--port", str(self.mx_port), "--tls", "--from", "sender@example.net",
                      "--to", "bob@example.org", "--header", f"Subject: {marker}", "--body", f"body {marker}")
        self.assertEqual(p.returncode, 0, f"swaks failed:\n{p.stdout}\n{p.stderr}{self.diag()}")
        self.assertRegex(p.stdout, r"(?m)^<-  220 2\.0\.0 ", "no 220 to STARTTLS")
        self.assertRegex(p.stdout, r"(?m)^=== TLS started with cipher TLSv1\.[23]:")
        self.assertRegex(p.stdout, r"(?m)^ ?<~  250 2\.0\.0 ", "no 250 after DATA over TLS")
        d = self.one_delivery(marker, "bob@example.org")
        m = self.tls_received(d.data)
        self.assertEqual(m.group("proto"), b"ESMTPS")
        self.assertIn(m.group("version"), (b"TLSv1.2", b"TLSv1.3"))
        self.assertEqual(m.group("helo"), b"client.test")
        self.assertEqual(m.group("host"), b"mx.test")
        self.assertEqual(m.group("rcpt"), b"bob@example.org")
        sid = m.group("id").decode().rsplit(".", 1)[0]
        self.assertTrue(self.mx.wait_log(rf"tls id={re.escape(sid)} client=127\.0\.0\.1 "
                                         rf"{re.escape(m.group('version').decode())} with cipher "
                                         rf"{re.escape(m.group('cipher').decode())}", 5),
                        f"no tls log line for session {sid}{self.diag()}")

    def test_mx_offers_starttls_but_never_auth(self):
        with self.session("mx", tls=False) as c:
            _code, lines = c.cmd("EHLO client.test")
            kw = ehlo_keywords(lines)
            self.assertIn("STARTTLS", kw, lines)
            self.assertNotIn("AUTH", kw, lines)
            c.starttls()
            code, lines = c.cmd("EHLO client.test")
            self.assertEqual(code, 250)
            kw = ehlo_keywords(lines)
            self.assertNotIn("AUTH", kw, f"mx offers AUTH after TLS: {lines}")
            self.assertNotIn("STARTTLS", kw, f"STARTTLS offered again inside TLS: {lines}")
            code, lines = c.cmd(f"AUTH PLAIN {plain_response('alice@example.org', 'alicepw')}")
            self.assertTrue(500 <= code < 600 and code != 535, f"AUTH on mx: {lines}")
            code, lines = c.cmd("STARTTLS")
            self.assertEqual(lines[-1][:9], "503 5.5.1", f"second STARTTLS: {lines}")

    def test_swaks_submission_starttls_auth_plain_relays_to_external_domain(self):
        marker = unique_marker("sub-plain")
        p = run_swaks("--port", str(self.sub_port), "--tls", "--auth", "PLAIN",
                      "--auth-user", "alice@example.org", "--auth-password", "alicepw",
                      "--from", "alice@example.org", "--to", "friend@elsewhere.test",
                      "--header", f"Subject: {marker}", "--body", f"body {marker}")
        self.assertEqual(p.returncode, 0, f"swaks failed:\n{p.stdout}\n{p.stderr}{self.diag()}")
        self.assertRegex(p.stdout, r"(?m)^ ?<~  235 2\.7\.0 ")
        d = self.one_delivery(marker, "friend@elsewhere.test")
        self.assertIn("/catchall/Maildir/", d.path)
        m = self.tls_received(d.data)
        self.assertEqual(m.group("proto"), b"ESMTPSA")
        self.assertRegex(d.data, rb"(?m)^Return-Path: <alice@example\.org>$")
        sid = m.group("id").decode().rsplit(".", 1)[0]
        self.assertTrue(self.mx.wait_log(rf"auth id={re.escape(sid)} .*user=\"alice@example\.org\" .*mechanism=PLAIN"
                                         rf" result=ok", 5), self.diag())
        self.assertNotIn("alicepw", self.mx.log(), "password in the log")

    def test_swaks_submission_starttls_auth_login_relays_to_external_domain(self):
        marker = unique_marker("sub-login")
        p = run_swaks("--port", str(self.sub_port), "--tls", "--auth", "LOGIN",
                      "--auth-user", "bob@example.org", "--auth-password", "bobpw",
                      "--from", "bob@example.org", "--to", "someone@remote.test",
                      "--header", f"Subject: {marker}", "--body", f"body {marker}")
        self.assertEqual(p.returncode, 0, f"swaks failed:\n{p.stdout}\n{p.stderr}{self.diag()}")
        self.assertRegex(p.stdout, r"(?m)^ ?<~  334 VXNlcm5hbWU6", "LOGIN username prompt")
        d = self.one_delivery(marker, "someone@remote.test")
        m = self.tls_received(d.data)
        self.assertEqual(m.group("proto"), b"ESMTPSA")
        sid = m.group("id").decode().rsplit(".", 1)[0]
        self.assertTrue(self.mx.wait_log(rf"auth id={re.escape(sid)} .*user=\"bob@example\.org\" .*mechanism=LOGIN"
                                         rf" result=ok", 5), self.diag())

    def test_swaks_submissions_implicit_tls_auth_relays(self):
        marker = unique_marker("subs")
        p = run_swaks("--port", str(self.subs_port), "--tlsc", "--auth", "PLAIN",
                      "--auth-user", "alice@example.org", "--auth-password", "alicepw",
                      "--from", "alice@example.org", "--to", "bob@example.org,ext@elsewhere.test",
                      "--header", f"Subject: {marker}", "--body", f"body {marker}")
        self.assertEqual(p.returncode, 0, f"swaks failed:\n{p.stdout}\n{p.stderr}{self.diag()}")
        ds = self.pf.deliveries(10, 2, match=marker.encode())
        self.assertEqual(sorted(d.recipient for d in ds), ["bob@example.org", "ext@elsewhere.test"], self.diag())
        for d in ds:
            m = self.tls_received(d.data)
            self.assertEqual(m.group("proto"), b"ESMTPSA")
            self.assertIsNone(m.group("rcpt"), "no 'for' clause with two recipients")

    def test_smtplib_submissions_and_submission_send(self):
        marker = unique_marker("smtplib")
        msg = f"From: <alice@example.org>\r\nTo: <x@far.test>\r\nSubject: {marker}\r\n\r\nvia smtplib\r\n"
        with smtplib.SMTP_SSL("127.0.0.1", self.subs_port, local_hostname="client.test", timeout=15,
                              context=self.ctx) as c:
            c.login("alice@example.org", "alicepw")
            self.assertEqual(c.sendmail("alice@example.org", ["x@far.test"], msg), {})
        with smtplib.SMTP("127.0.0.1", self.sub_port, local_hostname="client.test", timeout=15) as c:
            c.starttls(context=self.ctx)
            c.ehlo("client.test")
            self.assertIn("plain", c.esmtp_features.get("auth", "").lower().split())
            self.assertIn("login", c.esmtp_features.get("auth", "").lower().split())
            c.login("bob@example.org", "bobpw")
            self.assertEqual(c.sendmail("bob@example.org", ["y@far.test"], msg.replace("x@far", "y@far")), {})
        ds = self.pf.deliveries(10, 2, match=marker.encode())
        self.assertEqual(sorted(d.recipient for d in ds), ["x@far.test", "y@far.test"], self.diag())

    # ------------------------------------------------------------------------------------------
    # AUTH only over TLS, and required on submission profiles
    # ------------------------------------------------------------------------------------------
    def test_submission_offers_auth_only_after_tls_and_answers_538_before(self):
        with self.session("submission", tls=False) as c:
            _code, lines = c.cmd("EHLO client.test")
            kw = ehlo_keywords(lines)
            self.assertIn("STARTTLS", kw, lines)
            self.assertNotIn("AUTH", kw, f"AUTH advertised before TLS: {lines}")
            code, lines = c.cmd(f"AUTH PLAIN {plain_response('alice@example.org', 'alicepw')}")
            self.assertEqual(lines[-1][:10], "538 5.7.11", lines)
            code, lines = c.cmd("AUTH LOGIN")
            self.assertEqual(lines[-1][:10], "538 5.7.11", lines)
            code, lines = c.cmd("MAIL FROM:<alice@example.org>")
            self.assertEqual(lines[-1][:9], "530 5.7.0", f"MAIL before TLS/AUTH: {lines}")
            c.starttls()
            code, lines = c.cmd("EHLO client.test")
            kw = ehlo_keywords(lines)
            self.assertEqual(set(kw.get("AUTH", "").upper().split()), {"PLAIN", "LOGIN"}, lines)
            self.assertNotIn("STARTTLS", kw, lines)
            self.login(c)
        self.assertTrue(self.mx.wait_log(r"user=\"alice@example\.org\" mechanism=PLAIN result=ok"))

    def test_submissions_offers_auth_at_once(self):
        with self.session("submissions") as c:
            self.assertEqual(set(c.ehlo.get("AUTH", "").upper().split()), {"PLAIN", "LOGIN"}, c.ehlo)
            self.assertNotIn("STARTTLS", c.ehlo)
            self.assertIn(c.tls_version, ("TLSv1.2", "TLSv1.3"))

    def test_swaks_auth_without_tls_fails_with_exit_28(self):
        p = run_swaks("--port", str(self.sub_port), "--auth", "PLAIN", "--auth-user", "alice@example.org",
                      "--auth-password", "alicepw", "--from", "alice@example.org", "--to", "bob@example.org")
        self.assertEqual(p.returncode, 28, f"swaks exit {p.returncode}:\n{p.stdout}\n{p.stderr}")
        self.assertIn("did not advertise authentication", p.stdout + p.stderr)

    def test_mail_without_auth_is_530_on_submission_and_submissions(self):
        for which in ("submission", "submissions"):
            with self.subTest(profile=which), self.session(which) as c:
                code, lines = c.cmd("MAIL FROM:<alice@example.org>")
                self.assertEqual(lines[-1][:9], "530 5.7.0", lines)
                code, lines = c.cmd("RCPT TO:<bob@example.org>")
                self.assertTrue(code >= 500, f"RCPT without MAIL: {lines}")
                code, lines = c.cmd("QUIT")
                self.assertEqual(code, 221)
        p = run_swaks("--port", str(self.sub_port), "--tls", "--from", "alice@example.org", "--to", "bob@example.org")
        self.assertEqual(p.returncode, 23, f"swaks exit {p.returncode}:\n{p.stdout}")
        self.assertRegex(p.stdout, r"(?m)^<~\*\s+530 5\.7\.0 ")

    # ------------------------------------------------------------------------------------------
    # failures, delay, limit, cancel, base64
    # ------------------------------------------------------------------------------------------
    def test_wrong_password_535_with_growing_delay(self):
        with self.session("submissions") as c:
            times = []
            for i in range(2):
                t0 = time.monotonic()
                code, lines = c.cmd(f"AUTH PLAIN {plain_response('alice@example.org', 'wrong' + str(i))}")
                times.append(time.monotonic() - t0)
                self.assertEqual(lines[-1][:9], "535 5.7.8", lines)
            # the 1st failure is answered like a success would be (nothing counted yet), the 2nd
            # after one failure_delay (0.3)
            self.assertGreaterEqual(times[1], 0.25, f"2nd failure answered too fast: {times}")
            self.assertGreater(times[1], times[0] + 0.1, f"delay does not grow: {times}")
            self.assertLess(times[1], 5, times)
            # the right password still works on this connection (2 failures < failure_limit 3)
            self.login(c)
        self.assertTrue(self.mx.wait_log(r"user=\"alice@example\.org\" mechanism=PLAIN result=failed failures=2"),
                        self.diag())
        self.assertNotIn("wrong0", self.mx.log(), "password in the log")

    def test_swaks_wrong_password_exit_28(self):
        p = run_swaks("--port", str(self.sub_port), "--tls", "--auth", "LOGIN", "--auth-user", "bob@example.org",
                      "--auth-password", "not-bobs", "--from", "bob@example.org", "--to", "x@far.test")
        self.assertEqual(p.returncode, 28, f"swaks exit {p.returncode}:\n{p.stdout}")
        self.assertRegex(p.stdout, r"(?m)^<~\*\s+535 5\.7\.8 ")

    def test_unknown_user_and_disabled_user_are_535(self):
        for user, password in (("nobody@example.org", "x"), ("carol@example.org", "carolpw")):
            with self.subTest(user=user), self.session("submissions") as c:
                code, lines = c.cmd(f"AUTH PLAIN {plain_response(user, password)}")
                self.assertEqual(lines[-1][:9], "535 5.7.8", lines)

    def test_failure_limit_gives_421_and_close(self):
        with self.session("submission") as c:
            for i in range(2):
                code, lines = c.cmd(f"AUTH PLAIN {plain_response('bob@example.org', 'bad' + str(i))}")
                self.assertEqual(lines[-1][:9], "535 5.7.8", lines)
            # the failure_limit-th (3rd) failure: 421 4.7.0 (the engine may put the 535 first) and close
            c.send(f"AUTH PLAIN {plain_response('bob@example.org', 'bad2')}\r\n".encode())
            replies = []
            while True:
                code, lines = c.reply(timeout=5)
                if code is None:
                    break
                replies.append(lines[-1])
            self.assertTrue(replies and replies[-1].startswith("421 4.7.0"), f"3rd failure: {replies}")
            self.assertLessEqual(len(replies), 2, replies)
            if len(replies) == 2:
                self.assertTrue(replies[0].startswith("535 5.7.8"), replies)
            self.assertTrue(c.closed_by_server(3), "connection not closed after 421")
            sid = self.mx.session_id(c.local_port)
        self.assertTrue(self.mx.wait_log(rf"auth id={sid} .*result=failed failures=3"), self.diag())
        self.assertTrue(self.mx.wait_log(rf"disconnect id={sid} "), self.diag())
        self.assert_no_leak()

    def test_auth_cancel_and_bad_base64(self):
        with self.session("submission") as c:
            code, lines = c.cmd("AUTH PLAIN")
            self.assertEqual(code, 334, lines)
            code, lines = c.cmd("*")
            self.assertEqual(lines[-1][:9], "501 5.0.0", f"cancel: {lines}")
            code, lines = c.cmd("AUTH LOGIN")
            self.assertEqual(lines[-1], "334 VXNlcm5hbWU6", lines)
            code, lines = c.cmd("*")
            self.assertEqual(lines[-1][:9], "501 5.0.0", f"cancel at the username: {lines}")
            code, lines = c.cmd("AUTH LOGIN")
            code, lines = c.cmd("!!not base64!!")
            self.assertEqual(lines[-1][:9], "501 5.5.2", f"bad base64 username: {lines}")
            code, lines = c.cmd("AUTH LOGIN " + b64("alice@example.org"))
            self.assertEqual(lines[-1], "334 UGFzc3dvcmQ6", lines)
            code, lines = c.cmd("YWxp=Y2U=")  # padding in the middle: not strict base64
            self.assertEqual(lines[-1][:9], "501 5.5.2", f"bad base64 password: {lines}")
            code, lines = c.cmd("AUTH PLAIN =")
            self.assertEqual(lines[-1][:9], "501 5.5.2", f"bad base64 initial response: {lines}")
            # none of that was a credential failure: the session is usable and AUTH still works
            code, lines = c.cmd("AUTH LOGIN " + b64("alice@example.org"))
            self.assertEqual(code, 334)
            code, lines = c.cmd(b64("alicepw"))
            self.assertEqual(lines[-1][:9], "235 2.7.0", lines)
            code, lines = c.cmd("AUTH PLAIN " + plain_response("alice@example.org", "alicepw"))
            self.assertEqual(lines[-1][:9], "503 5.5.1", f"second AUTH: {lines}")

    def test_auth_cancel_and_bad_base64_with_smtplib(self):
        with smtplib.SMTP_SSL("127.0.0.1", self.subs_port, local_hostname="client.test", timeout=15,
                              context=self.ctx) as c:
            c.ehlo("client.test")
            self.assertEqual(c.docmd("AUTH", "PLAIN")[0], 334)
            code, msg = c.docmd("*")
            self.assertEqual((code, msg[:5]), (501, b"5.0.0"), msg)
            self.assertEqual(c.docmd("AUTH", "LOGIN")[0], 334)
            code, msg = c.docmd("%%%")
            self.assertEqual((code, msg[:5]), (501, b"5.5.2"), msg)
            code, msg = c.docmd("NOOP")
            self.assertEqual(code, 250)

    # ------------------------------------------------------------------------------------------
    # sender ownership
    # ------------------------------------------------------------------------------------------
    def test_sender_not_owned_is_553(self):
        with self.session("submissions") as c:
            self.login(c, "alice@example.org", "alicepw")
            code, lines = c.cmd("MAIL FROM:<bob@example.org>")
            self.assertEqual(lines[-1][:9], "553 5.7.1", lines)
            code, lines = c.cmd("MAIL FROM:<alice@elsewhere.test>")
            self.assertEqual(lines[-1][:9], "553 5.7.1", lines)
            code, lines = c.cmd("MAIL FROM:<ALICE@Example.ORG>")
            self.assertEqual(code, 250, f"own address in another case: {lines}")
        self.assertTrue(self.mx.wait_log(r"reject id=\S+ client=127\.0\.0\.1 user=\"alice@example\.org\" "
                                         r"from=\"bob@example\.org\" reason=\"sender not owned\""), self.diag())
        p = run_swaks("--port", str(self.sub_port), "--tls", "--auth", "PLAIN", "--auth-user", "bob@example.org",
                      "--auth-password", "bobpw", "--from", "alice@example.org", "--to", "x@far.test")
        self.assertEqual(p.returncode, 23, f"swaks exit {p.returncode}:\n{p.stdout}")
        self.assertRegex(p.stdout, r"(?m)^<~\*\s+553 5\.7\.1 ")

    def test_alternate_address_is_accepted_as_sender_and_delivered(self):
        marker = unique_marker("alias")
        p = run_swaks("--port", str(self.sub_port), "--tls", "--auth", "PLAIN",
                      "--auth-user", "alice@example.org", "--auth-password", "alicepw",
                      "--from", "alias-alice@example.org", "--to", "pal@elsewhere.test",
                      "--header", f"Subject: {marker}")
        self.assertEqual(p.returncode, 0, f"swaks failed:\n{p.stdout}{self.diag()}")
        d = self.one_delivery(marker, "pal@elsewhere.test")
        self.assertRegex(d.data, rb"(?m)^Return-Path: <alias-alice@example\.org>$")
        # the users file also lets the alternate address be the login
        with self.session("submissions") as c:
            self.login(c, "alias-alice@example.org", "alicepw")
            code, lines = c.cmd("MAIL FROM:<alice@example.org>")
            self.assertEqual(code, 250, lines)

    # ------------------------------------------------------------------------------------------
    # STARTTLS injection (CVE-2011-0411) and session reset
    # ------------------------------------------------------------------------------------------
    def _injection(self, port, injected):
        """EHLO, then STARTTLS + `injected` in ONE write; handshake; returns the TLS client after
        checking that nothing arrives until our own EHLO."""
        c = SmtpTls(port, self.ctx)
        try:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            c.send(b"STARTTLS\r\n" + injected)
            code, lines = c.reply()
            self.assertEqual(lines[-1][:9], "220 2.0.0", lines)
            try:
                c.handshake()
            except ssl.SSLError as e:
                self.fail(f"handshake failed (plaintext answer to the injected commands?): {e}{self.diag()}")
            c.sock.settimeout(1.5)
            try:
                early = c.sock.recv(4096)
            except socket.timeout:
                early = None
            self.assertIsNone(early, f"the server answered injected commands after STARTTLS: {early!r}")
            c.sock.settimeout(10)
            code, lines = c.cmd("EHLO client.test")
            self.assertEqual(code, 250, lines)
            self.assertTrue(lines[0].startswith("250-mx.test") or lines[0].startswith("250 mx.test"),
                            f"first reply after the handshake is not ours to EHLO: {lines}")
            return c
        except BaseException:
            c.close()
            raise

    def test_starttls_injection_noop_gets_no_reply(self):
        for port in (self.mx_port, self.sub_port):
            with self.subTest(port=port), self._injection(port, b"NOOP\r\n") as c:
                code, lines = c.cmd("NOOP")
                self.assertEqual(code, 250, lines)

    def test_starttls_injection_envelope_is_discarded(self):
        with self._injection(self.mx_port, b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<bob@example.org>\r\n") as c:
            code, lines = c.cmd("RCPT TO:<bob@example.org>")
            self.assertEqual(lines[-1][:9], "503 5.5.1", f"injected MAIL survived the handshake: {lines}")
            code, lines = c.cmd("DATA")
            self.assertEqual(lines[-1][:3], "503", f"injected RCPT survived the handshake: {lines}")

    def test_starttls_resets_the_session(self):
        with SmtpTls(self.mx_port, self.ctx) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("STARTTLS")[0], 220)
            c.handshake()
            code, lines = c.cmd("MAIL FROM:<a@example.net>")
            self.assertEqual(lines[-1][:9], "503 5.5.1", f"MAIL accepted without a new EHLO after TLS: {lines}")
            code, lines = c.cmd("EHLO client.test")
            self.assertEqual(code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@example.net>")[0], 250)
        with SmtpTls(self.mx_port, self.ctx) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@example.net>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250)
            code, lines = c.cmd("STARTTLS")
            # STARTTLS inside a transaction: refused, or accepted with everything reset
            if code == 220:
                c.handshake()
                self.assertEqual(c.cmd("EHLO client.test")[0], 250)
                code, lines = c.cmd("DATA")
                self.assertEqual(lines[-1][:3], "503", f"envelope survived STARTTLS: {lines}")
            else:
                self.assertEqual(lines[-1][:9], "503 5.5.1", lines)
                self.assertEqual(c.cmd("NOOP")[0], 250)

    # ------------------------------------------------------------------------------------------
    # handshake faults
    # ------------------------------------------------------------------------------------------
    def _expect_handshake_failure_logged(self, local_port, error=None):
        sid = self.mx.session_id(local_port)
        self.assertIsNotNone(sid, f"no connect log line for port {local_port}{self.diag()}")
        pat = rf"tls handshake failed id={sid} client=127\.0\.0\.1 error=\""
        if error:
            pat += re.escape(error)
        self.assertTrue(self.mx.wait_log(pat, 5), f"no 'tls handshake failed id={sid}' line{self.diag()}")
        self.assertTrue(self.mx.wait_log(rf"disconnect id={sid} .*reason=tls", 5), self.diag())

    def test_garbage_after_starttls_closes_and_is_logged(self):
        with SmtpTls(self.mx_port, self.ctx) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            code, lines = c.cmd("STARTTLS")
            self.assertEqual(code, 220, lines)
            c.send(b"\x47ARBAGE " + os.urandom(300) + b"\r\n")
            self.assertTrue(c.closed_by_server(5), "server did not close after handshake garbage")
            port = c.local_port
        self._expect_handshake_failure_logged(port)
        self.assert_still_serves()
        self.assert_no_leak()

    def test_garbage_on_implicit_tls_port_closes_and_is_logged(self):
        s = socket.create_connection(("127.0.0.1", self.subs_port), timeout=5)
        try:
            port = s.getsockname()[1]
            s.sendall(b"EHLO client.test\r\n" + os.urandom(500))
            closed = False
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    d = s.recv(4096)
                except ConnectionResetError:
                    closed = True
                    break
                except socket.timeout:
                    break
                if not d:
                    closed = True
                    break
                self.assertNotIn(b"220 ", d, "SMTP greeting sent before the TLS handshake")
            self.assertTrue(closed, "server did not close after garbage on the implicit-TLS port")
        finally:
            s.close()
        self._expect_handshake_failure_logged(port)
        self.assert_still_serves()
        self.assert_no_leak()

    def test_silent_client_on_implicit_tls_port_times_out(self):
        # limits.tls_handshake_timeout = 3 bounds the handshake
        s = socket.create_connection(("127.0.0.1", self.subs_port), timeout=10)
        try:
            port = s.getsockname()[1]
            t0 = time.monotonic()
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                d = b""
            elapsed = time.monotonic() - t0
            self.assertEqual(d, b"", "server sent something to a client that never said hello")
            self.assertLess(elapsed, 8, "handshake not bounded by tls_handshake_timeout")
            self.assertGreater(elapsed, 2, "closed before tls_handshake_timeout")
        finally:
            s.close()
        self._expect_handshake_failure_logged(port, "timeout")
        self.assert_no_leak()

    def test_client_abort_mid_handshake(self):
        """A client that sends half a ClientHello and closes: no leak, still serving."""
        hello = bytearray()
        ctx = self.pki.client_context()
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname=SERVER_NAME)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            hello = out.read()
        self.assertGreater(len(hello), 40)
        for port, starttls in ((self.subs_port, False), (self.mx_port, True)):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                if starttls:
                    read_reply(s)
                    command(s, "EHLO client.test")
                    self.assertEqual(command(s, "STARTTLS")[0], 220)
                s.sendall(hello[:len(hello) // 2])
                time.sleep(0.2)
            finally:
                s.close()
        self.assert_still_serves()
        self.assert_no_leak()

    # ------------------------------------------------------------------------------------------
    # no relay without AUTH, on every profile
    # ------------------------------------------------------------------------------------------
    def test_no_relay_without_auth_on_any_profile(self):
        for tls in (False, True):
            with self.subTest(profile="mx", tls=tls), self.session("mx", tls=tls) as c:
                self.assertEqual(c.cmd("MAIL FROM:<someone@example.net>")[0], 250)
                code, lines = c.cmd("RCPT TO:<victim@elsewhere.test>")
                self.assertEqual(lines[-1][:9], "554 5.7.1", lines)
                code, lines = c.cmd("RCPT TO:<bob@example.org>")
                self.assertEqual(code, 250, f"local recipient on mx: {lines}")
        p = run_swaks("--port", str(self.mx_port), "--tls", "--from", "someone@example.net",
                      "--to", "victim@elsewhere.test")
        self.assertEqual(p.returncode, 24, f"swaks exit {p.returncode}:\n{p.stdout}")
        for which in ("submission", "submissions"):
            with self.subTest(profile=which), self.session(which) as c:
                code, lines = c.cmd("MAIL FROM:<someone@example.net>")
                self.assertEqual(lines[-1][:9], "530 5.7.0", lines)
                code, lines = c.cmd("RCPT TO:<victim@elsewhere.test>")
                self.assertNotEqual(code, 250, lines)
        # an authenticated client on mx does not exist (no AUTH there): nothing was relayed
        self.assertEqual([d for d in self.pf.deliveries() if d.recipient == "victim@elsewhere.test"], [])

    def test_mx_recipient_checks_use_the_users_file(self):
        with self.session("mx") as c:
            self.assertEqual(c.cmd("MAIL FROM:<someone@example.net>")[0], 250)
            for rcpt, want in (("bob@example.org", "250 2.1.5"), ("alias-alice@example.org", "250 2.1.5"),
                               ("nobody@example.org", "550 5.1.1"), ("carol@example.org", "550 5.2.1")):
                code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
                self.assertEqual(lines[-1][:9], want, f"{rcpt}: {lines}")

    # ------------------------------------------------------------------------------------------
    # protocol versions
    # ------------------------------------------------------------------------------------------
    def test_tls11_client_is_refused(self):
        ctx11 = tls11_context(self.pki)
        self.assert_client_can_do_tls11(ctx11)
        for port, starttls in ((self.subs_port, False), (self.mx_port, True), (self.sub_port, True)):
            with self.subTest(port=port):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                try:
                    local = s.getsockname()[1]
                    if starttls:
                        read_reply(s)
                        command(s, "EHLO client.test")
                        self.assertEqual(command(s, "STARTTLS")[0], 220)
                    with self.assertRaises(ssl.SSLError, msg="TLS 1.1 handshake succeeded"):
                        t = ctx11.wrap_socket(s, server_hostname=SERVER_NAME)
                        t.close()
                finally:
                    s.close()
                self._expect_handshake_failure_logged(local)
        # a TLS 1.2-only client is fine (default tls.min_version = "1.2")
        ctx12 = self.pki.client_context(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
        _cert, version, _ = peer_certificate(self.subs_port, ctx12)
        self.assertEqual(version, "TLSv1.2")
        self.assert_no_leak()

    def assert_client_can_do_tls11(self, ctx11):
        """Control: the same client context does negotiate TLS 1.1 with `openssl s_server`, so
        mxfront's refusal is mxfront's doing."""
        port = free_port()
        proc = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", self.pki.server.cert,
                                 "-key", self.pki.server.key, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0",
                                 "-naccept", "1", "-quiet"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if not wait_listening(port, 10, alive=lambda: proc.poll() is None):
                raise HarnessError(f"openssl s_server did not start: {proc.stderr.read() if proc.poll() else ''}")
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                with ctx11.wrap_socket(s, server_hostname=SERVER_NAME) as t:
                    self.assertEqual(t.version(), "TLSv1.1", "control: client cannot negotiate TLS 1.1")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
            proc.stderr.close()


class ImplicitTlsLimitsTest(TlsAuthServer, unittest.TestCase):
    """Implicit TLS (submissions) and the connection limits: a socket is counted from accept, before
    its ClientHello; over a limit, or from a blocked client, it is closed without a handshake and
    without a reply (nothing can be said in clear text there), logged and counted; the handshake
    has its own timeout (limits.tls_handshake_timeout), shorter than greeting_timeout."""

    HOLD_PER_IP = 6

    @classmethod
    def setUpClass(cls):
        cls.start_stack(limits={"connections": 12, "connections_per_ip": cls.HOLD_PER_IP, "greeting_timeout": 120,
                                "tls_handshake_timeout": 15},
                        extra={"rules": {"client_block": ["127.0.0.9"]},
                               "profile.submissions": {"filters": ["rules", "relay_control"]}})

    def hold_silent(self, source, n):
        """n sockets from `source` to the implicit-TLS port that never send a ClientHello, each seen
        by the server (its connect line logged)."""
        held = []
        self.addCleanup(lambda: [s.close() for s in held])
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.subs_port), timeout=20, source_address=(source, 0))
            held.append(s)
            self.assertIsNotNone(self.mx.session_id(s.getsockname()[1], 10), f"connection not seen{self.diag()}")
        return held

    def assert_closed_without_handshake(self, source, reason):
        """A connection from `source` to the implicit-TLS port is closed with nothing sent and the
        refusal (not a handshake timeout) is logged."""
        s = socket.create_connection(("127.0.0.1", self.subs_port), timeout=20, source_address=(source, 0))
        try:
            local = s.getsockname()[1]
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                d = b""
            except socket.timeout:
                self.fail(f"connection from {source} over the limit held open (no refusal){self.diag()}")
            self.assertEqual(d, b"", "the server sent something in clear text on the implicit-TLS port")
        finally:
            s.close()
        sid = self.mx.session_id(local)
        self.assertIsNotNone(sid, self.diag())
        self.assertTrue(self.mx.wait_log(rf"refused id={sid} client={re.escape(source)} .*{reason}.* closed before TLS", 5),
                        f"no refusal logged for {sid}{self.diag()}")

    def release(self, held):
        for s in held:
            s.close()
        self.assert_no_leak()

    def test_silent_implicit_tls_sockets_count_against_connections_per_ip(self):
        held = self.hold_silent("127.0.0.2", self.HOLD_PER_IP)
        self.assert_closed_without_handshake("127.0.0.2", "4.3.2")
        # the same address on the plain MX port: over its limit too
        with SmtpConn(self.mx_port, source="127.0.0.2") as c:
            self.assertTrue(c.greeting[1].startswith("421 4.3.2"), f"{c.greeting}{self.diag()}")
        # another address is served on both ports
        with SmtpConn(self.mx_port, source="127.0.0.3") as c:
            self.assertEqual(c.greeting[0], 220, c.greeting)
        self.release(held)
        deadline = time.monotonic() + 10
        while True:  # once the silent ones are gone, the address is served again
            with SmtpConn(self.mx_port, source="127.0.0.2") as c:
                if c.greeting[0] == 220 or time.monotonic() > deadline:
                    break
            time.sleep(0.1)
        self.assertEqual(c.greeting[0], 220, c.greeting)
        self.assert_still_serves()

    def test_silent_implicit_tls_sockets_count_against_connections(self):
        held = self.hold_silent("127.0.0.4", self.HOLD_PER_IP) + self.hold_silent("127.0.0.5", self.HOLD_PER_IP)
        self.assert_closed_without_handshake("127.0.0.6", "4.3.2")
        with SmtpConn(self.mx_port, source="127.0.0.6") as c:
            self.assertTrue(c.greeting[1].startswith("421 4.3.2"), f"{c.greeting}{self.diag()}")
        self.release(held)
        self.assert_still_serves()

    def test_blocked_client_gets_no_tls_handshake(self):
        s = socket.create_connection(("127.0.0.1", self.subs_port), timeout=20, source_address=("127.0.0.9", 0))
        local = s.getsockname()[1]
        try:
            with self.assertRaises(OSError, msg="a blocked client completed the TLS handshake"):
                t = self.ctx.wrap_socket(s, server_hostname=SERVER_NAME)
                t.close()
        finally:
            s.close()
        sid = self.mx.session_id(local)
        self.assertTrue(self.mx.wait_log(rf"refused id={sid} client=127\.0\.0\.9 .*554 5\.7\.1.* closed before TLS", 5),
                        self.diag())
        self.assert_still_serves()
        self.assert_no_leak()

    def test_silent_client_is_closed_at_the_handshake_timeout_not_the_greeting_timeout(self):
        # tls_handshake_timeout = 15 s, greeting_timeout = 120 s
        s = socket.create_connection(("127.0.0.1", self.subs_port), timeout=90, source_address=("127.0.0.7", 0))
        try:
            local = s.getsockname()[1]
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                d = b""
            self.assertEqual(d, b"")
        finally:
            s.close()
        self._expect_handshake_failure_logged_from(local, "127.0.0.7")
        self.assert_no_leak()

    def _expect_handshake_failure_logged_from(self, local_port, source):
        sid = self.mx.session_id(local_port)
        self.assertIsNotNone(sid, self.diag())
        self.assertTrue(self.mx.wait_log(rf'tls handshake failed id={sid} client={re.escape(source)} error="timeout"', 5),
                        self.diag())


class MinVersion13Test(unittest.TestCase):
    """tls.min_version = "1.3": a TLS 1.2-only client is refused, TLS 1.3 works."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.mx = Mxfront([f"127.0.0.1:{free_port()}"], {
            "listener": [{"address": "127.0.0.1:0", "profile": "mx"}],
            "tls": {"cert_file": cls.pki.server.cert, "key_file": cls.pki.server.key, "min_version": "1.3"}})
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        cls.baseline = cls.mx.warm_up()

    def tearDown(self):
        self.mx.check_alive()

    def test_tls12_only_client_refused_tls13_accepted(self):
        ctx12 = self.pki.client_context(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
        with self.assertRaises(ssl.SSLError):
            peer_certificate(self.mx.port, ctx12, starttls=True)
        self.assertTrue(self.mx.wait_log(r"tls handshake failed id=\S+ client=127\.0\.0\.1 error=", 5), self.mx.log())
        _cert, version, _ = peer_certificate(self.mx.port, self.pki.client_context(), starttls=True)
        self.assertEqual(version, "TLSv1.3")
        n = self.mx.wait_fd_baseline(self.baseline, 5)
        self.assertLessEqual(n, self.baseline)
        self.assertEqual(self.mx.close_wait_count(), 0)


class CertificateReloadTest(unittest.TestCase):
    """Certificates are re-read on SIGHUP (no restart); a broken one is refused and the old one
    keeps working; --check-config refuses a key that does not match the certificate."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.users = users_file(os.path.join(cls.pki.dir, "users"))
        cls.ctx = cls.pki.client_context()

    def setUp(self):
        self.live_cert = os.path.join(self.pki.dir, f"live-{self._testMethodName}.pem")
        self.live_key = os.path.join(self.pki.dir, f"live-{self._testMethodName}.key")
        self.pki.install(self.pki.server, self.live_cert, self.live_key)
        self.mx = Mxfront([f"127.0.0.1:{free_port()}"],
                          profile_overrides(self.live_cert, self.live_key, {"type": "file", "users_file": self.users}))
        self.addCleanup(self.mx.kill)
        self.mx.start()
        (_, self.mx_port), (_, self.sub_port), (_, self.subs_port) = self.mx.listeners

    def tearDown(self):
        self.mx.check_alive()

    def serials(self):
        return (peer_certificate(self.mx_port, self.ctx, starttls=True)[0]["serialNumber"],
                peer_certificate(self.sub_port, self.ctx, starttls=True)[0]["serialNumber"],
                peer_certificate(self.subs_port, self.ctx)[0]["serialNumber"])

    def hup(self, expect):
        """SIGHUP and wait for the next `expect` log line ('reloaded config' / 'reload refused')."""
        before = len(re.findall(expect, self.mx.log()))
        os.kill(self.mx.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if len(re.findall(expect, self.mx.log())) > before:
                return
            time.sleep(0.05)
        self.fail(f"no new '{expect}' log line after SIGHUP:\n{self.mx.log()[-3000:]}")

    def test_sighup_serves_the_new_certificate_without_restart(self):
        first = self.pki.server.serial
        self.assertEqual(self.serials(), (first,) * 3)
        pid = self.mx.pid
        old = SmtpTls(self.subs_port, self.ctx, implicit=True)
        self.addCleanup(old.close)
        self.assertEqual(old.cmd("EHLO client.test")[0], 250)
        new = self.pki.issue("renewed")
        self.assertNotEqual(new.serial, first)
        self.pki.install(new, self.live_cert, self.live_key)
        self.hup("reloaded config")
        self.assertEqual(self.serials(), (new.serial,) * 3, self.mx.log()[-2000:])
        self.assertEqual(self.mx.pid, pid)
        self.assertTrue(self.mx.alive())
        # a session opened before the reload finishes on its own terms
        self.assertEqual(old.cmd("NOOP")[0], 250)
        code, lines = old.cmd(f"AUTH PLAIN {plain_response('alice@example.org', 'alicepw')}")
        self.assertEqual(code, 235, lines)
        self.assertEqual(old.cmd("QUIT")[0], 221)

    def test_sighup_with_broken_certificate_keeps_the_old_one(self):
        first = self.pki.server.serial
        pid = self.mx.pid
        bad = self.pki.mismatched()
        self.pki.install(bad, self.live_cert, self.live_key)
        self.hup("reload refused")
        self.assertRegex(self.mx.log(), r"reload refused.*key values mismatch")
        self.assertEqual(self.serials(), (first,) * 3, "the old certificate must keep being served")
        # not PEM at all
        shutil.copyfile(self.pki.not_pem(), self.live_cert)
        self.hup("reload refused")
        self.assertEqual(self.serials(), (first,) * 3)
        # AUTH and delivery paths still work on the old context
        with SmtpTls(self.subs_port, self.ctx, implicit=True) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd(f"AUTH PLAIN {plain_response('bob@example.org', 'bobpw')}")[0], 235)
        # a good certificate again: picked up
        good = self.pki.issue("fixed")
        self.pki.install(good, self.live_cert, self.live_key)
        self.hup("reloaded config")
        self.assertEqual(self.serials(), (good.serial,) * 3)
        self.assertEqual(self.mx.pid, pid)

    def check_config(self, cert, key):
        cfg = self.mx.build_config()
        cfg["tls"] = {"cert_file": cert, "key_file": key}
        path = os.path.join(self.mx.dir, "check.toml")
        with open(path, "w") as f:
            f.write(to_toml(cfg))
        p = subprocess.run([mxfront_bin(), "--check-config", path], capture_output=True, text=True, timeout=30)
        return path, p

    def assert_points_into_tls(self, path, p, what):
        self.assertEqual(p.returncode, 1, f"{what}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        m = re.search(rf"^{re.escape(path)}:(\d+): (.+)$", p.stderr, re.M)
        self.assertTrue(m, f"{what}: no 'file:line: message' on stderr: {p.stderr!r}")
        with open(path) as f:
            lines = f.read().split("\n")
        n = int(m.group(1))
        start = lines.index("[tls]") + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
        self.assertTrue(start <= n <= end, f"{what}: line {n} is not in the [tls] table (lines {start}-{end}):"
                                           f" {p.stderr}")
        self.assertIn("tls", m.group(2))
        return m.group(2)

    def test_check_config_refuses_bad_tls(self):
        path, p = self.check_config(self.live_cert, self.live_key)
        self.assertEqual(p.returncode, 0, f"valid config refused: {p.stderr}")
        bad = self.pki.mismatched("cc")
        msg = self.assert_points_into_tls(*self.check_config(bad.cert, bad.key), "mismatched key")
        self.assertIn("mismatch", msg)
        self.assert_points_into_tls(*self.check_config(self.pki.not_pem(), self.live_key), "not PEM")
        self.assert_points_into_tls(*self.check_config(os.path.join(self.pki.dir, "missing.pem"), self.live_key),
                                    "missing file")
        # and the server refuses to start with it
        mx2 = Mxfront([f"127.0.0.1:{free_port()}"], profile_overrides(bad.cert, bad.key,
                                                                       {"type": "file", "users_file": self.users}))
        try:
            with self.assertRaises(HarnessError):
                mx2.start(timeout=5)
            self.assertNotEqual(mx2.proc.returncode, 0)
        finally:
            mx2.kill()

    def test_submission_without_tls_is_a_config_error(self):
        cfg = self.mx.build_config()
        del cfg["tls"]
        path = os.path.join(self.mx.dir, "notls.toml")
        with open(path, "w") as f:
            f.write(to_toml(cfg))
        p = subprocess.run([mxfront_bin(), "--check-config", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, rf"^{re.escape(path)}:\d+: .*submission.*tls", p.stderr)


if __name__ == "__main__":
    unittest.main()

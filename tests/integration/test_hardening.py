"""Hardening against hostile clients (issue 12), end to end: mxfront with the mx, submission and
submissions listeners, a users file, a REAL Postfix qmqpd delivering into Maildirs, and real
clients (Python smtplib over implicit TLS, from several loopback source addresses; raw sockets
where a test must see exactly what arrives and when).

Covers:
  * log forgery: a CR/LF in a (base64-decoded) AUTH username, quotes, '=' and control bytes in
    HELO, MAIL FROM and RCPT never forge a log line; every event is one line that parses back to
    exactly what the client sent;
  * AUTH guessing: success and failure answered after the same delay (none before any failure); failures counted per client
    address and per login across connections, a growing wait, then 454 4.7.0 before any password
    check; a success does not wipe the address's count for other logins;
  * recipient harvesting: refused recipients answered at once up to the soft limit, then after a
    growing delay, then 421 4.7.0 and the close; every refusal logged;
  * <postmaster> and <postmaster@local domain>: both accepted and relayed to relay.postmaster.

Run from the repo root:  python3 -m unittest -v tests/integration/test_hardening.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix)."""
import base64
import os
import re
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, SmtpConn, unique_marker  # noqa: E402
from tls_harness import TestPki, profile_overrides, users_file  # noqa: E402

DELAY = 0.2  # auth.failure_delay and limits.rejected_recipient_delay in this file's config

LOG_LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(?:[+-]\d\d:\d\d)? (?:trace|debug|info|warning|error|critical) (.*)$")
FIELD_RE = re.compile(r' ([a-z_]+)=("(?:[^"\\\x00-\x1f\x7f]|\\["\\]|\\x[0-9a-f]{2})*"'
                      r'|<(?:[^>\\\x00-\x1f\x7f]|\\[>\\]|\\x[0-9a-f]{2})*>|[^\s"<]*)')


def unescape(quoted):
    """The inverse of core::quoted_for_log and angled_for_log: bytes of the value."""
    body = quoted[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            if body[i + 1] == "x":
                out.append(int(body[i + 2:i + 4], 16))
                i += 4
                continue
            out += body[i + 1].encode()
            i += 2
            continue
        out += c.encode()
        i += 1
    return bytes(out)


def parse_event(message):
    """'auth id=x client=1.2.3.4 user="a\\"b"' -> ('auth', {'id': b'x', ...}); None when the text
    is not exactly an event name followed by key=value fields (quoted values unescaped)."""
    m = re.match(r"([a-z]+)", message)
    if not m:
        return None
    pos = m.end()
    fields = {}
    while pos < len(message):
        f = FIELD_RE.match(message, pos)
        if not f:
            return None
        v = f.group(2)
        fields[f.group(1)] = unescape(v) if v[:1] in ('"', "<") else v.encode()
        pos = f.end()
    return m.group(1), fields


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class HardeningTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.users = users_file(os.path.join(cls.pki.dir, "users"))
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cfg = profile_overrides(
            cls.pki.server.cert, cls.pki.server.key, {"type": "file", "users_file": cls.users},
            auth={"failure_delay": DELAY, "failure_limit": 3, "max_delay": 2, "address_failure_limit": 4,
                  "login_failure_limit": 3, "failure_window": 120},
            limits={"rejected_recipients_soft": 3, "rejected_recipients": 6, "rejected_recipient_delay": DELAY})
        cfg["relay"] = {"local_domains": ["example.org"], "postmaster": "alice@example.org"}
        cls.mx = Mxfront([cls.pf.address], cfg)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        (_, cls.mx_port), (_, cls.sub_port), (_, cls.subs_port) = cls.mx.listeners
        cls.ctx = cls.pki.client_context()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-4000:]}"

    # -- helpers ------------------------------------------------------------------------------
    def submissions(self, source):
        """smtplib over implicit TLS from `source` (a loopback address: each test has its own,
        the brake counts per address), after EHLO."""
        c = smtplib.SMTP_SSL("127.0.0.1", self.subs_port, local_hostname="client.test", timeout=15,
                             context=self.ctx, source_address=(source, 0))
        c.ehlo("client.test")
        return c

    def auth_plain(self, source, user, password):
        """One AUTH PLAIN on a fresh connection: (code, text, seconds until the answer)."""
        with self.submissions(source) as c:
            t0 = time.monotonic()
            code, text = c.docmd("AUTH", "PLAIN " + b64(b"\0" + user.encode() + b"\0" + password.encode()))
            return code, text.decode(errors="replace"), time.monotonic() - t0

    def events(self, name):
        """Every log line of event `name`, parsed; fails on a line that does not parse."""
        out = []
        for line in self.mx.log().splitlines():
            m = LOG_LINE_RE.match(line)
            self.assertIsNotNone(m, f"a log line without the log's own prefix (forged?): {line!r}")
            ev = parse_event(m.group(1))
            if ev and ev[0] == name:
                out.append(ev[1])
            elif m.group(1).startswith(name + " id="):
                self.fail(f"{name} line does not parse as key=value fields: {line!r}")
        return out

    # ------------------------------------------------------------------------------------------
    # log forgery (item 5)
    # ------------------------------------------------------------------------------------------
    def test_crlf_quotes_and_equals_never_forge_a_log_line(self):
        forged = (b"x result=failed\r\n2026-12-06T10:00:00.000 info auth id=FORGED client=203.0.113.9 "
                  b"user=ceo@example.org mechanism=PLAIN result=ok")
        login_user = b'ceo@example.org"\x1b[2J user=admin result=ok\nauth id=FORGED2 result=ok'
        with self.submissions("127.0.0.10") as c:
            code, _ = c.docmd("AUTH", "PLAIN " + b64(b"\0" + forged + b"\0wrong"))
            self.assertEqual(code, 535)
            self.assertEqual(c.docmd("AUTH", "LOGIN " + b64(login_user))[0], 334)
            self.assertEqual(c.docmd(b64(b"wrong"))[0], 535)
        helo = 'evil"helo=x\tuser=ceo'
        sender = '"a\\"b=c d"@example.net'
        bad_rcpt = '"x\\" rcpt=forged"@example.org'
        marker = unique_marker("forgery")
        with smtplib.SMTP("127.0.0.1", self.mx_port, local_hostname=helo, timeout=15,
                          source_address=("127.0.0.10", 0)) as c:
            c.ehlo(helo)
            # docmd: exactly these bytes (smtplib.mail/rcpt would re-quote the addresses)
            self.assertEqual(c.docmd("MAIL", f"FROM:<{sender}>")[0], 250, self.diag())
            self.assertEqual(c.docmd("RCPT", f"TO:<{bad_rcpt}>")[0], 550, self.diag())
            self.assertEqual(c.docmd("RCPT", "TO:<bob@example.org>")[0], 250)
            code, _ = c.data(f"Subject: {marker}\r\n\r\nbody\r\n".encode())
            self.assertEqual(code, 250, self.diag())
        self.assertTrue(self.mx.wait_log(r"^.* message id=\S+ client=127\.0\.0\.10 helo=", 5), self.diag())
        auths = self.events("auth")
        self.assertNotIn(b"FORGED", b"".join(a.get("id", b"") for a in auths), self.diag())
        self.assertFalse([a for a in auths if a.get("result") == b"ok" and a.get("user", b"").startswith(b"ceo")],
                         f"forged successful login in the log{self.diag()}")
        users = [a["user"] for a in auths if a.get("client") == b"127.0.0.10"]
        self.assertIn(forged, users, f"the username does not parse back to what was sent: {users}")
        self.assertIn(login_user, users, users)
        self.assertNotIn("FORGED", "".join(l for l in self.mx.log().splitlines()
                                           if not l.split(" ", 2)[-1].startswith("auth ")), self.diag())
        msgs = [m for m in self.events("message") if m.get("client") == b"127.0.0.10"]
        self.assertEqual(len(msgs), 1, self.diag())
        self.assertEqual(msgs[0]["helo"], helo.encode())
        self.assertEqual(msgs[0]["from"], sender.encode())
        self.assertEqual(msgs[0]["to"], b"bob@example.org")
        rejects = [r for r in self.events("reject") if r.get("client") == b"127.0.0.10"]
        self.assertEqual([r["rcpt"] for r in rejects], [bad_rcpt.encode()], self.diag())

    # ------------------------------------------------------------------------------------------
    # AUTH guessing (item 6)
    # ------------------------------------------------------------------------------------------
    def test_success_and_failure_are_answered_after_the_same_delay(self):
        ok, bad, unknown = [], [], []
        for i in range(3):  # fresh address and login each time: nothing counted yet, answered at once
            code, text, t = self.auth_plain(f"127.0.0.{20 + i}", "alice@example.org", "alicepw")
            self.assertEqual(code, 235, text)
            ok.append(t)
            code, text, t = self.auth_plain(f"127.0.0.{23 + i}", "alias-alice@example.org", f"wrong{i}")
            self.assertEqual(code, 535, text)
            bad.append(t)
            code, text, t = self.auth_plain(f"127.0.0.{26 + i}", f"nobody{i}@example.org", "x")
            self.assertEqual(code, 535, text)
            unknown.append(t)
        print(f"\nAUTH answer times (s): success {ok}, wrong password {bad}, unknown user {unknown}")
        # the first wrong password had nothing counted against it (the next two count its login's
        # failures, and wait for them), nor had the unknown users: all answered alike
        self.assertLess(abs(min(ok) - bad[0]), 0.05, f"success {ok} vs failure {bad}")
        self.assertLess(abs(min(unknown) - bad[0]), 0.05, f"unknown {unknown} vs known {bad}")
        self.assertGreaterEqual(bad[1], DELAY * 0.9, f"the login's failure did not slow the next: {bad}")
        # once an address has a failure behind it, its success and its failure both wait the delay
        src = "127.0.0.29"
        self.assertEqual(self.auth_plain(src, "guess@example.org", "x")[0], 535)
        code, text, t_ok = self.auth_plain(src, "alice@example.org", "alicepw")
        self.assertEqual(code, 235, text)
        code, text, t_bad = self.auth_plain(src, "guess2@example.org", "wrong")
        self.assertEqual(code, 535, text)
        print(f"AUTH answer times after one failure (s): success {t_ok}, wrong password {t_bad}")
        self.assertGreaterEqual(t_ok, DELAY * 0.9, "a success after a failure is answered before the delay")
        self.assertGreaterEqual(t_bad, DELAY * 0.9, "a failure after a failure is answered before the delay")
        self.assertLess(abs(t_ok - t_bad), 0.1, f"success {t_ok} vs failure {t_bad}")

    def test_failures_from_one_address_across_connections_then_454(self):
        src = "127.0.0.40"
        times = []
        for i in range(4):  # auth.address_failure_limit = 4, each on its own connection and login
            code, text, t = self.auth_plain(src, f"guess{i}@example.org", "x")
            self.assertEqual(code, 535, text)
            times.append(t)
        print(f"\nfailures from one address, one connection each (s): {times}")
        for a, b in zip(times, times[1:]):
            self.assertGreater(b, a + DELAY * 0.5, f"the wait does not grow across connections: {times}")
        code, text, t = self.auth_plain(src, "alice@example.org", "alicepw")  # the right password
        self.assertEqual((code, text[:5]), (454, "4.7.0"), f"not throttled: {code} {text}{self.diag()}")
        code, text, _ = self.auth_plain("127.0.0.41", "alice@example.org", "alicepw")
        self.assertEqual(code, 235, f"another address is not affected: {text}")
        self.assertTrue(self.mx.wait_log(r"auth id=\S+ client=127\.0\.0\.40 user=\"alice@example\.org\" "
                                         r"mechanism=PLAIN result=throttled address_failures=4"), self.diag())

    def test_failures_for_one_login_from_many_addresses_then_454(self):
        for i in range(3):  # auth.login_failure_limit = 3
            code, text, _ = self.auth_plain(f"127.0.0.{50 + i}", "bob@example.org", f"bad{i}")
            self.assertEqual(code, 535, text)
        code, text, _ = self.auth_plain("127.0.0.53", "BOB@example.org", "bobpw")
        self.assertEqual((code, text[:5]), (454, "4.7.0"), f"login not throttled: {code} {text}{self.diag()}")
        code, text, _ = self.auth_plain("127.0.0.53", "alice@example.org", "alicepw")
        self.assertEqual(code, 235, f"another login from the same address: {text}")

    def test_a_success_does_not_reset_the_address_count_for_other_logins(self):
        src = "127.0.0.60"
        with self.submissions(src) as c:
            for i in range(2):
                self.assertEqual(c.docmd("AUTH", "PLAIN " + b64(f"\0victim{i}@example.org\0x".encode()))[0], 535)
        code, text, _ = self.auth_plain(src, "victim2@example.org", "x")
        self.assertEqual(code, 535, text)
        code, text, _ = self.auth_plain(src, "alice@example.org", "alicepw")  # the attacker's own account
        self.assertEqual(code, 235, text)
        code, text, _ = self.auth_plain(src, "victim3@example.org", "x")
        self.assertEqual(code, 535, text)
        code, text, _ = self.auth_plain(src, "victim4@example.org", "x")
        self.assertEqual(code, 454, f"the success wiped the address's failures: {text}{self.diag()}")

    # ------------------------------------------------------------------------------------------
    # recipient harvesting (item 12)
    # ------------------------------------------------------------------------------------------
    def test_refused_recipients_slow_down_then_421_and_close(self):
        c = SmtpConn(self.mx_port, source="127.0.0.70", timeout=15)
        try:
            self.assertEqual(c.cmd("EHLO harvester.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<h@example.net>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250)  # accepted ones do not count
            times = []
            for i in range(5):
                t0 = time.monotonic()
                code, line, _ = c.cmd(f"RCPT TO:<unknown{i}@example.org>")
                times.append(time.monotonic() - t0)
                self.assertEqual(line[:9], "550 5.1.1", line)
            print(f"\nrefused recipients 1-5 answered after (s): {[round(t, 3) for t in times]}")
            for t in times[:3]:  # rejected_recipients_soft = 3: at once
                self.assertLess(t, DELAY * 0.75, times)
            self.assertGreaterEqual(times[3], DELAY * 0.9, times)       # 4th: 1 x delay
            self.assertGreaterEqual(times[4], 2 * DELAY * 0.9, times)   # 5th: 2 x delay
            c.send(b"RCPT TO:<unknown5@example.org>\r\n")  # the 6th = rejected_recipients
            code, line, _ = c.reply()
            self.assertEqual(line[:9], "550 5.1.1", line)
            code, line, _ = c.reply()
            self.assertEqual(line[:9], "421 4.7.0", line)
            self.assertTrue(c.closed_by_server(3), "not closed after 421")
        finally:
            c.close()
        rejects = [r for r in self.events("reject") if r.get("client") == b"127.0.0.70"]
        self.assertEqual([r["rcpt"] for r in rejects], [f"unknown{i}@example.org".encode() for i in range(6)],
                         self.diag())
        self.assertEqual(rejects[-1]["refused"], b"6")

    def test_a_few_unknown_recipients_cost_nothing(self):
        marker = unique_marker("few-unknown")
        t0 = time.monotonic()
        with smtplib.SMTP("127.0.0.1", self.mx_port, local_hostname="client.test", timeout=15,
                          source_address=("127.0.0.71", 0)) as c:
            refused = c.sendmail("s@example.net", ["gone1@example.org", "bob@example.org", "gone2@example.org"],
                                 f"Subject: {marker}\r\n\r\nhi\r\n")
        self.assertEqual(sorted(refused), ["gone1@example.org", "gone2@example.org"])
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1)

    # ------------------------------------------------------------------------------------------
    # postmaster (item 10)
    # ------------------------------------------------------------------------------------------
    def test_both_postmaster_forms_are_relayed_to_relay_postmaster(self):
        for rcpt in ("postmaster", "Postmaster@example.org"):
            marker = unique_marker("postmaster")
            with self.subTest(rcpt=rcpt), smtplib.SMTP("127.0.0.1", self.mx_port, local_hostname="client.test",
                                                       timeout=15) as c:
                c.ehlo("client.test")
                self.assertEqual(c.mail("<s@example.net>")[0], 250)
                code, text = c.rcpt(f"<{rcpt}>")
                self.assertEqual(code, 250, f"<{rcpt}>: {code} {text}{self.diag()}")
                self.assertEqual(c.data(f"Subject: {marker}\r\n\r\nfor the postmaster\r\n".encode())[0], 250)
                ds = self.pf.deliveries(10, 1, match=marker.encode())
                self.assertEqual([d.recipient for d in ds], ["alice@example.org"], self.diag())


if __name__ == "__main__":
    unittest.main()

"""The spf filter against a REAL authoritative DNS server (nsd, tests/harness/nsd_harness.py) on
loopback, relaying to a REAL Postfix qmqpd, and compared with a REFERENCE SPF implementation
(Debian's python3-spf, module `spf`, over dnspython) on the same inputs. Clients connect FROM chosen
127.0.0.x addresses. Nothing uses the system resolver: spf.dns_servers points at the harness's nsd
(or at a DnsFilterProxy in front of it that never answers / SERVFAILs chosen names), and pyspf's
dnspython default resolver is replaced by one that asks only that same loopback server.
If nsd cannot start, the tests fail (HarnessError), they never skip.
Run from the repo root:  python3 -m unittest -v tests/integration/test_spf.py  (root: Postfix)."""
import base64
import os
import re
import sys
import time
import unittest
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, SmtpConn, free_port, http_get, unique_marker  # noqa: E402
from nsd_harness import DnsFilterProxy, Nsd  # noqa: E402
from tls_harness import SmtpTls, TestPki, profile_overrides, users_file  # noqa: E402

PF = None  # one Postfix for the module

SPF_ZONE = {
    "spf.test": [
        ("pass", "TXT", "v=spf1 ip4:127.0.0.0/29 -all"),
        ("fail", "TXT", "v=spf1 ip4:192.0.2.1 -all"),
        ("soft", "TXT", "v=spf1 ip4:192.0.2.1 ~all"),
        ("mxd", "TXT", "v=spf1 mx -all"),
        ("mxd", "MX", "10 mail.spf.test."),
        ("mail", "A", "127.0.0.5"),
        ("inc", "TXT", "v=spf1 include:pass.spf.test -all"),
        ("helo", "TXT", "v=spf1 a:client.spf.test -all"),
        ("client", "A", "127.0.0.1"),
        ("broken", "TXT", "v=spf1 ip4:300.1.1.1 -all"),
        ("two", "TXT", "v=spf1 +all"),
        ("two", "TXT", "v=spf1 -all"),
        ("loop", "TXT", "v=spf1 include:loop2.spf.test -all"),
        ("loop2", "TXT", "v=spf1 include:loop.spf.test -all"),
        ("voids", "TXT", "v=spf1 a:nx1.spf.test a:nx2.spf.test a:nx3.spf.test +all"),
        ("voids2", "TXT", "v=spf1 a:nx1.spf.test a:nx2.spf.test +all"),
        ("macro", "TXT", "v=spf1 exists:%{ir}.%{l1r-}.allow.spf.test -all"),
        ("1.0.0.127.good.allow", "A", "127.0.0.2"),
        ("expl", "TXT", "v=spf1 -all exp=why.%{d}"),
        ("why.expl", "TXT", "%{c} may not send for %{d} (sender %{l}): see https://spf.test/why"),
        ("hostile", "TXT", "v=spf1 -all exp=why.hostile.spf.test"),
        ("why.hostile", "TXT", "nope\r\n250 2.0.0 Ok"),
        ("slow", "TXT", "v=spf1 ip4:192.0.2.1 -all"),  # answered late by SlowDnsProxy
    ],
}


def restart_nsd(dns, zones):
    """Stops `dns` and serves `zones` again on the same port (a server coming back)."""
    port = dns.port
    dns.stop()
    return Nsd(zones, port=port)


def setUpModule():
    global PF
    PF = PostfixQmqp()
    unittest.addModuleCleanup(PF.stop)
    PF.start()


def spf_mxfront(dns, admin_port=None, **spf):
    cfg = {"dns_servers": [dns], "query_timeout": 0.5, "tries": 1}
    cfg.update(spf)
    config = {
        "spf": cfg,
        "profile.mx": {"filters": ["spf", "relay_control"], "reject_score": 10, "tag_score": 0.5},
    }
    if admin_port:
        config["admin"] = {"address": f"127.0.0.1:{admin_port}"}
    return Mxfront([PF.address], config=config)


def transaction(mx, source, sender, helo="client.test", marker=None, extra_headers=""):
    """One SMTP transaction from `source`. Returns (MAIL reply, final reply) as (code, text); the final
    reply is None when MAIL was refused, the RCPT reply when the recipient was refused."""
    with SmtpConn(mx.port, source=source, timeout=15) as c:
        c.cmd(f"EHLO {helo}")
        mail = c.cmd(f"MAIL FROM:<{sender}>")[:2]
        if mail[0] != 250:
            c.cmd("QUIT")
            return mail, None
        r = c.cmd("RCPT TO:<bob@example.org>")[:2]
        if r[0] != 250:
            return mail, r
        code = c.cmd("DATA")[0]
        if code != 354:
            return mail, (code, "")
        c.send(f"{extra_headers}From: <{sender}>\r\nSubject: {marker}\r\n\r\nbody {marker}\r\n.\r\n".encode())
        final = c.reply()[:2]
        c.cmd("QUIT")
        return mail, final


class SpfBase(unittest.TestCase):
    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix ---\n{PF.log()[-1500:]}"

    def deliver(self, source, sender, helo="client.test", extra_headers=""):
        marker = unique_marker("spf")
        mail, final = transaction(self.mx, source, sender, helo=helo, marker=marker, extra_headers=extra_headers)
        self.assertEqual(mail[0], 250, f"MAIL refused: {mail}{self.diag()}")
        self.assertEqual(final[0], 250, f"message refused: {final}{self.diag()}")
        ds = PF.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1, f"no delivery{self.diag()}")
        return ds[0].data

    def refused(self, source, sender, code):
        """SPF refuses at RCPT (MAIL is answered at once, the evaluation runs meanwhile): returns the RCPT reply."""
        marker = unique_marker("spf")
        mail, final = transaction(self.mx, source, sender, marker=marker)
        self.assertEqual(mail[0], 250, f"MAIL is accepted, SPF judges at RCPT: {mail}{self.diag()}")
        self.assertEqual(final[0], code, f"{final}{self.diag()}")
        self.assertEqual(PF.deliveries(0.5, None, match=marker.encode()), [], "a refused mail was delivered")
        return final[1]

    @staticmethod
    def auth_results(data):
        return re.findall(rb"(?mi)^Authentication-Results:[^\n]*(?:\n[ \t][^\n]*)*", data)


class SpfRejectTest(SpfBase):
    """on_fail = reject, the other results by default (softfail scored)."""

    @classmethod
    def setUpClass(cls):
        cls.dns = Nsd(SPF_ZONE)  # raises HarnessError (test error, never a skip) when nsd cannot serve
        cls.addClassCleanup(cls.dns.stop)
        cls.admin = free_port()
        cls.mx = spf_mxfront(cls.dns.address, admin_port=cls.admin, on_fail="reject")
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def test_pass_is_delivered_with_authentication_results(self):
        data = self.deliver("127.0.0.1", "s@pass.spf.test")
        ar = self.auth_results(data)
        self.assertEqual(len(ar), 1, data[:800])
        self.assertRegex(ar[0], rb"^Authentication-Results: mx\.test; spf=pass \(.*\) smtp\.mailfrom=s@pass\.spf\.test$")
        self.assertNotIn(b"X-Spam-Report", data)

    def test_fail_is_refused_at_rcpt_with_5_7_23(self):
        text = self.refused("127.0.0.1", "s@fail.spf.test", 550)
        self.assertTrue(text.startswith("550 5.7.23 "), text)
        self.assertIn("fail.spf.test", text)
        # every recipient of the transaction gets the refusal; DATA has no recipient
        with SmtpConn(self.mx.port, source="127.0.0.1", timeout=15) as c:
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("MAIL FROM:<s@fail.spf.test>")[0], 250)
            for rcpt in ("bob@example.org", "alice@example.org"):
                code, text = c.cmd(f"RCPT TO:<{rcpt}>")[:2]
                self.assertEqual((code, text[:11]), (550, "550 5.7.23 "), text)
            self.assertEqual(c.cmd("DATA")[0], 554)
            # a new transaction with a passing sender on the same connection is judged afresh
            c.cmd("RSET")
            self.assertEqual(c.cmd("MAIL FROM:<s@pass.spf.test>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250)
        self.assertTrue(self.mx.wait_log(r"spf id=\S+ client=127\.0\.0\.1 identity=<s@fail\.spf\.test> result=fail", 5),
                        self.diag())

    def test_fail_carries_the_domains_exp_explanation(self):
        text = self.refused("127.0.0.1", "alice@expl.spf.test", 550)
        self.assertEqual(text, "550 5.7.23 SPF fail: expl.spf.test does not designate [127.0.0.1] as permitted sender "
                               "(127.0.0.1 may not send for expl.spf.test (sender alice): see https://spf.test/why)")
        # an explanation with CR LF in it (a reply-injection attempt) is no explanation: the refusal stands alone
        text = self.refused("127.0.0.1", "s@hostile.spf.test", 550)
        self.assertNotIn("nope", text)
        self.assertTrue(text.startswith("550 5.7.23 "), text)

    def test_softfail_is_scored_and_tagged(self):
        data = self.deliver("127.0.0.1", "s@soft.spf.test")
        self.assertRegex(data, rb"(?m)^X-Spam-Report: .*SPF_SOFTFAIL=1")
        self.assertRegex(data, rb"(?m)^X-Spam-Score: 1\.0$")
        self.assertRegex(self.auth_results(data)[0], rb"spf=softfail .*smtp\.mailfrom=s@soft\.spf\.test")

    def test_mx_mechanism_over_real_mx_records(self):
        data = self.deliver("127.0.0.5", "s@mxd.spf.test")
        self.assertRegex(self.auth_results(data)[0], rb"spf=pass ")
        self.refused("127.0.0.6", "s@mxd.spf.test", 550)

    def test_include(self):
        self.assertRegex(self.auth_results(self.deliver("127.0.0.2", "s@inc.spf.test"))[0], rb"spf=pass ")
        self.refused("127.0.0.9", "s@inc.spf.test", 550)

    def test_null_sender_uses_the_helo_identity(self):
        data = self.deliver("127.0.0.1", "", helo="helo.spf.test")
        self.assertRegex(self.auth_results(data)[0], rb"spf=pass .*smtp\.helo=helo\.spf\.test$")

    def test_no_record_and_permerror_are_relayed(self):
        self.assertRegex(self.auth_results(self.deliver("127.0.0.1", "s@none.spf.test"))[0], rb"spf=none ")
        self.assertRegex(self.auth_results(self.deliver("127.0.0.1", "s@broken.spf.test"))[0], rb"spf=permerror ")

    def test_hostile_records_are_permerror_and_relayed(self):
        for domain in ("two", "loop", "voids"):
            ar = self.auth_results(self.deliver("127.0.0.1", f"s@{domain}.spf.test"))
            self.assertRegex(ar[0], rb"spf=permerror ", domain)
        # two void lookups are allowed
        self.assertRegex(self.auth_results(self.deliver("127.0.0.1", "s@voids2.spf.test"))[0], rb"spf=pass ")

    def test_exists_with_macros(self):
        # %{ir} = 1.0.0.127, %{l1r-} of "good-bad" = "good" (RFC 7208 §7.4: strong-bad -> strong)
        self.assertRegex(self.auth_results(self.deliver("127.0.0.1", "good-bad@macro.spf.test"))[0], rb"spf=pass ")
        self.refused("127.0.0.1", "bad-good@macro.spf.test", 550)

    def test_forged_authentication_results_with_our_id_is_removed(self):
        forged = ("Authentication-Results: MX.TEST; spf=pass smtp.mailfrom=forged@soft.spf.test\r\n"
                  "Authentication-Results: mx.test 1;\r\n dmarc=pass header.from=forged.test\r\n"
                  "Authentication-Results: other.example; spf=pass smtp.mailfrom=kept@soft.spf.test\r\n")
        data = self.deliver("127.0.0.1", "s@soft.spf.test", extra_headers=forged)
        self.assertNotIn(b"forged", data)
        ar = self.auth_results(data)
        self.assertEqual(len(ar), 2, ar)
        self.assertTrue(any(b"other.example; spf=pass smtp.mailfrom=kept@soft.spf.test" in a for a in ar), ar)
        self.assertTrue(any(re.match(rb"Authentication-Results: mx\.test; spf=softfail ", a) for a in ar), ar)

    def test_results_are_counted(self):
        self.deliver("127.0.0.1", "s@pass.spf.test")
        self.refused("127.0.0.1", "s@fail.spf.test", 550)
        status, body = http_get(self.admin, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("# HELP mxfront_spf_results_total ", body)
        self.assertRegex(body, r'(?m)^mxfront_spf_results_total\{result="pass"\} [1-9]')
        self.assertRegex(body, r'(?m)^mxfront_spf_results_total\{result="fail"\} [1-9]')


class SpfTempErrorTest(SpfBase):
    """The DNS server goes away: temperror, relayed by default (recorded) or 451 4.7.24 when configured;
    mxfront keeps serving."""

    def setUp(self):
        self.dns = Nsd(SPF_ZONE)
        self.addCleanup(lambda: self.dns.stop())  # the one running at the end (restart_nsd replaces it)

    def start_mx(self, **spf):
        self.mx = spf_mxfront(self.dns.address, on_fail="reject", **spf)
        self.addCleanup(self.mx.kill)
        self.mx.start()

    def test_temperror_is_relayed_with_the_result_by_default(self):
        self.start_mx()
        self.deliver("127.0.0.1", "s@pass.spf.test")
        self.dns.stop()
        data = self.deliver("127.0.0.1", "s@fail.spf.test")  # would be refused with DNS up
        self.assertRegex(self.auth_results(data)[0], rb"spf=temperror ")
        self.mx.check_alive()

    def test_temperror_tempfails_when_configured_and_mxfront_keeps_serving(self):
        self.start_mx(on_temperror="tempfail")
        self.deliver("127.0.0.1", "s@pass.spf.test")
        self.dns.stop()
        for domain in ("soft", "mxd", "inc"):  # never asked before: nothing cached
            text = self.refused("127.0.0.1", f"s@{domain}.spf.test", 451)
            self.assertTrue(text.startswith("451 4.7.24 "), text)
        self.mx.check_alive()
        # the answer learnt before the outage is served from the cache (TTL 60 s)
        self.assertRegex(self.auth_results(self.deliver("127.0.0.1", "s@pass.spf.test"))[0], rb"spf=pass ")
        self.dns = restart_nsd(self.dns, SPF_ZONE)  # back on the same port: mail flows again
        self.assertRegex(self.auth_results(self.deliver("127.0.0.1", "s@helo.spf.test"))[0], rb"spf=pass ")


class SpfNoCacheTest(SpfBase):
    """spf.cache_size = 0: every evaluation asks the DNS server again."""

    def test_without_cache_an_outage_is_seen_at_once(self):
        self.dns = Nsd(SPF_ZONE)
        self.addCleanup(self.dns.stop)
        self.mx = spf_mxfront(self.dns.address, cache_size=0, on_temperror="tempfail")
        self.addCleanup(self.mx.kill)
        self.mx.start()
        self.deliver("127.0.0.1", "s@pass.spf.test")
        self.dns.stop()
        self.assertTrue(self.refused("127.0.0.1", "s@pass.spf.test", 451).startswith("451 4.7.24 "))

class SlowDnsProxy(DnsFilterProxy):
    """A DNS forwarder (to the real nsd) that answers names under `slow` only after `delay` seconds."""

    def __init__(self, upstream, slow, delay):
        super().__init__(upstream)
        self.slow, self.delay = slow, delay

    def answer(self, data, tcp):
        from nsd_harness import _read_name, _under
        try:
            if _under(_read_name(data, 12)[0], [self.slow]):
                time.sleep(self.delay)
        except (ValueError, IndexError):
            pass
        return super().answer(data, tcp)


class SpfDuringDialogueTest(SpfBase):
    """The evaluation starts at MAIL and goes on while the dialogue does: MAIL is answered before the
    DNS answer arrives, and the first RCPT waits for the result."""

    DELAY = 2.0

    @classmethod
    def setUpClass(cls):
        cls.dns = Nsd(SPF_ZONE)
        cls.addClassCleanup(cls.dns.stop)
        cls.proxy = SlowDnsProxy(cls.dns.address, "slow.spf.test", cls.DELAY)
        cls.addClassCleanup(cls.proxy.stop)
        cls.mx = spf_mxfront(cls.proxy.address, on_fail="reject", query_timeout=4 * cls.DELAY)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def test_mail_is_answered_before_the_spf_result_and_rcpt_gets_it(self):
        with SmtpConn(self.mx.port, source="127.0.0.1", timeout=15) as c:
            c.cmd("EHLO client.test")
            t0 = time.monotonic()
            code = c.cmd("MAIL FROM:<s@slow.spf.test>")[0]
            mail_s = time.monotonic() - t0
            self.assertEqual(code, 250)
            # the answer is held DELAY seconds by the proxy: MAIL did not wait for it
            self.assertLess(mail_s, self.DELAY / 2, f"MAIL waited for the SPF result ({mail_s:.2f} s)")
            self.assertFalse(self.mx.wait_log(r"spf id=\S+ .*identity=<s@slow\.spf\.test>", 0.1),
                             "the result exists before the DNS answer was given")
            code, text = c.cmd("RCPT TO:<bob@example.org>")[:2]
            self.assertEqual((code, text[:11]), (550, "550 5.7.23 "), f"{text}{self.diag()}")
        self.assertTrue(self.mx.wait_log(r"spf id=\S+ client=127\.0\.0\.1 identity=<s@slow\.spf\.test> result=fail", 5))
        self.mx.check_alive()

    def test_a_client_that_leaves_before_the_result_costs_nothing(self):
        for _ in range(5):
            with SmtpConn(self.mx.port, source="127.0.0.1", timeout=15) as c:
                c.cmd("EHLO client.test")
                self.assertEqual(c.cmd("MAIL FROM:<s@slow.spf.test>")[0], 250)
        # the server keeps serving while those evaluations wind down
        self.assertRegex(self.auth_results(self.deliver("127.0.0.1", "s@pass.spf.test"))[0], rb"spf=pass ")
        self.mx.check_alive()


class SpfAuthenticatedTest(SpfBase):
    """Mail submitted after AUTH is not checked (our own users), even with on_fail = reject; the same
    sender unauthenticated on the mx listener is refused at RCPT."""

    @classmethod
    def setUpClass(cls):
        # alice's domain designates only 192.0.2.1: her mail from 127.0.0.1 fails SPF
        cls.dns = Nsd(dict(SPF_ZONE, **{"example.org": [("@", "TXT", "v=spf1 ip4:192.0.2.1 -all")]}))
        cls.addClassCleanup(cls.dns.stop)
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        users = users_file(os.path.join(cls.pki.dir, "users"))
        cfg = profile_overrides(cls.pki.server.cert, cls.pki.server.key, {"type": "file", "users_file": users})
        cfg["spf"] = {"dns_servers": [cls.dns.address], "query_timeout": 0.5, "tries": 1, "on_fail": "reject"}
        cfg["profile.mx"] = {"filters": ["spf", "relay_control"]}
        cfg["profile.submission"] = {"filters": ["spf", "relay_control"]}
        cls.mx = Mxfront([PF.address], cfg)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        (_, cls.mx_port), (_, cls.sub_port), _ = cls.mx.listeners

    def test_authenticated_submission_is_not_refused_by_spf(self):
        marker = unique_marker("spf-auth")
        with SmtpTls(self.sub_port, self.pki.client_context()) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            c.starttls()
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            code, lines = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice@example.org\0alicepw").decode())
            self.assertEqual(code, 235, lines)
            self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(f"From: <alice@example.org>\r\nSubject: {marker}\r\n\r\nbody\r\n.\r\n".encode())
            self.assertEqual(c.reply()[0], 250)
        data = PF.deliveries(10, 1, match=marker.encode())[0].data
        self.assertNotRegex(data, rb"(?mi)^Authentication-Results: mx\.test; spf=")
        self.assertFalse(self.mx.wait_log(r"spf id=\S+ .*identity=<alice@example\.org>", 0.2))
        # the same sender unauthenticated on mx: refused at RCPT
        with SmtpConn(self.mx_port, source="127.0.0.1", timeout=15) as c:
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 250)
            code, text = c.cmd("RCPT TO:<bob@example.org>")[:2]
            self.assertEqual((code, text[:11]), (550, "550 5.7.23 "), text)


class SpfReportOnlyTest(SpfBase):
    """spf.report_only: on_fail = reject is logged, the mail is relayed with spf=fail."""

    def test_report_only_relays_a_fail(self):
        self.dns = Nsd(SPF_ZONE)
        self.addCleanup(self.dns.stop)
        self.mx = spf_mxfront(self.dns.address, on_fail="reject", report_only=True)
        self.addCleanup(self.mx.kill)
        self.mx.start()
        data = self.deliver("127.0.0.1", "s@fail.spf.test")
        self.assertRegex(self.auth_results(data)[0], rb"spf=fail ")
        self.assertTrue(self.mx.wait_log(r"spf id=\S+ .*result=fail verdict=continue .*report only: would reject with 550 5\.7\.23", 5),
                        self.diag())


# ------------------------------------------------------------------------------------------------
# mxfront against the reference implementation (pyspf) over the same nsd
REF = "ref.test"
HUGE_RECORD = "v=spf1 " + " ".join(f"ip4:198.51.100.{n}/32" for n in range(1, 60)) + " ip4:127.0.0.3 -all"
LONG_LOCAL = "l" * 60
REF_ZONE = {
    REF: [
        ("ip4pass", "TXT", "v=spf1 ip4:127.0.0.0/24 -all"),
        ("ip4fail", "TXT", "v=spf1 ip4:127.0.0.2 -all"),
        ("ip6only", "TXT", "v=spf1 ip6:::1 ip6:2001:db8::/32 ip6:::ffff:127.0.0.0/104 ?all"),
        ("ip6then4", "TXT", "v=spf1 ip6:2001:db8::/32 ip4:127.0.0.1 -all"),
        ("host", "A", "127.0.0.200"),
        ("host", "AAAA", "2001:db8::200"),
        ("acidr", "TXT", "v=spf1 a:host.ref.test/24 -all"),
        ("a32", "TXT", "v=spf1 a:host.ref.test -all"),
        ("aself", "TXT", "v=spf1 a -all"),
        ("aself", "A", "127.0.0.4"),
        ("mxa", "TXT", "v=spf1 mx -all"),
        ("mxa", "MX", "10 mx1.ref.test."),
        ("mxa", "MX", "20 mx2.ref.test."),
        ("mx1", "A", "192.0.2.5"),
        ("mx2", "A", "127.0.0.5"),
        ("mx6", "TXT", "v=spf1 mx/24//64 -all"),
        ("mx6", "MX", "10 mx6host.ref.test."),
        ("mx6host", "AAAA", "2001:db8::5"),
        ("mxboth", "TXT", "v=spf1 mx:mx6.ref.test mx:mxa.ref.test/24 -all"),
        ("mx11", "TXT", "v=spf1 mx -all"),
        *[("mx11", "MX", f"{n} m{n}.ref.test.") for n in range(1, 12)],
        *[(f"m{n}", "A", f"127.0.0.{n}") for n in range(1, 12)],
        ("mx10", "TXT", "v=spf1 mx -all"),
        *[("mx10", "MX", f"{n} m{n}.ref.test.") for n in range(1, 11)],
        ("incp", "TXT", "v=spf1 include:ip4pass.ref.test -all"),
        ("incf", "TXT", "v=spf1 include:ip4fail.ref.test ~all"),
        ("incn", "TXT", "v=spf1 include:norecord.ref.test -all"),
        ("norecord", "A", "127.0.0.1"),
        ("redir", "TXT", "v=spf1 redirect=ip4pass.ref.test"),
        ("redirf", "TXT", "v=spf1 ip4:192.0.2.1 redirect=ip4fail.ref.test"),
        ("redirn", "TXT", "v=spf1 redirect=norecord.ref.test"),
        ("ex", "TXT", "v=spf1 exists:%{i}.ex.ref.test -all"),
        ("127.0.0.3.ex", "A", "127.0.0.2"),
        ("macir", "TXT", "v=spf1 exists:%{ir}.%{v}._i.ref.test -all"),
        ("3.0.0.127.in-addr._i", "A", "127.0.0.2"),
        ("macl", "TXT", "v=spf1 exists:%{ir}.%{l1r-}.allow.ref.test -all"),
        ("1.0.0.127.good.allow", "A", "127.0.0.2"),
        ("macod", "TXT", "v=spf1 include:inner.macod.ref.test -all"),
        ("inner.macod", "TXT", "v=spf1 exists:%{d1r}.%{o}.od.ref.test -all"),
        ("inner.macod.ref.test.od", "A", "127.0.0.2"),
        ("mach", "TXT", "v=spf1 exists:%{h}.h.ref.test -all"),
        ("helo1.example.h", "A", "127.0.0.2"),
        ("macs", "TXT", "v=spf1 exists:%{s2}.%{l}.%{d2}.s.ref.test -all"),
        ("ref.test.joe.ref.test.s", "A", "127.0.0.2"),
        ("macdelim", "TXT", "v=spf1 exists:%{l2r+-}._d.ref.test -all"),
        ("b.c._d", "A", "127.0.0.2"),
        ("terms10", "TXT", "v=spf1 " + "a:host.ref.test " * 9 + "a:aself.ref.test -all"),
        ("terms11", "TXT", "v=spf1 " + "a:host.ref.test " * 10 + "a:aself.ref.test -all"),
        ("voids2", "TXT", "v=spf1 a:nx1.ref.test a:nx2.ref.test ip4:127.0.0.1 -all"),
        ("voids3", "TXT", "v=spf1 a:nx1.ref.test a:nx2.ref.test a:nx3.ref.test ip4:127.0.0.1 -all"),
        ("loop", "TXT", "v=spf1 include:loop2.ref.test -all"),
        ("loop2", "TXT", "v=spf1 include:loop.ref.test -all"),
        ("two", "TXT", "v=spf1 +all"),
        ("two", "TXT", "v=spf1 -all"),
        ("twoplus", "TXT", "v=spf1 ip4:127.0.0.1 -all"),
        ("twoplus", "TXT", "some other text"),
        ("unkmech", "TXT", "v=spf1 ip4:127.0.0.0/24 foo:bar -all"),
        ("badcidr", "TXT", "v=spf1 ip4:127.0.0.0/24 ip4:192.0.2.0/33 -all"),
        ("badip", "TXT", "v=spf1 ip4:127.0.0.0/24 ip4:300.1.1.1 -all"),
        ("huge", "TXT", HUGE_RECORD),
        ("unkmod", "TXT", "v=spf1 foo=bar moo=%{l}.x ip4:127.0.0.3 -all"),
        ("spf10", "TXT", "v=spf10 +all"),
        ("upper", "TXT", "v=spf1 IP4:192.0.2.1 A:HOST.REF.TEST/24 -ALL"),
        ("qneutral", "TXT", "v=spf1 ?all"),
        ("qsoft", "TXT", "v=spf1 ~all"),
        ("qfail", "TXT", "v=spf1 -all"),
        ("qpass", "TXT", "v=spf1 +all"),
        ("nomatch", "TXT", "v=spf1 ip4:192.0.2.1"),
        ("heloid", "TXT", "v=spf1 ip4:127.0.0.8 -all"),
        ("incdrop", "TXT", "v=spf1 include:x.drop.ref.test -all"),
        ("x.drop", "TXT", "v=spf1 +all"),
        ("incsf", "TXT", "v=spf1 ip4:192.0.2.1 include:x.sf.ref.test -all"),
        ("x.sf", "TXT", "v=spf1 +all"),
        ("cname", "CNAME", "ip4pass.ref.test."),
        ("acname", "TXT", "v=spf1 a:hostalias.ref.test/24 -all"),
        ("hostalias", "CNAME", "host.ref.test."),
        ("macesc", "TXT", "v=spf1 exists:%{L}.u.ref.test -all"),
        ("a%3Db.u", "A", "127.0.0.2"),
        ("spaces", "TXT", "v=spf1  ip4:192.0.2.1   ip4:127.0.0.1   -all  "),
        ("expl", "TXT", "v=spf1 -all exp=explain.ref.test"),
        ("explain", "TXT", "no %{i} here"),
        ("redirall", "TXT", "v=spf1 -all redirect=ip4pass.ref.test"),
        ("incsyntax", "TXT", "v=spf1 ip4:192.0.2.1 include:unkmech.ref.test -all"),
        ("ip4zero", "TXT", "v=spf1 ip4:0.0.0.0/0 -all"),
        ("badcidr6", "TXT", "v=spf1 a:host.ref.test/24//129 -all"),
        ("trailingdot", "TXT", "v=spf1 include:ip4pass.ref.test. -all"),
        ("bare", "TXT", "v=spf1"),
        ("nodata3", "TXT", "v=spf1 a:ip4pass.ref.test a:ip4fail.ref.test a:ip6then4.ref.test ip4:127.0.0.1 -all"),
        ("nullmx", "TXT", "v=spf1 mx ?all"),
        ("nullmx", "MX", "0 ."),
        ("mxvoid", "TXT", "v=spf1 mx -all"),
        *[("mxvoid", "MX", f"{n} gone{n}.ref.test.") for n in range(1, 4)],
        ("ptr", "TXT", "v=spf1 ptr:good.ref.test -all"),
        ("h.good", "A", "127.0.0.3"),
        ("h.bad", "A", "127.0.0.4"),
        ("rloop", "TXT", "v=spf1 redirect=rloop.ref.test"),
        ("long", "TXT", "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.long.ref.test -all"),
        (".".join([LONG_LOCAL] * 3) + ".long", "A", "127.0.0.2"),
    ],
    "0.0.127.in-addr.arpa": [
        ("3", "PTR", "h.good.ref.test."),
        ("4", "PTR", "h.bad.ref.test."),
    ],
}

# (name, client ip, MAIL FROM, HELO, expected result, why). Expected = RFC 7208's answer.
REF_CASES = [
    ("ip4 cidr pass", "127.0.0.3", "s@ip4pass.ref.test", "client.test", "pass", "§5.6"),
    ("ip4 -all fail", "127.0.0.3", "s@ip4fail.ref.test", "client.test", "fail", "§5.6, §5.1"),
    ("ip6 terms never match an IPv4 client", "127.0.0.1", "s@ip6only.ref.test", "client.test", "neutral",
     "§5.6: ip6 matches only an IPv6 client (::ffff:127.0.0.0/104 included)"),
    ("ip6 then ip4", "127.0.0.1", "s@ip6then4.ref.test", "client.test", "pass", "§5.6"),
    ("a with /24", "127.0.0.7", "s@acidr.ref.test", "client.test", "pass", "§5.3 ip4-cidr-length"),
    ("a without cidr", "127.0.0.7", "s@a32.ref.test", "client.test", "fail", "§5.3 /32 by default"),
    ("a of the current domain", "127.0.0.4", "s@aself.ref.test", "client.test", "pass", "§5.3"),
    ("mx: second MX host's A", "127.0.0.5", "s@mxa.ref.test", "client.test", "pass", "§5.4"),
    ("mx: AAAA-only host, v4 client", "127.0.0.5", "s@mx6.ref.test", "client.test", "fail",
     "§5.4: the A of an AAAA-only exchange is empty"),
    ("mx: two mx terms", "127.0.0.9", "s@mxboth.ref.test", "client.test", "pass", "§5.4 mx/24 of mx2"),
    ("mx: 10 names", "127.0.0.10", "s@mx10.ref.test", "client.test", "pass", "§4.6.4: 10 names allowed"),
    ("mx: 11 names", "127.0.0.1", "s@mx11.ref.test", "client.test", "permerror", "§4.6.4: more than 10 MX names"),
    ("include pass", "127.0.0.3", "s@incp.ref.test", "client.test", "pass", "§5.2"),
    ("include fail is no match", "127.0.0.3", "s@incf.ref.test", "client.test", "softfail", "§5.2 table"),
    ("include none", "127.0.0.3", "s@incn.ref.test", "client.test", "permerror", "§5.2: none -> permerror"),
    ("redirect pass", "127.0.0.3", "s@redir.ref.test", "client.test", "pass", "§6.1"),
    ("redirect fail", "127.0.0.3", "s@redirf.ref.test", "client.test", "fail", "§6.1"),
    ("redirect to no record", "127.0.0.3", "s@redirn.ref.test", "client.test", "permerror", "§6.1"),
    ("exists %{i} pass", "127.0.0.3", "s@ex.ref.test", "client.test", "pass", "§5.7, §7"),
    ("exists %{i} fail", "127.0.0.4", "s@ex.ref.test", "client.test", "fail", "§5.7"),
    ("macro %{ir}.%{v}", "127.0.0.3", "s@macir.ref.test", "client.test", "pass", "§7.3"),
    ("macro %{l1r-} good", "127.0.0.1", "good-bad@macl.ref.test", "client.test", "pass", "§7.4"),
    ("macro %{l1r-} bad", "127.0.0.1", "bad-good@macl.ref.test", "client.test", "fail", "§7.4"),
    ("macro %{d1r} %{o} in include", "127.0.0.1", "s@macod.ref.test", "client.test", "pass",
     "§7.3: d is the include's domain, o the sender's"),
    ("macro %{h}", "127.0.0.1", "s@mach.ref.test", "helo1.example", "pass", "§7.3"),
    ("macro %{h} other helo", "127.0.0.1", "s@mach.ref.test", "helo2.example", "fail", "§7.3"),
    ("macro %{s2} %{l} %{d2}", "127.0.0.1", "joe@macs.ref.test", "client.test", "pass", "§7.3"),
    ("macro delimiters %{l2r+-}", "127.0.0.1", "c-b+a@macdelim.ref.test", "client.test", "pass",
     "§7.3: c-b+a split on + and - (c b a), reversed (a b c), the rightmost 2 (b c) joined with dots"),
    ("10 DNS-querying terms", "127.0.0.4", "s@terms10.ref.test", "client.test", "pass", "§4.6.4"),
    ("11 DNS-querying terms", "127.0.0.4", "s@terms11.ref.test", "client.test", "permerror", "§4.6.4"),
    ("2 void lookups", "127.0.0.1", "s@voids2.ref.test", "client.test", "pass", "§4.6.4"),
    ("3 void lookups", "127.0.0.1", "s@voids3.ref.test", "client.test", "permerror", "§4.6.4"),
    ("include loop", "127.0.0.1", "s@loop.ref.test", "client.test", "permerror", "§4.6.4 limit"),
    ("two v=spf1 records", "127.0.0.1", "s@two.ref.test", "client.test", "permerror", "§4.5"),
    ("one v=spf1 among other TXT", "127.0.0.1", "s@twoplus.ref.test", "client.test", "pass", "§4.5"),
    ("unknown mechanism after the match", "127.0.0.3", "s@unkmech.ref.test", "client.test", "permerror",
     "§4.6: a syntax error anywhere, found before evaluation"),
    ("bad cidr", "127.0.0.3", "s@badcidr.ref.test", "client.test", "permerror", "§4.6, §5.6"),
    ("bad ip4", "127.0.0.3", "s@badip.ref.test", "client.test", "permerror", "§4.6, §5.6"),
    ("huge TXT in many strings", "127.0.0.3", "s@huge.ref.test", "client.test", "pass",
     "§3.3: the strings are joined; >512 octets (TCP or EDNS)"),
    ("unknown modifiers ignored", "127.0.0.3", "s@unkmod.ref.test", "client.test", "pass", "§6"),
    ("v=spf10 is not a record", "127.0.0.1", "s@spf10.ref.test", "client.test", "none", "§4.5"),
    ("uppercase terms", "127.0.0.7", "s@upper.ref.test", "client.test", "pass", "§4.6.1 case-insensitive"),
    ("?all", "127.0.0.1", "s@qneutral.ref.test", "client.test", "neutral", "§4.6.2"),
    ("~all", "127.0.0.1", "s@qsoft.ref.test", "client.test", "softfail", "§4.6.2"),
    ("-all", "127.0.0.1", "s@qfail.ref.test", "client.test", "fail", "§4.6.2"),
    ("+all", "127.0.0.1", "s@qpass.ref.test", "client.test", "pass", "§4.6.2"),
    ("no match, no all", "127.0.0.1", "s@nomatch.ref.test", "client.test", "neutral", "§4.7"),
    ("no record at all", "127.0.0.1", "s@norecord.ref.test", "client.test", "none", "§4.5"),
    ("null sender: HELO identity pass", "127.0.0.8", "", "heloid.ref.test", "pass", "§2.3, §2.4"),
    ("null sender: HELO identity fail", "127.0.0.9", "", "heloid.ref.test", "fail", "§2.3, §2.4"),
    ("name never answers", "127.0.0.1", "s@x.drop.ref.test", "client.test", "temperror", "§4.4"),
    ("include of a name that never answers", "127.0.0.1", "s@incdrop.ref.test", "client.test", "temperror",
     "§4.4, §5.2"),
    ("SERVFAIL in an include", "127.0.0.1", "s@incsf.ref.test", "client.test", "temperror", "§4.4, §5.2"),
    ("SERVFAIL on the record", "127.0.0.1", "s@x.sf.ref.test", "client.test", "temperror", "§4.4"),
    ("record behind a CNAME", "127.0.0.3", "s@cname.ref.test", "client.test", "pass", "§4.4, RFC 1034 CNAME"),
    ("a: of a CNAME", "127.0.0.7", "s@acname.ref.test", "client.test", "pass", "§5.3"),
    ("macro %{L} URL-escapes", "127.0.0.1", "a=b@macesc.ref.test", "client.test", "pass",
     "§7.3: an uppercase letter URL-escapes ('=' -> %3D)"),
    ("several spaces between terms", "127.0.0.1", "s@spaces.ref.test", "client.test", "pass", "§4.6.1 ABNF 1*SP, *SP"),
    ("exp= with -all", "127.0.0.1", "s@expl.ref.test", "client.test", "fail", "§6.2"),
    ("redirect ignored when all is there", "127.0.0.3", "s@redirall.ref.test", "client.test", "fail", "§6.1"),
    ("include of a record with a syntax error", "127.0.0.3", "s@incsyntax.ref.test", "client.test",
     "permerror", "§5.2: permerror in the include"),
    ("ip4:0.0.0.0/0", "127.0.0.1", "s@ip4zero.ref.test", "client.test", "pass", "§5.6"),
    ("a with ip6-cidr 129", "127.0.0.7", "s@badcidr6.ref.test", "client.test", "permerror", "§5.6"),
    ("domain-spec with a trailing dot", "127.0.0.3", "s@trailingdot.ref.test", "client.test", "pass", "§7.3"),
    ("bare v=spf1", "127.0.0.1", "s@bare.ref.test", "client.test", "neutral", "§4.7"),
    ("3 NODATA lookups", "127.0.0.1", "s@nodata3.ref.test", "client.test", "permerror",
     "§4.6.4: RCODE 0 with no answer is void too"),
    ("null MX", "127.0.0.1", "s@nullmx.ref.test", "client.test", "neutral", "§5.4, RFC 7505"),
    ("ptr: validated name", "127.0.0.3", "s@ptr.ref.test", "client.test", "pass", "§5.5"),
    ("ptr: name outside the domain", "127.0.0.4", "s@ptr.ref.test", "client.test", "fail", "§5.5"),
    ("redirect to itself", "127.0.0.1", "s@rloop.ref.test", "client.test", "permerror", "§4.6.4 limit"),
    ("macro name over 253 octets", "127.0.0.1", LONG_LOCAL + "@long.ref.test", "client.test", "pass",
     "§7.3: labels dropped on the left until <= 253 octets"),
    ("mx whose 3 names do not exist", "127.0.0.1", "s@mxvoid.ref.test", "client.test", "fail",
     "§4.6.4 counts void TERMS: the mx term's MX query answered, its exchanges' A lookups are not terms"),
]

# Where pyspf does not give RFC 7208's answer: case name -> pyspf's result (with why in a comment).
PYSPF_DEVIATIONS = {
    # pyspf 2.0.14 counts every empty DNS answer as a void lookup (spf.query.dns(): each of the mx
    # term's three exchange A queries), so three NXDOMAIN exchanges exceed the limit of 2. RFC 7208
    # §4.6.4 limits the number of "terms" whose DNS queries come back void: here one term (mx) whose
    # MX query did answer, so the limit is not reached and the result is -all's fail (mxfront).
    "mx whose 3 names do not exist": "permerror",
}

PYSPF_NAMES = {"error": "temperror", "unknown": "permerror"}  # pre-RFC 7208 spellings


def loopback_resolver(dns_port):
    """A dnspython resolver asking only 127.0.0.1:dns_port (never /etc/resolv.conf), without a cache."""
    if "/usr/lib/python3/dist-packages" not in sys.path:  # Debian's python3-spf and dnspython
        sys.path.append("/usr/lib/python3/dist-packages")
    import dns.resolver
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = dns_port
    r.timeout = 1.0
    r.lifetime = 2.0
    r.cache = None
    return r


def pyspf_check(dns_port, ip, sender, helo):
    """pyspf's check2() with dnspython's default resolver (which pyspf's lookups use) replaced by
    loopback_resolver(dns_port); the result in RFC 7208's words."""
    import dns.resolver
    dns.resolver.default_resolver = loopback_resolver(dns_port)
    import spf
    warnings.filterwarnings("ignore", "please use dns.resolver.resolve", DeprecationWarning)  # spf.py's own call
    result, _explanation = spf.check2(i=ip, s=sender, h=helo, timeout=2, querytime=2)
    return PYSPF_NAMES.get(result, result)


class SpfReferenceTest(SpfBase):
    """Each case through mxfront (everything relayed: on_fail scored, errors recorded) and through
    pyspf, both against the same nsd behind a DnsFilterProxy (x.drop.ref.test never answers,
    x.sf.ref.test SERVFAILs): mxfront's spf= must be RFC 7208's answer, and so must pyspf's."""

    @classmethod
    def setUpClass(cls):
        cls.nsd = Nsd(REF_ZONE)  # HarnessError (never a skip) when nsd cannot serve
        cls.addClassCleanup(cls.nsd.stop)
        cls.dns = DnsFilterProxy(cls.nsd.address, drop=("drop." + REF,), servfail=("sf." + REF,))
        cls.addClassCleanup(cls.dns.stop)
        cls.mx = spf_mxfront(cls.dns.address, query_timeout=1.0)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def mxfront_result(self, ip, sender, helo):
        ar = self.auth_results(self.deliver(ip, sender, helo=helo))
        self.assertEqual(len(ar), 1, ar)
        m = re.match(rb"Authentication-Results: mx\.test; spf=(\w+) ", ar[0])
        self.assertIsNotNone(m, ar[0])
        return m.group(1).decode()

    def test_the_huge_record_is_served_in_many_strings(self):
        answer = loopback_resolver(self.nsd.port).resolve("huge." + REF, "TXT", tcp=True)
        self.assertEqual([b"".join(r.strings).decode() for r in answer], [HUGE_RECORD])
        self.assertGreaterEqual(len(answer[0].strings), 5)  # 255-octet strings, > 1200 octets in all

    def test_cases_against_pyspf(self):
        names = [c[0] for c in REF_CASES]
        self.assertGreaterEqual(len(names), 25)
        self.assertEqual(len(set(names)), len(names), "case names are keys: unique")
        self.assertLessEqual(set(PYSPF_DEVIATIONS), set(names))
        table = []
        for name, ip, sender, helo, expected, why in REF_CASES:
            with self.subTest(name):
                got_mx = self.mxfront_result(ip, sender, helo)
                got_py = pyspf_check(self.dns.port, ip, sender, helo)
                table.append(f"{name:45} expected={expected:9} mxfront={got_mx:9} pyspf={got_py}")
                self.assertEqual(got_mx, expected, f"mxfront, {why}{self.diag()}")
                self.assertEqual(got_py, PYSPF_DEVIATIONS.get(name, expected), f"pyspf, {why}")
        if os.environ.get("SPF_TABLE"):
            print("\n" + "\n".join(table))


if __name__ == "__main__":
    unittest.main()

"""The spf filter against a REAL DNS server (rbldnsd, generic dataset: A, TXT, MX records) on
loopback, relaying to a REAL Postfix qmqpd. Clients connect FROM chosen 127.0.0.x addresses.
Nothing uses the system resolver: spf.dns_servers points at the harness's rbldnsd. If rbldnsd
cannot start, the tests fail (HarnessError), they never skip.
Run from the repo root:  python3 -m unittest -v tests/integration/test_spf.py  (root: Postfix)."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, SmtpConn, free_port, http_get, unique_marker  # noqa: E402
from rbldnsd_harness import Rbldnsd  # noqa: E402

PF = None  # one Postfix for the module

SPF_ZONE = {
    "spf.test": ("generic", """\
$SOA 300 ns.spf.test. hostmaster.spf.test. 1 600 300 86400 60
pass TXT "v=spf1 ip4:127.0.0.0/29 -all"
fail TXT "v=spf1 ip4:192.0.2.1 -all"
soft TXT "v=spf1 ip4:192.0.2.1 ~all"
mxd TXT "v=spf1 mx -all"
mxd MX 10 mail.spf.test
mail A 127.0.0.5
inc TXT "v=spf1 include:pass.spf.test -all"
helo TXT "v=spf1 a:client.spf.test -all"
client A 127.0.0.1
broken TXT "v=spf1 ip4:300.1.1.1 -all"
two TXT "v=spf1 +all"
two TXT "v=spf1 -all"
loop TXT "v=spf1 include:loop2.spf.test -all"
loop2 TXT "v=spf1 include:loop.spf.test -all"
voids TXT "v=spf1 a:nx1.spf.test a:nx2.spf.test a:nx3.spf.test +all"
voids2 TXT "v=spf1 a:nx1.spf.test a:nx2.spf.test +all"
macro TXT "v=spf1 exists:%{ir}.%{l1r-}.allow.spf.test -all"
1.0.0.127.good.allow A 127.0.0.2
"""),
}


def setUpModule():
    global PF
    PF = PostfixQmqp()
    unittest.addModuleCleanup(PF.stop)
    PF.start()


def spf_mxfront(dns, admin_port=None, **spf):
    cfg = {"dns_servers": [dns], "query_timeout": 0.3, "tries": 1}
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
    reply is None when MAIL was refused."""
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
        marker = unique_marker("spf")
        mail, final = transaction(self.mx, source, sender, marker=marker)
        self.assertIsNone(final, f"MAIL should have been refused, got {mail} then {final}")
        self.assertEqual(mail[0], code, f"{mail}{self.diag()}")
        self.assertEqual(PF.deliveries(0.5, None, match=marker.encode()), [], "a refused mail was delivered")
        return mail[1]

    @staticmethod
    def auth_results(data):
        return re.findall(rb"(?mi)^Authentication-Results:[^\n]*(?:\n[ \t][^\n]*)*", data)


class SpfRejectTest(SpfBase):
    """on_fail = reject, the other results by default (softfail scored)."""

    @classmethod
    def setUpClass(cls):
        cls.dns = Rbldnsd(SPF_ZONE)
        cls.addClassCleanup(cls.dns.stop)
        cls.dns.start()  # raises HarnessError (test error, never a skip) when rbldnsd cannot serve
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

    def test_fail_is_refused_at_mail_with_5_7_23(self):
        text = self.refused("127.0.0.1", "s@fail.spf.test", 550)
        self.assertTrue(text.startswith("550 5.7.23 "), text)
        self.assertIn("fail.spf.test", text)
        self.assertTrue(self.mx.wait_log(r"spf id=\S+ client=127\.0\.0\.1 identity=<s@fail\.spf\.test> result=fail", 5),
                        self.diag())

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
        self.dns = Rbldnsd(SPF_ZONE)
        self.addCleanup(self.dns.stop)
        self.dns.start()

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
        port = self.dns.port
        self.dns.stop()
        self.dns.start(port=port)  # back on the same port: mail flows again
        self.assertRegex(self.auth_results(self.deliver("127.0.0.1", "s@helo.spf.test"))[0], rb"spf=pass ")


class SpfNoCacheTest(SpfBase):
    """spf.cache_size = 0: every evaluation asks the DNS server again."""

    def test_without_cache_an_outage_is_seen_at_once(self):
        self.dns = Rbldnsd(SPF_ZONE)
        self.addCleanup(self.dns.stop)
        self.dns.start()
        self.mx = spf_mxfront(self.dns.address, cache_size=0, on_temperror="tempfail")
        self.addCleanup(self.mx.kill)
        self.mx.start()
        self.deliver("127.0.0.1", "s@pass.spf.test")
        self.dns.stop()
        self.assertTrue(self.refused("127.0.0.1", "s@pass.spf.test", 451).startswith("451 4.7.24 "))

class SpfReportOnlyTest(SpfBase):
    """spf.report_only: on_fail = reject is logged, the mail is relayed with spf=fail."""

    def test_report_only_relays_a_fail(self):
        self.dns = Rbldnsd(SPF_ZONE)
        self.addCleanup(self.dns.stop)
        self.dns.start()
        self.mx = spf_mxfront(self.dns.address, on_fail="reject", report_only=True)
        self.addCleanup(self.mx.kill)
        self.mx.start()
        data = self.deliver("127.0.0.1", "s@fail.spf.test")
        self.assertRegex(self.auth_results(data)[0], rb"spf=fail ")
        self.assertTrue(self.mx.wait_log(r"spf id=\S+ .*result=fail verdict=continue .*report only: would reject with 550 5\.7\.23", 5),
                        self.diag())


if __name__ == "__main__":
    unittest.main()

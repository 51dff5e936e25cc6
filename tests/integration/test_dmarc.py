"""The dmarc filter (with spf before it) against a REAL authoritative DNS server (nsd, zone files
written here) on loopback, relaying to a REAL Postfix qmqpd. Clients connect FROM chosen 127.0.0.x
addresses: 127.0.0.1 is the designated sender of every test domain, 127.0.0.2 is not. A fault proxy
(DnsFilterProxy) in front of nsd, which mxfront asks, never answers _dmarc.slow.test and
mail.tempspf.test and answers SERVFAIL for _dmarc.broken.test. Nothing uses the system resolver.
The SPF verdicts the tests rely on are checked against python3-spf (the reference implementation)
pointed at the same nsd. If nsd or Postfix cannot start, the tests fail, they never skip.
Run from the repo root:  MXFRONT_BIN=build/mxfront python3 -m unittest -v tests/integration/test_dmarc.py"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, SmtpConn, free_port, http_get, to_toml, unique_marker  # noqa: E402
from nsd_harness import DnsFilterProxy, Nsd  # noqa: E402
from tls_harness import TestPki, SmtpTls, ehlo_keywords, profile_overrides, users_file  # noqa: E402

PF = None  # one Postfix for the module
DNS = None  # nsd
PROXY = None  # the fault proxy in front of it: what mxfront asks

SPF = "v=spf1 ip4:127.0.0.1 -all"


def zone(dmarc, spf=SPF, extra=()):
    records = [("@", "TXT", spf), ("@", "A", "127.0.0.1")]
    if dmarc:
        records.append(("_dmarc", "TXT", dmarc))
    return records + list(extra)


ZONES = {
    # mta.reject.test is a HELO name whose SPF lets 127.0.0.2 send: bounces (MAIL FROM:<>) from it
    # are SPF-checked as postmaster@mta.reject.test, aligned with From reject.test
    "reject.test": zone("v=DMARC1; p=reject; rua=mailto:reports@reject.test",
                        extra=[("mta", "TXT", "v=spf1 ip4:127.0.0.2 -all")]),
    "quar.test": zone("v=DMARC1; p=quarantine"),
    "none.test": zone("v=DMARC1; p=none"),
    "pct0.test": zone("v=DMARC1; p=reject; pct=0"),
    # subdomains have no record of their own: the organisational domain's sp= applies (org.test is
    # the organisational domain of a.org.test by the public suffix list's default rule "*")
    "org.test": zone("v=DMARC1; p=reject; sp=quarantine", extra=[("a", "TXT", SPF)]),
    "nodmarc.test": zone(None),
    "slow.test": zone("v=DMARC1; p=reject"),
    "broken.test": zone("v=DMARC1; p=reject"),  # its _dmarc name answers SERVFAIL (proxy)
    # mail.tempspf.test's SPF lookup never answers (proxy): an aligned SPF temperror under p=reject
    "tempspf.test": zone("v=DMARC1; p=reject", extra=[("mail", "TXT", SPF)]),
    # an unrelated domain whose SPF lets 127.0.0.2 send: the envelope of a forged From
    "other.test": zone(None, spf="v=spf1 ip4:127.0.0.2 -all"),
}


DKIM_KEY = None  # reject.test's signing key (PEM), selector "mx"; its public half is in the zone


def setUpModule():
    global PF, DNS, PROXY, DKIM_KEY
    PF = PostfixQmqp()
    unittest.addModuleCleanup(PF.stop)
    PF.start()
    tmp = tempfile.mkdtemp(prefix="mxtest-dmarc-keys.")
    unittest.addModuleCleanup(shutil.rmtree, tmp, True)
    key = os.path.join(tmp, "mx.pem")
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", key, "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"], check=True, capture_output=True).stdout
    with open(key, "rb") as f:
        DKIM_KEY = f.read()
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    ZONES["reject.test"].append(("mx._domainkey", "TXT", record))  # d=reject.test: aligned with From
    ZONES["other.test"].append(("mx._domainkey", "TXT", record))   # d=other.test: a third party
    ZONES["reject.test"].append(("slowkey._domainkey", "TXT", record))  # never answers (proxy)
    DNS = Nsd(ZONES)  # raises HarnessError (a test error, never a skip) when nsd cannot serve
    unittest.addModuleCleanup(DNS.stop)
    PROXY = DnsFilterProxy(DNS.address, drop=("_dmarc.slow.test", "mail.tempspf.test", "slowkey._domainkey.reject.test"),
                           servfail=("_dmarc.broken.test",))
    unittest.addModuleCleanup(PROXY.stop)


def reference_spf(ip, sender, helo="client.test"):
    """python3-spf's verdict for (ip, sender) against the same nsd (Debian's module, also when the
    interpreter running the tests is not Debian's)."""
    if "/usr/lib/python3/dist-packages" not in sys.path:
        sys.path.append("/usr/lib/python3/dist-packages")
    import dns.resolver  # noqa: E402 (python3-dnspython)
    import spf  # noqa: E402 (python3-spf; an ImportError fails the test)
    host, port = DNS.address.rsplit(":", 1)
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [host]
    r.port = int(port)
    dns.resolver.default_resolver = r
    return spf.check2(i=ip, s=sender, h=helo)[0]


def dmarc_config(**dmarc):
    cfg = {"dns_servers": [PROXY.address], "query_timeout": 0.5, "tries": 1}
    cfg.update(dmarc)
    return {
        "spf": {"dns_servers": [PROXY.address], "query_timeout": 0.5, "tries": 1, "on_fail": "none"},
        "dkim": {"dns_servers": [PROXY.address], "query_timeout": 0.5, "tries": 1},
        "dmarc": cfg,
        "profile.mx": {"filters": ["spf", "dkim", "dmarc", "relay_control"], "reject_score": 10, "tag_score": 0.5},
    }


def transaction(port, source, sender, from_header, marker, extra_headers="", helo="client.test"):
    """One SMTP transaction. Returns the replies to MAIL, RCPT and the end of DATA as (code, text)."""
    with SmtpConn(port, source=source, timeout=15) as c:
        c.cmd(f"EHLO {helo}")
        mail = c.cmd(f"MAIL FROM:<{sender}>")[:2]
        rcpt = c.cmd("RCPT TO:<bob@example.org>")[:2]
        code = c.cmd("DATA")[0]
        if code != 354:
            return mail, rcpt, (code, "")
        c.send(f"{extra_headers}From: {from_header}\r\nSubject: {marker}\r\n\r\nbody {marker}\r\n.\r\n".encode())
        final = c.reply()[:2]
        c.cmd("QUIT")
        return mail, rcpt, final


def signed_mail(marker, from_domain="reject.test", d="reject.test", selector="mx"):
    """A message From: ceo@<from_domain>, DKIM-signed by python3-dkim (the reference signer) for d=<d>."""
    import dkim  # python3-dkim (Debian's module; mxharness puts it on the path)
    msg = (f"From: The CEO <ceo@{from_domain}>\r\nTo: Bob <bob@example.org>\r\nSubject: {marker}\r\n"
           f"Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <{marker}@{from_domain}>\r\n\r\n"
           f"Please pay the invoice {marker}.\r\n").encode()
    return dkim.sign(msg, selector.encode(), d.encode(), DKIM_KEY, include_headers=[b"from", b"to", b"subject", b"date"]) + msg


def raw_transaction(port, source, sender, data):
    """MAIL, RCPT, DATA with `data` as the message (CRLF lines, no line starting with '.')."""
    with SmtpConn(port, source=source, timeout=15) as c:
        c.cmd("EHLO client.test")
        mail = c.cmd(f"MAIL FROM:<{sender}>")[:2]
        rcpt = c.cmd("RCPT TO:<bob@example.org>")[:2]
        code = c.cmd("DATA")[0]
        if code != 354:
            return mail, rcpt, (code, "")
        c.send(data + b".\r\n")
        final = c.reply()[:2]
        c.cmd("QUIT")
        return mail, rcpt, final


class DmarcBase(unittest.TestCase):
    @classmethod
    def start(cls, **dmarc):
        cls.admin = free_port()
        config = dmarc_config(**dmarc)
        config["admin"] = {"address": f"127.0.0.1:{cls.admin}"}
        cls.mx = Mxfront([PF.address], config=config)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        if getattr(self, "mx", None):  # not started by tests that only check the config
            self.mx.check_alive()

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix ---\n{PF.log()[-1500:]}"

    def send(self, source, sender, from_header, extra_headers="", helo="client.test"):
        marker = unique_marker("dmarc")
        mail, rcpt, final = transaction(self.mx.port, source, sender, from_header, marker, extra_headers, helo)
        self.assertEqual(mail[0], 250, f"MAIL refused: {mail}{self.diag()}")
        self.assertEqual(rcpt[0], 250, f"RCPT refused: {rcpt}{self.diag()}")
        return marker, final

    def deliver(self, source, sender, from_header, extra_headers="", helo="client.test"):
        marker, final = self.send(source, sender, from_header, extra_headers, helo)
        self.assertEqual(final[0], 250, f"message refused: {final}{self.diag()}")
        ds = PF.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1, f"no delivery{self.diag()}")
        return ds[0].data

    def refused(self, source, sender, from_header, code=550, extra_headers="", helo="client.test"):
        marker, final = self.send(source, sender, from_header, extra_headers, helo)
        self.assertEqual(final[0], code, f"end of DATA: {final}{self.diag()}")
        self.assertEqual(PF.deliveries(0.5, None, match=marker.encode()), [], "a refused mail was delivered")
        return final[1]

    @staticmethod
    def dmarc_results(data):
        fields = re.findall(rb"(?mi)^Authentication-Results:[^\n]*(?:\n[ \t][^\n]*)*", data)
        return [f for f in fields if b"dmarc=" in f]

    def one_dmarc(self, data):
        ar = self.dmarc_results(data)
        self.assertEqual(len(ar), 1, data[:1000])
        return ar[0].decode()


class DmarcEnforceTest(DmarcBase):
    @classmethod
    def setUpClass(cls):
        cls.start()

    def test_reference_spf_agrees_on_the_test_domains(self):
        self.assertEqual(reference_spf("127.0.0.1", "s@reject.test"), "pass")
        self.assertEqual(reference_spf("127.0.0.2", "s@reject.test"), "fail")
        self.assertEqual(reference_spf("127.0.0.2", "s@other.test"), "pass")
        self.assertEqual(reference_spf("127.0.0.2", "s@a.org.test"), "fail")
        # the null sender: the HELO identity, postmaster@<HELO> (RFC 7208 §2.4)
        self.assertEqual(reference_spf("127.0.0.2", "", helo="mta.reject.test"), "pass")
        self.assertEqual(reference_spf("127.0.0.2", "", helo="other.test"), "pass")

    def test_forged_from_of_a_reject_domain_is_refused_at_end_of_data(self):
        # SPF fails for the From domain's own envelope from 127.0.0.2
        text = self.refused("127.0.0.2", "s@reject.test", "<ceo@reject.test>")
        self.assertTrue(text.startswith("550 5.7.1 "), text)
        self.assertIn("reject.test", text)
        self.assertTrue(self.mx.wait_log(r"dmarc id=\S+ source_ip=127\.0\.0\.2 header_from=reject\.test "
                                         r"policy_domain=reject\.test p=reject sp=reject pct=100 adkim=r aspf=r "
                                         r"disposition=reject dmarc=fail spf=fail spf_domain=reject\.test spf_scope=mfrom spf_aligned=no "
                                         r"dkim=- dkim_aligned=no override=-", 5), self.diag())

    def test_forged_from_with_an_unaligned_spf_pass_is_refused(self):
        text = self.refused("127.0.0.2", "s@other.test", "\"The CEO\" <ceo@reject.test>")
        self.assertTrue(text.startswith("550 5.7.1 "), text)

    def test_aligned_spf_pass_is_relayed_with_dmarc_pass(self):
        data = self.deliver("127.0.0.1", "bounces@reject.test", "Someone <someone@reject.test>")
        # one field with our authserv-id carries the three results, spf then dkim then dmarc
        self.assertRegex(self.one_dmarc(data),
                         r"^Authentication-Results: mx\.test; spf=pass \(.*\) smtp\.mailfrom=bounces@reject\.test;\n\t"
                         r"dkim=none;\n\tdmarc=pass \(p=reject sp=reject dis=NONE\) header\.from=reject\.test$")

    def test_quarantine_is_relayed_scored_and_tagged(self):
        data = self.deliver("127.0.0.2", "s@quar.test", "<s@quar.test>")
        self.assertIn("dmarc=fail (p=quarantine sp=quarantine dis=QUARANTINE) header.from=quar.test", self.one_dmarc(data))
        self.assertRegex(data, rb"(?m)^X-Spam-Report: .*DMARC_QUARANTINE=5")
        self.assertRegex(data, rb"(?m)^X-Spam-Score: 5\.0$")

    def test_policy_none_is_relayed_and_recorded(self):
        data = self.deliver("127.0.0.2", "s@none.test", "<s@none.test>")
        self.assertIn("dmarc=fail (p=none sp=none dis=NONE) header.from=none.test", self.one_dmarc(data))
        self.assertNotIn(b"X-Spam-Report", data)

    def test_no_record_is_none(self):
        data = self.deliver("127.0.0.2", "s@nodmarc.test", "<s@nodmarc.test>")
        self.assertRegex(self.one_dmarc(data), r"dmarc=none .*header\.from=nodmarc\.test$")

    def test_pct0_on_reject_quarantines(self):
        data = self.deliver("127.0.0.2", "s@pct0.test", "<s@pct0.test>")
        self.assertIn("dmarc=fail (p=reject sp=reject dis=QUARANTINE policy.override=sampled_out) header.from=pct0.test",
                      self.one_dmarc(data))
        self.assertRegex(data, rb"(?m)^X-Spam-Report: .*DMARC_QUARANTINE=5")

    def test_subdomain_uses_sp_of_the_organisational_domain(self):
        data = self.deliver("127.0.0.2", "s@a.org.test", "<s@a.org.test>")
        self.assertIn("dmarc=fail (p=reject sp=quarantine dis=QUARANTINE) header.from=a.org.test", self.one_dmarc(data))
        self.assertTrue(self.mx.wait_log(r"dmarc id=\S+ source_ip=127\.0\.0\.2 header_from=a\.org\.test policy_domain=org\.test ", 5),
                        self.diag())
        # relaxed alignment: the subdomain's SPF pass aligns with the organisational domain's From
        data = self.deliver("127.0.0.1", "s@a.org.test", "<x@org.test>")
        self.assertIn("dmarc=pass", self.one_dmarc(data))

    def test_dmarc_lookup_that_never_answers_is_temperror_and_relayed(self):
        data = self.deliver("127.0.0.2", "s@slow.test", "<s@slow.test>")
        self.assertRegex(self.one_dmarc(data), r"dmarc=temperror \(.*\) header\.from=slow\.test$")
        self.assertGreater(PROXY.dropped, 0)

    def test_dmarc_lookup_servfail_is_temperror_and_relayed(self):
        data = self.deliver("127.0.0.2", "s@broken.test", "<s@broken.test>")
        self.assertRegex(self.one_dmarc(data), r"dmarc=temperror \(.*\) header\.from=broken\.test$")

    def test_aligned_spf_temperror_is_never_a_reject(self):
        # SPF of mail.tempspf.test times out; it aligns (relaxed) with From tempspf.test, p=reject
        data = self.deliver("127.0.0.2", "s@mail.tempspf.test", "<ceo@tempspf.test>")
        self.assertRegex(self.one_dmarc(data), r"dmarc=temperror \(.*\) header\.from=tempspf\.test$")
        self.assertRegex(data, rb"(?m)^Authentication-Results: mx\.test; spf=temperror ")

    def test_multiple_from_is_refused(self):
        text = self.refused("127.0.0.1", "s@reject.test", "<a@reject.test>, <b@evil.test>")
        self.assertTrue(text.startswith("550 5.7.1 "), text)
        self.assertIn("multiple From", text)
        marker, final = self.send("127.0.0.1", "s@reject.test", "<a@reject.test>", extra_headers="From: <b@evil.test>\r\n")
        self.assertEqual(final[0], 550, final)

    def test_forged_authentication_results_with_our_id_is_removed(self):
        forged = ("Authentication-Results: MX.TEST; dmarc=pass header.from=forged.test\r\n"
                  "Authentication-Results: other.example; dmarc=pass header.from=kept.test\r\n")
        data = self.deliver("127.0.0.1", "s@none.test", "<s@none.test>", extra_headers=forged)
        self.assertNotIn(b"forged.test", data)
        ar = [a.decode() for a in self.dmarc_results(data)]
        self.assertEqual(len(ar), 2, ar)
        self.assertIn("Authentication-Results: other.example; dmarc=pass header.from=kept.test", ar)
        self.assertTrue(any(a.startswith("Authentication-Results: mx.test; spf=") and "\tdmarc=pass " in a for a in ar), ar)

    def test_forged_fields_in_every_rfc8601_form_are_removed_and_decide_nothing(self):
        # our authserv-id after a comment, quoted, folded with a version: a sender's forged verdicts
        forged = ("Authentication-Results: (x) mx.test; dmarc=pass header.from=forged1.test\r\n"
                  "Authentication-Results: \"mx.test\"; spf=pass smtp.mailfrom=forged2.test\r\n"
                  "Authentication-Results: (folded\r\n comment) MX.test 1;\r\n dkim=pass header.d=forged3.test\r\n"
                  "Authentication-Results: mx.test.evil.example; dmarc=pass header.from=kept1.test\r\n"
                  "Authentication-Results: notmx.test; spf=pass smtp.mailfrom=kept2.test\r\n")
        # relayed without them, and our own verdicts are the real ones (SPF fails from 127.0.0.2)
        data = self.deliver("127.0.0.2", "s@none.test", "<s@none.test>", extra_headers=forged)
        for gone in (b"forged1.test", b"forged2.test", b"forged3.test"):
            self.assertNotIn(gone, data)
        self.assertIn(b"Authentication-Results: mx.test.evil.example; dmarc=pass header.from=kept1.test", data)
        self.assertIn(b"Authentication-Results: notmx.test; spf=pass smtp.mailfrom=kept2.test", data)
        ours = [f for f in self.dmarc_results(data) if f.startswith(b"Authentication-Results: mx.test;")]
        self.assertEqual(len(ours), 1, data[:1500])
        self.assertRegex(ours[0], rb"^Authentication-Results: mx\.test; spf=fail .*\n\tdkim=none;\n\tdmarc=fail ")
        # a forged From of a p=reject domain is refused all the same
        text = self.refused("127.0.0.2", "s@reject.test", "<ceo@reject.test>", extra_headers=forged)
        self.assertTrue(text.startswith("550 5.7.1 "), text)

    def test_null_sender_aligned_helo_spf_pass_is_dmarc_pass(self):
        # an unsigned bounce: SPF checks postmaster@mta.reject.test (passes from 127.0.0.2), which
        # aligns (relaxed) with From reject.test under p=reject
        data = self.deliver("127.0.0.2", "", "Mail Delivery System <MAILER-DAEMON@reject.test>", helo="mta.reject.test")
        self.assertRegex(self.one_dmarc(data),
                         r"^Authentication-Results: mx\.test; spf=pass \(.*\) smtp\.helo=mta\.reject\.test;\n\t"
                         r"dkim=none;\n\tdmarc=pass \(p=reject sp=reject dis=NONE\) header\.from=reject\.test$")
        self.assertTrue(self.mx.wait_log(r"dmarc id=\S+ source_ip=127\.0\.0\.2 header_from=reject\.test .*dmarc=pass "
                                         r"spf=pass spf_domain=mta\.reject\.test spf_scope=helo spf_aligned=yes ", 5),
                        self.diag())

    def test_null_sender_unaligned_helo_spf_pass_is_refused(self):
        # the same bounce from a HELO name of another domain: SPF passes for it, but is not aligned
        text = self.refused("127.0.0.2", "", "Mail Delivery System <MAILER-DAEMON@reject.test>", helo="other.test")
        self.assertTrue(text.startswith("550 5.7.1 "), text)
        self.assertTrue(self.mx.wait_log(r"dmarc id=\S+ source_ip=127\.0\.0\.2 header_from=reject\.test .*dmarc=fail "
                                         r"spf=pass spf_domain=other\.test spf_scope=helo spf_aligned=no ", 5), self.diag())

    def test_results_and_dispositions_are_counted(self):
        self.refused("127.0.0.2", "s@reject.test", "<s@reject.test>")
        self.deliver("127.0.0.1", "s@reject.test", "<s@reject.test>")
        status, body = http_get(self.admin, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("# HELP mxfront_dmarc_results_total ", body)
        self.assertRegex(body, r'(?m)^mxfront_dmarc_results_total\{result="pass"\} [1-9]')
        self.assertRegex(body, r'(?m)^mxfront_dmarc_results_total\{result="fail"\} [1-9]')
        self.assertRegex(body, r'(?m)^mxfront_dmarc_dispositions_total\{disposition="reject"\} [1-9]')


class DmarcWithDkimTest(DmarcBase):
    """DMARC on the dkim filter's results: messages signed by the real signer (python3-dkim), keys in nsd."""

    @classmethod
    def setUpClass(cls):
        cls.start()

    def send_signed(self, source, sender, data, marker):
        mail, rcpt, final = raw_transaction(self.mx.port, source, sender, data)
        self.assertEqual((mail[0], rcpt[0]), (250, 250), f"{mail} {rcpt}{self.diag()}")
        return final

    def test_aligned_dkim_pass_rescues_a_failing_spf(self):
        # SPF fails for the From domain's envelope from 127.0.0.2 (a forwarder), the signature holds
        marker = unique_marker("dkimok")
        final = self.send_signed("127.0.0.2", "s@reject.test", signed_mail(marker), marker)
        self.assertEqual(final[0], 250, f"{final}{self.diag()}")
        ds = PF.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1, self.diag())
        self.assertIn("dmarc=pass (p=reject sp=reject dis=NONE) header.from=reject.test", self.one_dmarc(ds[0].data))
        self.assertRegex(ds[0].data, rb"(?m)^Authentication-Results: mx\.test; spf=fail .*;\n\tdkim=pass .*header\.d=reject\.test")
        self.assertTrue(self.mx.wait_log(r"dmarc id=\S+ source_ip=127\.0\.0\.2 header_from=reject\.test .*dmarc=pass "
                                         r"spf=fail spf_domain=reject\.test spf_scope=mfrom spf_aligned=no dkim=reject\.test:pass dkim_aligned=yes", 5),
                        self.diag())

    def test_signature_broken_in_transit_is_refused(self):
        marker = unique_marker("dkimbad")
        data = signed_mail(marker).replace(b"Please pay the invoice", b"Please pay THE invoice")
        final = self.send_signed("127.0.0.2", "s@reject.test", data, marker)
        self.assertEqual(final[0], 550, f"{final}{self.diag()}")
        self.assertEqual(PF.deliveries(0.5, None, match=marker.encode()), [])

    def test_a_third_party_signature_is_not_aligned(self):
        marker = unique_marker("dkim3rd")
        final = self.send_signed("127.0.0.2", "s@reject.test", signed_mail(marker, d="other.test"), marker)
        self.assertEqual(final[0], 550, f"{final}{self.diag()}")
        self.assertEqual(PF.deliveries(0.5, None, match=marker.encode()), [])

    def test_aligned_key_lookup_temperror_is_never_a_reject(self):
        marker = unique_marker("dkimtemp")
        final = self.send_signed("127.0.0.2", "s@reject.test", signed_mail(marker, selector="slowkey"), marker)
        self.assertNotEqual(final[0] // 100, 5, f"a DKIM temperror on the aligned domain became a 5xx: {final}{self.diag()}")
        if final[0] == 250:
            ds = PF.deliveries(10, 1, match=marker.encode())
            self.assertEqual(len(ds), 1, self.diag())
            self.assertIn("dmarc=temperror", self.one_dmarc(ds[0].data))


class DmarcDkimIncompleteTest(DmarcBase):
    """The dkim filter outlives its timeout (its key lookup never answers, dkim.timeout is shorter
    than the DNS timeout) and on_error "continue" lets the chain go on: dmarc does not know what
    DKIM would have said, so a p=reject failure is a temperror, never a 5xx."""

    @classmethod
    def setUpClass(cls):
        cls.admin = free_port()
        config = dmarc_config()
        config["dkim"].update({"query_timeout": 3, "timeout": 0.5, "on_error": "continue"})
        config["admin"] = {"address": f"127.0.0.1:{cls.admin}"}
        cls.mx = Mxfront([PF.address], config=config)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def test_a_dkim_check_that_did_not_complete_never_makes_a_reject(self):
        marker = unique_marker("dkimslow")
        mail, rcpt, final = raw_transaction(self.mx.port, "127.0.0.2", "s@reject.test",
                                            signed_mail(marker, selector="slowkey"))
        self.assertEqual((mail[0], rcpt[0]), (250, 250), self.diag())
        self.assertEqual(final[0], 250, f"{final}{self.diag()}")
        self.assertTrue(self.mx.wait_log(r"filter=dkim phase=data verdict=continue \(timeout\)", 5), self.diag())
        ds = PF.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1, self.diag())
        self.assertIn("dmarc=temperror", self.one_dmarc(ds[0].data))


class SenderAuthDnsHealthTest(DmarcBase):
    """The DNS servers of spf, dkim and dmarc are /health dependencies (kind "dns", one row per server
    even when the three filters share it): up while the server answers at all (nsd refuses the probe
    for the root, which is an answer), down when it is silent or gone, up again when it is back;
    never part of /readyz."""

    def test_dns_servers_are_dependencies_down_when_silent_up_when_back(self):
        from rbldnsd_harness import BlackHoleDns  # noqa: E402
        hole = BlackHoleDns()
        self.addCleanup(hole.__exit__)
        hole.__enter__()
        own = Nsd({"health.test": [("@", "TXT", "v=spf1 -all")]})
        self.addCleanup(own.stop)
        admin = free_port()
        config = dmarc_config()
        config["spf"]["dns_servers"] = [own.address]
        config["dkim"]["dns_servers"] = [own.address]
        config["dmarc"]["dns_servers"] = [own.address, hole.address]
        config["admin"] = {"address": f"127.0.0.1:{admin}", "check_interval": 0.2, "check_fall": 2, "check_rise": 1}
        self.mx = Mxfront([PF.address], config=config)
        self.addCleanup(self.mx.kill)
        self.mx.start()

        def deps_until(pred, what):
            deadline = time.monotonic() + 15
            deps = {}
            while time.monotonic() < deadline:
                deps = {d["name"]: d for d in json.loads(http_get(admin, "/health")[1])["dependencies"] if d["kind"] == "dns"}
                if pred(deps):
                    return deps
                time.sleep(0.1)
            self.fail(f"{what}: {deps}{self.diag()}")

        both = lambda d: all(d.get(n, {}).get("checked") for n in (own.address, hole.address))  # noqa: E731
        deps = deps_until(lambda d: both(d) and d[own.address]["up"] and not d[hole.address]["up"], "nsd up, hole down")
        self.assertEqual(set(deps), {own.address, hole.address}, "one row per server, shared by the three filters")
        self.assertIn("timeout", deps[hole.address]["last_error"])
        self.assertEqual(http_get(admin, "/readyz"), (200, "ok\n"), "a DNS server never fails readiness")
        pids, i = [own.proc.pid], 0  # nsd's process tree (main, xfrd, server): all of it stops answering
        while i < len(pids):
            with open(f"/proc/{pids[i]}/task/{pids[i]}/children") as f:
                pids += [int(p) for p in f.read().split()]
            i += 1
        signal_all = lambda sig: [os.kill(p, sig) for p in pids]  # noqa: E731
        signal_all(signal.SIGSTOP)  # a hung server: silent
        self.addCleanup(signal_all, signal.SIGCONT)
        deps = deps_until(lambda d: not d[own.address]["up"], "nsd paused: down")
        self.assertIn("timeout", deps[own.address]["last_error"])
        signal_all(signal.SIGCONT)
        deps_until(lambda d: d[own.address]["up"], "nsd resumed: up")


class DmarcMonitorOnlyTest(DmarcBase):
    @classmethod
    def setUpClass(cls):
        cls.start(monitor_only=True)

    def test_monitor_only_relays_and_logs_the_would_be_disposition(self):
        data = self.deliver("127.0.0.2", "s@reject.test", "<ceo@reject.test>")
        self.assertIn("dmarc=fail (p=reject sp=reject dis=NONE policy.override=monitor_only) header.from=reject.test",
                      self.one_dmarc(data))
        self.assertNotIn(b"X-Spam-Report", data)
        self.assertTrue(self.mx.wait_log(r"dmarc id=\S+ source_ip=127\.0\.0\.2 header_from=reject\.test .*"
                                         r"disposition=reject dmarc=fail .*override=monitor_only", 5), self.diag())


class DmarcLocalOverrideTest(DmarcBase):
    @classmethod
    def setUpClass(cls):
        cls.start(override_domains=["quar.test"], trusted_forwarders=["127.0.0.3/32"], on_temperror="tempfail")

    def test_override_domain_and_trusted_forwarder_are_never_refused(self):
        data = self.deliver("127.0.0.2", "s@quar.test", "<s@quar.test>")
        self.assertIn("policy.override=local_policy", self.one_dmarc(data))
        self.assertNotIn(b"X-Spam-Report", data)
        data = self.deliver("127.0.0.3", "s@reject.test", "<s@reject.test>")
        self.assertIn("dmarc=fail (p=reject sp=reject dis=NONE policy.override=trusted_forwarder) header.from=reject.test",
                      self.one_dmarc(data))
        # the same message from another client is refused
        self.refused("127.0.0.2", "s@reject.test", "<s@reject.test>")

    def test_temperror_tempfails_when_configured_never_5xx(self):
        text = self.refused("127.0.0.2", "s@slow.test", "<s@slow.test>", code=451)
        self.assertTrue(text.startswith("451 4.7.1 "), text)


class AuthservIdTest(DmarcBase):
    """server.authserv_id set (not the hostname mx.test): the one Authentication-Results field of
    spf, dkim and dmarc carries it, forged fields carrying it are removed, and a field with the
    hostname, now someone else's id, is kept. Its alias spf.authserv_id may repeat the value; a
    different value in another authserv_id key is a config error."""

    @classmethod
    def setUpClass(cls):
        cls.admin = free_port()
        config = dmarc_config()
        config["server"] = {"authserv_id": "Auth.MX.test"}
        config["spf"]["authserv_id"] = "Auth.MX.test"
        config["admin"] = {"address": f"127.0.0.1:{cls.admin}"}
        cls.mx = Mxfront([PF.address], config=config)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def test_header_written_with_it_forged_removed_hostname_kept(self):
        forged = ("Authentication-Results: auth.mx.test; dmarc=pass header.from=forged1.test\r\n"
                  "Authentication-Results: (c) \"AUTH.mx.test\" 1; spf=pass smtp.mailfrom=forged2.test\r\n"
                  "Authentication-Results: mx.test; dmarc=pass header.from=kept.test\r\n")
        data = self.deliver("127.0.0.1", "bounces@reject.test", "<someone@reject.test>", extra_headers=forged)
        self.assertNotIn(b"forged1.test", data)
        self.assertNotIn(b"forged2.test", data)
        ar = [a.decode() for a in self.dmarc_results(data)]
        self.assertEqual(len(ar), 2, ar)
        self.assertIn("Authentication-Results: mx.test; dmarc=pass header.from=kept.test", ar)
        self.assertTrue(any(re.match(r"Authentication-Results: Auth\.MX\.test; spf=pass \(.*\) smtp\.mailfrom=bounces@reject\.test;"
                                     r"\n\tdkim=none;\n\tdmarc=pass \(p=reject sp=reject dis=NONE\) header\.from=reject\.test$", a)
                            for a in ar), ar)
        # the forged id decides nothing: a forged From of a p=reject domain is still refused
        text = self.refused("127.0.0.2", "s@reject.test", "<ceo@reject.test>", extra_headers=forged)
        self.assertTrue(text.startswith("550 5.7.1 "), text)

    def test_two_different_authserv_ids_are_a_config_error(self):
        tmp = tempfile.mkdtemp(prefix="mxtest-authserv.")
        self.addCleanup(shutil.rmtree, tmp, True)
        config = dmarc_config()
        config["server"] = {"authserv_id": "auth.mx.test"}
        config["dkim"]["authserv_id"] = "other.mx.test"
        mx = Mxfront([PF.address], config)
        cfg = os.path.join(tmp, "mxfront.toml")
        text = to_toml(mx.build_config())
        with open(cfg, "w") as f:
            f.write(text)
        lines = {i for i, l in enumerate(text.splitlines(), 1) if l.startswith("authserv_id = ")}
        self.assertEqual(len(lines), 2, text)
        for mode in ("--check-config", "--config"):
            p = subprocess.run([mx.binary, mode, cfg], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            # reported at whichever of the two keys is read second, naming both values
            m = re.search(r"(?m)^" + re.escape(cfg) + r":(\d+): (server|dkim)\.authserv_id: \"(\S+)\" differs from \"(\S+)\"", p.stderr)
            self.assertTrue(m, p.stderr)
            self.assertIn(int(m.group(1)), lines, p.stderr)
            self.assertEqual({m.group(3), m.group(4)}, {"auth.mx.test", "other.mx.test"}, p.stderr)


DEBIAN_PSL = "/usr/share/publicsuffix/public_suffix_list.dat"


class DmarcPublicSuffixListTest(DmarcBase):
    """dmarc.public_suffix_list is read at start and on every reload; a missing or empty file is a
    config error (start refused, reload refused with the old list still in use)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mxtest-psl.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.psl = os.path.join(self.tmp, "psl.dat")
        shutil.copy(DEBIAN_PSL, self.psl)

    def test_missing_or_empty_list_is_a_config_error(self):
        empty = os.path.join(self.tmp, "empty.dat")
        open(empty, "w").close()
        for path in (os.path.join(self.tmp, "missing.dat"), empty):
            with self.subTest(path=path):
                mx = Mxfront([PF.address], dmarc_config(public_suffix_list=path))
                cfg = os.path.join(self.tmp, "mxfront.toml")
                with open(cfg, "w") as f:
                    f.write(to_toml(mx.build_config()))
                for mode in ("--check-config", "--config"):
                    p = subprocess.run([mx.binary, mode, cfg], capture_output=True, text=True, timeout=30)
                    self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                    self.assertIn("dmarc.public_suffix_list", p.stderr)
                    self.assertIn(path, p.stderr)

    def test_the_list_is_read_again_on_reload(self):
        type(self).start(public_suffix_list=self.psl)
        self.addCleanup(self.mx.kill)
        # a.org.test falls under org.test's record (sp=quarantine) ...
        data = self.deliver("127.0.0.2", "s@a.org.test", "<s@a.org.test>")
        self.assertIn("dis=QUARANTINE) header.from=a.org.test", self.one_dmarc(data))
        # ... an empty list is refused on reload, the old list stays in use ...
        shutil.copy(self.psl, self.psl + ".good")
        open(self.psl, "w").close()
        os.kill(self.mx.pid, signal.SIGHUP)
        self.assertTrue(self.mx.wait_log(r"reload refused.*dmarc\.public_suffix_list", 5), self.diag())
        self.assertIn("dis=QUARANTINE", self.one_dmarc(self.deliver("127.0.0.2", "s@a.org.test", "<s@a.org.test>")))
        # ... and once org.test is a public suffix, a.org.test is its own organisational domain: no record
        with open(self.psl + ".good") as f, open(self.psl, "w") as out:
            out.write(f.read() + "\norg.test\n")
        os.kill(self.mx.pid, signal.SIGHUP)
        self.assertTrue(self.mx.wait_log(r"reloaded config", 5), self.diag())
        self.assertRegex(self.one_dmarc(self.deliver("127.0.0.2", "s@a.org.test", "<s@a.org.test>")),
                         r"dmarc=none .*header\.from=a\.org\.test$")


class DmarcAuthenticatedSubmissionTest(unittest.TestCase):
    """Mail submitted after AUTH is never refused by DMARC (the submission profile runs spf+dmarc);
    the same message on mx, unauthenticated, is refused."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        users = users_file(os.path.join(cls.pki.dir, "users"))
        cfg = profile_overrides(cls.pki.server.cert, cls.pki.server.key, {"type": "file", "users_file": users})
        cfg.update(dmarc_config())
        cfg["profile.submission"] = {"filters": ["spf", "dkim", "dmarc", "relay_control"]}
        cls.mx = Mxfront([PF.address], cfg)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        (_, cls.mx_port), (_, cls.sub_port), _ = cls.mx.listeners
        cls.ctx = cls.pki.client_context()

    def message(self, c, marker, sender):
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(f"From: <ceo@reject.test>\r\nSubject: {marker}\r\n\r\nbody {marker}\r\n.\r\n".encode())
        return c.reply()

    def test_authenticated_submission_is_never_refused(self):
        import base64
        marker = unique_marker("dmarc-auth")
        with SmtpTls(self.sub_port, self.ctx) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            c.starttls()
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            code, lines = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice@example.org\0alicepw").decode())
            self.assertEqual(code, 235, lines)
            code, lines = self.message(c, marker, "alice@example.org")[:2]
            self.assertEqual(code, 250, f"{lines}\n{self.mx.log()[-3000:]}")
        self.assertEqual(len(PF.deliveries(10, 1, match=marker.encode())), 1)
        # unauthenticated on mx (from 127.0.0.2, not the domain's designated sender): refused
        marker = unique_marker("dmarc-mx")
        with SmtpConn(self.mx_port, source="127.0.0.2", timeout=15) as c:
            c.cmd("EHLO client.test")
            code, lines = self.message(c, marker, "s@reject.test")[:2]
        self.assertEqual(code, 550, lines)


if __name__ == "__main__":
    unittest.main()

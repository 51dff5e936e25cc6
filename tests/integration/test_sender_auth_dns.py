"""Sender authentication over real DNS transports and address families: the spf filter against a REAL
nsd on loopback behind the harness's DnsFilterProxy (which counts the queries it receives per
transport and SERVFAILs chosen names), relaying to a REAL Postfix qmqpd, compared with the reference
implementation python3-spf (pyspf) on the same inputs where it has an answer.
  * A huge SPF record (> 512 octets, many strings): the UDP answer is truncated, c-ares asks once
    more over TCP, spf=pass.
  * `mx` with AAAA: IPv6 clients (straight on ::1, and via PROXY v2 headers with IPv6 sources)
    matching / not matching the AAAA of the domain's MX hosts.
  * The %{p} macro (RFC 7208 section 7.3): the client's validated PTR name, the current domain or a
    subdomain of it preferred, "unknown" when there is none.
If nsd or Postfix cannot start, the tests fail (HarnessError), never skip.
Run from the repo root:  MXFRONT_BIN=build/mxfront python3 -m unittest -v tests/integration/test_sender_auth_dns.py"""
import os
import re
import socket
import struct
import sys
import unittest
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, SmtpConn, unique_marker  # noqa: E402
from nsd_harness import DnsFilterProxy, Nsd  # noqa: E402

PF = None
Z = "sa.test"
HUGE = "v=spf1 " + " ".join(f"ip4:198.51.{n // 250}.{n % 250 + 1}/32" for n in range(110)) + " ip4:127.0.0.1 -all"

ZONES = {
    Z: [
        ("huge", "TXT", HUGE),
        # mx with AAAA: two MX hosts, one AAAA-only, one with both families
        ("mx6", "TXT", "v=spf1 mx -all"),
        ("mx6", "MX", "10 h1.mx6.sa.test."),
        ("mx6", "MX", "20 h2.mx6.sa.test."),
        ("h1.mx6", "AAAA", "::1"),
        ("h2.mx6", "A", "192.0.2.20"),
        ("h2.mx6", "AAAA", "2001:db8::5"),
        # %{p}: exists:<validated name>.allow.sa.test
        ("pm", "TXT", "v=spf1 exists:%{p}.allow.sa.test -all"),
        ("pm2", "TXT", "v=spf1 exists:%{p2}.p2.sa.test -all"),
        ("h3.pm", "A", "127.0.0.3"),
        ("fake.pm", "A", "127.0.0.40"),
        ("h5.pm", "A", "127.0.0.5"),
        ("other", "A", "127.0.0.5"),
        ("only.other", "A", "127.0.0.6"),
        ("h7.pm", "A", "127.0.0.7"),
        ("pm", "A", "127.0.0.7"),
        ("h3.pm.sa.test.allow", "A", "127.0.0.2"),
        ("h5.pm.sa.test.allow", "A", "127.0.0.2"),
        ("only.other.sa.test.allow", "A", "127.0.0.2"),
        ("pm.sa.test.allow", "A", "127.0.0.2"),
        ("sa.test.p2", "A", "127.0.0.2"),
        ("pu", "TXT", "v=spf1 exists:%{p}.u.sa.test -all"),  # passes only when %{p} is "unknown"
        ("unknown.u", "A", "127.0.0.2"),
    ],
    "0.0.127.in-addr.arpa": [
        ("3", "PTR", "h3.pm.sa.test."),                 # validated, in pm.sa.test
        ("4", "PTR", "fake.pm.sa.test."),               # points elsewhere: not validated
        ("5", "PTR", "other.sa.test."),                 # validated, outside pm.sa.test ...
        ("5", "PTR", "h5.pm.sa.test."),                 # ... and one inside it: preferred
        ("6", "PTR", "only.other.sa.test."),            # validated, outside: used (the only one)
        ("7", "PTR", "h7.pm.sa.test."),
        ("7", "PTR", "pm.sa.test."),                    # the domain itself: preferred
        ("8", "PTR", "h3.pm.sa.test."),                 # SERVFAILed by the proxy
    ],
}

PYSPF_NAMES = {"error": "temperror", "unknown": "permerror"}


def setUpModule():
    global PF
    PF = PostfixQmqp()
    unittest.addModuleCleanup(PF.stop)
    PF.start()


def pyspf_check(dns_port, ip, sender, helo):
    """pyspf's check2() over dnspython asking only 127.0.0.1:dns_port (as tests/integration/test_spf.py)."""
    if "/usr/lib/python3/dist-packages" not in sys.path:
        sys.path.append("/usr/lib/python3/dist-packages")
    import dns.resolver
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = dns_port
    r.timeout, r.lifetime, r.cache = 1.0, 2.0, None
    dns.resolver.default_resolver = r
    import spf
    warnings.filterwarnings("ignore", "please use dns.resolver.resolve", DeprecationWarning)
    result, _ = spf.check2(i=ip, s=sender, h=helo, timeout=2, querytime=2)
    return PYSPF_NAMES.get(result, result)


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src, dst, sport=40000, dport=25):
    """A PROXY v2 header, TCP over IPv6 (as tests/integration/test_proxy.py)."""
    body = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!HH", sport, dport)
    return V2_SIG + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body


class SenderAuthDnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nsd = Nsd(ZONES)  # HarnessError (never a skip) when nsd cannot serve
        cls.addClassCleanup(cls.nsd.stop)
        cls.dns = DnsFilterProxy(cls.nsd.address, servfail=("8.0.0.127.in-addr.arpa",))
        cls.addClassCleanup(cls.dns.stop)
        config = {
            "spf": {"dns_servers": [cls.dns.address], "query_timeout": 1.0, "tries": 1},
            "profile.mx": {"filters": ["spf", "relay_control"], "reject_score": 10, "tag_score": 0.5},
            "listener": [
                {"address": "127.0.0.1:0", "profile": "mx"},
                {"address": "[::1]:0", "profile": "mx"},
                {"address": "127.0.0.1:0", "profile": "mx", "proxy_protocol": True, "proxy_trusted": ["127.0.0.1"]},
            ],
        }
        cls.mx = Mxfront([PF.address], config=config)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        (_, cls.port4), (_, cls.port6), (_, cls.port_proxy) = cls.mx.listeners

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix ---\n{PF.log()[-1500:]}"

    def deliver(self, sender, source="127.0.0.1", host="127.0.0.1", port=None, header=None):
        """One transaction; the delivered copy's Authentication-Results fields."""
        marker = unique_marker("sadns")
        with SmtpConn(port or self.port4, host=host, source=source, timeout=15, read_greeting=header is None) as c:
            if header is not None:
                c.send(header)
                self.assertEqual(c.reply()[0], 220, self.diag())
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>")[0], 250, self.diag())
            self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250, self.diag())
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(f"From: <{sender}>\r\nSubject: {marker}\r\n\r\nbody {marker}\r\n.\r\n".encode())
            final = c.reply()[:2]
            c.cmd("QUIT")
        self.assertEqual(final[0], 250, f"{final}{self.diag()}")
        ds = PF.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1, f"no delivery{self.diag()}")
        fields = re.findall(rb"(?mi)^Authentication-Results:[^\n]*(?:\n[ \t][^\n]*)*", ds[0].data)
        self.assertEqual(len(fields), 1, fields)
        return fields[0]

    def spf_result(self, field):
        m = re.match(rb"Authentication-Results: mx\.test; spf=(\w+) ", field)
        self.assertIsNotNone(m, field)
        return m.group(1).decode()

    # ---- the TCP fallback
    def test_huge_record_comes_over_tcp_after_a_truncated_udp_answer(self):
        name = f"huge.{Z}"
        self.assertGreater(len(HUGE), 2000)  # past 512 octets, and past an EDNS0 1232-octet payload too
        before = {t: self.dns.queries(name, t) for t in ("udp", "tcp")}
        field = self.deliver(f"s@{name}")
        self.assertEqual(self.spf_result(field), "pass", field)
        self.assertIn(b"smtp.mailfrom=s@huge.sa.test", field)
        self.assertGreaterEqual(self.dns.queries(name, "udp") - before["udp"], 1)
        self.assertGreaterEqual(self.dns.truncated(name), 1, "nsd's UDP answer was not truncated")
        self.assertEqual(self.dns.queries(name, "tcp") - before["tcp"], 1, "one TCP query after the truncated answer")
        self.assertEqual(pyspf_check(self.nsd.port, "127.0.0.1", f"s@{name}", "client.test"), "pass")

    # ---- mx with AAAA
    def test_mx_matches_an_ipv6_client_on_the_aaaa_of_an_mx_host(self):
        sender = f"s@mx6.{Z}"
        field = self.deliver(sender, source="::1", host="::1", port=self.port6)  # h1's AAAA
        self.assertEqual(self.spf_result(field), "pass", field)
        self.assertRegex(field, rb"\(::1 matched mx of mx6\.sa\.test\)")
        self.assertTrue(self.mx.wait_log(r"spf id=\S+ client=::1 identity=<s@mx6\.sa\.test> result=pass", 5), self.diag())
        self.assertEqual(pyspf_check(self.nsd.port, "::1", sender, "client.test"), "pass")

    def test_mx_with_aaaa_through_proxy_v2_ipv6_sources(self):
        sender = f"s@mx6.{Z}"
        for src, expected in (("2001:db8::5", "pass"), ("2001:db8::6", "fail"), ("2001:db8::1", "fail")):
            with self.subTest(src):
                field = self.deliver(sender, port=self.port_proxy, header=proxy_v2(src, "2001:db8::25"))
                self.assertEqual(self.spf_result(field), expected, field)
                self.assertTrue(self.mx.wait_log(rf"spf id=\S+ client={re.escape(src)} identity=<s@mx6\.sa\.test> "
                                                 rf"result={expected}", 5), self.diag())
                self.assertEqual(pyspf_check(self.nsd.port, src, sender, "client.test"), expected)
        # an IPv4 client never matches an AAAA, and h2's A is not it either
        self.assertEqual(self.spf_result(self.deliver(sender)), "fail")

    # ---- %{p}
    P_CASES = [  # client, sender, expected, why
        ("127.0.0.3", f"s@pm.{Z}", "pass", "the validated name h3.pm.sa.test"),
        ("127.0.0.4", f"s@pm.{Z}", "fail", "fake.pm.sa.test does not point back: unknown"),
        ("127.0.0.5", f"s@pm.{Z}", "pass", "h5.pm.sa.test (in the domain) preferred over other.sa.test"),
        ("127.0.0.6", f"s@pm.{Z}", "pass", "only.other.sa.test: the only validated name, outside the domain"),
        ("127.0.0.7", f"s@pm.{Z}", "pass", "pm.sa.test itself preferred over h7.pm.sa.test"),
        ("127.0.0.9", f"s@pm.{Z}", "fail", "no PTR record: unknown"),
        ("127.0.0.3", f"s@pm2.{Z}", "pass", "%{p2} of h3.pm.sa.test = sa.test"),
        ("127.0.0.4", f"s@pu.{Z}", "pass", "not validated: the word unknown"),
        ("127.0.0.9", f"s@pu.{Z}", "pass", "no PTR record: the word unknown"),
        ("127.0.0.3", f"s@pu.{Z}", "fail", "validated: h3.pm.sa.test, not unknown"),
    ]

    def test_p_macro_against_pyspf(self):
        for ip, sender, expected, why in self.P_CASES:
            with self.subTest(ip=ip, sender=sender):
                field = self.deliver(sender, source=ip)
                self.assertEqual(self.spf_result(field), expected, f"mxfront: {why}{self.diag()}")
                self.assertEqual(pyspf_check(self.nsd.port, ip, sender, "client.test"), expected, f"pyspf: {why}")

    def test_p_macro_is_unknown_when_the_ptr_lookup_fails(self):
        # RFC 7208 section 7.3: a DNS error while finding the validated name gives "unknown", never
        # temperror (pyspf, whose PTR lookup raises, answers temperror: not compared here)
        before = self.dns.queries("8.0.0.127.in-addr.arpa")
        field = self.deliver(f"s@pu.{Z}", source="127.0.0.8")
        self.assertEqual(self.spf_result(field), "pass", f"{field}{self.diag()}")
        self.assertGreater(self.dns.queries("8.0.0.127.in-addr.arpa"), before, "the PTR lookup was not made")


if __name__ == "__main__":
    unittest.main()

"""The rbl filter against a REAL rbldnsd, relaying to a REAL Postfix qmqpd.

Clients connect FROM listed loopback addresses (127.0.0.x is all ours). Nothing uses the system
resolver: every config sets rbl.servers to the harness's rbldnsd (or a black hole).
Run from the repo root:  python3 -m unittest -v tests/integration/test_rbl.py  (root: Postfix)."""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, http_get, PostfixQmqp, SmtpConn, free_port, unique_marker  # noqa: E402
from rbldnsd_harness import BlackHoleDns, Rbldnsd  # noqa: E402

PF = None  # one Postfix for the module


def setUpModule():
    global PF
    PF = PostfixQmqp()
    unittest.addModuleCleanup(PF.stop)
    PF.start()


def rbl_mxfront(servers, zones, allow=(), reject_score=5, tag_score=2, ipv6=False):
    listeners = [{"address": "127.0.0.1:0", "profile": "mx"}]
    if ipv6:
        listeners.append({"address": "[::1]:0", "profile": "mx"})
    return Mxfront([PF.address], config={
        "listener": listeners,
        "rbl": {"servers": servers, "query_timeout": 0.3, "tries": 1, "allow": list(allow)},
        "profile.mx": {"filters": ["rbl", "relay_control"], "reject_score": reject_score, "tag_score": tag_score},
        "rbl.zone": zones,
    })


def transaction(mx, source, sender="s@example.net", rcpt="bob@example.org", marker=None):
    """One SMTP transaction from `source` (to mxfront's [::1] listener when `source` is IPv6).
    Returns (MAIL reply, final reply) as (code, text); the final reply is None when MAIL was refused."""
    host, port = next((h, p) for h, p in mx.listeners if (":" in h) == (":" in source))
    with SmtpConn(port, host=host, source=source, timeout=15) as c:
        c.cmd("EHLO client.test")
        mail = c.cmd(f"MAIL FROM:<{sender}>")[:2]
        if mail[0] != 250:
            c.cmd("QUIT")
            return mail, None
        r = c.cmd(f"RCPT TO:<{rcpt}>")[:2]
        if r[0] != 250:
            return mail, r
        code = c.cmd("DATA")[0]
        if code != 354:
            return mail, (code, "")
        c.send(f"From: <{sender}>\r\nSubject: {marker}\r\n\r\nbody {marker}\r\n.\r\n".encode())
        final = c.reply()[:2]
        c.cmd("QUIT")
        return mail, final


ZONES = [
    {"zone": "bl.test", "kind": "ip", "action": "reject"},
    {"zone": "zen.test", "kind": "ip", "action": "score", "weight": 3, "codes": ["127.0.0.2-127.0.0.9"]},
    {"zone": "sc2.test", "kind": "ip", "action": "score", "weight": 2.5},
    {"zone": "dbl.test", "kind": "domain", "action": "reject"},
    {"zone": "bl6.test", "kind": "ip", "action": "reject"},
    {"zone": "wl.test", "kind": "allow"},
]


class RblTest(unittest.TestCase):
    """One rbldnsd with the test lists (see rbldnsd_harness.TEST_ZONES) and one mxfront using them."""

    @classmethod
    def setUpClass(cls):
        cls.dns = Rbldnsd()
        cls.addClassCleanup(cls.dns.stop)
        cls.dns.start()
        cls.mx = rbl_mxfront([cls.dns.address], ZONES, allow=["127.0.0.9/32"], ipv6=True)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix ---\n{PF.log()[-1500:]}"

    def delivered(self, marker, n=1):
        return PF.deliveries(10, n, match=marker.encode())

    def assert_delivered(self, source, sender="s@example.net"):
        marker = unique_marker("rbl")
        mail, final = transaction(self.mx, source, sender=sender, marker=marker)
        self.assertEqual(mail[0], 250, f"MAIL refused for {source}: {mail}{self.diag()}")
        self.assertEqual(final[0], 250, f"message refused for {source}: {final}{self.diag()}")
        ds = self.delivered(marker)
        self.assertEqual(len(ds), 1, f"no delivery from {source}{self.diag()}")
        return ds[0].data

    def assert_refused(self, source, sender="s@example.net"):
        marker = unique_marker("rbl")
        mail, final = transaction(self.mx, source, sender=sender, marker=marker)
        self.assertIsNone(final, f"{source}: MAIL should have been refused, got {mail} then {final}")
        self.assertEqual(mail[0], 554, f"{source}: {mail}{self.diag()}")
        self.assertEqual(PF.deliveries(0.5, None, match=marker.encode()), [], "a refused mail was delivered")
        return mail[1]

    # ------------------------------------------------------------------------------------------
    def test_clean_client_is_delivered_without_spam_headers(self):
        data = self.assert_delivered("127.0.0.1")
        self.assertNotIn(b"X-Spam-", data)

    def test_reject_zone_listing_is_refused_with_zone_and_txt_reason(self):
        text = self.assert_refused("127.0.0.2")
        self.assertTrue(text.startswith("554 5.7.1 "), text)
        self.assertIn("[127.0.0.2]", text)
        self.assertIn("bl.test", text)
        # the TXT record, with rbldnsd's $ substituted by the client address
        self.assertIn("Listed in bl.test, see http://bl.test/lookup?ip=127.0.0.2", text)

    def test_range_listing_is_refused_and_its_exclusion_is_not(self):
        text = self.assert_refused("127.0.1.5")
        self.assertIn("bl.test", text)
        self.assert_delivered("127.0.1.99")  # !127.0.1.99 in the zone

    def test_two_score_zones_add_up_to_a_reject(self):
        # zen.test 3 + sc2.test 2.5 = 5.5 >= reject_score 5
        text = self.assert_refused("127.0.0.3")
        self.assertTrue(text.startswith("554 5.7.1 "), text)
        self.assertIn("RBL_ZEN_TEST=3", text)
        self.assertIn("RBL_SC2_TEST=2.5", text)

    def test_one_score_zone_tags_the_delivered_message(self):
        # zen.test answers 127.0.0.2, .4 and .10 for this client: one listing, weight 3 >= tag_score 2
        data = self.assert_delivered("127.0.0.4")
        self.assertRegex(data, rb"(?m)^X-Spam-Score: 3\.0$")
        self.assertRegex(data, rb"(?m)^X-Spam-Status: Yes, score=3\.0 tag=2 reject=5$")
        self.assertRegex(data, rb"(?m)^X-Spam-Report: RBL_ZEN_TEST=3$")

    def test_answer_outside_the_zone_codes_is_ignored(self):
        data = self.assert_delivered("127.0.0.5")  # zen.test answers 127.0.0.11, codes are .2-.9
        self.assertNotIn(b"X-Spam-", data)

    def test_list_error_answer_is_ignored_without_codes(self):
        data = self.assert_delivered("127.0.0.6")  # sc2.test answers 127.255.255.254
        self.assertNotIn(b"X-Spam-", data)

    def test_ipv6_client_is_looked_up_in_nibble_format(self):
        text = self.assert_refused("::1")
        self.assertIn("[::1]", text)
        self.assertIn("bl6.test", text)
        self.assertIn("IPv6 client ::1 listed", text)

    def test_rhsbl_sender_domain_is_refused(self):
        text = self.assert_refused("127.0.0.1", sender="x@spammer.example")
        self.assertIn("spammer.example", text)
        self.assertIn("dbl.test", text)
        self.assertIn("Spam domain spammer.example", text)
        self.assertIn("dbl.test", self.assert_refused("127.0.0.1", sender="x@www.Phish.example"))
        self.assert_delivered("127.0.0.1", sender="x@phish.example")  # the wildcard is for subdomains
        self.assert_delivered("127.0.0.1", sender="")  # null sender: no RHSBL lookup

    def test_allow_zone_bypasses_a_blocklist_listing(self):
        self.assertTrue(self.dns.query("8.0.0.127.bl.test")[1], "127.0.0.8 must be in bl.test for this test")
        data = self.assert_delivered("127.0.0.8")
        self.assertNotIn(b"X-Spam-", data)
        self.assertTrue(self.mx.wait_log(r"rbl id=\S+ client=127\.0\.0\.8 allowlisted by wl\.test", 5), self.diag())

    def test_static_allowlist_bypasses_a_blocklist_listing(self):
        self.assertTrue(self.dns.query("9.0.0.127.bl.test")[1], "127.0.0.9 must be in bl.test for this test")
        self.assert_delivered("127.0.0.9")
        self.assertTrue(self.mx.wait_log(r"rbl id=\S+ client=127\.0\.0\.9 allowlisted by rbl\.allow", 5), self.diag())

    def test_no_fd_leak_after_50_sessions_with_lookups(self):
        baseline = self.mx.warm_up()
        for i in range(1, 51):  # distinct clients: distinct query names, real lookups (no cache hit)
            source = f"127.0.2.{i}" if i % 10 else "127.0.1.200"
            sender = "a@example.net" if i % 7 else "a@spammer.example"
            with SmtpConn(self.mx.port, source=source, timeout=10) as c:
                c.cmd("EHLO client.test")
                code = c.cmd(f"MAIL FROM:<{sender}>")[0]
                self.assertIn(code, (250, 554))
                c.cmd("QUIT")
        after = self.mx.settled_fd_count()
        # c-ares keeps a UDP socket per io thread and server at most
        self.assertLessEqual(after, baseline + 2, f"fds {baseline} -> {after}{self.diag()}")
        self.assertTrue(self.mx.wait_log(r"filter=rbl phase=mail verdict=reject", 1))


class RblFailOpenTest(unittest.TestCase):
    """Lists that do not answer: the zone is skipped (counted and logged), mail still flows."""

    def setUp(self):
        self.dns = Rbldnsd()
        self.addCleanup(self.dns.stop)
        self.dns.start()
        self.hole = BlackHoleDns()
        self.addCleanup(self.hole.__exit__)
        self.hole.__enter__()

    def assert_accepted(self, mail, final, mx):
        self.assertEqual(mail[0], 250, f"MAIL refused: {mail}\n{mx.log()[-2000:]}")
        self.assertIsNotNone(final)
        self.assertEqual(final[0], 250, f"message refused: {final}\n{mx.log()[-2000:]}")

    def stats(self, mx):
        mx.terminate()
        m = re.search(r"stats .*\brbl_zone_failures=(\d+)", mx.log())
        self.assertIsNotNone(m, mx.log()[-2000:])
        return int(m.group(1))

    def test_zone_that_never_answers_is_skipped_and_counted(self):
        zones = [{"zone": "hole.test", "kind": "ip", "action": "reject", "servers": [self.hole.address]},
                 {"zone": "bl.test", "kind": "ip", "action": "reject"}]
        mx = rbl_mxfront([self.dns.address], zones)
        self.addCleanup(mx.kill)
        mx.start()
        marker = unique_marker("hole")
        mail, final = transaction(mx, "127.0.0.1", marker=marker)  # completes: 0.3 s query timeout
        self.assert_accepted(mail, final, mx)
        self.assertEqual(len(PF.deliveries(10, 1, match=marker.encode())), 1)
        self.assertTrue(mx.wait_log(r"(?m)warn.*rbl id=\S+ client=127\.0\.0\.1 zone=hole\.test "
                                    r"query=1\.0\.0\.127\.hole\.test skipped \(fail open\): timeout", 5),
                        mx.log()[-2000:])
        # the other zone still judges while the hole times out
        mail, final = transaction(mx, "127.0.0.2")
        self.assertEqual(mail[0], 554, mx.log()[-2000:])
        self.assertIn("bl.test", mail[1])
        self.assertGreaterEqual(self.stats(mx), 2)

    def test_dns_server_stopped_mail_flows(self):
        mx = rbl_mxfront([self.dns.address], ZONES)
        self.addCleanup(mx.kill)
        mx.start()
        self.assertEqual(transaction(mx, "127.0.1.7")[0][0], 554)  # listed while rbldnsd runs
        self.dns.stop()
        marker = unique_marker("down")
        mail, final = transaction(mx, "127.0.1.8", marker=marker)  # listed too, but nobody answers now
        self.assert_accepted(mail, final, mx)
        self.assertEqual(len(PF.deliveries(10, 1, match=marker.encode())), 1)
        self.assertTrue(mx.wait_log(r"rbl id=\S+ client=127\.0\.1\.8 zone=bl\.test .*skipped \(fail open\)", 5),
                        mx.log()[-2000:])
        self.assertGreaterEqual(self.stats(mx), 1)


class RblHealthTest(unittest.TestCase):
    """The lists as dependencies: each zone's RFC 5782 test point (2.0.0.127.<zone>) is checked in
    the background through the zone's servers; shown in /health and /metrics, never in /readyz."""

    def setUp(self):
        self.dns = Rbldnsd()
        self.addCleanup(self.dns.stop)
        self.dns.start()
        self.hole = BlackHoleDns()
        self.addCleanup(self.hole.__exit__)
        self.hole.__enter__()

    def test_live_zone_up_black_hole_and_empty_zones_down_readiness_holds(self):
        self.assertEqual(self.dns.query("2.0.0.127.bl.test"), (0, ["127.0.0.2"]))  # the harness lists the test point
        self.assertEqual(self.dns.query("2.0.0.127.zen.test")[0], 3)              # ... not in zen.test
        admin = free_port()
        zones = [{"zone": "bl.test", "kind": "ip", "action": "reject"},
                 {"zone": "zen.test", "kind": "ip", "action": "score", "weight": 3},
                 {"zone": "hole.test", "kind": "ip", "action": "reject", "servers": [self.hole.address]}]
        mx = Mxfront([PF.address], config={
            "listener": [{"address": "127.0.0.1:0", "profile": "mx"}],
            "rbl": {"servers": [self.dns.address], "query_timeout": 0.3, "tries": 1},
            "profile.mx": {"filters": ["rbl", "relay_control"], "reject_score": 5},
            "admin": {"address": f"127.0.0.1:{admin}", "check_interval": 0.2, "check_fall": 2, "check_rise": 1},
            "rbl.zone": zones,
        })
        self.addCleanup(mx.kill)
        mx.start()

        deadline = time.monotonic() + 15
        deps = {}
        while time.monotonic() < deadline:
            deps = {d["name"]: d for d in json.loads(http_get(admin, "/health")[1])["dependencies"] if d["kind"] == "dns"}
            if (all(deps.get(z, {}).get("checked") for z in ("bl.test", "zen.test", "hole.test"))
                    and not deps["hole.test"]["up"] and not deps["zen.test"]["up"]):
                break
            time.sleep(0.1)
        diag = f"{deps}\n{mx.log()[-2000:]}"
        self.assertEqual(set(deps), {"bl.test", "zen.test", "hole.test"}, diag)
        self.assertTrue(deps["bl.test"]["up"], diag)
        self.assertEqual(deps["bl.test"]["consecutive_failures"], 0, diag)
        self.assertFalse(deps["hole.test"]["up"], diag)
        self.assertGreaterEqual(deps["hole.test"]["consecutive_failures"], 2, diag)  # check_fall
        self.assertIn("2.0.0.127.hole.test A: timeout", deps["hole.test"]["last_error"], diag)
        self.assertFalse(deps["zen.test"]["up"], diag)
        self.assertEqual(deps["zen.test"]["last_error"], "test point 127.0.0.2 not listed (list empty or not serving)", diag)

        metrics = http_get(admin, "/metrics")[1]
        self.assertIn('mxfront_dependency_up{kind="dns",name="bl.test"} 1\n', metrics)
        self.assertIn('mxfront_dependency_up{kind="dns",name="hole.test"} 0\n', metrics)
        self.assertIn('mxfront_dependency_up{kind="dns",name="zen.test"} 0\n', metrics)
        self.assertEqual(http_get(admin, "/readyz"), (200, "ok\n"), "a DNS list never fails readiness")
        # the checks run on the monitor's thread: the lists still judge mail meanwhile
        self.assertEqual(transaction(mx, "127.0.0.2")[0][0], 554, mx.log()[-2000:])


if __name__ == "__main__":
    unittest.main()

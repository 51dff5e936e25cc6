"""The rspamd filter end to end: smtplib -> mxfront (profile mx: relay_control, rspamd) -> REAL rspamd
(Debian package, private config, loopback only) at end of DATA -> REAL Postfix qmqpd -> Maildir.

Run from the repo root:  python3 -m unittest -v tests/integration/test_rspamd.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix and to start rspamd as
_rspamd). A rspamd that does not start fails the test with its log (HarnessError); nothing is skipped."""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, free_port, http_get, smtp_send, unique_marker  # noqa: E402
from rspamd_harness import GTUBE, Rspamd  # noqa: E402

SENDER = "s@example.net"
RCPT = "bob@example.org"


def rspamd_config(servers, admin=None, **rspamd):
    cfg = {"rspamd": {"servers": list(servers)}, "profile.mx": {"filters": ["relay_control", "rspamd"]}}
    cfg["rspamd"].update(rspamd)
    if admin:
        cfg["admin"] = {"address": f"127.0.0.1:{admin}", "check_interval": 0.2, "check_rise": 1, "check_fall": 1}
    return cfg


def mail(marker, body="Hello Bob,\r\nsee you at lunch.\r\n"):
    return (f"From: Sam <{SENDER}>\r\nTo: Bob <{RCPT}>\r\nSubject: {marker}\r\n"
            f"Date: Sun, 06 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{marker}@example.net>\r\n\r\n{body}").encode()


def send(port, msg):
    return smtp_send(port, SENDER, [RCPT], msg, timeout=60)


class RspamdTest(unittest.TestCase):
    """One Postfix, one rspamd and one mxfront for the class; failure cases start their own."""

    @classmethod
    def setUpClass(cls):
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.rs = Rspamd()
        cls.addClassCleanup(cls.rs.stop)
        cls.rs.start()
        cls.admin = free_port()
        cls.mx = Mxfront([cls.pf.address], rspamd_config([cls.rs.address], admin=cls.admin))
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self, mx=None, rs=None):
        mx, rs = mx or self.mx, rs or self.rs
        return (f"\n--- mxfront log ---\n{mx.log()[-3000:]}\n--- postfix maillog ---\n{self.pf.log()[-1500:]}"
                f"\n--- rspamd ---\n{rs.log()[-3000:]}")

    def assert_nothing_delivered(self, marker, wait=1.0):
        self.assertEqual(self.pf.deliveries(wait, None, match=marker.encode()), [], self.diag())

    # ------------------------------------------------------------------------------------------
    def test_gtube_is_refused_554_with_rspamds_message_and_never_relayed(self):
        marker = unique_marker("gtube")
        code, text = send(self.mx.port, mail(marker, f"{GTUBE}\r\n"))
        self.assertEqual(code, 554, text + self.diag())
        self.assertTrue(text.startswith("5.7.1 "), text)
        self.assertIn("Gtube pattern", text)
        self.assert_nothing_delivered(marker)
        m = self.mx.wait_log(r"filter id=\S+ client=\S+ filter=rspamd phase=data verdict=reject score=(\S+) "
                             r".*reason=\"rspamd action=reject score=(\S+) server=", 5)
        self.assertTrue(m, self.diag())
        self.assertGreater(float(m.group(2)), 0)

    def test_clean_mail_is_relayed_with_the_headers_rspamd_asked_for(self):
        marker = unique_marker("clean")
        code, text = send(self.mx.port, mail(marker))
        self.assertEqual(code, 250, text + self.diag())
        got = self.pf.deliveries(20, 1, match=marker.encode())
        self.assertEqual(len(got), 1, self.diag())
        head = got[0].data.split(b"\n\n", 1)[0]
        self.assertRegex(head, rb"(?m)^X-Spamd-Result: default: False \[-?[\d.]+ / [\d.]+\]", head.decode(errors="replace"))
        self.assertRegex(head, rb"(?m)^X-Rspamd-Server: ", head.decode(errors="replace"))
        # rspamd saw the envelope and connection facts mxfront sent (its task log line)
        deadline = time.monotonic() + 5
        while not (m := re.search(rf"id: <{re.escape(marker)}@example.net>, qid: <(\S+)>, ip: 127\.0\.0\.1, "
                                  rf"from: <{re.escape(SENDER)}>.*rcpts: <{re.escape(RCPT)}>", self.rs.log())):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue(m, self.diag())
        self.assertTrue(self.mx.wait_log(rf" id={re.escape(m.group(1))} ", 1), "Queue-Id is the session id" + self.diag())
        # the filter's log line: rspamd's action and score
        self.assertTrue(self.mx.wait_log(r"filter=rspamd phase=data verdict=continue score=\S+ .*reason=\"rspamd action="
                                         r"(no action|add header) score=[-\d.]+ server=", 5), self.diag())

    def test_health_shows_rspamd_up_and_metrics_count_actions(self):
        marker = unique_marker("metrics")
        self.assertEqual(send(self.mx.port, mail(marker))[0], 250, self.diag())
        deadline = time.monotonic() + 10
        while True:
            deps = {d["name"]: d for d in json.loads(http_get(self.admin, "/health")[1])["dependencies"]}
            if deps.get(self.rs.address, {}).get("up") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(deps[self.rs.address]["up"], deps)
        metrics = http_get(self.admin, "/metrics")[1]
        self.assertIn("# HELP mxfront_rspamd_messages_total ", metrics)
        self.assertRegex(metrics, r'mxfront_rspamd_messages_total\{result="(no action|add header)"\} [1-9]')

    def test_message_over_max_size_is_skipped_relayed_and_counted(self):
        mx = Mxfront([self.pf.address], rspamd_config([self.rs.address], admin=(admin := free_port()), max_size=1024))
        self.addCleanup(mx.kill)
        mx.start()
        marker = unique_marker("big")  # GTUBE, but past max_size: rspamd is not asked
        code, text = send(mx.port, mail(marker, f"{GTUBE}\r\n" + ("y" * 70 + "\r\n") * 30))
        self.assertEqual(code, 250, text + self.diag(mx))
        self.assertEqual(len(self.pf.deliveries(20, 1, match=marker.encode())), 1, self.diag(mx))
        # a plain Continue is logged at debug only: the counter is what shows the skip
        self.assertRegex(http_get(admin, "/metrics")[1], r'mxfront_rspamd_messages_total\{result="skipped_size"\} 1')

    def test_servers_are_tried_in_order_while_a_connect_fails(self):
        dead = f"127.0.0.1:{free_port()}"  # nothing listens there: connection refused
        mx = Mxfront([self.pf.address], rspamd_config([dead, self.rs.address]))
        self.addCleanup(mx.kill)
        mx.start()
        marker = unique_marker("order")
        code, text = send(mx.port, mail(marker, f"{GTUBE}\r\n"))
        self.assertEqual(code, 554, text + self.diag(mx))
        self.assertTrue(mx.wait_log(r"reason=\"rspamd action=reject score=\S+ server=" + re.escape(self.rs.address), 5),
                        self.diag(mx))

    def test_rspamd_killed_applies_on_error_and_mxfront_keeps_serving(self):
        rs = Rspamd()
        self.addCleanup(rs.stop)
        rs.start()
        tempfail = Mxfront([self.pf.address], rspamd_config([rs.address]))
        self.addCleanup(tempfail.kill)
        tempfail.start()
        cont = Mxfront([self.pf.address], rspamd_config([rs.address], on_error="continue"))
        self.addCleanup(cont.kill)
        cont.start()
        marker = unique_marker("before")
        self.assertEqual(send(tempfail.port, mail(marker))[0], 250, self.diag(tempfail, rs))
        rs.kill()
        for i in range(2):  # and again: the server keeps serving
            marker = unique_marker(f"down{i}")
            t0 = time.monotonic()
            code, text = send(tempfail.port, mail(marker))
            self.assertEqual(code, 451, text + self.diag(tempfail, rs))
            self.assertTrue(text.startswith("4.3.0 "), text)
            self.assertLess(time.monotonic() - t0, 10)
            self.assert_nothing_delivered(marker, 0.3)
            tempfail.check_alive()
        self.assertTrue(tempfail.wait_log(r"filter=rspamd phase=data verdict=tempfail \(error\) .*reason=\"rspamd: "
                                          + re.escape(rs.address) + r": connect: ", 5), self.diag(tempfail, rs))
        marker = unique_marker("continue")
        code, text = send(cont.port, mail(marker))
        self.assertEqual(code, 250, text + self.diag(cont, rs))
        self.assertEqual(len(self.pf.deliveries(20, 1, match=marker.encode())), 1, self.diag(cont, rs))
        cont.check_alive()


if __name__ == "__main__":
    unittest.main()

"""The whole MX chain, end to end: mxfront with filters = [rules, rbl, relay_control, clamav] in
front of a REAL Postfix qmqpd, a REAL rbldnsd (plus a list whose server never answers) and a
signature database of test signatures. This is the issue's "done means":

* a listed client, a virus and a keyword spam are each refused during the SMTP session with a
  clear reply and never reach the mailbox server; clean mail flows;
* scores from different filters (an RBL weight, a header rule) add up: tagged, then refused;
* a dead RBL does not stop mail (every test runs with one in the chain);
* the worker queue full -> 451 4.3.0 at once, and the server goes on serving;
* a client that hangs up while its message is being scanned cancels the pending work: the
  check is abandoned, nothing is delivered, no fd is leaked.
(Signature reload under load: tests/integration/test_clamav.py.)

Run from the repo root:  python3 -m unittest -v tests/integration/test_mx_chain.py"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from clamav_harness import SignatureDb, eicar_mail, mail_with_attachments, small_pdf  # noqa: E402
from mxharness import Mxfront, PostfixQmqp, SmtpConn, unique_marker  # noqa: E402
from rbldnsd_harness import BlackHoleDns, Rbldnsd  # noqa: E402


def chain_config(dns, hole, sigdir, **extra):
    cfg = {
        "profile.mx": {"filters": ["rules", "rbl", "relay_control", "clamav"], "reject_score": 6, "tag_score": 3},
        "rules": {"client_block": ["127.0.5.0/24"]},
        "rules.rule": [
            {"name": "PHARMA", "kind": "body", "pattern": r"(?i)cheap\s+(viagra|cialis)", "action": "reject"},
            {"name": "LOTTERY", "kind": "header", "header": "Subject", "pattern": r"(?i)\blottery\b", "score": 3.5},
        ],
        "rbl": {"servers": [dns], "query_timeout": 0.3, "tries": 1},
        "rbl.zone": [
            {"zone": "bl.test", "action": "reject"},
            {"zone": "zen.test", "weight": 3, "codes": ["127.0.0.2-127.0.0.9"]},
            {"zone": "dead.test", "weight": 10, "servers": [hole]},   # never answers: fail open
        ],
        "clamav": {"database_dir": sigdir},
    }
    cfg.update(extra)
    return cfg


def send(mx, data: bytes, source="127.0.0.1", rcpt="bob@example.org"):
    """One transaction; returns (stage, code, text) of the first non-success or the final reply."""
    c = SmtpConn(mx.port, timeout=30, source=source)
    try:
        if c.greeting[0] != 220:
            return "greeting", c.greeting[0], c.greeting[1]
        for stage, line in (("ehlo", "EHLO client.test"), ("mail", "MAIL FROM:<s@example.net>"),
                            ("rcpt", f"RCPT TO:<{rcpt}>")):
            code, text, _ = c.cmd(line)
            if code != 250:
                return stage, code, text
        if c.cmd("DATA")[0] != 354:
            return "data", None, ""
        c.send(data.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
        code, text, _ = c.reply()
        c.cmd("QUIT")
        return "end", code, text
    finally:
        c.close()


def text_mail(subject, body):
    return f"From: <s@example.net>\r\nTo: <bob@example.org>\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()


class MxChainTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.dns = Rbldnsd()
        cls.addClassCleanup(cls.dns.stop)
        cls.dns.start()
        cls.hole = BlackHoleDns()
        cls.hole.__enter__()
        cls.addClassCleanup(cls.hole.__exit__, None, None, None)
        cls.sigs = SignatureDb()
        cls.addClassCleanup(cls.sigs.cleanup)
        cls.mx = Mxfront([cls.pf.address], config=chain_config(cls.dns.address, cls.hole.address, cls.sigs.dir))
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}"

    def assert_not_delivered(self, marker):
        self.assertEqual(self.pf.deliveries(1.0, None, match=marker.encode()), [], "a refused message was delivered")

    def test_clean_mail_with_attachments_flows_despite_a_dead_rbl(self):
        marker = unique_marker("clean")
        data = mail_with_attachments(marker, [("doc.pdf", small_pdf(), "application/pdf")])
        stage, code, text = send(self.mx, data)
        self.assertEqual((stage, code), ("end", 250), text + self.diag())
        d = self.pf.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(d), 1)
        self.assertNotIn(b"X-Spam-", d[0].data)
        self.assertTrue(self.mx.wait_log(r"rbl .*zone=dead\.test .*skipped \(fail open\)", 5), self.diag())

    def test_listed_client_is_refused_at_mail(self):
        marker = unique_marker("listed")
        stage, code, text = send(self.mx, text_mail(marker, "hello"), source="127.0.0.2")
        self.assertEqual((stage, code), ("mail", 554), text)
        self.assertIn("5.7.1", text)
        self.assertIn("bl.test", text)
        self.assert_not_delivered(marker)

    def test_blocked_client_is_refused_at_the_greeting(self):
        c = SmtpConn(self.mx.port, timeout=10, source="127.0.5.7")
        try:
            self.assertEqual(c.greeting[0], 554, c.greeting)
            self.assertIn("127.0.5.7", c.greeting[1])
            self.assertTrue(c.closed_by_server(3))
        finally:
            c.close()

    def test_virus_is_refused_naming_the_signature(self):
        marker = unique_marker("virus")
        stage, code, text = send(self.mx, eicar_mail(marker))
        self.assertEqual((stage, code), ("end", 554), text + self.diag())
        self.assertIn("5.7.1", text)
        self.assertIn("Harness.Test.EICAR", text)
        self.assert_not_delivered(marker)

    def test_keyword_spam_is_refused(self):
        marker = unique_marker("spam")
        stage, code, text = send(self.mx, text_mail(marker, "Buy CHEAP   viagra now"))
        self.assertEqual((stage, code), ("end", 554), text)
        self.assertIn("PHARMA", text)
        self.assert_not_delivered(marker)

    def test_scores_of_different_filters_add_up_tag_then_refuse(self):
        # zen.test lists 127.0.0.3 (weight 3): alone it is tagged (3 >= tag 3) ...
        marker = unique_marker("tag")
        stage, code, text = send(self.mx, text_mail(marker, "hi"), source="127.0.0.3")
        self.assertEqual((stage, code), ("end", 250), text + self.diag())
        d = self.pf.deliveries(10, 1, match=marker.encode())[0].data
        self.assertIn(b"X-Spam-Score: 3.0", d)
        self.assertIn(b"X-Spam-Report: RBL_ZEN_TEST=3", d)
        # The message's final log line carries the verdict, the score and what scored.
        self.assertTrue(self.mx.wait_log(r"message id=\S+ client=127\.0\.0\.3 .* score=3 tags=\"RBL_ZEN_TEST=3\" "
                                         r"result=relayed reply=\"250 ", 5), self.diag())
        # ... with the LOTTERY header rule (3.5) the sum 6.5 >= reject 6 is refused at end of DATA.
        marker = unique_marker("sum")
        stage, code, text = send(self.mx, text_mail(f"lottery {marker}", "hi"), source="127.0.0.3")
        self.assertEqual((stage, code), ("end", 554), text)
        self.assertIn("score 6.5", text)
        self.assertIn("RBL_ZEN_TEST=3", text)
        self.assertIn("RULE_LOTTERY=3.5", text)
        self.assert_not_delivered(marker)
        self.assertTrue(self.mx.wait_log(r"message id=\S+ client=127\.0\.0\.3 .* score=6\.5 "
                                         r"tags=\"RBL_ZEN_TEST=3 RULE_LOTTERY=3\.5\" result=rejected reply=\"554 5\.7\.1 ", 5),
                        self.diag())


class MxChainLoadTest(unittest.TestCase):
    """Bounds: a full worker queue and a client that hangs up during the scan."""

    def setUp(self):
        self.pf = PostfixQmqp()
        self.addCleanup(self.pf.stop)
        self.pf.start()
        self.dns = Rbldnsd()
        self.addCleanup(self.dns.stop)
        self.dns.start()
        self.sigs = SignatureDb()
        self.addCleanup(self.sigs.cleanup)

    def start(self, **extra):
        mx = Mxfront([self.pf.address], config=chain_config(self.dns.address, self.dns.address, self.sigs.dir, **extra))
        self.addCleanup(mx.kill)
        mx.start()
        return mx

    def test_full_worker_queue_answers_451_at_once_and_keeps_serving(self):
        mx = self.start(workers={"threads": 1, "queue": 0})
        for _ in range(2):
            marker = unique_marker("busy")
            stage, code, text = send(mx, text_mail(marker, "hello"))
            self.assertEqual((stage, code), ("end", 451), text)
            self.assertIn("4.3.0", text)
            self.assertIn("Too busy", text)
            self.assert_nothing(marker)
        mx.check_alive()

    def assert_nothing(self, marker):
        self.assertEqual(self.pf.deliveries(0.5, None, match=marker.encode()), [])

    def test_client_hanging_up_during_the_scan_cancels_the_check_without_leaks(self):
        mx = self.start(workers={"threads": 1, "queue": 8}, clamav={"database_dir": self.sigs.dir, "timeout": 120})
        baseline = mx.warm_up()
        # Several MB of base64 attachments: long enough a scan that the hang-up comes first.
        blob = os.urandom(3 << 20)
        for i in range(3):
            marker = unique_marker(f"gone{i}")
            data = mail_with_attachments(marker, [(f"a{i}.bin", blob, "application/octet-stream"),
                                                  (f"b{i}.bin", blob[::-1], "application/octet-stream")])
            c = SmtpConn(mx.port, timeout=30)
            for line in ("EHLO client.test", "MAIL FROM:<s@example.net>", "RCPT TO:<bob@example.org>", "DATA"):
                c.cmd(line)
            c.send(data + b"\r\n.\r\n")
            c.sock.shutdown(socket.SHUT_RDWR)
            c.close()
        # the first data-phase check is the MIME structure limit ("mime"), then rules and clamav
        self.assertTrue(mx.wait_log(r"filter=(mime|rules|clamav) phase=data verdict=disconnect .*reason=\"client gone\"", 30),
                        mx.log()[-3000:])
        time.sleep(0.5)
        n = mx.wait_fd_baseline(baseline, timeout=30)
        self.assertLessEqual(n, baseline, f"fds {n} > baseline {baseline}")
        self.assertEqual(mx.close_wait_count(), 0)
        for i in range(3):
            self.assert_nothing(f"gone{i}")
        marker = unique_marker("after")
        stage, code, text = send(mx, text_mail(marker, "still serving"))
        self.assertEqual((stage, code), ("end", 250), text)


if __name__ == "__main__":
    unittest.main()

"""mxfront relays SMTP mail over QMQP to a REAL Postfix qmqpd that delivers into Maildirs.

Run from the repo root:  python3 -m unittest -v tests/integration/test_relay.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix)."""
import os
import re
import shutil
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import (Mxfront, PostfixMxfrontCase, SmtpConn, split_after_received,  # noqa: E402
                       unique_marker)


class RelayToPostfixTest(PostfixMxfrontCase):

    def one_delivery(self, marker, recipient, timeout=10):
        ds = [d for d in self.pf.deliveries(timeout, 1, match=marker.encode()) if d.recipient == recipient]
        self.assertEqual(len(ds), 1, f"expected one delivery to {recipient}{self.diag()}")
        return ds[0]

    # ------------------------------------------------------------------------------------------
    def test_swaks_message_is_delivered_with_queue_id_received_header_and_return_path(self):
        self.assertTrue(shutil.which("swaks"), "swaks missing (apt-get install swaks)")
        marker = unique_marker("swaks")
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.mx.port),
                            "--ehlo", "client.test", "--from", "sender@example.net",
                            "--to", "bob@example.org", "--header", f"Subject: {marker}",
                            "--body", f"body {marker}", "--timeout", "15"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, f"swaks failed:\n{p.stdout}\n{p.stderr}{self.diag()}")
        # the 250 after DATA carries qmqpd's answer "Ok: queued as XXXX"
        m = re.search(r"^<-  250 2\.0\.0 (.*queued as ([0-9A-Za-z]+).*)$", p.stdout, re.M)
        self.assertTrue(m, f"no '250 2.0.0 ... queued as' reply in swaks transcript:\n{p.stdout}")
        queue_id = m.group(2)

        d = self.one_delivery(marker, "bob@example.org")
        self.assertIn("/example.org/bob/Maildir/new/", d.path)
        self.assertIn(b"\nDelivered-To: bob@example.org\n", b"\n" + d.data)
        self.assertRegex(d.data, rb"(?m)^Return-Path: <sender@example\.net>$")
        # Postfix's own Received header names the queue id that was handed back to the client
        self.assertRegex(d.data, rb"with QMQP id " + re.escape(queue_id.encode()) + rb"\b")
        rm, _rest = split_after_received(d.data)
        self.assertIsNotNone(rm, f"no mxfront Received header in:\n{d.data[:1500]!r}")
        self.assertEqual(rm.group("helo"), b"client.test")
        self.assertIn(b"127.0.0.1", rm.group("addr"))
        self.assertEqual(rm.group("host"), b"mx.test")
        self.assertEqual(rm.group("proto"), b"ESMTP")
        self.assertEqual(rm.group("rcpt"), b"bob@example.org")
        # the Received id is the message id in the log line of this message
        mid = rm.group("id").decode()
        self.assertTrue(self.mx.wait_log(rf"^.*message id={re.escape(mid)} .*from=<sender@example\.net>"
                                         rf" to=<bob@example\.org> size=\d+ score=0 tags=\"\" result=relayed"
                                         rf" reply=\"250 2\.0\.0 ", 5),
                        f"no message log line for id={mid}{self.diag()}")

    def test_two_recipients_are_delivered_to_both_maildirs(self):
        marker = unique_marker("two")
        msg = (f"From: <s@example.net>\r\nTo: <bob@example.org>, <alice@example.org>\r\n"
               f"Subject: {marker}\r\nMessage-ID: <{marker}@example.net>\r\n\r\nhello both\r\n")
        with smtplib.SMTP("127.0.0.1", self.mx.port, local_hostname="client.test", timeout=15) as c:
            refused = c.sendmail("s@example.net", ["bob@example.org", "alice@example.org"], msg)
        self.assertEqual(refused, {})
        ds = self.pf.deliveries(10, 2, match=marker.encode())
        self.assertEqual(sorted(d.recipient for d in ds), ["alice@example.org", "bob@example.org"],
                         self.diag())
        for d in ds:
            who = d.recipient.split("@")[0]
            self.assertIn(f"/example.org/{who}/Maildir/", d.path)
            rm, _ = split_after_received(d.data)
            self.assertIsNotNone(rm, "no mxfront Received header")
            self.assertIsNone(rm.group("rcpt"), "no 'for' clause expected with two recipients")
        # One final line for the message, one to=<…> per recipient, in the order given.
        mid = rm.group("id").decode()
        self.assertTrue(self.mx.wait_log(rf"^.*message id={re.escape(mid)} .* from=<s@example\.net> "
                                         rf"to=<bob@example\.org> to=<alice@example\.org> size=\d+ .*result=relayed ", 5),
                        self.diag())
        self.assertEqual(len(re.findall(rf"message id={re.escape(mid)} ", self.mx.log())), 1, self.diag())

    def test_null_sender_is_relayed_with_empty_return_path(self):
        marker = unique_marker("null")
        msg = f"From: <mailer-daemon@example.net>\r\nSubject: {marker}\r\n\r\nbounce\r\n"
        with smtplib.SMTP("127.0.0.1", self.mx.port, local_hostname="client.test", timeout=15) as c:
            self.assertEqual(c.sendmail("<>", ["bob@example.org"], msg), {})
        d = self.one_delivery(marker, "bob@example.org")
        self.assertRegex(d.data, rb"(?m)^Return-Path: <>$")
        self.assertTrue(self.mx.wait_log(r"message id=\S+ .* from=<> to=<bob@example\.org> .*result=relayed ", 5), self.diag())

    def test_smtp_source_20_messages_in_4_sessions_are_all_delivered(self):
        self.assertTrue(shutil.which("smtp-source"), "smtp-source missing (apt-get install postfix)")
        sender = "a@example.net"
        before = len([d for d in self.pf.deliveries() if f"Return-Path: <{sender}>".encode() in d.data])
        p = subprocess.run(["smtp-source", "-c", "-m", "20", "-s", "4", "-f", sender,
                            "-t", "bob@example.org", f"127.0.0.1:{self.mx.port}"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, f"smtp-source failed: {p.stdout}\n{p.stderr}{self.diag()}")
        match = f"Return-Path: <{sender}>".encode()
        ds = self.pf.deliveries(20, before + 20, match=match)
        time.sleep(0.5)
        ds = self.pf.deliveries(0, None, match=match)
        self.assertEqual(len(ds) - before, 20, self.diag())
        self.assertTrue(all(d.recipient == "bob@example.org" for d in ds))

    def test_dots_8bit_and_long_lines_arrive_byte_identical(self):
        marker = unique_marker("transparency")
        header = (f"From: <t@example.net>\r\nTo: <bob@example.org>\r\nSubject: {marker}\r\n"
                  f"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <{marker}@example.net>\r\n"
                  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n\r\n").encode()
        body_lines = [
            b"first line",
            b".",
            b"..",
            b"...",
            b".leading dot",
            b"..two leading dots",
            b" . space dot",
            b"8bit: \xe4\xf6\xfc \xc3\xa9 \xff\x80\xa0 end",
            b"L" * 998,
            b"M" * 5000,
            b"",
            b"last line",
            b".",
        ]
        sent = header + b"\r\n".join(body_lines) + b"\r\n"
        with smtplib.SMTP("127.0.0.1", self.mx.port, local_hostname="client.test", timeout=15) as c:
            c.ehlo("client.test")
            self.assertTrue(c.has_extn("8bitmime"), "8BITMIME not advertised")
            refused = c.sendmail("t@example.net", ["bob@example.org"], sent, mail_options=["BODY=8BITMIME"])
        self.assertEqual(refused, {})
        d = self.one_delivery(marker, "bob@example.org")
        rm, rest = split_after_received(d.data)
        self.assertIsNotNone(rm, f"no mxfront Received header in {d.data[:800]!r}")
        expected = sent.replace(b"\r\n", b"\n")
        if rest != expected:
            # show the first difference
            i = next((k for k in range(min(len(rest), len(expected))) if rest[k] != expected[k]),
                     min(len(rest), len(expected)))
            self.fail(f"delivered content differs at offset {i} (got {len(rest)} bytes, sent "
                      f"{len(expected)}):\n got {rest[max(0, i - 60):i + 60]!r}\nsent "
                      f"{expected[max(0, i - 60):i + 60]!r}")

    def test_rcpt_to_foreign_domain_is_refused_554_5_7_1(self):
        with SmtpConn(self.mx.port) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<s@example.net>")[0], 250)
            code, line, raw = c.cmd("RCPT TO:<x@elsewhere.test>")
            self.assertEqual(code, 554, raw)
            self.assertTrue(line.startswith("554 5.7.1"), line)

    def test_relay_probes_via_local_domain_are_refused_and_nothing_delivered(self):
        marker = unique_marker("probe")
        probes = ["u%other.net@example.org", '"u@other.net"@example.org', "@example.org:u@other.net",
                  "other.net!u@example.org", "u@other.net@example.org"]
        with SmtpConn(self.mx.port) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<s@example.net>")[0], 250)
            for probe in probes:
                code, line, raw = c.cmd(f"RCPT TO:<{probe}>")
                self.assertIsNotNone(code, f"connection closed on RCPT TO:<{probe}>")
                self.assertTrue(500 <= code < 600, f"RCPT TO:<{probe}> was not refused: {raw!r}")
            code, line, raw = c.cmd("DATA")
            if code == 354:  # must not happen, but if it does the message must still not go anywhere
                c.send(f"Subject: {marker}\r\n\r\n{marker}\r\n.\r\n".encode())
                code, line, raw = c.reply()
            self.assertTrue(code is None or code >= 500, f"DATA after refused recipients: {raw!r}")
        self.assertEqual(self.pf.deliveries(1.5, None, match=marker.encode()), [])
        self.assertEqual(self.pf.deliveries(0, None, match=b"u@other.net"), [])
        self.assertEqual(self.pf.deliveries(0, None, match=b"u%other.net"), [])

    def test_ipv6_listener_on_loopback_relays(self):
        out = subprocess.run(["ip", "-6", "addr", "show", "lo"], capture_output=True, text=True).stdout
        self.assertIn("::1/128", out, "::1 is not configured on lo: the IPv6 listener cannot be tested "
                                      "on this machine")
        marker = unique_marker("ipv6")
        with Mxfront([self.pf.address], {"listener": [{"address": "[::1]:0", "profile": "mx"}]}) as mx6:
            self.assertEqual(mx6.host, "::1")
            with smtplib.SMTP("::1", mx6.port, local_hostname="client6.test", timeout=15) as c:
                self.assertEqual(c.sendmail("s6@example.net", ["bob@example.org"],
                                            f"Subject: {marker}\r\n\r\nvia ipv6\r\n"), {})
            d = self.one_delivery(marker, "bob@example.org")
            rm, _ = split_after_received(d.data)
            self.assertIsNotNone(rm)
            self.assertEqual(rm.group("helo"), b"client6.test")
            # RFC 5321 §4.1.3 address literal; the log brackets the address before its port
            self.assertEqual(rm.group("addr"), b"[IPv6:::1]", rm.group(0))
            self.assertRegex(mx6.log(), r"connect id=\S+ client=\[::1\]:\d+ ")
            self.assertRegex(mx6.log(), r"message id=\S+ client=::1 ")


if __name__ == "__main__":
    unittest.main(verbosity=2)

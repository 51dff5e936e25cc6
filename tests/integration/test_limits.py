"""Limits, timeouts, the in-flight memory bound and the SIGTERM drain, against a real Postfix qmqpd.

Run from the repo root:  python3 -m unittest -v tests/integration/test_limits.py"""
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, SmtpConn, unique_marker  # noqa: E402


def message(marker, size=0):
    head = f"From: <l@example.net>\r\nSubject: {marker}\r\n\r\n{marker}\r\n".encode()
    filler = b""
    if size > len(head):
        line = b"y" * 98 + b"\r\n"
        filler = line * ((size - len(head)) // len(line) + 1)
    return head + filler


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()

    def start_mx(self, limits=None, **sections):
        cfg = dict(sections)
        if limits:
            cfg["limits"] = limits
        mx = Mxfront([self.pf.address], cfg)
        self.addCleanup(mx.kill)
        mx.start()
        self.addCleanup(mx.check_alive)  # runs before kill: a crash fails the test
        self.mx = mx
        return mx

    def diag(self):
        return (f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}"
                f"\n--- postfix maillog ---\n{self.pf.log()[-1500:]}")

    def conn(self, **kw):
        c = SmtpConn(self.mx.port, **kw)
        self.addCleanup(c.close)
        return c

    def envelope(self, c, rcpts=("bob@example.org",), mail="MAIL FROM:<l@example.net>"):
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        self.assertEqual(c.cmd(mail)[0], 250)
        for r in rcpts:
            self.assertEqual(c.cmd(f"RCPT TO:<{r}>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)

    def assert_nothing_delivered(self, marker, wait=1.0):
        self.assertEqual(self.pf.deliveries(wait, None, match=marker.encode()), [], self.diag())

    def assert_timeout_close(self, c, started, lo, hi, what):
        code, line, raw = c.reply(timeout=hi + 5)
        elapsed = time.monotonic() - started
        self.assertEqual(code, 421, f"{what}: {raw!r}{self.diag()}")
        self.assertTrue(line.startswith("421 4.4.2"), line)
        self.assertGreaterEqual(elapsed, lo, f"{what}: 421 after {elapsed:.2f}s")
        self.assertLess(elapsed, hi, f"{what}: 421 after {elapsed:.2f}s")
        self.assertTrue(c.closed_by_server(3), f"{what}: connection not closed after 421")
        c.close()
        deadline = time.monotonic() + 3
        while self.mx.close_wait_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.mx.close_wait_count(), 0, "CLOSE_WAIT socket left behind")
        sid = self.mx.session_id(c.local_port)
        self.assertIsNotNone(sid, "no connect log line")
        self.assertEqual(self.mx.disconnect_reason(sid), "timeout", self.diag())

    # -- recipients / size / line length ----------------------------------------------------------
    def test_fourth_recipient_gets_452_4_5_3_and_first_three_are_delivered(self):
        self.start_mx({"recipients": 3})
        marker = unique_marker("rcpts")
        c = self.conn()
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<l@example.net>")[0], 250)
        for r in ("bob@example.org", "alice@example.org", "carol@example.org"):
            self.assertEqual(c.cmd(f"RCPT TO:<{r}>")[0], 250)
        code, line, raw = c.cmd("RCPT TO:<dave@example.org>")
        self.assertTrue(line.startswith("452 4.5.3"), raw)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(message(marker) + b".\r\n")
        code, line, raw = c.reply()
        self.assertTrue(line.startswith("250 2.0.0"), raw + self.diag().encode())
        ds = self.pf.deliveries(10, 3, match=marker.encode())
        time.sleep(0.5)
        ds = self.pf.deliveries(0, None, match=marker.encode())
        self.assertEqual(sorted(d.recipient for d in ds),
                         ["alice@example.org", "bob@example.org", "carol@example.org"], self.diag())

    def test_mail_size_parameter_over_message_size_gets_552_5_3_4(self):
        self.start_mx({"message_size": 100000})
        c = self.conn()
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        code, line, raw = c.cmd("MAIL FROM:<l@example.net> SIZE=200000")
        self.assertTrue(line.startswith("552 5.3.4"), raw)
        # a fitting SIZE is accepted
        self.assertEqual(c.cmd("MAIL FROM:<l@example.net> SIZE=1000")[0], 250)

    def test_message_of_exactly_message_size_passes_one_octet_more_does_not(self):
        """RFC 1870: the size counts the message with CRLF line ends, not the dots of dot-stuffing
        nor the terminating ".". smtplib (a real client) announces SIZE=N and stuffs the lines that
        start with "." itself: exactly limits.message_size octets are relayed, N+1 are refused."""
        import smtplib
        n = 100000
        self.start_mx({"message_size": n})

        def exact(marker, size):
            head = f"From: <l@example.net>\r\nSubject: {marker}\r\n\r\n".encode()
            line = b"." + b"d" * 97 + b"\r\n"  # every body line is dot-stuffed on the wire
            body = line * ((size - len(head)) // len(line))
            rest = size - len(head) - len(body)
            body += b"e" * (rest - 2) + b"\r\n" if rest >= 3 else b"\r\n" * (rest // 2)
            msg = head + body
            self.assertEqual(len(msg), size)
            return msg

        marker = unique_marker("exact")
        with smtplib.SMTP("127.0.0.1", self.mx.port, local_hostname="client.test", timeout=30) as c:
            # smtplib announces SIZE=len(msg) itself when the server offers SIZE
            self.assertEqual(c.sendmail("l@example.net", ["bob@example.org"], exact(marker, n)), {})
        ds = self.pf.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1, self.diag())
        self.assertIn(b"\n." + b"d" * 97 + b"\n", ds[0].data)  # unstuffed again
        over = unique_marker("over")
        with smtplib.SMTP("127.0.0.1", self.mx.port, local_hostname="client.test", timeout=30) as c:
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:  # announced: refused at MAIL
                c.sendmail("l@example.net", ["bob@example.org"], exact(over, n + 1))
            self.assertEqual(cm.exception.smtp_code, 552)
        c = self.conn(timeout=20)  # not announced: refused after the data
        self.envelope(c)
        c.send(exact(over, n + 1).replace(b"\r\n.", b"\r\n..") + b".\r\n")
        code, line, raw = c.reply()
        self.assertTrue(line.startswith("552 5.3.4"), raw + self.diag().encode())
        self.assert_nothing_delivered(over)

    def test_ehlo_advertises_the_message_size_limit(self):
        self.start_mx({"message_size": 100000})
        c = self.conn()
        code, line, raw = c.cmd("EHLO client.test")
        self.assertEqual(code, 250)
        self.assertRegex(raw, rb"(?m)^250[ -]SIZE 100000\r$")

    def test_data_over_message_size_gets_552_5_3_4_and_nothing_delivered(self):
        self.start_mx({"message_size": 100000})
        marker = unique_marker("big")
        c = self.conn(timeout=20)
        self.envelope(c)
        c.send(message(marker, 150000) + b".\r\n")
        code, line, raw = c.reply()
        self.assertTrue(line.startswith("552 5.3.4"), raw + self.diag().encode())
        self.assert_nothing_delivered(marker)

    def test_command_line_over_512_gets_500_5_5_2_and_session_continues(self):
        self.start_mx()
        c = self.conn()
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        code, line, raw = c.cmd("NOOP " + "x" * 600)
        self.assertTrue(line.startswith("500 5.5.2"), raw)
        code, line, raw = c.cmd("NOOP")
        self.assertEqual(code, 250, raw)
        self.assertEqual(c.cmd("MAIL FROM:<l@example.net>")[0], 250)

    def test_data_line_of_1000_octets_with_crlf_is_accepted_and_delivered(self):
        self.start_mx({"data_line_length": 1000})
        marker = unique_marker("line1000")
        c = self.conn()
        self.envelope(c)
        long_line = b"Z" * 998
        c.send(message(marker) + long_line + b"\r\n.\r\n")
        code, line, raw = c.reply()
        self.assertTrue(line.startswith("250 2.0.0"), raw + self.diag().encode())
        ds = self.pf.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1)
        self.assertIn(b"\n" + long_line + b"\n", ds[0].data)

    def test_data_line_over_data_line_length_gets_552_5_3_4_and_nothing_delivered(self):
        self.start_mx({"data_line_length": 1000})
        marker = unique_marker("line1001")
        c = self.conn()
        self.envelope(c)
        c.send(message(marker) + b"Z" * 999 + b"\r\nafter\r\n.\r\n")
        code, line, raw = c.reply()
        self.assertTrue(line.startswith("552 5.3.4"), raw + self.diag().encode())
        self.assert_nothing_delivered(marker)

    # -- connection limits ----------------------------------------------------------------------
    def test_fourth_connection_gets_421_4_3_2_and_is_closed(self):
        self.start_mx({"connections": 3})
        held = [self.conn() for _ in range(3)]
        for c in held:
            self.assertEqual(c.greeting[0], 220, c.greeting)
        fourth = self.conn()
        self.assertTrue(fourth.greeting[1].startswith("421 4.3.2"), fourth.greeting)
        self.assertTrue(fourth.closed_by_server(3), "4th connection not closed")
        # the held ones still work, and a slot frees up when one leaves
        self.assertEqual(held[0].cmd("NOOP")[0], 250)
        held[0].cmd("QUIT")
        held[0].closed_by_server(3)
        time.sleep(0.3)
        again = self.conn()
        self.assertEqual(again.greeting[0], 220, again.greeting)

    def test_third_connection_from_same_ip_gets_421_4_3_2_while_other_ip_is_served(self):
        self.start_mx({"connections_per_ip": 2})
        a = [self.conn(source="127.0.0.2") for _ in range(2)]
        for c in a:
            self.assertEqual(c.greeting[0], 220, c.greeting)
        third = self.conn(source="127.0.0.2")
        self.assertTrue(third.greeting[1].startswith("421 4.3.2"), third.greeting)
        self.assertTrue(third.closed_by_server(3), "3rd connection from 127.0.0.2 not closed")
        other = self.conn(source="127.0.0.3")
        self.assertEqual(other.greeting[0], 220, other.greeting)
        self.assertEqual(other.cmd("EHLO other.test")[0], 250)

    # -- timeouts -------------------------------------------------------------------------------
    def test_idle_client_gets_421_4_4_2_after_command_timeout_and_is_closed(self):
        self.start_mx({"command_timeout": 1})
        c = self.conn()
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        self.assert_timeout_close(c, time.monotonic(), 0.8, 4.0, "command_timeout=1")

    def test_silent_client_gets_421_4_4_2_after_greeting_timeout(self):
        self.start_mx({"greeting_timeout": 1, "command_timeout": 30})
        t0 = time.monotonic()
        c = self.conn()
        self.assert_timeout_close(c, t0, 0.8, 4.0, "greeting_timeout=1")

    def test_stalled_data_gets_421_4_4_2_after_data_timeout_and_nothing_delivered(self):
        self.start_mx({"data_timeout": 1, "command_timeout": 30})
        marker = unique_marker("datatimeout")
        c = self.conn()
        self.envelope(c)
        c.send(message(marker, 5000))
        self.assert_timeout_close(c, time.monotonic(), 0.8, 4.0, "data_timeout=1")
        self.assert_nothing_delivered(marker)

    def test_busy_client_gets_421_4_4_2_after_session_timeout(self):
        self.start_mx({"session_timeout": 2, "command_timeout": 30})
        t0 = time.monotonic()
        c = self.conn()
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        while time.monotonic() - t0 < 6:
            try:
                c.send(b"NOOP\r\n")
            except OSError:
                break
            code, line, raw = c.reply(timeout=5)
            if code != 250:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        self.assertEqual(code, 421, raw)
        self.assertTrue(line.startswith("421 4.4.2"), line)
        self.assertGreaterEqual(elapsed, 1.8)
        self.assertLess(elapsed, 5.0)
        self.assertTrue(c.closed_by_server(3))

    # -- in-flight memory bound ---------------------------------------------------------------------
    def test_inflight_bytes_bound_gives_452_4_3_1_to_one_of_two_clients_and_server_keeps_serving(self):
        self.start_mx({"inflight_bytes": 200000})
        m1, m2 = unique_marker("inflight1"), unique_marker("inflight2")
        a = self.conn(timeout=20)
        b = self.conn(timeout=20)
        self.envelope(a)
        self.envelope(b)
        a.send(message(m1, 150000))            # held in memory: no end-of-data yet
        time.sleep(0.5)
        b.send(message(m2, 150000) + b".\r\n")  # 300 KB in flight > 200000
        rb = b.reply()
        a.send(b".\r\n")
        ra = a.reply()
        results = sorted([ra[1][:9], rb[1][:9]])
        self.assertEqual(results, ["250 2.0.0", "452 4.3.1"], f"a={ra!r} b={rb!r}{self.diag()}")
        # the server keeps serving: a later message succeeds
        m3 = unique_marker("inflight3")
        c = self.conn()
        self.envelope(c)
        c.send(message(m3, 100000) + b".\r\n")
        self.assertTrue(c.reply()[1].startswith("250 2.0.0"))
        ok = m1 if ra[1].startswith("250") else m2
        bad = m2 if ok == m1 else m1
        self.assertEqual(len(self.pf.deliveries(10, 1, match=ok.encode())), 1)
        self.assertEqual(len(self.pf.deliveries(10, 1, match=m3.encode())), 1)
        self.assert_nothing_delivered(bad, wait=0.5)

    def test_single_message_under_inflight_bytes_is_accepted_when_alone(self):
        # 150 KB of message data < inflight_bytes = 200000, nothing else in flight; the end of data
        # arrives in a later write (as it does for any message bigger than one segment burst)
        self.start_mx({"inflight_bytes": 200000})
        marker = unique_marker("inflight-alone")
        c = self.conn(timeout=20)
        self.envelope(c)
        c.send(message(marker, 150000))
        time.sleep(0.3)
        c.send(b".\r\n")
        code, line, raw = c.reply()
        self.assertTrue(line.startswith("250 2.0.0"), f"{raw!r}{self.diag()}")
        self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1)

    def test_slow_data_senders_from_one_network_cannot_hold_the_whole_inflight_budget(self):
        # inflight_bytes 400000, inflight_share 0.25: one /24 may hold 100000 (>= one largest
        # message, 60000 + a DATA line). The hog (127.0.1.0/24) opens 8 transactions and sends
        # 55000 octets of each without ending them (a slow sender); before the share bound they held
        # 385000 of the 400000 and every other client got 452.
        self.start_mx({"inflight_bytes": 400000, "message_size": 60000, "data_line_length": 1000})
        hog = []
        for _ in range(8):
            c = self.conn(source="127.0.1.2", timeout=20)
            self.assertEqual(c.cmd("EHLO hog.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<hog@example.net>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250)
            code, line, raw = c.cmd("DATA")
            self.assertIn(code, (354, 452), raw)
            if code == 354:
                c.send(message(unique_marker("hog"), 55000))
                hog.append(c)
        time.sleep(1.0)  # the server has read what the hog sent
        # another network still gets its mail through
        marker = unique_marker("share")
        c = self.conn(source="127.0.2.3", timeout=20)
        self.envelope(c)
        c.send(message(marker, 30000))
        time.sleep(0.3)  # the end of data in a later write, as for any message bigger than one burst
        c.send(b".\r\n")
        code, line, raw = c.reply()
        self.assertTrue(line.startswith("250 2.0.0"), f"{raw!r}{self.diag()}")
        self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1, self.diag())
        # the hog's own transactions past its share are refused at their end
        answers = []
        for h in hog:
            h.send(b".\r\n")
            answers.append(h.reply()[1][:9])
        self.assertIn("452 4.3.1", answers, self.diag())
        self.assertTrue(self.mx.wait_log(r"inflight id=\S+ client=127\.0\.1\.2 message dropped", 5), self.diag())

    # -- drain ----------------------------------------------------------------------------------
    def test_sigterm_with_idle_clients_exits_promptly_and_tells_them_421(self):
        # shutdown_timeout 30 s, command_timeout 300 s: idle sessions must not stretch the drain
        mx = self.start_mx(server={"hostname": "mx.test", "io_threads": 2, "shutdown_timeout": 30})
        idle = smtplib.SMTP("127.0.0.1", mx.port, timeout=10)
        self.addCleanup(idle.close)
        self.assertEqual(idle.ehlo("idle.test")[0], 250)
        silent = self.conn()  # greeted, never says a word
        self.assertEqual(silent.greeting[0], 220)
        mx.expected_exit = True
        t0 = time.monotonic()
        os.kill(mx.pid, signal.SIGTERM)
        try:
            rc = mx.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.fail(f"still draining {time.monotonic() - t0:.1f} s after SIGTERM with only idle clients{self.diag()}")
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, self.diag())
        self.assertLess(elapsed, 15, self.diag())
        code, text = idle.getreply()
        self.assertEqual(code, 421, text)
        self.assertTrue(text.startswith(b"4.3.2"), text)
        code, line, raw = silent.reply(timeout=5)
        self.assertTrue(line.startswith("421 4.3.2"), raw)
        sid = mx.session_id(silent.local_port)
        self.assertEqual(mx.disconnect_reason(sid), "shutdown", self.diag())

    def test_sigterm_drains_idle_421_in_flight_250_and_exits_0(self):
        mx = self.start_mx()
        marker = unique_marker("drain")
        idle = self.conn()
        self.assertEqual(idle.cmd("EHLO idle.test")[0], 250)
        busy = self.conn(timeout=20)
        self.envelope(busy)
        busy.send(message(marker, 20000))
        time.sleep(0.3)
        mx.expected_exit = True
        os.kill(mx.pid, signal.SIGTERM)
        time.sleep(0.5)
        self.assertTrue(mx.alive(), "exited before the in-flight transaction finished" + self.diag())
        # an idle session gets 421 4.3.2 on its next command (or already has it)
        try:
            idle.send(b"NOOP\r\n")
        except OSError:
            pass
        code, line, raw = idle.reply(timeout=5)
        self.assertTrue(line.startswith("421 4.3.2"), f"{raw!r}{self.diag()}")
        self.assertTrue(idle.closed_by_server(3))
        sid = mx.session_id(idle.local_port)
        self.assertIsNotNone(sid, "no connect log line for the idle session")
        self.assertEqual(mx.disconnect_reason(sid), "shutdown", self.diag())
        # new connections are no longer served
        try:
            with SmtpConn(mx.port, timeout=2) as late:
                self.assertNotEqual(late.greeting[0], 220, "a new connection was greeted after SIGTERM")
        except OSError:
            pass  # refused / reset / timed out: fine
        # the transaction in DATA finishes and is relayed
        busy.send(b"\r\n.\r\n")
        code, line, raw = busy.reply()
        self.assertTrue(line.startswith("250 2.0.0"), f"{raw!r}{self.diag()}")
        busy.send(b"QUIT\r\n")
        code, line, raw = busy.reply()
        self.assertIn(code, (221, 421, None), raw)
        rc = mx.proc.wait(15)
        self.assertEqual(rc, 0, self.diag())
        self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1, self.diag())


if __name__ == "__main__":
    unittest.main(verbosity=2)

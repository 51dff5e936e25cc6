"""Downstream and client faults: every failure gives the client the right reply, nothing is
delivered for a failure, and mxfront leaks no descriptor and leaves no CLOSE_WAIT socket behind.

Real Postfix qmqpd for everything a real server can do (refuse, Z via milter tempfail, D via milter
reject or message_size_limit, hang via SIGSTOP); a scripted peer only for a cut-off answer and a
garbage answer.

Run from the repo root:  python3 -m unittest -v tests/integration/test_faults.py"""
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import (MisbehavingQmqp, Mxfront, PostfixQmqp, SmtpConn, free_port,  # noqa: E402
                       smtp_raw, unique_marker)

POSTFIX_SIZE_LIMIT = 100000


def message(marker, size=0):
    """A message (CRLF, no dot lines) of at least `size` bytes carrying `marker`."""
    head = f"From: <f@example.net>\r\nSubject: {marker}\r\n\r\n{marker}\r\n".encode()
    filler = b""
    if size > len(head):
        line = b"x" * 76 + b"\r\n"
        filler = line * ((size - len(head)) // len(line) + 1)
    return head + filler


class FaultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pf = PostfixQmqp(message_size_limit=POSTFIX_SIZE_LIMIT)
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.pf_z = PostfixQmqp(milter_action="tempfail")
        cls.addClassCleanup(cls.pf_z.stop)
        cls.pf_z.start()
        cls.pf_d = PostfixQmqp(milter_action="reject")
        cls.addClassCleanup(cls.pf_d.stop)
        cls.pf_d.start()

    # -- helpers --------------------------------------------------------------------------------
    def start_mx(self, servers, qmqp=None, **sections):
        cfg = dict(sections)
        if qmqp:
            cfg["qmqp"] = qmqp
        mx = Mxfront(servers, cfg)
        self.addCleanup(mx.kill)
        mx.start()
        self.addCleanup(mx.check_alive)  # runs before kill: a crash fails the test
        self.mx = mx
        # leak baseline: after a few plain sessions (lazy per-thread initialisation is not a leak)
        self.baseline = mx.warm_up()
        return mx

    def diag(self, *pfs):
        out = f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}" if getattr(self, "mx", None) else ""
        for pf in pfs:
            out += f"\n--- postfix {pf.address} maillog ---\n{pf.log()[-2000:]}"
        return out

    def fds(self):
        try:
            return sorted(os.readlink(f"/proc/{self.mx.pid}/fd/{n}") for n in os.listdir(f"/proc/{self.mx.pid}/fd"))
        except OSError as e:
            return str(e)

    def assert_no_leak(self):
        n = self.mx.wait_fd_baseline(self.baseline, 5)
        self.assertLessEqual(n, self.baseline, f"fd count {n} did not return to baseline {self.baseline} "
                                               f"within 5 s: {self.fds()}{self.diag()}")
        self.assertEqual(self.mx.close_wait_count(), 0, "CLOSE_WAIT sockets left in mxfront")

    def assert_nothing_delivered(self, marker, *pfs, wait=1.0):
        time.sleep(wait)
        for pf in pfs:
            self.assertEqual(pf.deliveries(0, None, match=marker.encode()), [],
                             f"delivered by {pf.address}{self.diag(pf)}")
            if pf is not self.pf:  # (the shared instance may be finishing another test's delivery)
                self.assertEqual(pf.queued(), 0, f"queued in {pf.address}")

    def send(self, marker, size=0, rcpt="bob@example.org"):
        """One transaction; returns (code, last reply line, seconds from end-of-data to the reply)."""
        with SmtpConn(self.mx.port, timeout=30) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<f@example.net>")[0], 250)
            self.assertEqual(c.cmd(f"RCPT TO:<{rcpt}>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(message(marker, size))
            t0 = time.monotonic()
            c.send(b".\r\n")
            code, line, raw = c.reply()
            elapsed = time.monotonic() - t0
            c.cmd("QUIT")
        return code, line, elapsed

    # -- downstream faults ----------------------------------------------------------------------
    def test_no_listener_downstream_gives_451_4_4_1(self):
        self.start_mx([f"127.0.0.1:{free_port()}"])
        marker = unique_marker("refused")
        code, line, _ = self.send(marker)
        self.assertTrue(line.startswith("451 4.4.1"), line + self.diag())
        self.assert_no_leak()

    def test_first_server_down_second_postfix_delivers_250(self):
        self.start_mx([f"127.0.0.1:{free_port()}", self.pf.address])
        marker = unique_marker("second")
        code, line, _ = self.send(marker)
        self.assertTrue(line.startswith("250 2.0.0"), line + self.diag(self.pf))
        self.assertIn("queued as", line)
        ds = self.pf.deliveries(10, 1, match=marker.encode())
        self.assertEqual([d.recipient for d in ds], ["bob@example.org"], self.diag(self.pf))
        self.assert_no_leak()

    def test_postfix_Z_milter_tempfail_gives_451_4_3_0_and_no_other_server_is_tried(self):
        self.start_mx([self.pf_z.address, self.pf.address])
        marker = unique_marker("z")
        code, line, _ = self.send(marker)
        self.assertTrue(line.startswith("451 4.3.0"), line + self.diag(self.pf_z))
        self.assert_nothing_delivered(marker, self.pf_z, self.pf)
        self.assert_no_leak()

    def test_postfix_D_milter_reject_gives_554_5_6_0(self):
        self.start_mx([self.pf_d.address, self.pf.address])
        marker = unique_marker("d")
        code, line, _ = self.send(marker)
        self.assertTrue(line.startswith("554 5.6.0"), line + self.diag(self.pf_d))
        self.assert_nothing_delivered(marker, self.pf_d, self.pf)
        self.assert_no_leak()

    def test_postfix_D_over_message_size_limit_gives_554_5_6_0(self):
        self.start_mx([self.pf.address])
        marker = unique_marker("dsize")
        code, line, _ = self.send(marker, size=3 * POSTFIX_SIZE_LIMIT)
        self.assertTrue(line.startswith("554 5.6.0"), line + self.diag(self.pf))
        self.assert_nothing_delivered(marker, self.pf)
        self.assert_no_leak()

    def test_hanging_postfix_gives_451_4_4_2_after_answer_timeout_and_no_other_server_is_tried(self):
        hung = PostfixQmqp()
        self.addCleanup(hung.stop)
        hung.start()
        self.start_mx([hung.address, self.pf.address], qmqp={"answer_timeout": 2})
        marker = unique_marker("hang")
        hung.pause()
        try:
            code, line, elapsed = self.send(marker)
            self.assertTrue(line.startswith("451 4.4.2"), line + self.diag())
            self.assertGreaterEqual(elapsed, 1.8, f"answered after {elapsed:.2f}s, before answer_timeout")
            self.assertLess(elapsed, 4.5, f"answered after {elapsed:.2f}s (answer_timeout = 2)")
            self.assertEqual(hung.deliveries(0, None, match=marker.encode()), [])
            self.assert_nothing_delivered(marker, self.pf, wait=0.5)
            self.assert_no_leak()
        finally:
            hung.stop()  # never resumed for delivery: the request it holds dies with it

    def test_answer_cut_off_mid_netstring_gives_451_4_4_2(self):
        with MisbehavingQmqp("close_mid_answer") as peer:
            self.start_mx([peer.address, self.pf.address])
            marker = unique_marker("cut")
            code, line, _ = self.send(marker)
            self.assertTrue(line.startswith("451 4.4.2"), line + self.diag())
            self.assertEqual(len(peer.requests), 1)
            self.assertIn(marker.encode(), peer.requests[0])
            self.assert_nothing_delivered(marker, self.pf, wait=0.5)
            self.assert_no_leak()

    def test_garbage_answer_gives_451_4_4_2(self):
        with MisbehavingQmqp("garbage") as peer:
            self.start_mx([peer.address, self.pf.address])
            marker = unique_marker("garbage")
            code, line, _ = self.send(marker)
            self.assertTrue(line.startswith("451 4.4.2"), line + self.diag())
            self.assert_nothing_delivered(marker, self.pf, wait=0.5)
            self.assert_no_leak()

    def test_garbage_answer_on_open_connection_gives_451_before_answer_timeout(self):
        # the peer answers "hello\n" and keeps the connection open: not a netstring, so there is
        # nothing to wait for
        with MisbehavingQmqp("garbage", hold=30) as peer:
            self.start_mx([peer.address], qmqp={"answer_timeout": 8})
            marker = unique_marker("garbage-open")
            code, line, elapsed = self.send(marker)
            self.assertTrue(line.startswith("451"), line + self.diag())
            self.assertLess(elapsed, 6, f"garbage answer took {elapsed:.2f}s to be noticed")
            self.assert_no_leak()

    def test_scripted_hang_gives_451_4_4_2_after_answer_timeout(self):
        with MisbehavingQmqp("hang") as peer:
            self.start_mx([peer.address], qmqp={"answer_timeout": 1.5})
            marker = unique_marker("shang")
            code, line, elapsed = self.send(marker)
            self.assertTrue(line.startswith("451 4.4.2"), line + self.diag())
            self.assertGreaterEqual(elapsed, 1.3)
            self.assertLess(elapsed, 4.0)
            self.assert_no_leak()

    # issue 12, item 8: a K after an incomplete send is not believed
    def test_K_after_an_incomplete_send_gives_451_and_the_next_server_is_tried(self):
        big = PostfixQmqp()  # default message_size_limit (10 MB): takes the 8 MB message
        self.addCleanup(big.stop)
        big.start()
        with MisbehavingQmqp("k_after_partial") as peer:
            # alone: the liar's K is a 451, never a 250
            self.start_mx([peer.address])
            marker = unique_marker("partial-alone")
            code, line, _ = self.send(marker, size=8 << 20)
            self.assertTrue(line.startswith("451 4.4.1"), line + self.diag())
            self.assertIn("incomplete send", self.mx.log())
            self.assert_no_leak()
            self.mx.terminate()
            # with a real Postfix behind it: the message was not transferred, so the next server
            # gets it (no duplicate possible) and the client its 250 from there
            self.start_mx([peer.address, big.address])
            marker = unique_marker("partial-next")
            code, line, _ = self.send(marker, size=8 << 20)
            self.assertTrue(line.startswith("250 2.0.0"), line + self.diag(big))
            self.assertNotIn("LIAR", line)
            ds = big.deliveries(20, 1, match=marker.encode())
            self.assertEqual(len(ds), 1, self.diag(big))
            self.assertGreater(len(ds[0].data), 8_000_000)  # stored with LF line ends
            self.assertEqual(len(peer.requests), 2)
            self.assertTrue(all(len(r) <= 1000 for r in peer.requests))
            self.assert_no_leak()

    # issue 12, item 9: the answer is complete at its final ','
    def test_K_then_an_open_socket_gives_250_at_once(self):
        with MisbehavingQmqp("k_and_hold", hold=30) as peer:
            self.start_mx([peer.address], qmqp={"answer_timeout": 8})
            marker = unique_marker("khold")
            code, line, elapsed = self.send(marker)
            self.assertTrue(line.startswith("250 2.0.0"), line + self.diag())
            self.assertLess(elapsed, 2, f"250 after {elapsed:.2f}s: waited for the server's close")
            # the connection is still closed by mxfront at the answer timeout (no leak)
            n = self.mx.wait_fd_baseline(self.baseline, 12)
            self.assertLessEqual(n, self.baseline, self.fds())
            self.assertEqual(self.mx.close_wait_count(), 0)

    # -- client faults --------------------------------------------------------------------------
    def _abort_mid_data(self, reset):
        self.start_mx([self.pf.address])
        marker = unique_marker("abort")
        s = socket.create_connection(("127.0.0.1", self.mx.port), timeout=10)
        try:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"220"))
            for cmd, want in ((b"EHLO client.test", b"250"), (b"MAIL FROM:<f@example.net>", b"250"),
                              (b"RCPT TO:<bob@example.org>", b"250"), (b"DATA", b"354")):
                s.sendall(cmd + b"\r\n")
                while True:
                    line = f.readline()
                    self.assertTrue(line.startswith(want), (cmd, line))
                    if line[3:4] == b" ":
                        break
            s.sendall(message(marker, 20000))  # no end-of-data
            time.sleep(0.3)
            if reset:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            f.close()
        finally:
            s.close()
        self.assert_nothing_delivered(marker, self.pf)
        self.assert_no_leak()
        self.assertTrue(self.mx.alive())
        # and it still serves
        code, line, _ = self.send(unique_marker("after-abort"))
        self.assertTrue(line.startswith("250 2.0.0"), line)

    def test_client_closing_mid_data_delivers_nothing_and_releases_fds(self):
        self._abort_mid_data(reset=False)

    def test_client_resetting_mid_data_delivers_nothing_and_releases_fds(self):
        self._abort_mid_data(reset=True)

    def test_client_half_close_after_quit_gets_all_replies_and_one_delivery(self):
        self.start_mx([self.pf.address])
        marker = unique_marker("halfclose")
        s = socket.create_connection(("127.0.0.1", self.mx.port), timeout=15)
        try:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"220"))
            s.sendall(b"EHLO client.test\r\nMAIL FROM:<f@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
            replies = []
            while len(replies) < 4:
                line = f.readline()
                self.assertTrue(line, f"closed early after {replies}")
                if line[3:4] == b" ":
                    replies.append(line)
            self.assertEqual([r[:3] for r in replies], [b"250", b"250", b"250", b"354"], replies)
            s.sendall(message(marker) + b".\r\nQUIT\r\n")
            s.shutdown(socket.SHUT_WR)
            rest = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                rest += d
            f.close()
        finally:
            s.close()
        lines = [l for l in rest.split(b"\r\n") if l]
        self.assertEqual(len(lines), 2, rest)
        self.assertTrue(lines[0].startswith(b"250 2.0.0"), rest)
        self.assertTrue(lines[1].startswith(b"221"), rest)
        ds = self.pf.deliveries(10, 1, match=marker.encode())
        time.sleep(1.0)
        ds = self.pf.deliveries(0, None, match=marker.encode())
        self.assertEqual(len(ds), 1, f"delivered {len(ds)} times{self.diag(self.pf)}")
        self.assert_no_leak()

    def test_pipelined_transaction_with_half_close_is_answered_completely(self):
        self.start_mx([self.pf.address])
        before = len(self.pf.deliveries())
        r = smtp_raw(self.mx.port, [b"EHLO client.test\r\nMAIL FROM:<f@example.net>\r\n"
                                    b"RCPT TO:<bob@example.org>\r\nDATA\r\n"], timeout=10, shut_wr=True)
        # only DATA's 354 is outstanding when the client stops sending: the server must answer all
        # four commands, then see EOF in DATA and deliver nothing
        self.assertEqual(r.codes()[:5], [220, 250, 250, 250, 354], r)
        self.assertTrue(r.closed, r)
        self.assertEqual(len(self.pf.deliveries(1.0)), before)
        self.assert_no_leak()


if __name__ == "__main__":
    unittest.main(verbosity=2)

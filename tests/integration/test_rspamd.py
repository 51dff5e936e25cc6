"""The rspamd filter end to end: smtplib -> mxfront (profile mx: relay_control, rspamd) -> REAL rspamd
(Debian package, private config, loopback only) at end of DATA -> REAL Postfix qmqpd -> Maildir.

Run from the repo root:  python3 -m unittest -v tests/integration/test_rspamd.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix and to start rspamd as
_rspamd). A rspamd that does not start fails the test with its log (HarnessError); nothing is skipped."""
import base64
import json
import os
import pwd
import re
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, free_port, http_get, smtp_send, unique_marker  # noqa: E402
import rspamd_harness  # noqa: E402
from rspamd_harness import GTUBE, Rspamd  # noqa: E402
from redis_harness import RedisServer  # noqa: E402
from tls_harness import TestPki, profile_overrides, users_file  # noqa: E402

SENDER = rspamd_harness.TEST_SENDER
RSPAMD_START = 180  # s for rspamd to answer /ping: its start compiles regexps, minutes on a loaded 2-core machine
RCPT = rspamd_harness.TEST_RCPT


rspamd_config = rspamd_harness.mxfront_config


mail = rspamd_harness.clean_mail


def send(port, msg):
    return smtp_send(port, SENDER, [RCPT], msg, timeout=60)


def proxy_v2(src, dst, sport, dport):
    """A PROXY protocol v2 header, TCP over IPv4, command PROXY (as HAProxy's send-proxy-v2)."""
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


# Test rules for a private rspamd (its rspamd.local.lua):
#  * MXF_ADD_HEADER (11 points) and MXF_REWRITE (6) on the header "X-Mxf-Test: add-header" /
#    "rewrite-subject": with ACTIONS below, rspamd answers "add header" / "rewrite subject";
#  * MXF_SLOW: a message carrying "MXF-SLOW-<ms>" keeps rspamd's worker busy that long (a blocking
#    sleep, logged before and after: "a scan in progress");
#  * MXF_FACTS: logs what rspamd got of the envelope: HELO, client IP, SMTP recipients, Queue-Id.
TEST_RULES = r"""
local rspamd_logger = require "rspamd_logger"
local function test_header_is(value)
  return function(task) return task:get_header('X-Mxf-Test') == value end
end
rspamd_config.MXF_ADD_HEADER = { callback = test_header_is('add-header'), score = 11.0, description = 'mxfront test: add header' }
rspamd_config.MXF_REWRITE = { callback = test_header_is('rewrite-subject'), score = 6.0, description = 'mxfront test: rewrite subject' }
rspamd_config.MXF_SLOW = { callback = function(task)
  local ms = tonumber(tostring(task:get_content()):match('MXF%-SLOW%-(%d+)'))
  if not ms then return false end
  rspamd_logger.infox(task, 'MXF_SLOW sleeping %s', ms)
  os.execute('sleep ' .. (ms / 1000))
  rspamd_logger.infox(task, 'MXF_SLOW woke')
  return false
end, score = 0.0, description = 'mxfront test: slow scan' }
rspamd_config.MXF_FACTS = { callback = function(task)
  local rcpts = {}
  for _, r in ipairs(task:get_recipients('smtp') or {}) do rcpts[#rcpts + 1] = r.addr end
  rspamd_logger.infox(task, 'MXF_FACTS helo=<%s> ip=<%s> rcpts=<%s> qid=<%s>', task:get_helo(),
                      tostring(task:get_from_ip()), table.concat(rcpts, ','), task:get_queue_id())
  return false
end, score = 0.0, description = 'mxfront test: envelope facts' }
"""
# rspamd's actions for the rules above: 5-9 rewrite subject, 9-15 add header, 15+ reject (greylist off)
ACTIONS = 'reject = 15;\nadd_header = 9;\nrewrite_subject = 5;\ngreylist = null;\nsubject = "***SPAM*** %s";\n'


class RspamdTest(unittest.TestCase):
    """One Postfix, one rspamd and one mxfront for the class; failure cases start their own."""

    @classmethod
    def setUpClass(cls):
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.rs = Rspamd()
        cls.addClassCleanup(cls.rs.stop)
        cls.rs.start(RSPAMD_START)
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

    def assert_delivered_once(self, marker, diag=""):
        """The message that got 250 is in the Maildir, and only once (no 250 lost, none doubled)."""
        got = self.pf.deliveries(20, 1, match=marker.encode())
        self.assertEqual(len(got), 1, f"{marker} delivered once{diag}")
        self.assertEqual(len(self.pf.deliveries(0.5, None, match=marker.encode())), 1, f"{marker} delivered twice{diag}")

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
        self.assertTrue(self.mx.wait_log(rf" id={re.escape(m.group(1))} ", 1), "Queue-Id is the message id mxfront logs" + self.diag())
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

    def test_rspamd_paused_times_out_with_on_error_and_no_fd_is_left_behind(self):
        rs = Rspamd()
        self.addCleanup(rs.stop)
        rs.start(RSPAMD_START)
        mx = Mxfront([self.pf.address], rspamd_config([rs.address], timeout=2))
        self.addCleanup(mx.kill)
        mx.start()
        warm = unique_marker("warm")
        self.assertEqual(send(mx.port, mail(warm))[0], 250, self.diag(mx, rs))
        self.assert_delivered_once(warm, self.diag(mx, rs))
        time.sleep(0.3)
        baseline = mx.fd_count()
        os.killpg(rs.proc.pid, signal.SIGSTOP)  # accepts connections (kernel backlog), never answers
        try:
            for i in range(3):
                marker = unique_marker(f"paused{i}")
                t0 = time.monotonic()
                code, text = send(mx.port, mail(marker))
                self.assertEqual(code, 451, text + self.diag(mx, rs))
                self.assertLess(time.monotonic() - t0, 8, "answered within the filter's timeout")
                self.assert_nothing_delivered(marker, 0.2)
            self.assertTrue(mx.wait_log(r"filter=rspamd phase=data verdict=tempfail \(timeout\)", 5), self.diag(mx, rs))
        finally:
            os.killpg(rs.proc.pid, signal.SIGCONT)
        marker = unique_marker("resumed")
        self.assertEqual(send(mx.port, mail(marker))[0], 250, self.diag(mx, rs))
        self.assert_delivered_once(marker, self.diag(mx, rs))
        deadline = time.monotonic() + 10
        while mx.fd_count() > baseline and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertLessEqual(mx.fd_count(), baseline, "fds back to their baseline after the paused rspamd")
        mx.check_alive()

    def test_rspamd_killed_applies_on_error_and_mxfront_keeps_serving(self):
        rs = Rspamd()
        self.addCleanup(rs.stop)
        rs.start(RSPAMD_START)
        tempfail = Mxfront([self.pf.address], rspamd_config([rs.address]))
        self.addCleanup(tempfail.kill)
        tempfail.start()
        cont = Mxfront([self.pf.address], rspamd_config([rs.address], on_error="continue"))
        self.addCleanup(cont.kill)
        cont.start()
        marker = unique_marker("before")
        self.assertEqual(send(tempfail.port, mail(marker))[0], 250, self.diag(tempfail, rs))
        self.assert_delivered_once(marker, self.diag(tempfail, rs))
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
        self.assert_delivered_once(marker, self.diag(cont, rs))
        cont.check_alive()

    def test_rspamd_killed_in_the_middle_of_a_scan_tempfails_and_the_250s_are_delivered_once(self):
        rs = Rspamd(extra_local={"rspamd.local.lua": TEST_RULES})
        self.addCleanup(rs.stop)
        rs.start(RSPAMD_START)
        mx = Mxfront([self.pf.address], rspamd_config([rs.address], timeout=30))
        self.addCleanup(mx.kill)
        mx.start()
        before = unique_marker("prekill")
        self.assertEqual(send(mx.port, mail(before))[0], 250, self.diag(mx, rs))
        self.assert_delivered_once(before, self.diag(mx, rs))
        # a scan that sleeps 20 s in rspamd's rule; rspamd is SIGKILLed while it sleeps
        marker = unique_marker("midscan")
        result = {}
        t = threading.Thread(target=lambda: result.update(r=send(mx.port, mail(marker, "MXF-SLOW-20000\r\n"))))
        t0 = time.monotonic()
        t.start()
        deadline = time.monotonic() + 20
        while "MXF_SLOW sleeping 20000" not in rs.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("MXF_SLOW sleeping 20000", rs.log(), "the scan is in progress" + self.diag(mx, rs))
        rs.kill()
        t.join(40)
        self.assertFalse(t.is_alive())
        code, text = result["r"]
        self.assertEqual(code, 451, text + self.diag(mx, rs))
        self.assertTrue(text.startswith("4.3.0 "), text)
        self.assertLess(time.monotonic() - t0, 20, "answered when rspamd died, not at the 30 s timeout")
        self.assertTrue(mx.wait_log(r"filter=rspamd phase=data verdict=tempfail \(error\) .*reason=\"rspamd: "
                                    + re.escape(rs.address) + r": read: ", 5), self.diag(mx, rs))
        self.assert_nothing_delivered(marker, 0.5)
        after = unique_marker("postkill")  # rspamd gone for good: on_error again, mxfront serves on
        self.assertEqual(send(mx.port, mail(after))[0], 451, self.diag(mx, rs))
        self.assert_nothing_delivered(after, 0.3)
        self.assert_delivered_once(before, self.diag(mx, rs))
        mx.check_alive()


class RspamdActionsTest(unittest.TestCase):
    """rspamd's "add header" / "rewrite subject" on the relayed message, per-profile score modes, the
    envelope facts rspamd gets behind a PROXY v2 header and a slow scan within the timeout. One
    rspamd with TEST_RULES and ACTIONS; one mxfront whose profiles judge differently:
      mx          rspamd.score = "add"  (tag_score 9, reject_score 10: the sum refuses rspamd's 11.9)
      submission  profile_score "alone" (same tag/reject scores: rspamd's action alone decides)."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.users = users_file(os.path.join(cls.pki.dir, "users"))
        cls.rs = Rspamd(extra_local={"rspamd.local.lua": TEST_RULES, "local.d/actions.conf": ACTIONS})
        cls.addClassCleanup(cls.rs.stop)
        cls.rs.start(RSPAMD_START)
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cfg = profile_overrides(cls.pki.server.cert, cls.pki.server.key, {"type": "file", "users_file": cls.users})
        cfg["listener"].append({"address": "127.0.0.1:0", "profile": "mx", "proxy_protocol": True,
                                "proxy_trusted": ["127.0.0.1/32"]})
        cfg["relay"] = {"local_domains": ["example.org"], "postmaster": "alice@example.org"}
        cfg["rspamd"] = {"servers": [cls.rs.address], "score": "add", "profile_score": ["submission=alone"], "timeout": 5}
        for profile in ("mx", "submission"):
            cfg[f"profile.{profile}"] = {"filters": ["relay_control", "rspamd"], "tag_score": 9, "reject_score": 10}
        cls.mx = Mxfront([cls.pf.address], cfg)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        cls.ctx = cls.pki.client_context()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return (f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix maillog ---\n{self.pf.log()[-1500:]}"
                f"\n--- rspamd ---\n{self.rs.log()[-3000:]}")

    @staticmethod
    def marked_mail(marker, test_header=None, body="Hello,\r\nsee you at lunch.\r\n", sender="alice@example.org"):
        extra = f"X-Mxf-Test: {test_header}\r\n" if test_header else ""
        return (f"From: <{sender}>\r\nTo: Carol <carol@example.com>\r\nSubject: {marker}\r\n{extra}"
                f"Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <{marker}@example.org>\r\n\r\n{body}").encode()

    def submit(self, msg):
        with smtplib.SMTP("127.0.0.1", self.mx.listeners[1][1], local_hostname="client.test", timeout=60) as c:
            c.starttls(context=self.ctx)
            c.login("alice@example.org", "alicepw")
            c.mail("alice@example.org")
            c.rcpt("carol@example.com")
            code, text = c.data(msg)
            return code, text.decode(errors="replace")

    def inbound(self, msg):
        return smtp_send(self.mx.port, SENDER, [RCPT], msg, timeout=60)

    def delivered_head(self, marker):
        got = self.pf.deliveries(20, 1, match=marker.encode())
        self.assertEqual(len(got), 1, self.diag())
        self.assertEqual(len(self.pf.deliveries(0.3, None, match=marker.encode())), 1, "delivered once" + self.diag())
        return got[0].data.split(b"\n\n", 1)[0].decode(errors="replace")

    def assert_spam_headers(self, head, symbol):
        self.assertRegex(head, r"(?m)^X-Spam-Score: -?[\d.]+$", head)
        self.assertRegex(head, r"(?m)^X-Spam-Status: Yes, score=-?[\d.]+ tag=9 reject=10$", head)
        self.assertRegex(head, rf"(?m)^X-Spam-Report: .*\b{symbol}=\d", head)  # rspamd's symbols
        self.assertEqual(len(re.findall(r"(?m)^X-Spam-Status:", head)), 1, head)

    # ------------------------------------------------------------------------------------------
    def test_add_header_in_alone_mode_is_relayed_tagged_with_rspamds_symbols(self):
        marker = unique_marker("addhdr-alone")
        code, text = self.submit(self.marked_mail(marker, "add-header"))
        self.assertEqual(code, 250, text + self.diag())  # rspamd's 11.9 never reaches reject_score 10
        head = self.delivered_head(marker)
        self.assert_spam_headers(head, "MXF_ADD_HEADER")
        self.assertRegex(head, r"(?m)^X-Spamd-Result: default: (True|False) \[1[0-4]\.\d+ / 15\.00\]", head)
        self.assertRegex(head, rf"(?m)^Subject: {re.escape(marker)}$", head)  # add header: the subject stays
        self.assertTrue(self.mx.wait_log(r"filter=rspamd phase=data verdict=continue score=0 .*reason=\"rspamd "
                                         r"action=add header score=1[0-4]\.\d+ server=", 5), self.diag())

    def test_add_header_in_add_mode_is_refused_by_the_profiles_reject_score(self):
        # documented: in "add" mode the sum judges; rspamd's add-header range (9-15 here) above
        # the profile's reject_score (10) is refused by the chain, not by rspamd
        marker = unique_marker("addhdr-add")
        code, text = self.inbound(self.marked_mail(marker, "add-header", sender=SENDER))
        self.assertEqual(code, 554, text + self.diag())
        self.assertRegex(text, r"^5\.7\.1 .*MXF_ADD_HEADER=11", text)
        self.assertEqual(self.pf.deliveries(1.0, None, match=marker.encode()), [], self.diag())

    def test_rewrite_subject_relays_the_rewritten_subject_tagged_in_both_modes(self):
        for mode, send_it, sender in (("add", self.inbound, SENDER), ("alone", self.submit, "alice@example.org")):
            with self.subTest(mode=mode):
                marker = unique_marker(f"rewrite-{mode}")
                code, text = send_it(self.marked_mail(marker, "rewrite-subject", sender=sender))
                self.assertEqual(code, 250, text + self.diag())  # 6.9: below tag_score 9 and reject_score 10
                head = self.delivered_head(marker)
                self.assertEqual(re.findall(r"(?m)^Subject: .*$", head), [f"Subject: ***SPAM*** {marker}"], head)
                self.assert_spam_headers(head, "MXF_REWRITE")

    def test_clean_mail_gets_no_spam_headers(self):
        marker = unique_marker("clean-actions")
        code, text = self.inbound(self.marked_mail(marker, sender=SENDER))
        self.assertEqual(code, 250, text + self.diag())
        head = self.delivered_head(marker)
        self.assertNotRegex(head, r"(?m)^X-Spam-(Score|Status|Report):", head)

    def test_slow_scan_within_the_timeout_is_accepted_and_delivered(self):
        marker = unique_marker("slow")
        t0 = time.monotonic()
        code, text = self.inbound(self.marked_mail(marker, body="MXF-SLOW-1200\r\n", sender=SENDER))
        self.assertEqual(code, 250, text + self.diag())  # rspamd.timeout 5 s
        self.assertGreaterEqual(time.monotonic() - t0, 1.2, "rspamd was slow")
        self.assertIn("MXF_SLOW woke", self.rs.log())
        self.delivered_head(marker)

    def test_rspamd_gets_the_proxy_client_the_helo_every_rcpt_and_the_message_id(self):
        port = self.mx.listeners[3][1]
        marker = unique_marker("facts")
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            sock.sendall(proxy_v2("203.0.113.7", "127.0.0.1", 40000, port))
            f = sock.makefile("rb")

            def reply():
                while True:
                    line = f.readline().decode(errors="replace")
                    if line[3:4] != "-":
                        return line.strip()

            def cmd(line, want):
                sock.sendall(line.encode() + b"\r\n")
                r = reply()
                self.assertTrue(r.startswith(want), f"{line} -> {r}{self.diag()}")

            self.assertTrue(reply().startswith("220"))
            cmd("EHLO helo.proxied.test", "250")
            cmd(f"MAIL FROM:<{SENDER}>", "250")
            cmd("RCPT TO:<bob@example.org>", "250")
            cmd("RCPT TO:<alice@example.org>", "250")
            cmd("DATA", "354")
            cmd(self.marked_mail(marker, sender=SENDER).decode() + ".", "250")
            cmd("QUIT", "221")
        finally:
            sock.close()
        self.assertEqual(len(self.pf.deliveries(20, 2, match=marker.encode())), 2, self.diag())
        deadline = time.monotonic() + 5
        pattern = (r"MXF_FACTS helo=<helo\.proxied\.test> ip=<203\.0\.113\.7> "
                   r"rcpts=<bob@example\.org,alice@example\.org> qid=<(\S+)>")
        while not (m := re.search(pattern, self.rs.log())) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(m, "rspamd saw the PROXY client, the HELO and both recipients" + self.diag())
        qid = m.group(1)
        self.assertRegex(qid, r"^\S+\.1$", "Queue-Id is the message id <session>.<n>")
        # the same id names the message in mxfront's log (its relay line)
        self.assertTrue(self.mx.wait_log(rf"message id={re.escape(qid)} client=203\.0\.113\.7 ", 5), self.diag())


# A test rule (20 points: over rspamd's reject threshold of 15) and the settings that turn it off.
MARKER_RULE = ('rspamd_config.MXF_TEST_MARKER = { callback = function(task) '
               'return tostring(task:get_content()):find("MXFRONT-TEST-MARKER", 1, true) ~= nil end, '
               'score = 20.0, description = "mxfront test marker" }\n')
OUTBOUND_SETTINGS = 'outbound { id = "outbound"; apply { symbols_disabled = ["MXF_TEST_MARKER"]; } }\n'


class RspamdSubmissionTest(unittest.TestCase):
    """The submission side: the User header (rspamd signs only authenticated mail here), DKIM
    signing by rspamd's dkim_signing with the signature prepended by mxfront and verified by a real
    verifier (python3-dkim) on the delivered copy, and a Settings-ID per profile."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.users = users_file(os.path.join(cls.pki.dir, "users"))
        # rspamd's signing keys, selector "mx", readable by _rspamd only: example.org (our users)
        # and example.net (the MX test's sender: its mail must stay unsigned although rspamd could sign it)
        cls.keydir = os.path.join(cls.pki.dir, "dkim")
        os.makedirs(cls.keydir)
        u = pwd.getpwnam("_rspamd")
        for path in (cls.pki.dir, cls.keydir):
            os.chmod(path, 0o755)
        for domain in ("example.org", "example.net"):
            key = os.path.join(cls.keydir, f"{domain}.mx.key")
            subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
            pub = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"], check=True,
                                 capture_output=True).stdout
            if domain == "example.org":
                cls.dns_record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)
            os.chown(key, u.pw_uid, u.pw_gid)
            os.chmod(key, 0o600)
        cls.rs = Rspamd(extra_local={
            "local.d/dkim_signing.conf": f'path = "{cls.keydir}/$domain.$selector.key";\nselector = "mx";\n'
                                        'sign_local = false;\nsign_inbound = false;\nsign_authenticated = true;\n',
            "local.d/settings.conf": OUTBOUND_SETTINGS,
            "rspamd.local.lua": MARKER_RULE,
        })
        cls.addClassCleanup(cls.rs.stop)
        cls.rs.start(RSPAMD_START)
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cfg = profile_overrides(cls.pki.server.cert, cls.pki.server.key, {"type": "file", "users_file": cls.users})
        cfg["relay"] = {"local_domains": ["example.org"], "postmaster": "alice@example.org"}
        cfg["rspamd"] = {"servers": [cls.rs.address], "profile_settings_ids": ["submission=outbound"]}
        cfg["profile.mx"] = {"filters": ["relay_control", "rspamd"]}
        cfg["profile.submission"] = {"filters": ["relay_control", "rspamd"]}
        cls.mx = Mxfront([cls.pf.address], cfg)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        cls.ctx = cls.pki.client_context()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return (f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix maillog ---\n{self.pf.log()[-1500:]}"
                f"\n--- rspamd ---\n{self.rs.log()[-3000:]}")

    def submit(self, msg, user="alice@example.org", password="alicepw", rcpt="carol@example.com"):
        port = self.mx.listeners[1][1]
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=60) as c:
            c.starttls(context=self.ctx)
            c.login(user, password)
            c.mail(user)
            c.rcpt(rcpt)
            return c.data(msg)

    @staticmethod
    def alice_mail(marker, body="Hello Carol,\r\nthe report is attached.\r\n"):
        return (f"From: Alice <alice@example.org>\r\nTo: Carol <carol@example.com>\r\nSubject: {marker}\r\n"
                f"Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <{marker}@example.org>\r\n\r\n{body}").encode()

    def test_submitted_mail_leaves_signed_and_the_signature_verifies_with_python3_dkim(self):
        import dkim  # python3-dkim: the reference verifier
        marker = unique_marker("signed")
        code, text = self.submit(self.alice_mail(marker))
        self.assertEqual(code, 250, text.decode(errors="replace") + self.diag())
        got = self.pf.deliveries(20, 1, match=marker.encode())
        self.assertEqual(len(got), 1, self.diag())
        data = got[0].data
        head = data.split(b"\n\n", 1)[0]
        self.assertRegex(head, rb"(?m)^DKIM-Signature: v=1; a=rsa-sha256; .*d=example\.org; s=mx;", head.decode(errors="replace"))
        # the delivered copy as a verifier on the Internet would get it (CRLF line ends); the key
        # from the same key pair rspamd signed with
        wire = re.sub(rb"\r?\n", b"\r\n", data)
        lookups = []

        def dnsfunc(name, timeout=5):
            lookups.append(name)
            return self.dns_record if name in (b"mx._domainkey.example.org.", "mx._domainkey.example.org.") else None

        self.assertTrue(dkim.verify(wire, dnsfunc=dnsfunc), f"python3-dkim does not verify it: {head!r}{self.diag()}")
        self.assertTrue(lookups, "the verifier looked up the key")
        # tampering with the body after signing is detected (the check can fail)
        self.assertFalse(dkim.verify(wire.replace(b"the report is attached", b"the report is ATTACHED"), dnsfunc=dnsfunc))

    def test_unauthenticated_mx_mail_is_not_signed(self):
        marker = unique_marker("mxnosig")
        msg = (f"From: Sam <sam@example.net>\r\nTo: Alice <alice@example.org>\r\nSubject: {marker}\r\n"
               f"Message-ID: <{marker}@example.net>\r\n\r\nhello\r\n").encode()
        # the control: rspamd has a key for example.net and signs this very message when it comes
        # from an authenticated user (the User header), so an unsigned MX copy means mxfront sent no User
        req = urllib.request.Request(f"http://{self.rs.address}/checkv2", data=msg, headers={
            "IP": "127.0.0.1", "From": "sam@example.net", "Rcpt": "alice@example.org", "User": "sam@example.net"})
        with urllib.request.urlopen(req, timeout=30) as r:
            control = json.loads(r.read())
        self.assertRegex(str(control.get("dkim-signature")), r"\bd=example\.net;", f"{control}{self.diag()}")
        code, text = smtp_send(self.mx.port, "sam@example.net", ["alice@example.org"], msg, timeout=60)
        self.assertEqual(code, 250, text + self.diag())
        got = self.pf.deliveries(20, 1, match=marker.encode())
        self.assertEqual(len(got), 1, self.diag())
        self.assertNotIn(b"DKIM-Signature:", got[0].data.split(b"\n\n", 1)[0])

    def test_each_profile_sends_its_settings_id(self):
        body = "This carries MXFRONT-TEST-MARKER.\r\n"
        # mx profile: no Settings-ID, the test rule scores 20 -> rspamd rejects
        marker = unique_marker("mxmark")
        msg = (f"From: Sam <sam@example.net>\r\nTo: Alice <alice@example.org>\r\nSubject: {marker}\r\n"
               f"Message-ID: <{marker}@example.net>\r\n\r\n{body}").encode()
        code, text = smtp_send(self.mx.port, "sam@example.net", ["alice@example.org"], msg, timeout=60)
        self.assertEqual(code, 554, text + self.diag())
        # submission profile: Settings-ID "outbound" turns the rule off -> relayed
        marker = unique_marker("submark")
        code, text = self.submit(self.alice_mail(marker, body))
        self.assertEqual(code, 250, text.decode(errors="replace") + self.diag())
        self.assertEqual(len(self.pf.deliveries(20, 1, match=marker.encode())), 1, self.diag())
        self.assertNotRegex(self.mx.log(), rf"MXF_TEST_MARKER=20[^\n]*{re.escape(marker)}")


class RspamdBayesTest(unittest.TestCase):
    """rspamd's Bayes statistics in a REAL redis-server shared by two rspamd instances (the farm's
    layout): spam learned with `rspamc learn_spam` on instance A scores on instance B, which mxfront
    asks; the score and the BAYES_SPAM symbol reach the chain."""
    WORDS = ("replica luxury watches rolex omega discount limited offer click best prices guaranteed "
             "worldwide shipping cheap casino bonus").split()

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        bayes = {"local.d/classifier-bayes.conf":
                 f'backend = "redis";\nservers = "{cls.redis.address}";\nmin_learns = 3;\n'}
        cls.learner, cls.judge = Rspamd(extra_local=bayes), Rspamd(extra_local=bayes)
        for r in (cls.learner, cls.judge):
            cls.addClassCleanup(r.stop)
            r.start(RSPAMD_START)
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.mx = Mxfront([cls.pf.address], rspamd_config([cls.judge.address], on_error="continue"))
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def spam(self, rng, n):
        return (f"From: Promo <deals@shop.example>\r\nTo: Bob <{RCPT}>\r\nSubject: Cheap {' '.join(rng.sample(self.WORDS, 4))}"
                f"\r\nMessage-ID: <spam{n}@shop.example>\r\n\r\n{' '.join(rng.choices(self.WORDS, k=60))}\r\n")

    def ham(self, n):
        return (f"From: Carol <carol@example.org>\r\nTo: Bob <{RCPT}>\r\nSubject: Meeting notes {n}\r\n"
                f"Message-ID: <ham{n}@example.org>\r\n\r\nHi Bob, attached are the notes number {n} of the quarterly "
                "planning review. Please check the budget section and the hiring plan before Thursday, and the "
                "travel policy update. Thanks, Carol\r\n")

    def learn(self, command, text):
        path = os.path.join(self.learner.dir, "learn.eml")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run(["rspamc", "-h", f"127.0.0.1:{self.learner.controller_port}", command, path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # rspamd skips a message its classifier already puts in that class ("learn conditions denied")
        self.assertRegex(p.stdout, r"success = true|all learn conditions denied", p.stdout + self.learner.log()[-2000:])

    def test_spam_learned_on_one_rspamd_scores_through_the_other(self):
        import random
        rng = random.Random(7)
        # before learning: no Bayes verdict on the judging instance
        marker = unique_marker("prebayes")
        code, text = send(self.mx.port, (self.spam(rng, 100) + marker + "\r\n").encode())
        self.assertFalse(self.mx.wait_log(rf"BAYES_SPAM=", 1), self.mx.log()[-2000:])
        for i in range(5):
            self.learn("learn_spam", self.spam(rng, i))
            self.learn("learn_ham", self.ham(i))
        self.assertRegex(subprocess.run(["redis-cli", "-p", str(self.redis.port), "--scan", "--pattern", "*"],
                                        capture_output=True, text=True, timeout=10).stdout, r"\S",
                         "the statistics are in Redis")
        marker = unique_marker("bayes")
        code, text = send(self.mx.port, (self.spam(rng, 200) + marker + "\r\n").encode())
        m = self.mx.wait_log(r"filter=rspamd phase=data verdict=\S+ score=(\S+) .*reason=\"rspamd action=", 5)
        self.assertTrue(m, self.mx.log()[-3000:])
        self.assertTrue(self.mx.wait_log(r"BAYES_SPAM=[\d.]+", 5), "the symbol reaches the chain's tags\n"
                        + self.mx.log()[-3000:] + self.judge.log()[-2000:])
        # the judging rspamd never saw the learned messages: its verdict came from the shared Redis
        self.assertNotIn("spam0@shop.example", self.judge.log())
        # a ham-like message is not BAYES_SPAM
        before = self.mx.log().count("BAYES_SPAM=")
        marker = unique_marker("hamcheck")
        code, text = send(self.mx.port, (self.ham(300) + marker + "\r\n").encode())
        self.assertEqual(code, 250, text + self.mx.log()[-2000:])
        time.sleep(0.5)
        self.assertEqual(self.mx.log().count("BAYES_SPAM="), before, self.mx.log()[-2000:])


if __name__ == "__main__":
    unittest.main()

"""Passive health of the mailbox servers (issue 13): a REAL Postfix qmqpd stopped with SIGSTOP still
accepts TCP connections, so only the relays can see it hang. After qmqp.failure_threshold answer
timeouts its circuit breaker opens: mail goes to the second real Postfix at once, /health reports the
first one down with the reason, /metrics shows the breaker; after SIGCONT and qmqp.open_time, one
trial message brings it back (breaker closed, /health up).

Run from the repo root:  python3 -m unittest -v tests/integration/test_qmqp_health.py"""
import json
import os
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, SmtpConn, free_port, http_get as get, unique_marker  # noqa: E402

ANSWER_TIMEOUT = 2.0
OPEN_TIME = 3.0


class BreakerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pf1 = PostfixQmqp()
        cls.addClassCleanup(cls.pf1.stop)
        cls.pf1.start()
        cls.pf2 = PostfixQmqp()
        cls.addClassCleanup(cls.pf2.stop)
        cls.pf2.start()

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-4000:]}"

    def send(self, marker):
        """One transaction; returns (last reply line, seconds from end-of-data to the reply)."""
        with SmtpConn(self.mx.port, timeout=30) as c:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<f@example.net>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(f"From: <f@example.net>\r\nSubject: {marker}\r\n\r\n{marker}\r\n".encode())
            t0 = time.monotonic()
            c.send(b".\r\n")
            code, line, raw = c.reply()
            elapsed = time.monotonic() - t0
            c.cmd("QUIT")
        return line, elapsed

    def health(self):
        return {d["name"]: d for d in json.loads(get(self.admin, "/health")[1])["dependencies"]}

    def metric(self, text, name, labels):
        prefix = f"mxfront_{name}{{{labels}}} "
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix):])
        return None

    def test_stopped_first_server_is_skipped_after_the_breaker_opens_and_a_trial_brings_it_back(self):
        self.admin = free_port()
        self.mx = Mxfront([self.pf1.address, self.pf2.address], config={
            "qmqp": {"answer_timeout": ANSWER_TIMEOUT, "failure_threshold": 2, "open_time": OPEN_TIME},
            "admin": {"address": f"127.0.0.1:{self.admin}", "check_interval": 0.2, "check_rise": 1,
                      "check_fall": 1}})
        self.addCleanup(self.mx.kill)
        self.mx.start()
        self.addCleanup(self.mx.check_alive)
        s1, s2 = self.pf1.address, self.pf2.address

        line, _ = self.send(unique_marker("warm"))
        self.assertTrue(line.startswith("250 2.0.0"), line + self.diag())
        self.assertTrue(self.health()[s1]["up"])

        self.pf1.pause()
        try:
            # the first messages wait for the answer timeout (the request was sent: no failover)
            timed_out = []
            for i in range(2):
                line, elapsed = self.send(unique_marker(f"hung{i}"))
                self.assertTrue(line.startswith("451 4.4.2"), line + self.diag())
                self.assertGreaterEqual(elapsed, ANSWER_TIMEOUT - 0.2)
                timed_out.append(elapsed)
            self.assertTrue(self.mx.wait_log(rf"qmqp breaker server={s1} closed -> open", 2), self.diag())
            # then the breaker is open: the next messages go to server 2 at once
            prompt = []
            for i in range(3):
                marker = unique_marker(f"skip{i}")
                line, elapsed = self.send(marker)
                self.assertTrue(line.startswith("250 2.0.0"), line + self.diag())
                self.assertLess(elapsed, 1.0, f"250 after {elapsed:.2f}s with server 1 skipped")
                self.assertEqual(len(self.pf2.deliveries(10, 1, match=marker.encode())), 1)
                prompt.append(elapsed)
            print(f"\n  stopped first server: 451 after {max(timed_out):.2f}s x{len(timed_out)} "
                  f"(answer_timeout {ANSWER_TIMEOUT}), then 250 via server 2 after at most {max(prompt) * 1000:.0f} ms")
            # /health: server 1 down with the breaker's reason (its TCP check still passes)
            deps = self.health()
            self.assertFalse(deps[s1]["up"], deps)
            self.assertIn("circuit breaker open", deps[s1]["passive_error"])
            self.assertIn("timed out", deps[s1]["passive_error"])
            self.assertEqual(deps[s1]["last_error"], "", "the TCP check alone sees nothing wrong")
            self.assertTrue(deps[s2]["up"], deps)
            metrics = get(self.admin, "/metrics")[1]
            self.assertIn("# HELP mxfront_qmqp_breaker_state ", metrics)
            self.assertEqual(self.metric(metrics, "qmqp_breaker_state", f'server="{s1}"'), 1, metrics)
            self.assertEqual(self.metric(metrics, "qmqp_breaker_state", f'server="{s2}"'), 0)
            self.assertEqual(self.metric(metrics, "qmqp_breaker_transitions_total", f'server="{s1}",to="open"'), 1)
            self.assertGreaterEqual(self.metric(metrics, "qmqp_breaker_skips_total", f'server="{s1}"'), 3)
            self.assertEqual(self.metric(metrics, "dependency_up", f'kind="qmqp",name="{s1}"'), 0)
        finally:
            self.pf1.resume()

        # after open_time the next message is the trial: server 1 answers, its breaker closes
        time.sleep(OPEN_TIME + 0.2)
        marker = unique_marker("trial")
        line, elapsed = self.send(marker)
        self.assertTrue(line.startswith("250 2.0.0"), line + self.diag())
        self.assertEqual(len(self.pf1.deliveries(10, 1, match=marker.encode())), 1, "the trial went to server 1")
        self.assertTrue(self.mx.wait_log(rf"qmqp breaker server={s1} open -> half_open", 2), self.diag())
        self.assertTrue(self.mx.wait_log(rf"qmqp breaker server={s1} half_open -> closed", 2), self.diag())
        deps = self.health()
        self.assertTrue(deps[s1]["up"], deps)
        self.assertEqual(deps[s1]["passive_error"], "")
        metrics = get(self.admin, "/metrics")[1]
        self.assertEqual(self.metric(metrics, "qmqp_breaker_state", f'server="{s1}"'), 0)
        self.assertEqual(self.metric(metrics, "qmqp_breaker_transitions_total", f'server="{s1}",to="half_open"'), 1)
        self.assertEqual(self.metric(metrics, "qmqp_breaker_transitions_total", f'server="{s1}",to="closed"'), 1)
        # and mail goes to server 1 again, in order
        marker = unique_marker("back")
        line, _ = self.send(marker)
        self.assertTrue(line.startswith("250 2.0.0"), line)
        self.assertEqual(len(self.pf1.deliveries(10, 1, match=marker.encode())), 1)

    def test_a_reload_keeps_the_breaker_of_a_server_that_stays(self):
        self.admin = free_port()
        self.mx = Mxfront([self.pf1.address, self.pf2.address], config={
            "qmqp": {"answer_timeout": ANSWER_TIMEOUT, "failure_threshold": 1, "open_time": 60},
            "admin": {"address": f"127.0.0.1:{self.admin}", "check_interval": 0.2, "check_rise": 1,
                      "check_fall": 1}})
        self.addCleanup(self.mx.kill)
        self.mx.start()
        self.addCleanup(self.mx.check_alive)
        s1 = self.pf1.address
        self.pf1.pause()
        try:
            line, _ = self.send(unique_marker("hung"))
            self.assertTrue(line.startswith("451 4.4.2"), line + self.diag())
            self.assertFalse(self.health()[s1]["up"])
            # a reload with the same servers (other settings changed) keeps the open breaker
            with open(self.mx.config_path) as f:
                text = f.read()
            with open(self.mx.config_path, "w") as f:
                f.write(text.replace("[log]", "[limits]\nrecipients = 50\n\n[log]", 1))
            req = urllib.request.Request(f"http://127.0.0.1:{self.admin}/reload", method="POST")
            with urllib.request.urlopen(req, timeout=10) as r:
                self.assertEqual(r.status, 200)
            self.assertFalse(self.health()[s1]["up"], "state survived the reload")
            line, elapsed = self.send(unique_marker("after-reload"))
            self.assertTrue(line.startswith("250 2.0.0"), line + self.diag())
            self.assertLess(elapsed, 1.0)
        finally:
            self.pf1.resume()


if __name__ == "__main__":
    unittest.main()

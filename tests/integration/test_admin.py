"""The admin HTTP listener (/livez, /readyz, /health, /metrics) of a real mxfront relaying to a
REAL Postfix qmqpd: answers with version and config hash, counts what happened, keeps answering
while the SMTP side is saturated or over its connection limit, shows a refused reload, and fails
readiness (only) while draining.

Run from the repo root:  python3 -m unittest -v tests/integration/test_admin.py"""
import hashlib
import json
import re
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, http_get as get, PostfixQmqp, SmtpConn, free_port, smtp_send, unique_marker  # noqa: E402


class AdminTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()

    def start_mx(self, **sections):
        self.admin_port = free_port()
        cfg = {"admin": {"address": f"127.0.0.1:{self.admin_port}"}}
        cfg.update(sections)
        mx = Mxfront([self.pf.address], config=cfg)
        self.addCleanup(mx.kill)
        mx.start()
        return mx

    def test_endpoints_answer_with_version_config_hash_and_counters(self):
        mx = self.start_mx()
        self.assertEqual(get(self.admin_port, "/livez"), (200, "ok\n"))
        self.assertEqual(get(self.admin_port, "/readyz"), (200, "ok\n"))
        status, body = get(self.admin_port, "/health")
        self.assertEqual(status, 200)
        h = json.loads(body)
        with open(mx.config_path, "rb") as f:
            self.assertEqual(h["config"]["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertTrue(h["live"] and h["ready"], body)
        self.assertRegex(h["version"], r"^\d+\.\d+\.\d+$")
        self.assertEqual(len(h["io_loop_lag_seconds"]), 2)
        self.assertEqual(get(self.admin_port, "/nope")[0], 404)

        marker = unique_marker("admin")
        with smtplib.SMTP("127.0.0.1", mx.port, timeout=10) as s:
            s.sendmail("a@example.net", ["bob@example.org"], f"Subject: {marker}\r\n\r\nhi\r\n")
        self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1)
        status, metrics = get(self.admin_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn('\nmxfront_messages_total{outcome="relayed"} 1\n', metrics)
        self.assertIn("\n# HELP mxfront_messages_total ", metrics)
        self.assertIn('\nmxfront_ready 1\n', metrics)
        self.assertIn('mxfront_filter_verdicts_total{filter="relay_control",outcome="accept"} 1\n', metrics)
        self.assertIn('mxfront_build_info{version="', metrics)
        self.assertIn(f'mxfront_qmqp_answers_total{{server="{self.pf.address}",answer="K"}} 1\n', metrics)
        self.assertIn(f'mxfront_qmqp_duration_seconds_count{{server="{self.pf.address}"}} 1\n', metrics)
        self.assertIn('mxfront_filter_duration_seconds_count{filter="relay_control"} 1\n', metrics)

    def test_health_answers_while_smtp_is_saturated_and_over_its_connection_limit(self):
        mx = self.start_mx(limits={"connections": 40, "connections_per_ip": 40})
        stop = threading.Event()

        # Saturate the SMTP side: smtp-source with more sessions than the connection limit.
        def load():
            while not stop.is_set():
                subprocess.run(["smtp-source", "-c", "-s", "60", "-m", "600", "-l", "2048",
                                "-f", "load@example.net", "-t", "bob@example.org",
                                f"127.0.0.1:{mx.port}"], capture_output=True, timeout=120)
        t = threading.Thread(target=load, daemon=True)
        t.start()
        self.addCleanup(t.join, 130)
        self.addCleanup(stop.set)
        # Wait until the limit is really hit (a 421 at the greeting), then ask the admin listener.
        deadline = time.monotonic() + 30
        refused = False
        while not refused and time.monotonic() < deadline:
            c = SmtpConn(mx.port, timeout=5)
            refused = c.greeting[0] == 421
            c.close()
        self.assertTrue(refused, "never hit the SMTP connection limit")
        worst = 0.0
        for _ in range(20):
            t0 = time.monotonic()
            self.assertEqual(get(self.admin_port, "/readyz", timeout=3), (200, "ok\n"))
            self.assertEqual(get(self.admin_port, "/livez", timeout=3)[0], 200)
            worst = max(worst, time.monotonic() - t0)
        print(f"\n  admin answers under SMTP saturation: worst /readyz+/livez pair {worst * 1000:.1f} ms")
        stop.set()

    def test_livez_answers_while_idle_connections_hold_the_admin_listener(self):
        # k8s binds the admin listener on 0.0.0.0 with a 3-failure liveness probe: idle connections
        # (from the probe's own address and from others) must not make the probe fail.
        self.start_mx()
        idle = []
        self.addCleanup(lambda: [s.close() for s in idle])
        for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
            for _ in range(30):
                idle.append(socket.create_connection(("127.0.0.1", self.admin_port), timeout=10,
                                                     source_address=(source, 0)))
        answers = []
        for _ in range(10):
            try:
                answers.append(get(self.admin_port, "/livez", timeout=5)[0])
            except OSError as e:
                answers.append(repr(e))
        self.assertEqual(answers, [200] * 10)
        # idle connections are closed by the server (request deadline, or shed to make room)
        deadline = time.monotonic() + 20
        open_left = list(idle)
        while open_left and time.monotonic() < deadline:
            still = []
            for s in open_left:
                s.settimeout(0.01)
                try:
                    if s.recv(1) == b"":
                        continue
                except (ConnectionResetError, BrokenPipeError):
                    continue
                except socket.timeout:
                    pass
                still.append(s)
            open_left = still
            time.sleep(0.2)
        self.assertEqual(len(open_left), 0, "idle admin connections left open by the server")

    def test_a_refused_reload_is_shown_in_health_and_cleared_by_a_good_one(self):
        mx = self.start_mx()
        with open(mx.config_path) as f:
            good = f.read()
        with open(mx.config_path, "w") as f:
            f.write(good + "\n[limits]\nbogus_key = 1\n")
        os.kill(mx.pid, signal.SIGHUP)
        self.assertTrue(mx.wait_log(r"reload refused", 5), mx.log())
        h = json.loads(get(self.admin_port, "/health")[1])
        self.assertIn("unknown key 'bogus_key'", h["config"]["last_reload_error"])
        self.assertRegex(h["config"]["last_reload_error"], r"mxfront\.toml:\d+: ")
        self.assertEqual(get(self.admin_port, "/readyz")[0], 200, "a refused reload keeps serving the old config")
        with open(mx.config_path, "w") as f:
            f.write(good)
        os.kill(mx.pid, signal.SIGHUP)
        self.assertTrue(mx.wait_log(r"reloaded config", 5), mx.log())
        self.assertEqual(json.loads(get(self.admin_port, "/health")[1])["config"]["last_reload_error"], "")

    def test_reload_endpoint_and_sighup_under_load_fail_no_message(self):
        mx = self.start_mx()
        with open(mx.config_path) as f:
            good = f.read()
        stop = threading.Event()
        results = []

        def sender(n):
            while not stop.is_set():
                marker = unique_marker(f"reload{n}")
                try:
                    with smtplib.SMTP("127.0.0.1", mx.port, timeout=10) as s:
                        s.sendmail("a@example.net", ["bob@example.org"], f"Subject: {marker}\r\n\r\nx\r\n")
                    results.append((marker, 250))
                except (smtplib.SMTPException, OSError) as e:
                    results.append((marker, repr(e)))
        threads = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            with open(mx.config_path, "w") as f:
                f.write(good + "\n[limits]\nrecipients = -4\n")
            req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}/reload", method="POST")
            try:
                urllib.request.urlopen(req, timeout=30)
                self.fail("a bad config must be refused")
            except urllib.error.HTTPError as e:
                self.assertEqual(e.code, 409)
                self.assertIn("limits.recipients", e.read().decode())
            time.sleep(0.5)
            with open(mx.config_path, "w") as f:
                f.write(good.replace('hostname = "mx.test"', 'hostname = "mx2.test"'))
            with urllib.request.urlopen(req, timeout=30) as r:
                self.assertEqual(r.read(), b"reloaded\n")
            time.sleep(0.5)
            os.kill(mx.pid, signal.SIGHUP)
            # The POST reload logged one "reloaded config" line; SIGHUP must log a second. (Polled by
            # count: a regex spanning the whole log gets slow on a long log under sanitizers.)
            deadline = time.monotonic() + 30
            while mx.log().count("reloaded config") < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertGreaterEqual(mx.log().count("reloaded config"), 2, "SIGHUP did not reload")
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        failed = [r for r in results if r[1] != 250]
        self.assertEqual(failed, [], "no message may fail across reloads")
        self.assertGreater(len(results), 20)
        ok = [m for m, _ in results]
        # Only this test's messages count: the class's Postfix also holds earlier tests' mail, so
        # waiting for len(ok) messages of any kind could return before the last of ours landed.
        deadline = time.monotonic() + 30
        while True:
            bodies = b"".join(d.data for d in self.pf.deliveries(0, None, match=b"reload"))
            if all(m.encode() in bodies for m in ok) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(all(m.encode() in bodies for m in ok), "every 250 is in the Maildir")
        self.assertIn(b"by mx2.test", bodies, "sessions after the reload use the new config")

    def test_a_dead_mailbox_server_shows_in_health_and_metrics_but_readiness_holds(self):
        dead = f"127.0.0.1:{free_port()}"  # nothing listens there
        port = free_port()
        mx = Mxfront([self.pf.address, dead], config={
            "admin": {"address": f"127.0.0.1:{port}", "check_interval": 0.2, "check_fall": 2, "check_rise": 1},
            "qmqp": {"probe_interval": 0.2}})  # the active connect is rare by default (300 s)
        self.addCleanup(mx.kill)
        mx.start()
        deadline = time.monotonic() + 10
        deps = {}
        while time.monotonic() < deadline:
            deps = {d["name"]: d for d in json.loads(get(port, "/health")[1])["dependencies"]}
            if deps.get(dead, {}).get("checked") and not deps[dead]["up"] and deps[self.pf.address]["checked"]:
                break
            time.sleep(0.1)
        self.assertFalse(deps[dead]["up"], deps)
        self.assertTrue(deps[dead]["last_error"], deps)
        self.assertTrue(deps[self.pf.address]["up"], deps)
        self.assertEqual(deps[dead]["kind"], "qmqp")
        self.assertTrue(mx.wait_log(rf"warning dependency qmqp {re.escape(dead)} is down: "), "transition not logged")
        metrics = get(port, "/metrics")[1]
        self.assertIn(f'mxfront_dependency_up{{kind="qmqp",name="{dead}"}} 0\n', metrics)
        self.assertIn(f'mxfront_dependency_up{{kind="qmqp",name="{self.pf.address}"}} 1\n', metrics)
        self.assertEqual(get(port, "/readyz"), (200, "ok\n"), "a shared dependency never fails readiness")

    def test_the_active_mailbox_probe_is_rare_by_default_and_off_at_zero(self):
        # Each probe is a connect and close that Postfix's qmqpd logs as a lost connection: with
        # the default qmqp.probe_interval (300 s) one probe at start, with 0 none; the relays'
        # circuit breaker judges the servers from the traffic instead.
        pf = PostfixQmqp()
        self.addCleanup(pf.stop)
        pf.start()

        def lost(sessions=1):
            """Lost connections in qmqpd's log once at least `sessions` sessions were logged and all
            of them ended (the harness's own readiness connect counts too; qmqpd logs late under load)."""
            deadline = time.monotonic() + 10
            while True:
                log = pf.log()
                ended = log.count("disconnect from")
                if (ended >= sessions and log.count("connect from") == 2 * ended) or time.monotonic() > deadline:
                    return len(re.findall(r"lost connection", log))
                time.sleep(0.1)
        sessions = 1  # the harness's readiness connect
        for probe_interval, expected in ((None, 1), (0, 0)):
            before = lost(sessions)
            port = free_port()
            cfg = {"admin": {"address": f"127.0.0.1:{port}", "check_interval": 0.1}}
            if probe_interval is not None:
                cfg["qmqp"] = {"probe_interval": probe_interval}
            with Mxfront([pf.address], config=cfg) as mx:
                time.sleep(2.0)  # 20 monitor rounds
                dep = [d for d in json.loads(get(port, "/health")[1])["dependencies"] if d["kind"] == "qmqp"][0]
                self.assertEqual(dep["checked"], expected == 1, dep)
                self.assertTrue(dep["up"], dep)
                code, text = smtp_send(mx.port, "a@example.net", ["bob@example.org"], b"Subject: x\r\n\r\nx\r\n")
                self.assertEqual(code, 250, text)
            sessions += expected + 1  # the probes and the message
            self.assertEqual(lost(sessions) - before, expected, f"probe_interval={probe_interval}\n{pf.log()[-1500:]}")

    def test_readiness_fails_at_once_on_sigterm_while_liveness_holds_during_the_drain(self):
        mx = self.start_mx(server={"hostname": "mx.test", "io_threads": 2, "shutdown_timeout": 20})
        c = SmtpConn(mx.port, timeout=10)
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@example.net>")
        c.cmd("RCPT TO:<bob@example.org>")  # a transaction in progress keeps the drain going
        mx.expected_exit = True
        os.kill(mx.pid, signal.SIGTERM)
        self.assertTrue(mx.wait_log(r"draining", 5))
        status, body = get(self.admin_port, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("draining", body)
        self.assertEqual(get(self.admin_port, "/livez")[0], 200)
        self.assertTrue(json.loads(get(self.admin_port, "/health")[1])["draining"])
        marker = unique_marker("drain")
        self.assertEqual(c.cmd("DATA")[0], 354)
        code, text, _ = c.cmd(f"Subject: {marker}\r\n\r\nbody\r\n.")
        self.assertEqual(code, 250, text)
        c.cmd("QUIT")
        c.close()
        self.assertEqual(mx.proc.wait(20), 0)
        self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1)


if __name__ == "__main__":
    unittest.main()

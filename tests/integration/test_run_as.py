"""How mxfront is run as a service, against a REAL Postfix qmqpd:

* `mxfront --reload FILE` (systemd's ExecReload) asks the admin listener and waits: exit 0 when
  the new config is in use, exit 1 with the reason when it was refused (the old one keeps
  serving) or when the config has no admin address;
* started as root with `server.user`, mxfront runs as that user (real, effective and saved ids,
  its groups) with only CAP_NET_BIND_SERVICE, still binds a port below 1024 and relays; without
  it, root logs a warning; an unknown user is a start error;
* the admin listener opens before the signatures load: while libclamav is still reading them
  (here a FIFO the test holds open), /livez answers 200 and /readyz 503, and both turn 200 once
  the engine is built and the listeners are open.

Run from the repo root:  python3 -m unittest -v tests/integration/test_run_as.py"""
import os
import pwd
import re
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, http_get, PostfixQmqp, free_port, mxfront_bin, to_toml, unique_marker  # noqa: E402


def get(port, path):
    """(status, body); (0, why) while nothing listens."""
    try:
        return http_get(port, path)
    except OSError as e:  # URLError is one
        return 0, str(e)


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(rf"^{name}:\s*(.*)$", f.read(), re.M)
    return m.group(1).split() if m else []


class RunAsTest(unittest.TestCase):

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

    def reload_client(self, mx):
        return subprocess.run([mxfront_bin(), "--reload", mx.config_path], capture_output=True, text=True, timeout=90)

    def test_reload_client_reports_the_result(self):
        mx = self.start_mx()
        with open(mx.config_path) as f:
            good = f.read()
        r = self.reload_client(mx)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("reloaded", r.stdout)
        with open(mx.config_path, "w") as f:
            f.write(good + "\n[limits]\nbogus_key = 1\n")
        # The client reads the file too: a file the client cannot parse is refused before asking.
        r = self.reload_client(mx)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        # A file that parses but is refused by the server (a certificate that does not exist).
        with open(mx.config_path, "w") as f:
            f.write(good + '\n[tls]\ncert_file = "/nonexistent/cert.pem"\nkey_file = "/nonexistent/key.pem"\n')
        r = self.reload_client(mx)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("reload refused", r.stderr)
        self.assertEqual(get(self.admin_port, "/readyz")[0], 200, "the old config keeps serving")
        with open(mx.config_path, "w") as f:
            f.write(good)
        self.assertEqual(self.reload_client(mx).returncode, 0)

    def test_reload_client_needs_an_admin_address(self):
        mx = Mxfront([self.pf.address])
        self.addCleanup(mx.kill)
        mx.start()
        r = self.reload_client(mx)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no [admin] address", r.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_root_becomes_server_user_keeping_only_net_bind_service(self):
        nobody = pwd.getpwnam("nobody")
        low = next(p for p in range(700, 1000) if self._free(p))
        mx = self.start_mx(server={"user": "nobody"}, listener=[{"address": f"127.0.0.1:{low}", "profile": "mx"}])
        self.assertEqual(status_field(mx.pid, "Uid"), [str(nobody.pw_uid)] * 4)
        self.assertEqual(status_field(mx.pid, "Gid"), [str(nobody.pw_gid)] * 4)
        cap_eff = int(status_field(mx.pid, "CapEff")[0], 16)
        self.assertEqual(cap_eff, 1 << 10, "only CAP_NET_BIND_SERVICE (10)")
        self.assertTrue(mx.wait_log(r"running as nobody", 5), mx.log())
        marker = unique_marker("runas")
        with smtplib.SMTP("127.0.0.1", low, timeout=10) as s:
            s.sendmail("a@example.net", ["bob@example.org"], f"Subject: {marker}\r\n\r\nhi\r\n")
        self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_root_without_server_user_warns_and_unknown_user_fails(self):
        mx = self.start_mx()
        self.assertTrue(mx.wait_log(r"running as root: set server\.user", 5), mx.log())
        bad = Mxfront([self.pf.address], config={"server": {"user": "no-such-user-mxfront"}})
        self.addCleanup(bad.kill)
        with self.assertRaises(Exception) as failed:
            bad.start(timeout=5)
        self.assertIn("server.user: no such user", str(failed.exception))

    def test_admin_answers_while_the_signatures_load(self):
        d = tempfile.mkdtemp(prefix="mxtest-sigload.")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        fifo = os.path.join(d, "slow.ndb")
        os.mkfifo(fifo)
        admin, port = free_port(), free_port()
        cfg = {"server": {"hostname": "mx.test", "io_threads": 1},
               "listener": [{"address": f"127.0.0.1:{port}", "profile": "mx"}],
               "admin": {"address": f"127.0.0.1:{admin}"},
               "profile.mx": {"filters": ["relay_control", "clamav"]},
               "clamav": {"database_dir": d},
               "relay": {"local_domains": ["example.org"]},
               "qmqp": {"servers": [self.pf.address]}}
        path = os.path.join(d, "mxfront.toml")
        with open(path, "w") as f:
            f.write(to_toml(cfg))
        log = open(os.path.join(d, "log"), "wb")
        proc = subprocess.Popen([mxfront_bin(), "--config", path], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.addCleanup(lambda: (proc.kill(), proc.wait()))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and get(admin, "/livez")[0] != 200:
            time.sleep(0.05)
        self.assertEqual(get(admin, "/livez"), (200, "ok\n"), "the admin port is open while signatures load")
        status, text = get(admin, "/readyz")
        self.assertEqual(status, 503, text)
        self.assertIsNone(proc.poll())
        # Let libclamav read the signature it is waiting for (it opens the file more than once):
        # each open of the FIFO gets the line, until the server is ready.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and get(admin, "/readyz")[0] != 200:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while no reader has it open
                os.write(fd, f"Test.Fifo:0:*:{b'mxfront-fifo-marker'.hex()}\n".encode())
                os.close(fd)
            except OSError:
                pass
            time.sleep(0.05)
        self.assertEqual(get(admin, "/readyz"), (200, "ok\n"))

    @staticmethod
    def _free(port):
        import socket
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""mxfront speaks systemd's notify protocol (Type=notify, packaging/mxfront.service): READY=1 once
listening, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 when the drain starts, and
WATCHDOG=1 pings while the event loops answer. The receiving end is the datagram socket systemd
itself would use ($NOTIFY_SOCKET); systemd cannot run as PID 1 in this sandbox.

Run from the repo root:  python3 -m unittest -v tests/integration/test_systemd_notify.py"""
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, QmqpSink  # noqa: E402


class NotifyTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mxtest-notify.")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.addCleanup(self.sock.close)
        self.messages = []

    def wait_for(self, needle, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, m in enumerate(self.messages):
                if needle in m:
                    del self.messages[: i + 1]
                    return m
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        self.fail(f"no {needle!r} from mxfront; got {self.messages}")

    def test_ready_reloading_stopping_and_watchdog(self):
        sink = QmqpSink()
        sink.__enter__()
        self.addCleanup(sink.__exit__, None, None, None)
        mx = Mxfront([sink.address])
        env = {"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": "400000"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            mx.start()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.addCleanup(mx.kill)
        ready = self.wait_for("READY=1")
        self.assertIn("STATUS=serving, config ", ready)
        self.wait_for("WATCHDOG=1")
        self.wait_for("WATCHDOG=1", timeout=1.0)  # pings keep coming, every 200 ms
        os.kill(mx.pid, signal.SIGHUP)
        self.wait_for("RELOADING=1")
        self.wait_for("READY=1")
        mx.expected_exit = True
        os.kill(mx.pid, signal.SIGTERM)
        self.wait_for("STOPPING=1")
        self.assertEqual(mx.proc.wait(10), 0)

    def test_without_notify_socket_nothing_is_sent_and_it_runs(self):
        sink = QmqpSink()
        sink.__enter__()
        self.addCleanup(sink.__exit__, None, None, None)
        saved = os.environ.pop("NOTIFY_SOCKET", None)
        try:
            mx = Mxfront([sink.address])
            mx.start()
        finally:
            if saved is not None:
                os.environ["NOTIFY_SOCKET"] = saved
        self.addCleanup(mx.kill)
        self.assertEqual(mx.terminate(10), 0)
        self.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            self.sock.recv(4096)


if __name__ == "__main__":
    unittest.main()

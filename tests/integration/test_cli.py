"""The command line as an admin meets it: --help on stdout with exit 0, a usage error on stderr with
exit 2, and --check-config reporting every error of a file in one run, one file:line each —
including CIDR ranges with host bits set and two listeners on one address.

Run from the repo root:  python3 -m unittest -v tests/integration/test_cli.py
(env MXFRONT_BIN = the binary, default build/mxfront)."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import mxfront_bin  # noqa: E402

GOOD = """[[listener]]
address = "127.0.0.1:2525"
[relay]
local_domains = ["example.org"]
[qmqp]
servers = ["127.0.0.1:628"]
"""


def run(*args, timeout=30):
    return subprocess.run([mxfront_bin(), *args], capture_output=True, text=True, timeout=timeout)


class CommandLineTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, text):
        path = os.path.join(self.dir.name, "mx.toml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_help_goes_to_stdout_with_exit_0(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--check-config FILE", p.stdout)
        self.assertEqual(p.stderr, "")

    def test_a_usage_error_goes_to_stderr_with_exit_2(self):
        p = run("--no-such-option")
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage:", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_check_config_accepts_a_good_file(self):
        p = run("--check-config", self.write(GOOD))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(": ok", p.stdout)

    def test_check_config_reports_every_error_in_one_run(self):
        path = self.write(GOOD + """[limits]
recipients = 0
no_such_key = 1
[rules]
client_block = ["192.0.2.1/24"]
[[listener]]
address = "127.0.0.1:2525"
proxy_protocol = true
proxy_trusted = ["10.0.0.1/8"]
[nosuchsection]
x = 1
""")
        p = run("--check-config", path)
        self.assertEqual(p.returncode, 1)
        lines = p.stderr.strip().splitlines()
        expected = [
            (8, "limits.recipients: must be between"),
            (9, "unknown key 'no_such_key' in [limits]"),
            (11, "'192.0.2.1/24' has host bits set: write 192.0.2.0/24"),
            (15, "'10.0.0.1/8' has host bits set: write 10.0.0.0/8"),
            (16, "unknown section [nosuchsection]"),
        ]
        self.assertEqual(len(lines), len(expected), p.stderr)
        for line, (lineno, text) in zip(lines, expected):
            self.assertTrue(line.startswith(f"{path}:{lineno}: "), line)
            self.assertIn(text, line)

    def test_two_listeners_on_one_address_are_refused(self):
        path = self.write(GOOD + '[[listener]]\naddress = "127.0.0.1:2525"\nprofile = "mx"\n')
        p = run("--check-config", path)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, rf"^{path}:7: listener 127\.0\.0\.1:2525: the address is already used")


if __name__ == "__main__":
    unittest.main()

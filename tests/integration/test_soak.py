"""The fault soak (tests/soak/soak.py) as a bounded ctest entry: 40 s of load and faults against
real Postfix qmqpd servers, with the MX filter chain in front (rules, clamav, ocr; --chain), then the no-loss ledger and the leak checks. Fails unless the soak exits
0 and reports zero lost, zero 5xx-delivered, zero dropped-delivered, zero unexplained duplicates,
fds back at baseline and no CLOSE_WAIT.

Run from the repo root:  python3 -m unittest -v tests/integration/test_soak.py"""
import json
import os
import subprocess
import sys
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SOAK = os.path.join(ROOT, "tests", "soak", "soak.py")
DURATION = 40


class SoakTest(unittest.TestCase):
    def test_fault_soak_loses_nothing_and_leaks_nothing(self):
        try:
            p = subprocess.run([sys.executable, SOAK, "--duration", str(DURATION), "--clients", "6", "--chain"],
                               capture_output=True, text=True, timeout=DURATION + 200, cwd=ROOT)
        except subprocess.TimeoutExpired as e:
            self.fail(f"soak exceeded its bound:\n{(e.stdout or b'')[-4000:]}")
        out = p.stdout + p.stderr
        sys.stdout.write(out[-6000:])  # the summary block, in the ctest log
        lines = [l for l in p.stdout.splitlines() if l.startswith("SOAK-RESULT ")]
        self.assertTrue(lines, f"no SOAK-RESULT line (exit {p.returncode}):\n{out[-4000:]}")
        r = json.loads(lines[-1][len("SOAK-RESULT "):])
        for key in ("lost", "5xx_delivered", "drop_delivered", "duplicates_unexplained",
                    "unknown_msgids_delivered", "close_wait"):
            self.assertEqual(r[key], 0, f"{key} = {r[key]}\n{out[-4000:]}")
        self.assertLessEqual(r["fd_after"], r["fd_baseline"], out[-4000:])
        self.assertGreater(r["accepted_250"], 0, out[-4000:])
        self.assertEqual(r["problems"], [], out[-4000:])
        self.assertEqual(r["mxfront_restarts"], 1, out[-4000:])
        self.assertTrue(r["chain"], out[-4000:])
        self.assertGreater(r["ocr_images_read"], 0, "the filter chain (rules, clamav, ocr) judged the load")
        for kind in ("pause_a", "vanish_a", "sigkill_mxfront", "flood", "slowloris"):
            self.assertIn(kind, r["faults"], f"fault {kind} not injected\n{out[-4000:]}")
        self.assertEqual(p.returncode, 0, out[-4000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)

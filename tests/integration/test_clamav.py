"""The clamav filter end to end: smtplib -> mxfront (profile mx: relay_control, clamav; libclamav with a
self-made signature DB) -> REAL Postfix qmqpd -> Maildir.

Run from the repo root:  python3 -m unittest -v tests/integration/test_clamav.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix)."""
import base64
import json
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from clamav_harness import (CLAMEXE_SIG, EICAR, EICAR_SIG, TESTFILES, SignatureDb, eicar_mail,  # noqa: E402
                            mail_with_attachments, small_pdf, small_zip)
from mxharness import (Mxfront, PostfixQmqp, SmtpConn, free_port, smtp_send, split_after_received,  # noqa: E402
                       to_toml, unique_marker)

SENDER = "s@example.net"
RCPT = "bob@example.org"


def clamav_config(db_dir, **clamav):
    cfg = {"clamav": {"database_dir": db_dir, "reload_check": 0.5}, "profile.mx": {"filters": ["relay_control", "clamav"]}}
    cfg["clamav"].update(clamav)
    return cfg


def send(port, msg: bytes, rcpt=RCPT, timeout=30):
    """One message in its own session: (code, text) of the reply to the end of data (250 on success)."""
    return smtp_send(port, SENDER, [rcpt], msg, timeout=timeout)


class ClamavTest(unittest.TestCase):
    """One Postfix and one mxfront with clamav for the class; failure modes start their own mxfront."""

    @classmethod
    def setUpClass(cls):
        # mxfront's private libclamav temp dirs go under a dir of ours: a SIGKILLed mxfront leaves its own
        cls.tmp = tempfile.mkdtemp(prefix="mxtest-clamav-tmp.")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.addClassCleanup(os.environ.__setitem__, "TMPDIR", os.environ.get("TMPDIR", "/tmp"))
        os.environ["TMPDIR"] = cls.tmp
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.db = SignatureDb()
        cls.addClassCleanup(cls.db.cleanup)
        cls.mx = Mxfront([cls.pf.address], clamav_config(cls.db.dir))
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self, mx=None):
        mx = mx or self.mx
        return f"\n--- mxfront log ---\n{mx.log()[-3000:]}\n--- postfix maillog ---\n{self.pf.log()[-2000:]}"

    def assert_nothing_delivered(self, marker, wait=1.0):
        self.assertEqual(self.pf.deliveries(wait, None, match=marker.encode()), [], self.diag())

    # ------------------------------------------------------------------------------------------
    def test_engine_load_is_logged_with_version_and_signature_count(self):
        self.assertTrue(self.mx.wait_log(r"clamav: engine 1 loaded \(start\): [3-9]\d* signatures from "
                                         + re.escape(self.db.dir) + r" in [\d.]+ ms, libclamav \d+\.\d+", 2),
                        self.diag())

    def test_eicar_base64_attachment_is_refused_554_naming_the_signature(self):
        marker = unique_marker("eicar")
        code, text = send(self.mx.port, eicar_mail(marker))
        self.assertEqual(code, 554, text + self.diag())
        self.assertRegex(text, r"^5\.7\.1 .*virus found: " + EICAR_SIG + r"\.\S+\.UNOFFICIAL", self.diag())
        self.assert_nothing_delivered(marker)
        self.assertTrue(self.mx.wait_log(r"virus " + EICAR_SIG, 2), self.diag())

    def test_clamav_testfiles_samples_are_refused(self):
        samples = ["clam.zip", "clam.exe", "clam.tar.gz", "clam.7z", "clam.pdf"]
        for name in samples:
            path = TESTFILES / name
            if not path.exists():
                self.skipTest(f"{path} missing (apt-get install clamav-testfiles)")
            with self.subTest(sample=name):
                marker = unique_marker("sample")
                msg = mail_with_attachments(marker, [(name, path.read_bytes(), "application/octet-stream")])
                code, text = send(self.mx.port, msg)
                self.assertEqual(code, 554, text + self.diag())
                self.assertIn(CLAMEXE_SIG, text)
                self.assert_nothing_delivered(marker, 0.3)
        # clam.mail is itself a mail carrying the sample: sent as is
        marker = unique_marker("clammail")
        raw = (TESTFILES / "clam.mail").read_bytes()
        code, text = send(self.mx.port, f"X-Test: {marker}\r\n".encode() + raw)
        self.assertEqual(code, 554, text + self.diag())
        self.assert_nothing_delivered(marker, 0.5)

    @staticmethod
    def nested(marker, payload, depth):
        inner = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                 + base64.b64encode(payload) + b"\r\n")
        for i in range(depth):
            b = f"b{i}".encode()
            inner = (b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\r\n\r\n--" + b + b"\r\n" + inner
                     + b"--" + b + b"--\r\n")
        return f"Subject: {marker}\r\nMIME-Version: 1.0\r\n".encode() + inner

    def test_virus_nested_18_levels_deep_is_refused_with_the_default_limits(self):
        """Issue 12.2: with max_recursion = 16 and on_limit = accept (the defaults) a 1.4 KB
        message with EICAR 18 multipart levels down was relayed. The scanner reports
        Heuristics.Limits.Exceeded.MaxRecursion: structure it did not see into is refused (on_structure_limit)."""
        marker = unique_marker("nested18")
        msg = self.nested(marker, EICAR, 18)
        self.assertLess(len(msg), 1500)
        code, text = send(self.mx.port, msg)
        self.assertEqual(code, 554, text + self.diag())
        self.assertRegex(text, r"^5\.6\.0 .*virus scanner.*MaxRecursion", self.diag())
        self.assert_nothing_delivered(marker)
        self.assertTrue(self.mx.wait_log(r"scan structure limit: Heuristics\.Limits\.Exceeded\.MaxRecursion", 2),
                        self.diag())
        marker = unique_marker("nested10")  # within the limits: the virus itself is named
        code, text = send(self.mx.port, self.nested(marker, EICAR, 10))
        self.assertEqual(code, 554, text + self.diag())
        self.assertIn(EICAR_SIG, text)

    def test_on_structure_limit_tempfail_answers_451(self):
        with Mxfront([self.pf.address], clamav_config(self.db.dir, on_structure_limit="tempfail")) as mx:
            marker = unique_marker("nested-tempfail")
            code, text = send(mx.port, self.nested(marker, EICAR, 18))
            self.assertEqual(code, 451, text + self.diag(mx))
            self.assert_nothing_delivered(marker, 0.5)

    def test_clean_mail_with_attachments_is_delivered_byte_identical(self):
        marker = unique_marker("clean")
        msg = mail_with_attachments(marker, [
            ("report.pdf", small_pdf("quarterly report"), "application/pdf"),
            ("bundle.zip", small_zip({"a.txt": b"alpha\n" * 100, "b.csv": b"1,2,3\n" * 50}), "application/zip"),
            ("notes.txt", b"plain notes\nline two\n", "text/plain"),
        ], text="clean body\n")
        code, text = send(self.mx.port, msg)
        self.assertEqual(code, 250, text + self.diag())
        ds = self.pf.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1, self.diag())
        rm, rest = split_after_received(ds[0].data)
        self.assertIsNotNone(rm, ds[0].data[:600])
        self.assertEqual(rest, msg.replace(b"\r\n", b"\n"))

    def test_signature_update_is_picked_up_under_load_with_no_failed_message(self):
        tag = unique_marker("load")
        marker = unique_marker("SIGMARK").encode()
        stop = threading.Event()
        lock = threading.Lock()
        results = []  # (code, text) of every clean message sent

        def client(i):
            n = 0
            while not stop.is_set():
                with smtplib.SMTP("127.0.0.1", self.mx.port, local_hostname="client.test", timeout=30) as c:
                    for _ in range(20):  # a few messages per session, then a new session
                        if stop.is_set():
                            break
                        n += 1
                        subject = f"{tag}-{i}-{n}"
                        msg = mail_with_attachments(subject, [
                            ("data.zip", small_zip({"d.txt": subject.encode() * 200}), "application/zip"),
                            ("doc.pdf", small_pdf(subject), "application/pdf")])
                        try:
                            c.sendmail(SENDER, [RCPT], msg)
                            r = (250, "")
                        except smtplib.SMTPResponseException as e:
                            r = (e.smtp_code, e.smtp_error.decode(errors="replace"))
                        except (OSError, smtplib.SMTPException) as e:
                            r = (-1, repr(e))
                        with lock:
                            results.append(r)
                        if r[0] == -1:
                            break

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            self.assertEqual(send(self.mx.port, f"Subject: pre\r\n\r\n{marker.decode()}\r\n".encode())[0], 250)
            self.db.add_ndb("marker.ndb", "Harness.Test.Marker", marker)
            detected, deadline = None, time.monotonic() + 20
            while time.monotonic() < deadline:
                code, text = send(self.mx.port, f"Subject: m\r\n\r\nbody {marker.decode()}\r\n".encode())
                if code == 554:
                    detected = text
                    break
                self.assertEqual(code, 250, text)
                time.sleep(0.1)
            time.sleep(0.5)  # clean traffic goes on after the swap too
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertIsNotNone(detected, "the new signature was never used" + self.diag())
        self.assertIn("Harness.Test.Marker", detected)
        bad = [r for r in results if r[0] != 250]
        self.assertGreaterEqual(len(results), 10, self.diag())
        self.assertEqual(bad, [], f"{len(bad)} of {len(results)} clean messages failed{self.diag()}")
        self.assertTrue(self.mx.wait_log(r"clamav: engine \d+ loaded \(signatures changed\)", 2), self.diag())
        ds = self.pf.deliveries(30, len(results), match=tag.encode())
        self.assertEqual(len(ds), len(results), self.diag())

    def test_sighup_reloads_the_engine_and_service_goes_on(self):
        before = len(re.findall(r"clamav: engine \d+ loaded \(reload requested\)", self.mx.log()))
        os.kill(self.mx.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if len(re.findall(r"clamav: engine \d+ loaded \(reload requested\)", self.mx.log())) > before:
                break
            time.sleep(0.05)
        else:
            self.fail("no engine reload after SIGHUP" + self.diag())
        marker = unique_marker("afterhup")
        self.assertEqual(send(self.mx.port, eicar_mail(marker))[0], 554)
        self.assertEqual(send(self.mx.port, f"Subject: {marker}\r\n\r\nok\r\n".encode())[0], 250)

    # -- failure modes, each with its own mxfront ----------------------------------------------
    def big_mail(self, marker, size=1_500_000):
        return mail_with_attachments(marker, [("big.bin", os.urandom(size), "application/octet-stream")])

    def test_scan_timeout_tempfails_451_with_on_error_tempfail_and_server_goes_on(self):
        cfg = clamav_config(self.db.dir, timeout=0.001, on_error="tempfail")
        with Mxfront([self.pf.address], cfg) as mx:
            marker = unique_marker("timeout")
            code, text = send(mx.port, self.big_mail(marker))
            self.assertEqual(code, 451, text + self.diag(mx))
            self.assertTrue(text.startswith("4.3.0"), text)
            self.assert_nothing_delivered(marker, 0.5)
            with SmtpConn(mx.port) as c:
                self.assertEqual(c.cmd("EHLO client.test")[0], 250)
                self.assertEqual(c.cmd("NOOP")[0], 250)
            self.assertTrue(mx.alive(), self.diag(mx))

    def test_scan_timeout_with_on_error_continue_delivers(self):
        cfg = clamav_config(self.db.dir, timeout=0.001, on_error="continue")
        with Mxfront([self.pf.address], cfg) as mx:
            for _ in range(2):
                marker = unique_marker("timeout-continue")
                code, text = send(mx.port, self.big_mail(marker))
                self.assertEqual(code, 250, text + self.diag(mx))
                self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1, self.diag(mx))
            self.assertTrue(mx.alive())

    def test_a_virus_the_scanner_could_not_unpack_for_lack_of_scratch_space_is_never_relayed(self):
        # clamav.temp_dir on a 64 KB tmpfs: libclamav cannot write the 300 KB attachment it unpacks,
        # says so (CL_MSG_ERROR) and returns CL_CLEAN. That scan is incomplete, not clean: 451.
        scratch = tempfile.mkdtemp(prefix="mxtest-clamav-scratch.")
        self.addCleanup(shutil.rmtree, scratch, True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", scratch], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", scratch], check=False)
        with Mxfront([self.pf.address], clamav_config(self.db.dir, temp_dir=scratch)) as mx:
            self.assertTrue(mx.wait_log("clamav: engine 1 loaded", 5), self.diag(mx))
            marker = unique_marker("scratch-full")
            big = mail_with_attachments(marker, [("data.bin", os.urandom(300_000) + EICAR, "application/octet-stream")])
            code, text = send(mx.port, big)
            self.assertEqual(code, 451, text + self.diag(mx))
            self.assertTrue(text.startswith("4.3.0"), text)
            self.assert_nothing_delivered(marker, 0.5)
            self.assertTrue(mx.wait_log(r"reason=\"clamav: incomplete scan, \d+ libclamav error\(s\), the first: ", 2),
                            self.diag(mx))
            # One libclamav error line per scan, not one per line it could not write.
            self.assertEqual(len(re.findall(r"error libclamav: ", mx.log())), 1, self.diag(mx))
            # What fits is scanned as before.
            small = unique_marker("scratch-small")
            code, text = send(mx.port, eicar_mail(small))
            self.assertEqual(code, 554, text + self.diag(mx))
            self.assertIn("Harness.Test.EICAR", text)

    def test_on_limit_reject_tempfail_and_accept(self):
        for on_limit, want in (("reject", 554), ("tempfail", 451), ("accept", 250)):
            with self.subTest(on_limit=on_limit):
                cfg = clamav_config(self.db.dir, max_file_size=4096, max_scan_size=4096, on_limit=on_limit)
                with Mxfront([self.pf.address], cfg) as mx:
                    marker = unique_marker("limit")
                    code, text = send(mx.port, self.big_mail(marker, 100_000))
                    self.assertEqual(code, want, text + self.diag(mx))
                    if on_limit == "reject":
                        self.assertRegex(text, r"^5\.7\.1 .*limits")
                    delivered = self.pf.deliveries(10 if want == 250 else 0.5, 1 if want == 250 else None,
                                                   match=marker.encode())
                    self.assertEqual(len(delivered), 1 if want == 250 else 0, self.diag(mx))
                    self.assertTrue(mx.wait_log(r"Heuristics\.Limits\.Exceeded", 2), self.diag(mx))

    def test_decompression_bombs_are_never_unpacked_in_full(self):
        """A 200 MB file of zeros deflated into a ~200 KB zip, and ten of those nested in a zip
        (2 GB expanded): never unpacked in full — peak memory stays far below the expanded size —
        each is answered, and the next message is served. libclamav 1.4 skips an archive member
        over max_file_size without raising Heuristics.Limits.Exceeded (clamscan does the same), so
        the answer is 250 (relayed, member unscanned) or 554 on a limit, never a hang or a crash."""
        import io
        import zipfile

        def bomb(members, size):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
                chunk = b"\0" * (1 << 20)
                for i in range(members):
                    with z.open(f"zeros{i}.bin", "w", force_zip64=True) as f:
                        for _ in range(size >> 20):
                            f.write(chunk)
            return buf.getvalue()
        inner = bomb(1, 200 << 20)
        nested = io.BytesIO()
        with zipfile.ZipFile(nested, "w") as z:
            for i in range(10):
                z.writestr(f"layer{i}.zip", inner)
        cfg = clamav_config(self.db.dir, max_file_size=10 << 20, max_scan_size=50 << 20, on_limit="reject")
        with Mxfront([self.pf.address], cfg) as mx:
            for name, data in (("bomb.zip", inner), ("nested.zip", nested.getvalue())):
                marker = unique_marker("bomb")
                msg = mail_with_attachments(marker, [(name, data, "application/zip")])
                self.assertLess(len(msg), 5 << 20)
                code, text = send(mx.port, msg)
                self.assertIn(code, (250, 554), text + self.diag(mx))
                if code == 554:
                    self.assertIn("limits", text)
                    self.assert_nothing_delivered(marker, wait=0.3)
            rss_kb = int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{mx.pid}/status").read()).group(1))
            self.assertLess(rss_kb, 1 << 20, "peak memory stays well under the 2 GB the bombs expand to")
            marker = unique_marker("after-bomb")
            self.assertEqual(send(mx.port, mail_with_attachments(marker, [("a.txt", b"hello", "text/plain")]))[0], 250)
            mx.check_alive()
            print(f"\n  bombs answered; mxfront peak RSS {rss_kb // 1024} MB")

    def test_bad_database_dir_is_a_config_error_at_check_and_start(self):
        empty = SignatureDb()
        self.addCleanup(empty.cleanup)
        for f in os.listdir(empty.dir):
            os.unlink(os.path.join(empty.dir, f))
        for d in ("/nonexistent/clamav-db", empty.dir):
            with self.subTest(dir=d):
                mx = Mxfront([self.pf.address], clamav_config(d))
                tmp = tempfile.mkdtemp(prefix="mxtest-check.")
                self.addCleanup(shutil.rmtree, tmp, True)
                path = os.path.join(tmp, "mxfront.toml")
                with open(path, "w") as f:
                    f.write(to_toml(mx.build_config()))
                p = subprocess.run([mx.binary, "--check-config", path], capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                self.assertIn("clamav", p.stderr)
                self.assertIn(d, p.stderr)
                p = subprocess.run([mx.binary, "--config", path], capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                self.assertIn(d, p.stderr)

    def test_health_shows_the_engine_and_a_failed_reload(self):
        db = SignatureDb()
        self.addCleanup(db.cleanup)
        admin = free_port()
        cfg = clamav_config(db.dir, reload_check=0.2)
        cfg["admin"] = {"address": f"127.0.0.1:{admin}", "check_interval": 0.2, "check_rise": 1, "check_fall": 1}
        with Mxfront([self.pf.address], cfg) as mx:
            dep = self.wait_dependency(admin, lambda d: d["checked"] and d["up"])
            self.assertEqual(dep["name"], db.dir)
            self.assertRegex(dep["detail"], r"^libclamav \d+\.\d+\.\d+, [3-9] signatures, engine 1 loaded")
            with open(os.path.join(db.dir, "broken.ndb"), "w") as f:
                f.write("not a signature\n")
            dep = self.wait_dependency(admin, lambda d: not d["up"])
            self.assertIn("last reload failed", dep["last_error"])
            self.assertEqual(send(mx.port, eicar_mail(unique_marker("stale")))[0], 554)  # the old engine scans
            self.assertTrue(mx.wait_log(r"clamav: reload \(signatures changed\) failed, keeping engine 1", 2))

    def wait_dependency(self, admin, pred, timeout=10):
        deadline = time.monotonic() + timeout
        dep = None
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/health", timeout=5) as r:
                deps = [d for d in json.loads(r.read())["dependencies"] if d["kind"] == "clamav"]
            dep = deps[0] if deps else None
            if dep and pred(dep):
                return dep
            time.sleep(0.1)
        self.fail(f"clamav dependency never matched: {dep}")

    def test_sighup_to_a_bad_directory_is_refused_and_the_old_engine_serves(self):
        with Mxfront([self.pf.address], clamav_config(self.db.dir)) as mx:
            with open(mx.config_path) as f:
                text = f.read()
            with open(mx.config_path, "w") as f:
                f.write(text.replace(self.db.dir, "/nonexistent/clamav-db"))
            os.kill(mx.pid, signal.SIGHUP)
            self.assertTrue(mx.wait_log(r"reload refused.*/nonexistent/clamav-db", 5), self.diag(mx))
            self.assertEqual(send(mx.port, eicar_mail(unique_marker("old-engine")))[0], 554)


if __name__ == "__main__":
    unittest.main()

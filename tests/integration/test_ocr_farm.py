"""The OCR cache shared by the farm (issue 16), end to end: a REAL redis-server, a REAL Postfix qmqpd
as mailbox server and THREE mxfront instances running the ocr filter (Tesseract in OCR worker
processes), all sharing OCR results in the same Redis (ocr.shared_cache, on by default with [redis]).

Covers:
  * through a REAL HAProxy (PROXY v2, round robin, checks on /readyz) in front of the three: the same
    new spam picture sent three times lands once on each instance, is read once and is a farm hit
    on the other two (what a campaign does to the farm);
  * a spam picture sent to instance A is read there (ocr_images_total{outcome="read"} +1) and refused;
    sent to B and C it is a farm cache hit on each (outcome "cached_farm" +1, the read counter
    unchanged, the OCR worker process not busy) and refused the same way;
  * a clean picture relayed by A is relayed by B from a farm hit (delivered once each), after a
    SIGHUP reload of B that keeps the shared store and its Redis connection;
  * Redis stopped: a new picture is still read and judged on every instance (fail open), the
    fallback is counted (ocr_shared_cache_total{result="fallback"}), logged once, and /health shows
    "redis <addr> (ocr)" down while /readyz stays 200; Redis started again on the same port: the
    dependency is up again and a picture read by A is once more a farm hit on B;
  * Redis paused (slow): the lookup gives up at redis.timeout and the picture is read and judged.

Run from the repo root:  python3 -m unittest -v tests/integration/test_ocr_farm.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix, redis-server, haproxy, tesseract)."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import (Mxfront, PostfixQmqp, free_port, http_get, ocr_worker_cpu, remove_dir, smtp_send,  # noqa: E402
                       unique_marker, wait_health_dependency)
from ocr_harness import OcrImages, image_mail, write_words_file  # noqa: E402
from haproxy_harness import Haproxy  # noqa: E402
from redis_harness import RedisServer  # noqa: E402

SENDER = "s@example.net"
RCPT = "bob@example.org"
WORDS = [("cheap viagra", 2), "buy now", "online pharmacy", "casino", "rolex replica"]
SPAM_TEXT = "CHEAP VIAGRA BUY NOW"  # score 3 + 1 + 1 = 5 = reject_score
PREFIX = "ocrfarm:"


def ocr_workers_cpu(pid):
    """CPU seconds used by the OCR worker processes (mxfront --ocr-worker) of server `pid`."""
    return sum(ocr_worker_cpu(pid).values())


def counters(admin, family, label):
    """{label value: count} of mxfront_<family>{<label>="..."} from /metrics."""
    _, body = http_get(admin, "/metrics")
    return {m.group(1): int(m.group(2))
            for m in re.finditer(rf'^mxfront_{family}\{{{label}="([a-z_]+)"\}} (\d+)$', body, re.M)}


class Instance:
    def __init__(self, name, mx, admin, redis_address):
        self.name, self.mx, self.admin, self.redis_address = name, mx, admin, redis_address

    def images(self):
        return counters(self.admin, "ocr_images_total", "outcome")

    def shared(self):
        return counters(self.admin, "ocr_shared_cache_total", "result")

    def wait_dependency(self, up, timeout=15.0):
        return wait_health_dependency(self.admin, f"{self.redis_address} (ocr)", up, timeout) is not None


class OcrFarmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="mxtest-ocrfarm.")
        cls.addClassCleanup(remove_dir, cls.work, "ocr farm test")
        cls.images = OcrImages()
        cls.addClassCleanup(cls.images.cleanup)
        words = write_words_file(cls.work, WORDS)
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.farm = []
        for name in ("A", "B", "C"):
            admin = free_port()
            mx = Mxfront([cls.pf.address], config={
                "server": {"hostname": f"mx{name}.test"},
                # direct (the tests that must know which instance reads), and behind HAProxy (PROXY v2)
                "listener": [{"address": "127.0.0.1:0", "profile": "mx"},
                             {"address": "127.0.0.1:0", "profile": "mx", "proxy_protocol": True,
                              "proxy_trusted": ["127.0.0.1/32"]}],
                "profile.mx": {"filters": ["relay_control", "ocr"], "reject_score": 20, "tag_score": 2},
                # one OCR thread: one worker process, warmed below, whose CPU tells whether it read
                "ocr": {"words_file": str(words), "reject_score": 5, "budget": 20, "image_timeout": 5, "workers": 1},
                "workers": {"threads": 2},
                "redis": {"address": cls.redis.address, "timeout": 0.5, "key_prefix": PREFIX},
                "admin": {"address": f"127.0.0.1:{admin}"},
            })
            cls.addClassCleanup(mx.kill)
            mx.start()
            cls.farm.append(Instance(name, mx, admin, cls.redis.address))
        cls.a, cls.b, cls.c = cls.farm
        cls.lb = Haproxy([(i.name, i.mx.listeners[1][1], f"port {i.admin}") for i in cls.farm],
                         http_check="/readyz", inter="300ms", fall=2, rise=1)
        cls.addClassCleanup(cls.lb.stop)
        cls.lb.start()
        deadline = time.monotonic() + 15
        while not all(cls.lb.servers().get(i.name, ("",))[0] == "UP" for i in cls.farm):
            if time.monotonic() > deadline:
                raise AssertionError(f"haproxy never saw the three instances UP: {cls.lb.servers()}")
            time.sleep(0.05)
        # Each instance's OCR worker process started and its model loaded, on a picture of its own.
        for i in cls.farm:
            code, text = cls.send_to(i, [("w.png", cls.images.text_png(f"WARM UP {i.name}"))], "warm")
            assert code == 250, f"warm-up on {i.name}: {code} {text}"

    @classmethod
    def send_to(cls, inst, images, marker):
        return smtp_send(inst.mx.port, SENDER, [RCPT], image_mail(images, SENDER, RCPT, f"offer {marker}"), timeout=60)

    def tearDown(self):
        for i in self.farm:
            i.mx.check_alive()

    def diag(self):
        return "".join(f"\n--- {i.name} log ---\n{i.mx.log()[-2500:]}" for i in self.farm)

    def shared_keys(self):
        out = subprocess.run(["redis-cli", "-p", str(self.redis.port), "--scan", "--pattern", f"{PREFIX}ocr:*"],
                             capture_output=True, text=True, timeout=10)
        return set(out.stdout.split())

    def wait_shared(self, before, timeout=5.0):
        """The SET is fire-and-forget: wait until Redis holds a new key."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.shared_keys() - before:
                return True
            time.sleep(0.05)
        return False

    def send(self, inst, picture, spam):
        """Sends `picture` to `inst`; asserts the verdict (554 naming the words, or relayed once)."""
        marker = unique_marker("ocrfarm")
        code, text = self.send_to(inst, [("p.png", picture)], marker)
        if spam:
            self.assertEqual(code, 554, f"{inst.name}: spam picture not refused: {code} {text}{self.diag()}")
            self.assertIn("5.7.1", text)
            self.assertRegex(text.lower(), r"cheap viagra")
            self.assertEqual(self.pf.deliveries(0.5, None, match=marker.encode()), [], f"{inst.name} relayed spam")
        else:
            self.assertEqual(code, 250, f"{inst.name}: clean picture not relayed: {code} {text}{self.diag()}")
            self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1, f"{inst.name}: not delivered once")

    def read_by(self, inst, picture, spam):
        """`picture` goes to `inst` and is OCR'd there (not a cache hit), and shared in Redis."""
        before, keys = inst.images(), self.shared_keys()
        self.send(inst, picture, spam)
        after = inst.images()
        self.assertEqual(after.get("read", 0) - before.get("read", 0), 1, f"{inst.name} did not read it: {after}")
        self.assertEqual(after.get("cached_farm", 0), before.get("cached_farm", 0), f"{inst.name}: {after}")
        self.assertTrue(self.wait_shared(keys), f"{inst.name}: nothing stored in Redis{self.diag()}")

    def farm_hit_on(self, inst, picture, spam):
        """`picture` goes to `inst`, which takes its text from Redis: no OCR there."""
        hit_line = r"ocr id=\S+ images=1 read=1 cached=1 .*cached_farm=1 "
        before, cpu, lines = inst.images(), ocr_workers_cpu(inst.mx.pid), len(re.findall(hit_line, inst.mx.log()))
        self.send(inst, picture, spam)
        after, used = inst.images(), ocr_workers_cpu(inst.mx.pid) - cpu
        self.assertEqual(after.get("cached_farm", 0) - before.get("cached_farm", 0), 1,
                         f"{inst.name}: no farm cache hit counted: {after}{self.diag()}")
        self.assertEqual(after.get("read", 0), before.get("read", 0), f"{inst.name} read it again: {after}")
        self.assertLess(used, 0.2, f"{inst.name}: its OCR worker was busy ({used:.2f} s CPU) on a farm hit")
        deadline = time.monotonic() + 5
        while len(re.findall(hit_line, inst.mx.log())) == lines and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(re.findall(hit_line, inst.mx.log())), lines + 1, f"no cached_farm=1 log line{self.diag()}")

    # -- the tests run in name order: 0 .. 4 -------------------------------------------------------
    def test_0_through_haproxy_a_campaign_picture_is_read_once_per_farm(self):
        """The same new spam picture sent three times through a real HAProxy (round robin): the
        three messages land on the three instances, one reads it, the other two take it from Redis."""
        picture = self.images.text_png(SPAM_TEXT, width=660)  # pixels of its own (other tests use 640..820)
        before = {i.name: i.images() for i in self.farm}
        for n in range(3):
            marker = unique_marker("ocrlb")
            code, text = smtp_send(self.lb.port, SENDER, [RCPT], image_mail([("p.png", picture)], SENDER, RCPT,
                                                                             f"offer {marker}"), timeout=60)
            self.assertEqual(code, 554, f"message {n} through HAProxy not refused: {code} {text}{self.diag()}")
            self.assertRegex(text.lower(), r"cheap viagra")
            if n == 0:  # the SET is not awaited: let it land before the next instance asks
                deadline = time.monotonic() + 5
                while not any(i.images().get("read", 0) > before[i.name].get("read", 0) for i in self.farm):
                    self.assertLess(time.monotonic(), deadline, f"nobody read the picture{self.diag()}")
                    time.sleep(0.05)
                self.assertTrue(self.wait_shared(set()), f"nothing stored in Redis{self.diag()}")
        delta = {i.name: {k: v - before[i.name].get(k, 0) for k, v in i.images().items()} for i in self.farm}
        self.assertEqual(sorted(sum(d.values()) for d in delta.values()), [1, 1, 1],
                         f"round robin should give each instance one picture: {delta}")
        self.assertEqual(sum(d.get("read", 0) for d in delta.values()), 1, f"read more than once per farm: {delta}")
        self.assertEqual(sum(d.get("cached_farm", 0) for d in delta.values()), 2, f"no farm hits: {delta}")

    def test_1_a_spam_picture_read_by_a_is_a_farm_hit_on_b_and_c(self):
        picture = self.images.text_png(SPAM_TEXT)
        cpu = ocr_workers_cpu(self.a.mx.pid)
        self.read_by(self.a, picture, spam=True)
        print(f"\n[ocr farm] A's OCR worker used {ocr_workers_cpu(self.a.mx.pid) - cpu:.2f} s CPU to read it",
              file=sys.stderr)
        for inst in (self.b, self.c):
            self.farm_hit_on(inst, picture, spam=True)
            self.assertGreaterEqual(inst.shared().get("hit", 0), 1)

    def test_2_a_clean_picture_relayed_by_a_is_relayed_by_b_from_the_farm_across_a_reload(self):
        picture = self.images.text_png("QUARTERLY REPORT ATTACHED")
        self.read_by(self.a, picture, spam=False)
        # B reloads its config: the shared store (and its Redis connection) is kept.
        reloads = self.b.mx.log().count("reloaded config")
        os.kill(self.b.mx.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.b.mx.log().count("reloaded config") == reloads and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreater(self.b.mx.log().count("reloaded config"), reloads, f"B did not reload{self.diag()}")
        self.farm_hit_on(self.b, picture, spam=False)
        self.assertEqual(len(re.findall(r"ocr: redis \S+ connected", self.b.mx.log())), 1,
                         f"B's reload opened a new shared-cache connection{self.diag()}")

    def test_3_redis_down_each_instance_reads_alone_then_shares_again(self):
        before = {i.name: i.shared().get("fallback", 0) for i in self.farm}
        self.redis.stop()
        try:
            picture = self.images.text_png(SPAM_TEXT, width=700)  # new pixels, the same words
            for inst in self.farm:  # fail open: read and judged on each instance
                reads = inst.images().get("read", 0)
                self.send(inst, picture, spam=True)
                self.assertEqual(inst.images().get("read", 0) - reads, 1, f"{inst.name} did not read it alone")
                self.assertGreater(inst.shared().get("fallback", 0), before[inst.name],
                                   f"{inst.name}: fallback not counted in /metrics")
                self.assertTrue(inst.wait_dependency(False), f"{inst.name}: /health still shows redis (ocr) up")
                status, _ = http_get(inst.admin, "/readyz")
                self.assertEqual(status, 200, f"{inst.name}: /readyz depends on the shared OCR cache")
                self.assertTrue(inst.mx.wait_log(r"ocr: redis \S+ failed .*OCR results not shared", 5),
                                f"fallback not logged on {inst.name}{self.diag()}")
                self.assertEqual(len(re.findall(r"ocr: redis \S+ failed .*OCR results not shared", inst.mx.log())), 1,
                                 f"{inst.name}: the state change is logged once")
        finally:
            self.redis.start()
        for inst in self.farm:
            self.assertTrue(inst.wait_dependency(True), f"{inst.name}: /health does not show redis up again{self.diag()}")
        picture = self.images.text_png(SPAM_TEXT, width=760)
        self.read_by(self.a, picture, spam=True)
        self.farm_hit_on(self.b, picture, spam=True)
        self.assertTrue(self.b.mx.wait_log(r"ocr: sharing OCR results in redis", 5), self.diag())

    def test_4_redis_paused_a_lookup_gives_up_at_redis_timeout_and_the_picture_is_read_alone(self):
        before, reads = self.a.shared().get("fallback", 0), self.a.images().get("read", 0)
        self.redis.pause()  # slow, not down: the connection stays, answers never come
        try:
            self.send(self.a, self.images.text_png(SPAM_TEXT, width=820), spam=True)
        finally:
            self.redis.resume()
        self.assertEqual(self.a.images().get("read", 0) - reads, 1, "A did not read it alone")
        self.assertGreater(self.a.shared().get("fallback", 0), before, "the timeout is not counted as a fallback")
        self.assertTrue(self.a.mx.wait_log(r"ocr: redis \S+ failed \([^)]*timeout", 5),
                        f"timeout not logged\n{self.a.mx.log()[-6000:]}")


if __name__ == "__main__":
    unittest.main()

"""rspamd's fuzzy hashes in a REAL redis-server shared by two REAL rspamd instances (the farm's layout:
each instance has its own fuzzy_storage worker, both on one Redis): a hash added with `rspamc fuzzy_add`
through instance A scores on instance B, which mxfront (profile mx: relay_control, rspamd) asks at end
of DATA; Postfix qmqpd is the relay target. RspamdFarmConfigTest does the same with the farm's own
rspamd configuration (docker/rspamd/, addresses swapped for loopback ones), and checks its DKIM
signing of submitted mail (python3-dkim) and that it fetches nothing from the internet.

Run from the repo root:  python3 -m unittest -v tests/integration/test_rspamd_fuzzy.py
(env MXFRONT_BIN = the binary, default build/mxfront; needs root for Postfix and to start rspamd as
_rspamd). rspamd's DNS is the harness's loopback black hole; nothing is skipped."""
import base64
import os
import pwd
import re
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, smtp_send, unique_marker  # noqa: E402
from rspamd_harness import FUZZY_FLAGS, FarmRspamd, Rspamd  # noqa: E402
from redis_harness import RedisServer  # noqa: E402
from tls_harness import TestPki, profile_overrides, users_file  # noqa: E402

SENDER = "deals@shop.example"
RCPT = "bob@example.org"
DENIED, PROB = FUZZY_FLAGS["LOCAL_FUZZY_DENIED"], FUZZY_FLAGS["LOCAL_FUZZY_PROB"]

# Three campaigns and one personal mail, each well over fuzzy_check's 64 words (shingles) and min_bytes.
GOLD = ("Dear friend, we are pleased to announce an exclusive investment opportunity in our international "
        "gold mining fund. Returns of forty percent per month are guaranteed by our experienced team of brokers "
        "in Zurich and Singapore. Reply today with your bank details to secure your allocation before the "
        "offer closes. Only a limited number of places remain for private investors this quarter, and our "
        "advisors will call you within the hour to confirm the transfer. Do not miss this unique chance to "
        "multiply your savings with absolutely no risk at all.\r\n")
PHARMACY = ("Best prices on brand medication shipped discreetly worldwide without prescription. Our licensed "
            "online pharmacy offers generic pills at ninety percent below retail, with free overnight delivery on "
            "every order above fifty dollars. Satisfaction guaranteed or your money back, no questions asked. Visit "
            "our secure shop now and use the coupon code SPRING to receive an additional discount on your first "
            "purchase. Thousands of happy customers trust our certified pharmacists every single day.\r\n")
LOTTERY = ("Congratulations! Your email address was selected in the annual international lottery draw and you "
           "have won the grand prize of two million euros. To claim your winnings, contact our claims agent with "
           "your full name, home address, telephone number and a copy of your passport. A small processing fee "
           "is required before the funds can be released to your account. This notification is confidential; "
           "please do not share it with anybody until the payment has been completed.\r\n")
NOTES = ("Hi Bob, attached are the notes of the quarterly planning review we held on Thursday afternoon. Please "
         "check the budget section and the hiring plan before our next meeting, and let me know whether the "
         "travel policy update works for your team. Marta asked whether we could move the offsite to the second "
         "week of March, which would suit the people coming from Lisbon better. I also added the figures for "
         "the new office lease, which look reasonable to me. Thanks, and have a good weekend. Carol\r\n")


def mail(marker, body, sender=SENDER):
    """The marker only in the header: the body (what fuzzy_check hashes) is exactly `body`."""
    return (f"From: Sender <{sender}>\r\nTo: Bob <{RCPT}>\r\nSubject: {marker}\r\n"
            f"Date: Mon, 07 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{marker}@shop.example>\r\n\r\n{body}").encode()


class RspamdFuzzyTest(unittest.TestCase):
    """One Redis, two rspamd (A: where hashes are added; B: what mxfront asks), one Postfix, one mxfront."""

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        cls.a, cls.b = Rspamd(fuzzy_redis=cls.redis.address), Rspamd(fuzzy_redis=cls.redis.address)
        for r in (cls.a, cls.b):
            cls.addClassCleanup(r.stop)
            r.start()
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.mx = Mxfront([cls.pf.address], {"rspamd": {"servers": [cls.b.address]},
                                            "profile.mx": {"filters": ["relay_control", "rspamd"]}})
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return (f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix maillog ---\n{self.pf.log()[-1500:]}"
                f"\n--- rspamd A ---\n{self.a.log()[-2500:]}\n--- rspamd B ---\n{self.b.log()[-2500:]}")

    def send(self, msg):
        return smtp_send(self.mx.port, SENDER, [RCPT], msg, timeout=60)

    def fuzzy(self, rs, command, body, flag, weight=None):
        """`rspamc fuzzy_add|fuzzy_del -f FLAG [-w WEIGHT]` on `rs`'s controller; the message's hash (hex)."""
        path = os.path.join(rs.dir, f"{command}.eml")
        with open(path, "wb") as f:
            f.write(mail(unique_marker("learn"), body))
        args = ["rspamc", "-h", f"127.0.0.1:{rs.controller_port}", command, "-f", str(flag)]
        args += ["-w", str(weight)] if weight is not None else []
        p = subprocess.run(args + [path], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + self.diag())
        self.assertIn("success = true", p.stdout, p.stdout + self.diag())
        m = re.search(r'hashes \[\s*"([0-9a-f]{64,128})"', p.stdout)
        self.assertTrue(m, p.stdout)
        return m.group(1)

    def redis_hash(self, digest):
        """The fuzzy storage's Redis hash for a digest (key "fuzzy" + the raw digest; fields F flag, V
        value): {field: value}. The key is binary, so redis-cli reads it from stdin (-x)."""
        p = subprocess.run(["redis-cli", "-p", str(self.redis.port), "-x", "HGETALL"],
                           input=b"fuzzy" + bytes.fromhex(digest), capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode(errors="replace").split()
        return dict(zip(lines[0::2], lines[1::2]))

    def wait_redis(self, digest, present, timeout=15.0):
        """The storage writes its update queue to Redis every `sync` (1 s in the harness)."""
        deadline = time.monotonic() + timeout
        while bool(h := self.redis_hash(digest)) != present and time.monotonic() < deadline:
            time.sleep(0.2)
        return h

    def delivered_head(self, marker):
        got = self.pf.deliveries(20, 1, match=marker.encode())
        self.assertEqual(len(got), 1, self.diag())
        return got[0].data.split(b"\n\n", 1)[0].decode(errors="replace")

    def wait_more_log(self, pattern, before, timeout=5.0):
        """True once the mxfront log has more than `before` lines matching `pattern`."""
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.mx.log())) <= before:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def assert_refused(self, body, tag):
        line = (r"(?m)^.* message id=\S+ .*tags=\"LOCAL_FUZZY_DENIED=[\d.]+ .*result=rejected "
                r"reply=\"554 5\.7\.1 .*reason=\"rspamd action=reject ")
        before = len(re.findall(line, self.mx.log()))
        marker = unique_marker(tag)
        code, text = self.send(mail(marker, body))
        self.assertEqual(code, 554, text + self.diag())
        self.assertTrue(text.startswith("5.7.1 "), text)
        self.assertEqual(self.pf.deliveries(1.0, None, match=marker.encode()), [], self.diag())
        # the per-message log line: refused by rspamd, the fuzzy symbol the heaviest of its tags
        self.assertTrue(self.wait_more_log(line, before), self.diag())

    def assert_relayed_without_fuzzy(self, body, tag):
        marker = unique_marker(tag)
        code, text = self.send(mail(marker, body))
        self.assertEqual(code, 250, text + self.diag())
        head = self.delivered_head(marker)
        self.assertRegex(head, r"(?m)^X-Spamd-Result: ", head)
        self.assertNotIn("FUZZY", head)

    # ------------------------------------------------------------------------------------------
    def test_hash_added_on_a_refuses_the_same_message_through_b_and_not_a_different_one(self):
        # before: B does not know the campaign
        self.assert_relayed_without_fuzzy(GOLD, "gold-before")
        digest = self.fuzzy(self.a, "fuzzy_add", GOLD, DENIED, weight=10)
        # in the shared Redis: flag and weight as given to rspamc (plus the shingles' keys)
        stored = self.wait_redis(digest, True)
        self.assertEqual((stored.get("F"), stored.get("V")), (str(DENIED), "10"), stored)
        keys = subprocess.run(["redis-cli", "-p", str(self.redis.port), "--scan", "--pattern", "fuzzy_*"],
                              capture_output=True, timeout=10).stdout.split(b"\n")
        self.assertGreaterEqual(len([k for k in keys if re.fullmatch(rb"fuzzy_\d+_\d+", k)]), 32, keys)
        # through mxfront and B: LOCAL_FUZZY_DENIED (20 x tanh(e)) alone is over reject (15)
        self.assert_refused(GOLD, "gold-after")
        # B never saw the hash being added: its verdict came from the shared Redis
        self.assertNotIn("added fuzzy hash", self.b.log())
        self.assertIn("added fuzzy hash", self.a.log())
        # a different message is not matched and is relayed
        self.assert_relayed_without_fuzzy(NOTES, "notes")

    def test_probable_flag_tags_the_message_and_a_near_copy_matches_too(self):
        self.fuzzy(self.a, "fuzzy_add", PHARMACY, PROB, weight=10)
        # a copy with a word and a figure changed: the exact hash differs, the shingles still match
        variant = PHARMACY.replace("ninety percent", "eighty percent").replace("SPRING", "SUMMER")
        deadline = time.monotonic() + 15
        while True:  # wait until B sees it (the storage writes to Redis every second)
            marker = unique_marker("pharmacy")
            code, text = self.send(mail(marker, variant))
            self.assertEqual(code, 250, text + self.diag())
            head = self.delivered_head(marker)
            if "LOCAL_FUZZY_PROB" in head or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        # LOCAL_FUZZY_PROB (8 points at most): over add header (6), under reject (15): relayed, tagged
        self.assertRegex(head, r"(?m)^X-Spamd-Result: default: \w+ \[([6-9]|1[0-4])\.\d+ / 15\.00\];\s+"
                               r"LOCAL_FUZZY_PROB\([\d.]+\)\[" + str(PROB) + ":", head + self.diag())
        self.assertTrue(self.mx.wait_log(r"message id=\S+ .*tags=\"LOCAL_FUZZY_PROB=[\d.]+ .*result=relayed", 5),
                        self.diag())
        self.assertTrue(self.mx.wait_log(r"filter=rspamd phase=data verdict=continue score=\S+ .*"
                                         r"reason=\"rspamd action=add header ", 5), self.diag())

    def test_hash_deleted_on_b_no_longer_matches(self):
        digest = self.fuzzy(self.a, "fuzzy_add", LOTTERY, DENIED, weight=10)
        self.assertTrue(self.wait_redis(digest, True), self.diag())
        self.assert_refused(LOTTERY, "lottery-added")
        # deleted through the other instance: the same Redis, so gone for both
        self.assertEqual(self.fuzzy(self.b, "fuzzy_del", LOTTERY, DENIED), digest)
        self.assertFalse(self.wait_redis(digest, False), "the hash is gone from Redis" + self.diag())
        self.assert_relayed_without_fuzzy(LOTTERY, "lottery-deleted")


class RspamdFarmConfigTest(unittest.TestCase):
    """docker/rspamd/ as the farm's spamengine runs it (FarmRspamd: loopback addresses), two instances
    on one Redis: fuzzy hashes shared, submitted mail signed, no map fetched from the internet."""

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.users = users_file(os.path.join(cls.pki.dir, "users"))
        # what the spamengine's start.sh makes of the mounted keys: DOMAIN.mx.key, _rspamd's only
        cls.keydir = os.path.join(cls.pki.dir, "dkim")
        os.makedirs(cls.keydir)
        key = os.path.join(cls.keydir, "example.org.mx.key")
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
        pub = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"], check=True,
                             capture_output=True).stdout
        cls.dns_record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)
        u = pwd.getpwnam("_rspamd")
        os.chmod(cls.pki.dir, 0o755)
        os.chown(cls.keydir, u.pw_uid, u.pw_gid)
        os.chmod(cls.keydir, 0o700)
        os.chown(key, u.pw_uid, u.pw_gid)
        os.chmod(key, 0o600)
        cls.a, cls.b = FarmRspamd(cls.redis.address, cls.keydir), FarmRspamd(cls.redis.address, cls.keydir)
        for r in (cls.a, cls.b):
            cls.addClassCleanup(r.stop)
            r.start()
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        # as docker/mxfront.compose.toml and docker/submission.compose.toml have it
        cfg = profile_overrides(cls.pki.server.cert, cls.pki.server.key, {"type": "file", "users_file": cls.users})
        cfg["relay"] = {"local_domains": ["example.org"], "postmaster": "alice@example.org"}
        cfg["rspamd"] = {"servers": [cls.b.address], "profile_settings_ids": ["submission=outbound", "submissions=outbound"]}
        for profile in ("mx", "submission", "submissions"):
            cfg[f"profile.{profile}"] = {"filters": ["relay_control", "rspamd"]}
        cls.mx = Mxfront([cls.pf.address], cfg)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return (f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix maillog ---\n{self.pf.log()[-1500:]}"
                f"\n--- rspamd A ---\n{self.a.log()[-2500:]}\n--- rspamd B ---\n{self.b.log()[-2500:]}")

    def test_farm_fuzzy_hash_added_on_one_instance_refuses_through_the_other(self):
        path = os.path.join(self.a.dir, "campaign.eml")
        with open(path, "wb") as f:
            f.write(mail(unique_marker("learn"), GOLD))
        p = subprocess.run(["rspamc", "-h", f"127.0.0.1:{self.a.controller_port}", "fuzzy_add", "-f", str(DENIED),
                            "-w", "10", path], capture_output=True, text=True, timeout=30)
        self.assertIn("success = true", p.stdout, p.stdout + p.stderr + self.diag())
        deadline = time.monotonic() + 20  # the farm's storage writes to Redis every 5 s
        while True:
            marker = unique_marker("farm-gold")
            code, text = smtp_send(self.mx.port, SENDER, [RCPT], mail(marker, GOLD), timeout=60)
            if code == 554 or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.assertEqual(code, 554, text + self.diag())
        self.assertTrue(self.mx.wait_log(r"tags=\"LOCAL_FUZZY_DENIED=[\d.]+ .*result=rejected", 5), self.diag())
        code, text = smtp_send(self.mx.port, SENDER, [RCPT], mail(unique_marker("farm-notes"), NOTES), timeout=60)
        self.assertEqual(code, 250, text + self.diag())

    def test_farm_signs_submitted_mail_and_python3_dkim_verifies_it(self):
        import dkim  # python3-dkim (Debian's; mxharness puts its dist-packages on the path)
        marker = unique_marker("farm-signed")
        msg = (f"From: Alice <alice@example.org>\r\nTo: Carol <carol@example.com>\r\nSubject: {marker}\r\n"
               f"Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <{marker}@example.org>\r\n\r\n"
               "Hello Carol,\r\nthe report is attached.\r\n").encode()
        with smtplib.SMTP("127.0.0.1", self.mx.listeners[1][1], local_hostname="laptop", timeout=60) as c:
            c.starttls(context=self.pki.client_context())
            c.login("alice@example.org", "alicepw")
            self.assertEqual(c.sendmail("alice@example.org", ["carol@example.com"], msg), {})
        got = self.pf.deliveries(20, 1, match=marker.encode())
        self.assertEqual(len(got), 1, self.diag())
        data = got[0].data
        head = data.split(b"\n\n", 1)[0].decode(errors="replace")
        self.assertRegex(head, r"(?m)^DKIM-Signature: v=1; a=rsa-sha256; .*d=example\.org; s=mx;", head + self.diag())
        wire = re.sub(rb"\r?\n", b"\r\n", data)

        def dnsfunc(name, timeout=5):
            return self.dns_record if name in (b"mx._domainkey.example.org.", "mx._domainkey.example.org.") else None

        self.assertTrue(dkim.verify(wire, dnsfunc=dnsfunc), f"python3-dkim does not verify it: {head}{self.diag()}")
        self.assertFalse(dkim.verify(wire + b"a line added after signing\r\n", dnsfunc=dnsfunc))
        # the submission profile's Settings-ID: the farm's settings entry "outbound" was applied
        deadline = time.monotonic() + 5
        while "applied settings id outbound(" not in self.b.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("applied settings id outbound(", self.b.log())

    def test_farm_config_fetches_no_map_from_the_internet(self):
        for name, rs in (("A", self.a), ("B", self.b)):
            with open(os.path.join(rs.dir, "log", "rspamd.log"), errors="replace") as f:
                text = f.read()
            self.assertIn("lua module multimap is disabled", text, f"rspamd {name}: the farm's override.d applies")
            remote = [line for line in text.splitlines() if re.search(r"https?://|rspamd\.com", line)]
            self.assertEqual(remote, [], f"rspamd {name} names a remote map or server")


if __name__ == "__main__":
    unittest.main()

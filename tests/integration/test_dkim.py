"""The dkim filter end to end: messages signed by a REAL signer (python3-dkim: RSA 1024/2048/4096 and
Ed25519, relaxed and simple canonicalisation) sent to a real mxfront whose key lookups go to a REAL
nsd on loopback (through the harness's DNS proxy, which never answers for slow.dkim.test,
SERVFAILs broken.dkim.test, counts queries per transport and can drop everything: an outage),
relayed through a REAL Postfix qmqpd. The delivered copy must carry one Authentication-Results
field with our authserv-id and the expected dkim= results, and the result must agree (pass / not
pass) with the reference verifier, python3-dkim, fed the same keys from the same nsd. Also: keys
served from the cache for their TTL (and looked up again after it), keys over 512 octets over TCP,
malformed and hostile key records served by nsd, and verification on the worker pool (its job
counter). If nsd or Postfix cannot start, the tests fail (HarnessError), never skip.
Run from the repo root:  MXFRONT_BIN=build/mxfront python3 -m unittest -v tests/integration/test_dkim.py"""
import base64
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import Mxfront, PostfixQmqp, SmtpConn, free_port, http_get, remove_dir, unique_marker  # noqa: E402  (adds Debian's dist-packages)
from nsd_harness import DnsFilterProxy, Nsd, dns_txt  # noqa: E402

import dkim  # noqa: E402  python3-dkim: the real signer and the reference verifier
import nacl.signing  # noqa: E402  python3-nacl: Ed25519 keys for python3-dkim

ZONE = "dkim.test"
PF = None
KEYS = {}  # selector -> private key bytes as python3-dkim takes them


def rsa_key(tmp, bits):
    """(private PEM, public base64 DER) from the openssl command line."""
    path = os.path.join(tmp, f"rsa{bits}.pem")
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", path, str(bits)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"], check=True, capture_output=True).stdout
    with open(path, "rb") as f:
        return f.read(), base64.b64encode(der).decode()


def _der(tag, body):
    n = len(body)
    size = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + size + body


def fake_rsa_public_key(bits):
    """A well-formed SubjectPublicKeyInfo (base64 DER) with a random odd `bits`-bit modulus and e=65537:
    it parses as an RSA key of that size (no private key exists; generating a real 8192-bit key takes
    minutes on a loaded test machine). A verifier that accepted the size would answer fail, not policy."""
    n = int.from_bytes(os.urandom(bits // 8), "big") | (1 << (bits - 1)) | 1
    integer = lambda v: _der(0x02, (b"\0" if v.bit_length() % 8 == 0 else b"") + v.to_bytes((v.bit_length() + 7) // 8, "big"))
    rsa = _der(0x30, integer(n) + integer(65537))
    algo = bytes.fromhex("300d06092a864886f70d0101010500")
    return base64.b64encode(_der(0x30, algo + _der(0x03, b"\0" + rsa))).decode()


def ed_key():
    sk = nacl.signing.SigningKey.generate()
    return base64.b64encode(bytes(sk)), base64.b64encode(bytes(sk.verify_key)).decode()


def setUpModule():
    global PF
    PF = PostfixQmqp()
    unittest.addModuleCleanup(PF.stop)
    PF.start()


def message(marker, body="Hello Bob,\r\n  this is   a test.\r\n\r\n"):
    return (f"From: Alice <alice@{ZONE}>\r\nTo: Bob <bob@example.org>\r\nSubject: {marker}\r\n"
            f"Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <{marker}@{ZONE}>\r\n\r\n{body}").encode()


def signed(msg, selector, domain=ZONE, algorithm=b"rsa-sha256", canon=(b"relaxed", b"relaxed"), key=None,
           headers=(b"from", b"to", b"subject", b"date"), length=False):
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key or KEYS[selector], canonicalize=canon,
                    signature_algorithm=algorithm, include_headers=list(headers), length=length)
    return sig + msg


class DkimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mxtest-dkim.")
        cls.addClassCleanup(remove_dir, cls.tmp, "dkim keys")
        KEYS["rsa2048"], pub2048 = rsa_key(cls.tmp, 2048)
        KEYS["rsa1024"], pub1024 = rsa_key(cls.tmp, 1024)
        KEYS["rsa4096"], pub4096 = rsa_key(cls.tmp, 4096)
        KEYS["ed"], pub_ed = ed_key()
        cls.pub_ed = pub_ed
        for sel in ("revoked", "missing", "sel", "cached", "shortttl", "rsa8192", "badb64", "unkalg", "syntax",
                    "sha1only", "huge", "hugenotes"):
            KEYS[sel] = KEYS["rsa2048"]
        for sel in ("edshort", "edlong"):
            KEYS[sel] = KEYS["ed"]
        ed_raw = base64.b64decode(pub_ed)
        records = [
            ("rsa2048._domainkey", "TXT", f"v=DKIM1; k=rsa; p={pub2048}"),  # > 255 octets: several strings
            ("rsa1024._domainkey", "TXT", f"v=DKIM1; k=rsa; p={pub1024}"),
            ("rsa4096._domainkey", "TXT", f"v=DKIM1; k=rsa; p={pub4096}"),  # > 512 octets: TC over UDP, then TCP
            ("rsa8192._domainkey", "TXT", f"v=DKIM1; k=rsa; p={fake_rsa_public_key(8192)}"),
            ("ed._domainkey", "TXT", f"v=DKIM1; k=ed25519; p={pub_ed}"),
            ("revoked._domainkey", "TXT", "v=DKIM1; k=rsa; p="),
            ("sel._domainkey.slow", "TXT", f"v=DKIM1; k=rsa; p={pub2048}"),
            ("sel._domainkey.broken", "TXT", f"v=DKIM1; k=rsa; p={pub2048}"),
            ("cached._domainkey", "TXT", f"v=DKIM1; k=rsa; p={pub2048}"),            # TTL 300 (the zone's)
            ("shortttl._domainkey", "TXT", f"v=DKIM1; k=rsa; p={pub2048}", 2),       # TTL 2 s
            # malformed and hostile key records
            ("badb64._domainkey", "TXT", "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0B*not*base64!"),
            ("unkalg._domainkey", "TXT", f"v=DKIM1; k=dsa; p={pub2048}"),
            ("syntax._domainkey", "TXT", f"v=DKIM1; k=rsa; this is not a tag; p={pub2048}"),
            ("sha1only._domainkey", "TXT", f"v=DKIM1; k=rsa; h=sha1; p={pub2048}"),
            ("edshort._domainkey", "TXT", "v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_raw[:31]).decode()),
            ("edlong._domainkey", "TXT", "v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_raw + b"\0").decode()),
            ("huge._domainkey", "TXT", "v=DKIM1; k=rsa; p=" + base64.b64encode(os.urandom(5000)).decode()),
            ("hugenotes._domainkey", "TXT", f"v=DKIM1; k=rsa; n={'x' * 5000}; p={pub2048}"),
            ("@", "A", "127.0.0.1"),
        ]
        cls.nsd = Nsd({ZONE: records})  # raises HarnessError when nsd cannot serve
        cls.addClassCleanup(cls.nsd.stop)
        cls.proxy = DnsFilterProxy(cls.nsd.address, drop=(f"slow.{ZONE}",), servfail=(f"broken.{ZONE}",))
        cls.addClassCleanup(cls.proxy.stop)
        config = {
            "dkim": {"dns_servers": [cls.proxy.address], "query_timeout": 0.3, "tries": 1, "score_fail": 1.5},
            "profile.mx": {"filters": ["dkim", "relay_control"], "reject_score": 10, "tag_score": 0.5},
            "admin": {"address": f"127.0.0.1:{free_port()}"},
        }
        cls.admin = config["admin"]["address"].rsplit(":", 1)[1]
        cls.mx = Mxfront([PF.address], config=config)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix ---\n{PF.log()[-1500:]}"

    def send(self, data):
        """One SMTP transaction with `data` (CRLF) as the message; returns the final reply."""
        stuffed = re.sub(rb"(?m)^\.", b"..", data)
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        with SmtpConn(self.mx.port, timeout=20) as c:
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd(f"MAIL FROM:<alice@{ZONE}>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250, self.diag())
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(stuffed + b".\r\n")
            final = c.reply()[:2]
            c.cmd("QUIT")
            return final

    def deliver(self, data, marker):
        final = self.send(data)
        self.assertEqual(final[0], 250, f"message refused: {final}{self.diag()}")
        ds = PF.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1, f"no delivery{self.diag()}")
        return ds[0].data

    @staticmethod
    def auth_results(data):
        head = data.split(b"\n\n", 1)[0]
        return re.findall(rb"(?mi)^Authentication-Results:[^\n]*(?:\n[ \t][^\n]*)*", head)

    def results(self, data):
        """The dkim= results of our one Authentication-Results field, top signature first."""
        ours = [f for f in self.auth_results(data) if re.match(rb"(?i)Authentication-Results:\s*mx\.test\s*;", f)]
        self.assertEqual(len(ours), 1, f"{self.auth_results(data)}{self.diag()}")
        return re.findall(rb"dkim=(\w+)", ours[0]), ours[0]

    def reference(self, data):
        """python3-dkim's verdict on the top signature, with the keys from the same nsd."""
        def dnsfunc(name, timeout=5):
            name = name.decode() if isinstance(name, bytes) else name
            txt = dns_txt(self.nsd.address, name.rstrip("."))
            return txt[0].encode() if txt else None
        try:
            return dkim.verify(data, dnsfunc=dnsfunc)
        except Exception:  # python3-dkim raises on some broken inputs: not a pass
            return False

    def check(self, data, marker, expected, agree=True):
        got, field = self.results(self.deliver(data, marker))
        self.assertEqual(got, [e.encode() for e in expected], f"{field!r}{self.diag()}")
        if agree:
            self.assertEqual(got[0] == b"pass", self.reference(data), f"python3-dkim disagrees: {field!r}")
        return field

    # ---- signatures that verify
    def test_rsa2048_relaxed_passes(self):
        m = unique_marker("dkim")
        field = self.check(signed(message(m), "rsa2048"), m, ["pass"])
        self.assertRegex(field, rb"dkim=pass \(.*\) header\.d=dkim\.test header\.i=@dkim\.test header\.s=rsa2048 header\.a=rsa-sha256 header\.b=\S{8,}")

    def test_rsa2048_simple_passes(self):
        m = unique_marker("dkim")
        self.check(signed(message(m), "rsa2048", canon=(b"simple", b"simple")), m, ["pass"])

    def test_rsa1024_passes(self):
        m = unique_marker("dkim")
        self.check(signed(message(m), "rsa1024", canon=(b"relaxed", b"simple")), m, ["pass"])

    def test_ed25519_relaxed_and_simple_pass(self):
        for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple")):
            m = unique_marker("dkim")
            field = self.check(signed(message(m), "ed", algorithm=b"ed25519-sha256", canon=canon), m, ["pass"])
            self.assertIn(b"header.a=ed25519-sha256", field)

    def test_two_signatures_each_reported(self):
        m = unique_marker("dkim")
        data = signed(signed(message(m), "ed", algorithm=b"ed25519-sha256"), "rsa2048")
        self.check(data, m, ["pass", "pass"])

    def test_oversigned_subject_passes_and_an_added_subject_fails(self):
        m = unique_marker("dkim")
        data = signed(message(m), "rsa2048", headers=(b"from", b"to", b"subject", b"subject", b"date"))
        self.check(data, m, ["pass"])
        m2 = unique_marker("dkim")
        data = signed(message(m2), "rsa2048", headers=(b"from", b"to", b"subject", b"subject", b"date"))
        self.check(data.replace(b"Date:", b"Subject: added\r\nDate:"), m2, ["fail"])

    def test_length_limited_signature_passes_with_the_footer_noted(self):
        m = unique_marker("dkim")
        data = signed(message(m), "rsa2048", length=True) + b"-- \r\nfooter added by a list\r\n"
        field = self.check(data, m, ["pass"])
        self.assertRegex(field, rb"past l= not signed")

    # ---- nothing else passes
    def test_unsigned_is_none(self):
        m = unique_marker("dkim")
        got, _ = self.results(self.deliver(message(m), m))
        self.assertEqual(got, [b"none"])

    def test_altered_after_signing_fails_and_scores(self):
        m = unique_marker("dkim")
        data = signed(message(m), "rsa2048").replace(b"this is", b"this was")
        self.check(data, m, ["fail"])
        self.assertTrue(self.mx.wait_log(r"dkim id=\S+ d=\"?dkim\.test\"? .*result=fail", 5), self.diag())
        data = signed(message(m + "b"), "ed", algorithm=b"ed25519-sha256").replace(b"Subject: " + m.encode(),
                                                                                   b"Subject: " + m.encode() + b" X")
        delivered = self.deliver(data, m + "b")
        self.assertEqual(self.results(delivered)[0], [b"fail"])
        self.assertRegex(delivered, rb"(?m)^X-Spam-Report: .*DKIM_FAIL=1\.5")
        self.assertFalse(self.reference(data))

    def test_revoked_key_does_not_pass(self):
        m = unique_marker("dkim")
        self.check(signed(message(m), "revoked"), m, ["fail"])

    def test_missing_key_is_permerror(self):
        m = unique_marker("dkim")
        self.check(signed(message(m), "missing"), m, ["permerror"])

    def test_rsa_sha1_does_not_pass(self):
        # by policy (issue 14): python3-dkim still accepts rsa-sha1, so no agreement is asked here
        m = unique_marker("dkim")
        field = self.check(signed(message(m), "rsa2048", algorithm=b"rsa-sha1"), m, ["policy"], agree=False)
        self.assertIn(b"rsa-sha1", field)

    def test_key_lookup_that_never_answers_is_temperror_and_relayed(self):
        m = unique_marker("dkim")
        # the reference reads nsd directly (it would pass): a DNS outage is no verdict, no agreement asked
        self.check(signed(message(m), "sel", domain=f"slow.{ZONE}"), m, ["temperror"], agree=False)

    def test_servfail_is_temperror_and_relayed(self):
        m = unique_marker("dkim")
        self.check(signed(message(m), "sel", domain=f"broken.{ZONE}"), m, ["temperror"], agree=False)

    # ---- key sizes: 4096 bits over TCP, above 4096 refused by policy
    def test_rsa4096_passes_with_its_key_over_tcp(self):
        name = f"rsa4096._domainkey.{ZONE}"
        m = unique_marker("dkim")
        field = self.check(signed(message(m), "rsa4096"), m, ["pass"])
        self.assertIn(b"header.s=rsa4096", field)
        # c-ares asked over UDP, got a truncated answer (the key record is > 512 octets; c-ares 1.18 of
        # Debian 12 sends no EDNS0), asked again over TCP
        self.assertGreaterEqual(self.proxy.queries(name, "udp"), 1)
        self.assertGreaterEqual(self.proxy.truncated(name), 1)
        self.assertGreaterEqual(self.proxy.queries(name, "tcp"), 1)

    def test_rsa_key_above_4096_bits_is_policy(self):
        # issue 14: rsa-sha256 with 1024-4096-bit keys. The key has no private half (see
        # fake_rsa_public_key): python3-dkim says fail, so both say "not pass".
        m = unique_marker("dkim")
        field = self.check(signed(message(m), "rsa8192"), m, ["policy"])
        self.assertIn(b"RSA key of 8192 bits not accepted", field)

    # ---- keys from the cache for their TTL
    def test_key_is_served_from_the_cache_during_an_outage_until_its_ttl_ends(self):
        cached, short = f"cached._domainkey.{ZONE}", f"shortttl._domainkey.{ZONE}"
        m = unique_marker("dkim")
        self.check(signed(message(m), "cached"), m, ["pass"])
        m = unique_marker("dkim")
        self.check(signed(message(m), "shortttl"), m, ["pass"])
        asked = {n: self.proxy.queries(n) for n in (cached, short)}
        self.assertGreaterEqual(min(asked.values()), 1)
        self.proxy.drop_all = True  # DNS is gone: nothing is answered any more
        try:
            m = unique_marker("dkim")
            self.check(signed(message(m), "cached"), m, ["pass"], agree=False)  # agree: reference asks nsd
            self.assertEqual(self.proxy.queries(cached), asked[cached], "a cached key was asked for again")
            time.sleep(3)  # shortttl's TTL (2 s) runs out: asked again, no answer
            m = unique_marker("dkim")
            field = self.check(signed(message(m), "shortttl"), m, ["temperror"], agree=False)
            self.assertIn(b"key lookup", field)
            self.assertGreater(self.proxy.queries(short), asked[short], "an expired key was not looked up again")
            m = unique_marker("dkim")  # the long-lived one still comes from the cache
            self.check(signed(message(m), "cached"), m, ["pass"], agree=False)
            self.assertEqual(self.proxy.queries(cached), asked[cached])
        finally:
            self.proxy.drop_all = False

    # ---- malformed and hostile keys served by nsd: never pass
    def test_malformed_keys_never_pass(self):
        cases = [  # selector, algorithm, mxfront's result, detail, agrees with python3-dkim
            ("badb64", b"rsa-sha256", "permerror", b"p= is not base64", True),
            ("unkalg", b"rsa-sha256", "permerror", b"key type dsa for rsa-sha256", True),
            ("syntax", b"rsa-sha256", "permerror", b"malformed key", True),
            # RFC 6376 section 6.1.2 step 6: a key whose h= leaves out the signature's hash is a PERMFAIL;
            # python3-dkim does not read the key's h= and passes it: no agreement asked
            ("sha1only", b"rsa-sha256", "permerror", b"key h= excludes sha256", False),
            ("edshort", b"ed25519-sha256", "permerror", b"malformed Ed25519 key", True),
            ("edlong", b"ed25519-sha256", "permerror", b"malformed Ed25519 key", True),
            ("huge", b"rsa-sha256", "permerror", b"malformed RSA key", True),  # 5000 random octets: ~6.7 KB TXT
        ]
        for sel, algorithm, result, detail, agree in cases:
            with self.subTest(sel):
                m = unique_marker("dkim")
                data = signed(message(m), sel, algorithm=algorithm)
                field = self.check(data, m, [result], agree=agree)
                self.assertIn(detail, field)
                if not agree:
                    self.assertTrue(self.reference(data), "python3-dkim's known deviation changed: re-check the case")

    def test_huge_but_valid_key_record_passes(self):
        # a several-KB key record in many strings (n= notes) is still a key: pass, like python3-dkim
        m = unique_marker("dkim")
        self.check(signed(message(m), "hugenotes"), m, ["pass"])
        self.assertGreaterEqual(self.proxy.queries(f"hugenotes._domainkey.{ZONE}", "tcp"), 1)

    # ---- the CPU part runs on the worker pool
    def pool_jobs(self):
        status, body = http_get(int(self.admin), "/metrics")
        self.assertEqual(status, 200)
        found = re.search(r'(?m)^mxfront_worker_jobs_total\{outcome="completed"\} (\d+)$', body)
        self.assertIsNotNone(found, body[-2000:])
        return int(found.group(1))

    def test_verification_runs_on_the_worker_pool(self):
        # An unsigned message costs the pool only the MIME structure gate's job; a signed one (two
        # signatures: ONE verification job) costs one more. Verification on the I/O thread would not.
        m = unique_marker("dkim")
        before = self.pool_jobs()
        self.check(message(m), m, ["none"], agree=False)
        unsigned = self.pool_jobs() - before
        self.assertGreaterEqual(unsigned, 1)
        m = unique_marker("dkim")
        before = self.pool_jobs()
        self.check(signed(signed(message(m), "ed", algorithm=b"ed25519-sha256"), "rsa2048"), m, ["pass", "pass"])
        self.assertEqual(self.pool_jobs() - before, unsigned + 1)

    def test_results_are_counted(self):
        m = unique_marker("dkim")
        self.check(signed(message(m), "rsa2048"), m, ["pass"])
        m = unique_marker("dkim")
        self.check(signed(message(m), "missing"), m, ["permerror"])
        status, body = http_get(int(self.admin), "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("# HELP mxfront_dkim_results_total ", body)
        self.assertRegex(body, r'(?m)^mxfront_dkim_results_total\{result="pass"\} [1-9]')
        self.assertRegex(body, r'(?m)^mxfront_dkim_results_total\{result="permerror"\} [1-9]')

    def test_forged_authentication_results_is_removed(self):
        m = unique_marker("dkim")
        forged = b"Authentication-Results: MX.test; dkim=pass header.d=dkim.test\r\n"
        other = b"Authentication-Results: other.example; dkim=pass header.d=dkim.test\r\n"
        data = self.deliver(forged + other + message(m), m)
        fields = self.auth_results(data)
        self.assertEqual(len(fields), 2, fields)
        self.assertEqual(self.results(data)[0], [b"none"])
        self.assertTrue(any(f.startswith(b"Authentication-Results: other.example;") for f in fields), fields)


if __name__ == "__main__":
    unittest.main()

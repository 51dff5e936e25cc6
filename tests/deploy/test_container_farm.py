#!/usr/bin/env python3
"""The farm of docker/compose.yaml, for real, with rootful podman (tests/deploy/farm.py runs the
compose file): the images are built from docker/Dockerfile and docker/farm.Dockerfile, then the
balancer (HAProxy, PROXY v2), three MX instances, the submission instance, the mailbox (Postfix
qmqpd), the directory (slapd), the DNS lists (rbldnsd), the signature updater, rspamd and its
Redis start on a bridge network made here (nothing leaves this machine). From the host:

  1. a mail through the balancer is delivered into the mailbox container's Maildir, and the
     Received header names the real client (the PROXY v2 address), an unknown recipient is
     refused (LDAP), a listed client is refused (rbldnsd), a message carrying the test signature
     is refused (ClamAV, signatures from the updater);
  1a. rspamd (one shared service): GTUBE refused in the session, a clean mail delivered with
     X-Spamd-Result, rspamd up in each instance's /health, Bayes learnt with rspamc in Redis, a
     campaign added with `rspamc fuzzy_add` refused by every instance, its hashes in Redis;
  2. the submission instance: STARTTLS + AUTH against slapd, then relays; the mail arrives
     DKIM-signed by rspamd (a throw-away key for example.org made here) and python3-dkim verifies
     the delivered copy against that key;
  3. a config change: `mxfront --reload` (systemd's ExecReload) in each instance applies a new
     rule; a broken file is refused (exit 1, mail keeps flowing, /health names it); SIGHUP restores;
  4. swapping signatures (the updater mirrors a new set): every instance swaps engines;
  5. a drain: SIGTERM to an instance holding open transactions: /readyz 503, they all get their
     250, new mail goes to the others, the instance exits 0;
  6. a crash under load: one instance SIGKILLed while mail is sent through the balancer; every
     message that was answered 250 is in the Maildir (the rest are retried, as an MTA would),
     and the restart policy brings the instance back.

Fails (never skips) when podman or the images cannot be set up. Bounded: MXFRONT_FARM_TIMEOUT
seconds (default 2400, the image builds included). Cleans up its containers, network, volumes
and images on exit (MXFRONT_FARM_KEEP_IMAGES=1 keeps the images for a faster rerun). Prints how
long the image builds and the farm took and the image size."""
import base64
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from farm import Farm, run  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPOSE = os.path.join(REPO, "docker", "compose.yaml")
PROJECT = "mxfarm"
BALANCER = "172.28.0.2"
LISTED = "172.28.0.99"  # in the test's local.bl: a client there is refused at MAIL
TIMEOUT = int(os.environ.get("MXFRONT_FARM_TIMEOUT", "2400"))
KEEP_IMAGES = os.environ.get("MXFRONT_FARM_KEEP_IMAGES") == "1"
RCPT = "alice@example.org"  # in docker/slapd/seed.ldif
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"  # rspamd's test string
USER_PASSWORD = "farm-password"
# A campaign for the fuzzy storage: over 64 words, so a copy with another token still matches (shingles).
CAMPAIGN = ("Dear friend, we are pleased to announce an exclusive investment opportunity in our international "
            "gold mining fund. Returns of forty percent per month are guaranteed by our experienced team of brokers "
            "in Zurich and Singapore. Reply today with your bank details to secure your allocation before the "
            "offer closes. Only a limited number of places remain for private investors this quarter, and our "
            "advisors will call you within the hour to confirm the transfer. Do not miss this unique chance to "
            "multiply your savings with absolutely no risk at all.")
# python3-dkim is a Debian package (the system interpreter's): the verifier runs there. argv[1] is
# the TXT record of mx._domainkey.example.org, the message comes on stdin.
DKIM_VERIFY = ("import dkim, sys\nrecord = sys.argv[1].encode()\n"
               "def dns(name, timeout=5):\n"
               "    return record if name in (b'mx._domainkey.example.org.', 'mx._domainkey.example.org.') else None\n"
               "print(dkim.verify(sys.stdin.buffer.read(), dnsfunc=dns))\n")


def log(msg):
    print(f"[farm {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ndb(name, marker):
    return f"{name}:0:*:{marker.encode().hex()}\n"


def message(token, subject="farm test", body=""):
    return (f"From: <sender@example.net>\r\nTo: <{RCPT}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{token}@farm.test>\r\n\r\n{token}\r\n{body}\r\n")


def send(token, subject="farm test", body="", host=BALANCER, port=25, timeout=60):
    """(code, text) of the end of DATA (or of the first refusal); raises on a broken connection."""
    with smtplib.SMTP(host, port, timeout=timeout) as s:
        s.ehlo("client.farm.test")
        code, text = s.mail("sender@example.net")
        if code != 250:
            return code, text.decode()
        code, text = s.rcpt(RCPT)
        if code != 250:
            return code, text.decode()
        code, text = s.data(message(token, subject, body))
        return code, text.decode()


def new_token():
    return f"farm-token-{uuid.uuid4().hex}"


class ContainerFarm(unittest.TestCase):
    farm = None

    @classmethod
    def setUpClass(cls):
        cls.t0 = time.monotonic()

        def expire(signum, frame):
            raise TimeoutError(f"farm test: over its {TIMEOUT} s budget (signal {signum})")
        signal.signal(signal.SIGALRM, expire)
        signal.signal(signal.SIGTERM, expire)
        signal.alarm(TIMEOUT)
        if shutil.which("podman") is None:
            raise RuntimeError("podman is not installed: scripts/install-deps.sh installs it (the farm test cannot run)")
        if os.geteuid() != 0:
            raise RuntimeError("the farm test needs root (rootful podman)")
        r = run("podman", "image", "exists", "docker.io/library/debian:12", check=False)
        if r.returncode != 0:
            raise RuntimeError("no debian:12 base image: scripts/install-deps.sh makes it with debootstrap")
        routes = run("ip", "-4", "route", check=False).stdout
        if "172.28.0." in routes and f"{PROJECT}_mail" not in run("podman", "network", "ls", "--format", "{{.Name}}").stdout:
            raise RuntimeError(f"172.28.0.0/24 (the compose network) is already routed here:\n{routes}")
        cls.images_before = Farm.image_ids()  # what cleanup leaves (debian:12 and anything older)
        cls.tmp = tempfile.mkdtemp(prefix="mxtest-farm.")
        os.chmod(cls.tmp, 0o755)
        try:
            cls._prepare()
            cls._start()
        except BaseException:
            cls.failed = True  # the containers' logs are printed
            cls._cleanup()
            raise

    @classmethod
    def _prepare(cls):
        T = cls.tmp
        cls.config = os.path.join(T, "mxfront.toml")  # the instances' config, edited by the reload test
        shutil.copy(os.path.join(REPO, "docker", "mxfront.compose.toml"), cls.config)
        os.chmod(cls.config, 0o644)
        with open(cls.config) as f:
            cls.config_text = f.read()
        tls = os.path.join(T, "tls")
        os.makedirs(tls)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{tls}/privkey.pem",
            "-out", f"{tls}/fullchain.pem", "-days", "2", "-subj", "/CN=smtp.example.org")
        for f in os.listdir(tls):
            os.chmod(os.path.join(tls, f), 0o644)  # the image's mxfront user reads them
        cls.seed = os.path.join(T, "signatures")  # what the updater mirrors into the volume
        os.makedirs(cls.seed)
        with open(os.path.join(cls.seed, "farm-a.ndb"), "w") as f:
            f.write(ndb("Farm.Test.A", "mxfront-farm-virus-A"))
        # rspamd's DKIM key for example.org (selector mx), made here and mounted where an admin puts
        # the farm's keys (docker/rspamd/dkim/README.md); the verifier gets the public half
        dkim_dir = os.path.join(T, "dkim")
        os.makedirs(dkim_dir)
        key = os.path.join(dkim_dir, "example.org.mx.key")
        run("openssl", "genrsa", "-out", key, "2048")
        os.chmod(key, 0o600)  # root's: the spamengine's start.sh (root) copies it for _rspamd
        pub = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"], check=True,
                             capture_output=True).stdout
        cls.dkim_record = "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()
        zones = os.path.join(T, "rbldnsd")
        shutil.copytree(os.path.join(REPO, "docker", "rbldnsd"), zones)
        with open(os.path.join(zones, "local.bl"), "a") as f:
            f.write(f"{LISTED}\n")  # a client container of the rbl test
        cls.farm = Farm(COMPOSE, PROJECT, log=log,
                        overrides={"./mxfront.compose.toml": cls.config, "./tls": tls, "./rbldnsd": zones,
                                   "./rspamd/dkim": dkim_dir},
                        environment={"sigupdate": {"SIGUPDATE_SOURCE": "/seed", "SIGUPDATE_INTERVAL": "2"},
                                     "ldap": {"SEED_USER_PASSWORD": USER_PASSWORD}},
                        extra_volumes={"sigupdate": [f"{cls.seed}:/seed:ro"]})

    @classmethod
    def _start(cls):
        farm = cls.farm
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        t = time.monotonic()
        for image in farm.images():
            if KEEP_IMAGES and run("podman", "image", "exists", image, check=False).returncode == 0:
                log(f"reusing {image}")
                continue
            farm.build(image, ["--build-arg", f"GIT_REV={rev}"] if image == "localhost/mxfront" else [])
        cls.build_seconds = time.monotonic() - t
        size = run("podman", "image", "inspect", "-f", "{{.Size}}", "localhost/mxfront").stdout.strip()
        cls.image_mb = int(size) / 1e6
        log(f"images built in {cls.build_seconds:.0f} s; localhost/mxfront is {cls.image_mb:.0f} MB")
        out = run("podman", "run", "--rm", "localhost/mxfront", "--version").stdout.strip()
        log(f"image runs: {out}")
        t = time.monotonic()
        farm.up(health_timeout=120)
        for c in farm.containers("mx"):
            farm.wait(lambda c=c: cls.ready(c), 120, f"{c} /readyz")
        farm.wait(lambda: cls.greets(BALANCER, 25), 60, "the balancer answers with a 220 greeting")
        cls.up_seconds = time.monotonic() - t
        log(f"farm up in {cls.up_seconds:.0f} s")

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()
        if hasattr(cls, "t0"):
            log(f"farm test took {time.monotonic() - cls.t0:.0f} s in all")

    @classmethod
    def _cleanup(cls):
        signal.alarm(0)
        try:
            if cls.farm:
                if os.environ.get("MXFRONT_FARM_LOGS") or getattr(cls, "failed", False):
                    for svc in cls.farm.services:
                        for c in cls.farm.containers(svc):
                            print(f"--- logs of {c}\n{cls.farm.logs(c)}")
                cls.farm.down()
                if not KEEP_IMAGES:
                    cls.farm.remove_images(keep=cls.images_before)
        finally:
            shutil.rmtree(getattr(cls, "tmp", "/nonexistent"), ignore_errors=True)

    def run(self, result=None):
        r = super().run(result)
        if result is not None and (result.failures or result.errors):
            type(self).failed = True
        return r

    # ------------------------------------------------------------------ helpers
    @classmethod
    def ready(cls, container):
        r = cls.farm.exec(container, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "http://127.0.0.1:9025/readyz", check=False, timeout=10)
        return r.stdout.strip() == "200"

    @staticmethod
    def greets(host, port):
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                s.settimeout(5)
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def delivered(self):
        """Tokens found in the mailbox container's Maildirs."""
        r = self.farm.exec(self.farm.container("mailbox"), "sh", "-c",
                           "grep -rhoa 'farm-token-[0-9a-f]*' /var/mail/vhosts || true", timeout=60)
        return set(r.stdout.split())

    def wait_delivered(self, tokens, timeout=60):
        tokens = set(tokens)
        deadline = time.monotonic() + timeout
        while True:
            missing = tokens - self.delivered()
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(1)

    def mailbox_file(self, token):
        r = self.farm.exec(self.farm.container("mailbox"), "sh", "-c",
                           f"grep -rla '{token}' /var/mail/vhosts | head -1 | xargs cat", timeout=30)
        return r.stdout

    def admin(self, container, path):
        return self.farm.exec(container, "curl", "-s", f"http://127.0.0.1:9025{path}", check=False, timeout=10).stdout

    def metric(self, container, name):
        m = re.search(rf"^mxfront_{name} (\S+)$", self.admin(container, "/metrics"), re.M)
        return float(m.group(1)) if m else None

    def each_instance_answers(self, predicate, what, timeout=90, rounds=6, **send_kw):
        """`rounds` consecutive mails through the balancer all satisfy predicate((code, text))."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            results = [predicate(last := self.try_send(**send_kw)) for _ in range(rounds)]
            if all(results):
                return
            time.sleep(2)
        self.fail(f"{what}: last answer {last}")

    def try_send(self, **kw):
        try:
            return send(new_token(), **kw)
        except (smtplib.SMTPException, OSError) as e:
            return (0, str(e))

    # ------------------------------------------------------------------ tests (in name order)
    def test_1_delivery_through_the_balancer(self):
        token = new_token()
        code, text = send(token)
        self.assertEqual(code, 250, text)
        self.assertFalse(self.wait_delivered([token], 60), "the accepted message is not in the Maildir")
        mail = self.mailbox_file(token)
        # PROXY v2: the instance saw the host's address on the bridge, not the balancer's.
        self.assertRegex(mail, r"Received: from client\.farm\.test \(\S* ?\[172\.28\.0\.1\]", mail[:600])
        self.assertNotIn("[172.28.0.2]", mail.split("\r\n\r\n")[0] if "\r\n\r\n" in mail else mail[:800])
        # The directory: an unknown recipient is refused at RCPT.
        with smtplib.SMTP(BALANCER, 25, timeout=30) as s:
            s.ehlo("client.farm.test")
            s.mail("sender@example.net")
            code, text = s.rcpt("nobody@example.org")
            self.assertEqual(code, 550, text)
        # ClamAV with the updater's signatures: the test marker is refused, naming the signature.
        code, text = self.try_send(body="mxfront-farm-virus-A")
        self.assertEqual(code, 554, text)
        self.assertIn("Farm.Test.A", text)

    def test_1a_rspamd(self):
        # The spamengine service (one rspamd shared by the instances): GTUBE is refused in the session
        # through the balancer, a clean mail arrives with rspamd's headers, each instance shows
        # rspamd as a /health dependency, and Bayes learnt with rspamc lands in the farm's Redis.
        self.each_instance_answers(lambda r: r[0] == 554 and "5.7.1" in r[1], "GTUBE refused by rspamd",
                                   body=GTUBE)
        token = new_token()
        code, text = send(token)
        self.assertEqual(code, 250, text)
        self.assertFalse(self.wait_delivered([token], 60), "the accepted message is not in the Maildir")
        self.assertRegex(self.mailbox_file(token), r"(?m)^X-Spamd-Result: default: False \[")
        for c in self.farm.containers("mx"):
            deps = json.loads(self.admin(c, "/health"))["dependencies"]
            rs = [d for d in deps if d["kind"] == "rspamd"]
            self.assertEqual([(d["name"], d["up"]) for d in rs], [("172.28.0.40:11333", True)], f"{c}: {deps}")
        engine = self.farm.container("spamengine")
        r = self.farm.exec(engine, "rspamc", "learn_spam", input=message(new_token(), "cheap stuff", "buy now " * 50),
                           check=False, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("success = true", r.stdout, r.stdout + r.stderr)
        keys = self.farm.exec(self.farm.container("state"), "redis-cli", "--scan", "--pattern", "*", timeout=30).stdout
        self.assertRegex(keys, r"\S", "rspamd's Bayes statistics are in the farm's Redis")
        # Fuzzy hashes: a campaign added on the spamengine (flag 11: LOCAL_FUZZY_DENIED, 20 points, over
        # rspamd's reject) goes through its fuzzy storage into the farm's Redis (written every 5 s),
        # and every instance then refuses copies of it (each carries another token: shingles match).
        r = self.farm.exec(engine, "rspamc", "fuzzy_add", "-f", "11", "-w", "10",
                           input=message(new_token(), "offer", CAMPAIGN), check=False, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("success = true", r.stdout, r.stdout + r.stderr)
        self.each_instance_answers(lambda r: r[0] == 554 and "5.7.1" in r[1], "the fuzzy-listed campaign refused",
                                   subject="offer", body=CAMPAIGN)
        keys = self.farm.exec(self.farm.container("state"), "redis-cli", "--scan", "--pattern", "fuzzy_*",
                              timeout=30).stdout
        self.assertRegex(keys, r"(?m)^fuzzy_\d+_\d+$", "the campaign's shingles are in the farm's Redis")

    def test_2_dns_list(self):
        # A client at an address listed in rbldnsd's local.bl (a container on the farm network,
        # speaking SMTP with bash): refused at MAIL with the list's text, through the balancer.
        script = ("exec 3<>/dev/tcp/%s/25; read -t 10 g <&3; printf 'EHLO listed.farm.test\\r\\n' >&3; sleep 1; "
                  "printf 'MAIL FROM:<a@example.net>\\r\\n' >&3; sleep 3; printf 'QUIT\\r\\n' >&3; "
                  "timeout 10 cat <&3" % BALANCER)
        r = run("podman", "run", "--rm", "--network", f"{self.farm.network('mail')}:ip={LISTED}",
                self.farm.services["mailbox"]["image"], "bash", "-c", script, check=False, timeout=60)
        self.assertRegex(r.stdout, r"554[ -]5\.7\.1 .*local blocklist", r.stdout + r.stderr)

    def test_3_submission(self):
        addr = self.farm.address(self.farm.container("submission"))
        token = new_token()
        r = subprocess.run(["swaks", "--server", addr, "--port", "2587", "--tls", "--auth", "PLAIN",
                            "--auth-user", RCPT, "--auth-password", USER_PASSWORD, "--from", RCPT,
                            "--to", RCPT, "--header", f"Subject: {token}", "--body", token,
                            "--timeout", "30"], capture_output=True, text=True, timeout=90)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        self.assertRegex(r.stdout, r"<~  250 2\.0\.0")
        self.assertFalse(self.wait_delivered([token], 60), "the submitted message is not in the Maildir")

    def test_3a_submission_is_dkim_signed(self):
        # The submission instance has rspamd after relay_control (Settings-ID "outbound"): rspamd's
        # dkim_signing signs the authenticated user's mail with the key of its From domain, mxfront
        # prepends the signature, and the delivered copy verifies against the key made in _prepare.
        addr = self.farm.address(self.farm.container("submission"))
        token = new_token()
        r = subprocess.run(["swaks", "--server", addr, "--port", "2587", "--tls", "--auth", "PLAIN",
                            "--auth-user", RCPT, "--auth-password", USER_PASSWORD, "--from", RCPT,
                            "--to", RCPT, "--header", f"Subject: {token}", "--body", token,
                            "--timeout", "30"], capture_output=True, text=True, timeout=90)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        self.assertFalse(self.wait_delivered([token], 60), "the submitted message is not in the Maildir")
        mail = self.mailbox_file(token)
        head = re.split(r"\r?\n\r?\n", mail, maxsplit=1)[0]
        self.assertRegex(head, r"(?m)^DKIM-Signature: v=1; a=rsa-sha256; .*d=example\.org; s=mx;", head)
        wire = re.sub(r"\r?\n", "\r\n", mail).encode()  # as a verifier on the Internet gets it
        v = subprocess.run(["/usr/bin/python3", "-c", DKIM_VERIFY, self.dkim_record], input=wire,
                           capture_output=True, timeout=60)
        self.assertEqual(v.stdout.strip(), b"True", (v.stdout + v.stderr).decode(errors="replace") + head)
        # the check can fail: the body changed after signing does not verify
        v = subprocess.run(["/usr/bin/python3", "-c", DKIM_VERIFY, self.dkim_record],
                           input=wire + b"a line added after signing\r\n", capture_output=True, timeout=60)
        self.assertEqual(v.stdout.strip(), b"False", (v.stdout + v.stderr).decode(errors="replace"))

    def test_4_config_reload(self):
        mx = self.farm.containers("mx")
        probe = "farm-reload-probe"
        rule = (f'\n[[rules.rule]]\nname = "FARM_RELOAD_PROBE"\nkind = "header"\nheader = "Subject"\n'
                f'pattern = "{probe}"\naction = "reject"\n')

        def write(text):  # in place: the bind mount follows the inode
            with open(self.config, "w") as f:
                f.write(text)

        def reload(c):
            return self.farm.exec(c, "mxfront", "--reload", "/etc/mxfront/mxfront.toml", check=False, timeout=90)

        try:
            write(self.config_text + rule)
            for c in mx:
                r = reload(c)
                self.assertEqual(r.returncode, 0, f"{c}: {r.stdout}{r.stderr}")
                self.assertIn("reloaded", r.stdout)
            self.each_instance_answers(lambda a: a[0] == 554 and "FARM_RELOAD_PROBE" in a[1],
                                       "the reloaded rule refuses the probe on every instance", 30, subject=probe)
            # A file that does not parse: `mxfront --reload` (systemd's ExecReload) fails.
            write(self.config_text + rule + "\n[qmqp\n")
            r = reload(mx[0])
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            # A file the server refuses (a certificate that is not there): exit 1 with the reason,
            # the running config keeps serving, /health names the refusal.
            write(self.config_text + rule + '\n[tls]\ncert_file = "/nonexistent/cert.pem"\n'
                  'key_file = "/nonexistent/key.pem"\n')
            r = reload(mx[0])
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("reload refused", r.stderr)
            health = json.loads(self.admin(mx[0], "/health"))
            self.assertTrue(health["config"]["last_reload_error"], health["config"])
            self.each_instance_answers(lambda a: a[0] == 554 and "FARM_RELOAD_PROBE" in a[1],
                                       "the previous (reloaded) config still serves everywhere", 10, subject=probe)
        finally:
            write(self.config_text)
        # Back to the shipped file with SIGHUP (what `kill -HUP` does).
        for c in mx:
            run("podman", "kill", "--signal", "HUP", c)
        self.each_instance_answers(lambda a: a[0] == 250, "the probe rule is gone after SIGHUP", 30, subject=probe)
        self.assertEqual(json.loads(self.admin(mx[0], "/health"))["config"]["last_reload_error"], "")

    def test_5_signature_swap(self):
        with open(os.path.join(self.seed, "farm-b.ndb"), "w") as f:
            f.write(ndb("Farm.Test.B", "mxfront-farm-virus-B"))
        os.remove(os.path.join(self.seed, "farm-a.ndb"))
        t = time.monotonic()
        self.each_instance_answers(lambda a: a[0] == 554 and "Farm.Test.B" in a[1],
                                   "every instance swapped in the new signatures (B refused)", 90,
                                   body="mxfront-farm-virus-B")
        code, text = self.try_send(body="mxfront-farm-virus-A")
        self.assertEqual(code, 250, f"the old signature is gone: {text}")
        log(f"signature swap seen by every instance after {time.monotonic() - t:.0f} s")

    def test_6_drain(self):
        victim = self.farm.container("mx", 1)
        sessions = []
        try:
            for _ in range(9):  # leastconn: three per instance
                s = smtplib.SMTP(BALANCER, 25, timeout=60)
                s.ehlo("client.farm.test")
                self.assertEqual(s.mail("sender@example.net")[0], 250)
                self.assertEqual(s.rcpt(RCPT)[0], 250)
                sessions.append(s)
            self.assertGreaterEqual(self.metric(victim, "transactions") or 0, 1, "no transaction on the instance to drain")
            pid = run("podman", "inspect", "-f", "{{.State.Pid}}", victim).stdout.strip()
            os.kill(int(pid), signal.SIGTERM)  # what `podman stop` / the kubelet send
            self.farm.wait(lambda: not self.ready(victim), 10, f"{victim} /readyz fails while draining")
            time.sleep(3)  # HAProxy: fall 2 x inter 1 s
            token = new_token()
            self.assertEqual(send(token)[0], 250, "new mail goes to the other instances")
            tokens = []
            for s in sessions:
                tok = new_token()
                code, text = s.data(message(tok))
                self.assertEqual(code, 250, f"a transaction open when the drain began: {text}")
                tokens.append(tok)
                s.quit()
            sessions = []
            r = run("podman", "wait", victim, timeout=60)
            self.assertEqual(r.stdout.strip(), "0", "the drained instance exits 0")
            self.assertFalse(self.wait_delivered(tokens + [token], 60))
        finally:
            for s in sessions:
                try:
                    s.close()
                except OSError:
                    pass
        run("podman", "start", victim)
        self.farm.wait(lambda: self.ready(victim), 120, f"{victim} ready again")

    def test_7_crash_under_load(self):
        victim = self.farm.container("mx", 2)
        restarts = int(run("podman", "inspect", "-f", "{{.RestartCount}}", victim).stdout.strip() or 0)
        pid = run("podman", "inspect", "-f", "{{.State.Pid}}", victim).stdout.strip()
        todo = [new_token() for _ in range(400)]
        body = "x" * 76 + "\r\n"
        body = body * 600  # ~47 KB: the scan and the relay take a moment, so transactions are in flight
        accepted, refused, lock = set(), [], threading.Lock()
        done = threading.Event()
        count = [0]

        def worker():
            while True:
                with lock:
                    if not todo:
                        return
                    tok = todo.pop()
                try:
                    code, text = send(tok, body=body, timeout=60)
                except (smtplib.SMTPException, OSError) as e:
                    code, text = 0, str(e)
                with lock:
                    count[0] += 1
                    if code == 250:
                        accepted.add(tok)
                    else:
                        refused.append(tok)  # never told 250: the sending MTA retries
                    if count[0] >= 20:
                        done.set()

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        done.wait(120)
        os.kill(int(pid), signal.SIGKILL)  # a crash, not a stop: the restart policy applies
        at_kill = count[0]
        log(f"killed {victim} after {at_kill} of 400 messages")
        for t in threads:
            t.join(300)
        log(f"{len(accepted)} accepted, {len(refused)} not (to retry)")
        self.assertLess(at_kill, 300, "the instance was killed while the load ran")
        # The senders retry what was not accepted, as an MTA would.
        deadline = time.monotonic() + 120
        while refused and time.monotonic() < deadline:
            tok = refused.pop()
            try:
                code, _ = send(tok, body=body, timeout=60)
            except (smtplib.SMTPException, OSError):
                code = 0
            (accepted.add(tok) if code == 250 else refused.insert(0, tok))
            if code != 250:
                time.sleep(1)
        self.assertFalse(refused, "retried messages still not accepted")
        missing = self.wait_delivered(accepted, 90)
        self.assertFalse(missing, f"{len(missing)} messages answered 250 are not in the Maildir")
        self.farm.wait(lambda: self.ready(victim), 120, f"{victim} restarted by its restart policy and ready")
        after = int(run("podman", "inspect", "-f", "{{.RestartCount}}", victim).stdout.strip() or 0)
        self.assertGreater(after, restarts, "the restart policy restarted the crashed instance")


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""A REAL rspamd (Debian package) for integration tests, private to the test.

  * Rspamd(extra_local=None, fuzzy_redis=None) - rspamd 3.x in the foreground (-f) as user _rspamd, with the stock
    config in /etc/rspamd but its own LOCAL_CONFDIR, RUNDIR, DBDIR and LOGDIR in a temp dir:
    its workers (normal, controller, proxy) bound to free loopback ports (the proxy in milter mode,
    scanning itself: `proxy_port` and the unix socket `proxy_socket` are a milter for Postfix's
    smtpd_milters), DNS pointed only at a
    loopback black hole (a UDP socket that never answers: rspamd can resolve no name, so it can
    reach nothing outside), the modules that would go to the network or need Redis disabled, and
    milter_headers asked to add X-Spamd-Result (and X-Rspamd-Server) to every message.
    With fuzzy_redis="127.0.0.1:PORT" it also runs a fuzzy_storage worker (UDP, `fuzzy_port`)
    whose hashes live in that Redis, and fuzzy_check has one rule "local" (instead of rspamd.com's)
    asking it: writable (read_only = no; the storage accepts writes from 127.0.0.1 only, no keypair),
    flags FUZZY_FLAGS. Two instances on one Redis share their fuzzy hashes (the farm's layout).
    start() waits for GET /ping -> "pong" (up to 180 s: rspamd compiles its regexps and TLD list at
    start, slow on a loaded 2-core machine); a rspamd that does not come up raises HarnessError with
    its log. stop() kills it by PID (its process group) and removes the temp dir.
  * FarmRspamd(redis, dkim_dir) - the same, but configured with the farm's docker/rspamd/ (local.d and
    override.d as the spamengine image has them) with its addresses swapped for loopback ones: the
    farm's Redis -> `redis`, rbldnsd -> the black hole, the workers -> free ports, the DKIM keys'
    directory -> `dkim_dir`. What the farm's rspamd does, checked without containers.
  * GTUBE - rspamd's test string (action reject).
  * FUZZY_FLAGS - the local rule's symbols and their flags (`rspamc fuzzy_add -f FLAG -w WEIGHT`),
    FUZZY_SCORES their scores (DENIED alone reaches reject, 15; PROB add header, 6).
Python standard library only; every socket has a timeout.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

from mxharness import HarnessError, _stop_process, free_port

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
USER = "_rspamd"

# Modules that query the network (DNS lists, fuzzy storage, URL/ASN lookups) or need Redis.
DISABLED = ["fuzzy_check", "rbl", "asn", "phishing", "url_reputation", "emails", "dcc", "neural", "ratelimit",
            "greylist", "replies", "history_redis", "reputation", "bayes_expiry", "mx_check", "spamtrap",
            "url_redirector", "external_services", "metadata_exporter", "clickhouse", "elastic", "dynamic_conf"]

# The fuzzy rule of a harness rspamd with fuzzy_redis: symbol -> flag, and the symbols' scores (the
# score of a match is the symbol's score times tanh(e * weight / max_score), max_score = 10).
FUZZY_FLAGS = {"LOCAL_FUZZY_DENIED": 11, "LOCAL_FUZZY_PROB": 12, "LOCAL_FUZZY_WHITE": 13}
FUZZY_SCORES = {"LOCAL_FUZZY_UNKNOWN": 0.0, "LOCAL_FUZZY_DENIED": 20.0, "LOCAL_FUZZY_PROB": 8.0,
                "LOCAL_FUZZY_WHITE": -4.0}


# What the mxfront tests of the rspamd filter send, and the config they give mxfront.
TEST_SENDER = "s@example.net"
TEST_RCPT = "bob@example.org"


def mxfront_config(servers, admin=None, check_interval=0.2, **rspamd):
    """Mxfront config overrides: the mx profile ends with rspamd on `servers`; [rspamd] gets
    `rspamd`; with `admin`, /health checks every `check_interval` seconds (one check to change)."""
    cfg = {"rspamd": {"servers": list(servers)}, "profile.mx": {"filters": ["relay_control", "rspamd"]}}
    cfg["rspamd"].update(rspamd)
    if admin:
        cfg["admin"] = {"address": f"127.0.0.1:{admin}", "check_interval": check_interval, "check_rise": 1,
                        "check_fall": 1}
    return cfg


def clean_mail(marker, body="Hello Bob,\r\nsee you at lunch.\r\n"):
    """A small clean message from TEST_SENDER to TEST_RCPT, its Subject `marker`."""
    return (f"From: Sam <{TEST_SENDER}>\r\nTo: Bob <{TEST_RCPT}>\r\nSubject: {marker}\r\n"
            f"Date: Mon, 07 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{marker}@example.net>\r\n\r\n{body}").encode()


# rspamd compiles its hyperscan databases at start (the URL TLD list alone: ~10 s on this 2-core
# machine, over a minute when it is loaded) and caches them by content hash: one cache shared by
# every test's rspamd makes the later starts take about a second.
HS_CACHE = "/tmp/mxtest-rspamd-hs-cache"


def hs_cache_dir():
    """The shared hyperscan cache directory, made and given to the rspamd user."""
    os.makedirs(HS_CACHE, mode=0o755, exist_ok=True)
    u = pwd.getpwnam(USER)
    os.chown(HS_CACHE, u.pw_uid, u.pw_gid)
    return HS_CACHE


def free_udp_port(host="127.0.0.1"):
    """A UDP port that is free on `host` right now (the fuzzy storage listens on UDP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def fuzzy_config(port, redis):
    """(relative path, text) of a fuzzy_storage worker on 127.0.0.1:`port` keeping its hashes in
    `redis`, and of fuzzy_check's one rule "local" asking it (replaces the stock rspamd.com rule)."""
    fmap = "".join(f"    {sym} {{ max_score = 10.0; flag = {flag}; }}\n" for sym, flag in FUZZY_FLAGS.items())
    scores = "".join(f'  "{sym}" {{ weight = {w}; description = "local fuzzy hash (test)"; }}\n'
                     for sym, w in FUZZY_SCORES.items())
    return [
        ("override.d/worker-fuzzy.inc",
         f'bind_socket = "127.0.0.1:{port}";\ncount = 1;\nbackend = "redis";\nservers = "{redis}";\n'
         'expire = 1d;\nsync = 1s;\nallow_update = ["127.0.0.1"];\n'),
        ("override.d/fuzzy_check.conf",
         'min_bytes = 100;\ntimeout = 1s;\nretransmits = 1;\n'
         f'rule "local" {{\n  algorithm = "mumhash";\n  servers = "127.0.0.1:{port}";\n'
         '  symbol = "LOCAL_FUZZY_UNKNOWN";\n  mime_types = ["*"];\n  max_score = 10.0;\n  read_only = no;\n'
         '  skip_unknown = yes;\n  short_text_direct_hash = true;\n  min_length = 64;\n'
         f'  fuzzy_map = {{\n{fmap}  }}\n}}\n'),
        ("local.d/fuzzy_group.conf", f"symbols = {{\n{scores}}}\n"),
    ]


class Rspamd:
    def __init__(self, extra_local=None, fuzzy_redis=None):
        self.extra_local = extra_local or {}
        self.fuzzy_redis = fuzzy_redis
        self.fuzzy_port = None
        self.dir = None
        self.proc = None
        self.port = self.controller_port = self.proxy_port = None
        self.proxy_socket = None
        self.black_hole = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _write(self, rel, text):
        path = os.path.join(self.dir, "local", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def _configure(self):
        dns = self._ports()
        self._write("override.d/worker-normal.inc", f'bind_socket = "127.0.0.1:{self.port}";\ncount = 1;\n')
        self._write("override.d/worker-controller.inc", f'bind_socket = "127.0.0.1:{self.controller_port}";\ncount = 1;\n')
        # the proxy worker is a milter (what Postfix's smtpd_milters talks to) that scans in its own
        # process: the stock upstream "local" (hosts = "localhost", port 11333) is not this rspamd
        # (also on the unix socket `proxy_socket`, mode 0666: Postfix's smtpd_milters = unix:PATH)
        self.proxy_socket = os.path.join(self.dir, "run", "proxy.sock")
        self._write("override.d/worker-proxy.inc",
                    f'bind_socket = "127.0.0.1:{self.proxy_port}";\nbind_socket = "{self.proxy_socket} mode=0666";\n'
                    'count = 1;\nmilter = yes;\nupstream "local" {\n  default = yes;\n  self_scan = yes;\n}\n')
        self._write("override.d/logging.inc", f'type = "file";\nfilename = "{self.dir}/log/rspamd.log";\nlevel = "info";\n')
        self._write("local.d/options.inc",
                    f'dns {{\n  nameserver = ["127.0.0.1:{dns}"];\n  timeout = 0.3s;\n  retransmits = 1;\n}}\n'
                    f'check_all_filters = false;\nhs_cache_dir = "{hs_cache_dir()}";\n')
        self._write("local.d/milter_headers.conf",
                    'use = ["x-spamd-result", "x-rspamd-server"];\nskip_local = false;\nskip_authenticated = false;\n')
        for m in DISABLED:
            if not (m == "fuzzy_check" and self.fuzzy_redis):
                self._write(f"override.d/{m}.conf", "enabled = false;\n")
        if self.fuzzy_redis:
            self.fuzzy_port = free_udp_port()
            for rel, text in fuzzy_config(self.fuzzy_port, self.fuzzy_redis):
                self._write(rel, text)
        for rel, text in self.extra_local.items():
            self._write(rel, text)
        self._own()

    def _ports(self):
        """Free ports for the workers and the DNS black hole; returns the black hole's port."""
        self.port, self.controller_port, self.proxy_port = free_port(), free_port(), free_port()
        self.black_hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.black_hole.bind(("127.0.0.1", 0))
        return self.black_hole.getsockname()[1]

    def _own(self):
        """The run/db/log directories made, the whole tree given to _rspamd."""
        for sub in ("run", "db", "log"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        u = pwd.getpwnam(USER)
        for root, dirs, files in os.walk(self.dir):
            for name in dirs + files:
                os.chown(os.path.join(root, name), u.pw_uid, u.pw_gid)
        os.chown(self.dir, u.pw_uid, u.pw_gid)

    def log(self):
        out = ""
        for name in ("log/rspamd.log", "stderr.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f"--- {name} ---\n" + f.read()[-6000:]
            except (OSError, TypeError):
                pass
        return out

    def ping(self, timeout=1.0):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=timeout) as r:
                return r.status == 200 and r.read().startswith(b"pong")
        except OSError:
            return False

    def start(self, timeout=180.0):
        self.dir = tempfile.mkdtemp(prefix="mxtest-rspamd.", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self._configure()
        err = open(os.path.join(self.dir, "stderr.log"), "wb")
        cmd = ["rspamd", "-f", "-u", USER, "-g", USER, "-c", "/etc/rspamd/rspamd.conf",
               "--var", f"LOCAL_CONFDIR={self.dir}/local", "--var", f"RUNDIR={self.dir}/run",
               "--var", f"DBDIR={self.dir}/db", "--var", f"LOGDIR={self.dir}/log"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.ping():
                return self
            time.sleep(0.2)
        code = self.proc.poll()
        text = self.log()
        self.stop()
        raise HarnessError(f"rspamd did not answer /ping on 127.0.0.1:{self.port} (exit code {code}); "
                           f"command: {' '.join(cmd)}\n{text}")

    def kill(self):
        """SIGKILL the whole rspamd process group (main and workers): a dead rspamd, ports closed."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            _stop_process(self.proc, group=True)
        self.kill()
        if self.black_hole:
            self.black_hole.close()
            self.black_hole = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class FarmRspamd(Rspamd):
    """rspamd with the farm's configuration (docker/rspamd/), on loopback: see the module docstring."""
    FARM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docker", "rspamd")
    # file -> (the farm's value, what it becomes here); each must be found (the farm's files changed?)
    REWRITES = {
        "local.d/redis.conf": [("172.28.0.30:6379", "{redis}")],
        "local.d/options.inc": [("172.28.0.53:53", "127.0.0.1:{dns}")],
        "override.d/worker-normal.inc": [("*:11333", "127.0.0.1:{port}")],
        "override.d/worker-controller.inc": [("*:11334", "127.0.0.1:{controller_port}")],
        "override.d/worker-fuzzy.inc": [("127.0.0.1:11335", "127.0.0.1:{fuzzy_port}")],
        "override.d/fuzzy_check.conf": [("127.0.0.1:11335", "127.0.0.1:{fuzzy_port}")],
        "override.d/dkim_signing.conf": [("/var/lib/rspamd/dkim/", "{dkim_dir}/")],
        "override.d/logging.inc": [(re.compile(r"(?s).*"), 'type = "file";\nfilename = "{log}";\nlevel = "info";\n')],
    }

    def __init__(self, redis, dkim_dir):
        super().__init__()
        self.redis, self.dkim_dir = redis, dkim_dir

    def _configure(self):
        dns = self._ports()
        self.fuzzy_port = free_udp_port()
        local = os.path.join(self.dir, "local")
        for sub in ("local.d", "override.d"):
            shutil.copytree(os.path.join(self.FARM_DIR, sub), os.path.join(local, sub))
        values = dict(redis=self.redis, dns=dns, port=self.port, controller_port=self.controller_port,
                      fuzzy_port=self.fuzzy_port, dkim_dir=self.dkim_dir, log=f"{self.dir}/log/rspamd.log")
        for rel, edits in self.REWRITES.items():
            path = os.path.join(local, rel)
            with open(path) as f:
                text = f.read()
            for old, new in edits:
                new = new.format(**values)
                if isinstance(old, str):
                    if old not in text:
                        raise HarnessError(f"docker/rspamd/{rel} no longer has {old!r}")
                    text = text.replace(old, new)
                else:
                    text = new
            if rel == "local.d/options.inc":
                text += f'\nhs_cache_dir = "{hs_cache_dir()}";\n'  # the tests' shared cache (see HS_CACHE)
            with open(path, "w") as f:
                f.write(text)
        # the stock proxy worker (localhost:11332) would collide with other rspamd on this machine
        self.proxy_socket = None
        self._write("override.d/worker-proxy.inc", f'bind_socket = "127.0.0.1:{self.proxy_port}";\ncount = 1;\n')
        self._own()

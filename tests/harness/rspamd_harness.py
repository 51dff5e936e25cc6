"""A REAL rspamd (Debian package) for integration tests, private to the test.

  * Rspamd(extra_local=None) - rspamd 3.x in the foreground (-f) as user _rspamd, with the stock
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
    start() waits for GET /ping -> "pong"; a rspamd that does not come up raises HarnessError with
    its log. stop() kills it by PID (its process group) and removes the temp dir.
  * GTUBE - rspamd's test string (action reject).
  * FUZZY_FLAGS - the local rule's symbols and their flags (`rspamc fuzzy_add -f FLAG -w WEIGHT`),
    FUZZY_SCORES their scores (DENIED alone reaches reject, 15; PROB add header, 6).
Python standard library only; every socket has a timeout.
"""
import os
import pwd
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
        self.port, self.controller_port, self.proxy_port = free_port(), free_port(), free_port()
        self.black_hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.black_hole.bind(("127.0.0.1", 0))
        dns = self.black_hole.getsockname()[1]
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
                    'check_all_filters = false;\n')
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

    def start(self, timeout=60.0):
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

"""A REAL rspamd (Debian package) for integration tests, private to the test.

  * Rspamd(extra_local=None) - rspamd 3.x in the foreground (-f) as user _rspamd, with the stock
    config in /etc/rspamd but its own LOCAL_CONFDIR, RUNDIR, DBDIR and LOGDIR in a temp dir:
    its workers (normal, controller, proxy) bound to free loopback ports (the proxy in milter mode,
    scanning itself: `proxy_port` and the unix socket `proxy_socket` are a milter for Postfix's
    smtpd_milters), DNS pointed only at a
    loopback black hole (a UDP socket that never answers: rspamd can resolve no name, so it can
    reach nothing outside), the modules that would go to the network or need Redis disabled, and
    milter_headers asked to add X-Spamd-Result (and X-Rspamd-Server) to every message.
    start() waits for GET /ping -> "pong"; a rspamd that does not come up raises HarnessError with
    its log. stop() kills it by PID (its process group) and removes the temp dir.
  * GTUBE - rspamd's test string (action reject).
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


class Rspamd:
    def __init__(self, extra_local=None):
        self.extra_local = extra_local or {}
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
            self._write(f"override.d/{m}.conf", "enabled = false;\n")
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

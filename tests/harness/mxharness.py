"""Integration-test harness for mxfront (Python 3 standard library only).

Real components wherever possible:
  * PostfixQmqp      - a private Postfix instance whose qmqpd delivers every recipient into Maildirs
                       (needs root: Postfix's master starts as root and drops privileges).
  * QmqpSink         - Postfix's qmqp-sink, a fast discard QMQP server.
  * MisbehavingQmqp  - a tiny scripted QMQP peer, ONLY for faults a real server cannot be made to
                       produce on demand (answer cut off, garbage answer, silence).
  * Mxfront          - the binary under test, with a generated TOML config.
  * smtp_raw / SmtpConn - raw SMTP clients for protocol-abuse tests.

Every address is on loopback, every port is chosen dynamically, every socket has a timeout and
every process started here is stopped by the object that started it (context managers).
Set KEEP=1 in the environment to keep the temporary directories for inspection.
"""
import collections
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
import urllib.error
import urllib.request
from pathlib import Path

# The reference implementations the tests compare with come as Debian packages (python3-dkim,
# python3-spf, python3-nacl): visible also to a python3 that is not Debian's (e.g. pyenv), after
# its own packages.
DEBIAN_PY = "/usr/lib/python3/dist-packages"
if os.path.isdir(DEBIAN_PY) and DEBIAN_PY not in sys.path:
    sys.path.append(DEBIAN_PY)

REPO = Path(__file__).resolve().parents[2]
POSTFIX_DAEMON_DIR = "/usr/lib/postfix/sbin"
KEEP = os.environ.get("KEEP", "0") == "1"


class HarnessError(RuntimeError):
    """A real component could not be started or behaved unexpectedly (the test must fail)."""


# ----------------------------------------------------------------------------------------------
# ports
# ----------------------------------------------------------------------------------------------
def remove_dir(path, who):
    """Removes a harness's temp dir (kept, and said so, with KEEP=1); returns None for `self.dir = ...`."""
    if path:
        if KEEP:
            print(f"[{who}] kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)
    return None


_handed_out = set()


def free_port(host="127.0.0.1"):
    """A TCP port that is free on `host` right now (bind to port 0 and release it), and not one
    this process was given before (the kernel may hand a just-released port out again, and two
    listeners of one config must not get the same)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            break
    _handed_out.add(port)
    return port


def wait_port(host, port, timeout=10.0):
    """Wait until a TCP connect to host:port succeeds. Returns True, or False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def _listening_ports():
    """Ports in LISTEN state (from /proc/net/tcp and tcp6)."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 3 and parts[3] == "0A":
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def wait_listening(port, timeout=10.0, alive=None):
    """Wait until something listens on `port` without connecting to it (no probe session).
    `alive` is an optional callable; when it returns False the wait is abandoned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port in _listening_ports():
            return True
        if alive is not None and not alive():
            return False
        time.sleep(0.02)
    return False


def netstring(b: bytes) -> bytes:
    return str(len(b)).encode() + b":" + b + b","


def qmqp_request(message: bytes, sender: bytes, recipients) -> bytes:
    return netstring(netstring(message) + netstring(sender) + b"".join(netstring(r) for r in recipients))


def qmqp_send(host, port, payload: bytes, timeout=10.0, source=None):
    """Send one raw QMQP request; return everything the server answered until it closed."""
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                break
            if not d:
                break
            buf += d
        return buf
    finally:
        s.close()


# ----------------------------------------------------------------------------------------------
# processes
# ----------------------------------------------------------------------------------------------
def _children(pid):
    """PIDs whose parent is `pid`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces/parens: the fields after the last ')' are what we need
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _stop_process(proc: subprocess.Popen, sig=signal.SIGTERM, timeout=5.0, group=False):
    """Signal a process (or its process group), wait, SIGKILL as a fallback. Returns the exit code."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        return proc.wait(5)


Delivery = collections.namedtuple("Delivery", "path data recipient")


# ----------------------------------------------------------------------------------------------
# Postfix qmqpd -> virtual(8) -> Maildir
# ----------------------------------------------------------------------------------------------
class PostfixQmqp:
    """A private Postfix instance: qmqpd on 127.0.0.1:<free port>, every recipient delivered into a
    Maildir under `self.mail`: alice@example.org and bob@example.org to their own Maildir, everything
    else to catchall/Maildir/.

    milter_action=None|'tempfail'|'reject' makes the REAL qmqpd answer Z or D: mail arriving via
    qmqpd goes through cleanup(8), which applies `non_smtpd_milters`; the milter is pointed at a closed
    port, so cleanup falls back to `milter_default_action` (tempfail -> qmqpd answers Z, reject -> D).
    """

    def __init__(self, message_size_limit=10485760, milter_action=None, extra_main_cf=""):
        if milter_action not in (None, "tempfail", "reject"):
            raise ValueError("milter_action must be None, 'tempfail' or 'reject'")
        self.message_size_limit = message_size_limit
        self.milter_action = milter_action
        self.extra_main_cf = extra_main_cf
        self.host = "127.0.0.1"
        self.port = None
        self.dir = None
        self.proc = None
        self.paused = []

    # -- paths
    @property
    def etc(self):
        return Path(self.dir) / "etc"

    @property
    def spool(self):
        return Path(self.dir) / "spool"

    @property
    def mail(self):
        return Path(self.dir) / "mail"

    @property
    def maillog(self):
        return Path(self.dir) / "maillog"

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        if os.geteuid() != 0:
            raise HarnessError("PostfixQmqp needs root (Postfix master starts as root)")
        for tool in ("master", "qmqpd", "virtual", "cleanup"):
            if not os.path.exists(f"{POSTFIX_DAEMON_DIR}/{tool}"):
                raise HarnessError(f"{POSTFIX_DAEMON_DIR}/{tool} missing: apt-get install postfix")
        self.dir = tempfile.mkdtemp(prefix="mxtest-postfix.", dir="/tmp")
        os.chmod(self.dir, 0o755)  # postfix (mail_owner) and nobody must traverse it
        try:
            self._configure()
            self._launch()
        except BaseException:
            self.stop()
            raise

    def _configure(self):
        import grp
        import pwd
        T = Path(self.dir)
        for d in (self.etc, self.spool, T / "data", self.mail):
            d.mkdir(parents=True, exist_ok=True)
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        nogroup = grp.getgrnam("nogroup")
        postdrop = grp.getgrnam("postdrop")
        os.chown(T / "data", pf.pw_uid, pf.pw_gid)
        os.chmod(T / "data", 0o700)
        os.chown(self.mail, nobody.pw_uid, nogroup.gr_gid)
        self.port = free_port()
        milter = ""
        if self.milter_action:
            closed = free_port()  # nothing listens there: every milter connect fails
            milter = (f"non_smtpd_milters = inet:127.0.0.1:{closed}\n"
                      f"milter_default_action = {self.milter_action}\n"
                      "milter_connect_timeout = 2s\n")
        (self.etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {T}/data
command_directory = /usr/sbin
daemon_directory = {POSTFIX_DAEMON_DIR}
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.maillog}
maillog_file_prefixes = {T}
myhostname = qmqp.harness.test
mydomain = harness.test
myorigin = $myhostname
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
qmqpd_authorized_clients = 127.0.0.1
qmqpd_error_delay = 0s
virtual_mailbox_domains = static:all
virtual_mailbox_maps = inline:{{ alice@example.org=example.org/alice/Maildir/, bob@example.org=example.org/bob/Maildir/ }},
  static:catchall/Maildir/
virtual_mailbox_base = {self.mail}
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nogroup.gr_gid}
virtual_mailbox_limit = 0
mailbox_size_limit = 0
message_size_limit = {self.message_size_limit}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
{milter}{self.extra_main_cf}
""")
        (self.etc / "master.cf").write_text(f"""\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{self.port} inet n  -       n       -       -       qmqpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""")
        # Postfix waits for a main.cf younger than ~2 s ("being edited"): backdate both files.
        past = time.time() - 60
        for f in ("main.cf", "master.cf"):
            os.utime(self.etc / f, (past, past))
        # queue directories as `postfix set-permissions` would make them (that takes seconds)
        for d in ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
                  "private", "saved", "trace"):
            p = self.spool / d
            p.mkdir()
            os.chown(p, pf.pw_uid, 0)
            os.chmod(p, 0o700)
        p = self.spool / "maildrop"
        p.mkdir()
        os.chown(p, pf.pw_uid, postdrop.gr_gid)
        os.chmod(p, 0o730)
        p = self.spool / "public"
        p.mkdir()
        os.chown(p, pf.pw_uid, postdrop.gr_gid)
        os.chmod(p, 0o710)
        p = self.spool / "pid"
        p.mkdir()
        os.chmod(p, 0o755)

    def _launch(self):
        out = open(Path(self.dir) / "master.out", "wb")
        # start_new_session = setsid: master must lead its own process group, because on SIGTERM
        # it kill()s its group to stop its children.
        self.proc = subprocess.Popen([f"{POSTFIX_DAEMON_DIR}/master", "-c", str(self.etc), "-d"],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"postfix master exited ({self.proc.returncode}): "
                                   f"{self._read(Path(self.dir) / 'master.out')}\n{self.log()[-2000:]}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.02)
        raise HarnessError(f"postfix qmqpd not accepting on {self.address} after 15 s:\n{self.log()[-2000:]}")

    @staticmethod
    def _read(p):
        try:
            return Path(p).read_text(errors="replace")
        except OSError:
            return ""

    def log(self):
        return self._read(self.maillog) if self.dir else ""

    # -- deliveries
    def _delivered_files(self):
        files = []
        if self.dir and self.mail.exists():
            for root, _dirs, names in os.walk(self.mail):
                if os.path.basename(root) in ("new", "cur"):
                    files.extend(os.path.join(root, n) for n in names)
        return sorted(files)

    def deliveries(self, timeout=0.0, expect_n=None, match=None):
        """Delivered messages as Delivery(path, data bytes, recipient from Delivered-To).

        With expect_n > 0: polls until at least expect_n (matching) messages are there, or timeout.
        With expect_n None/0: waits the whole `timeout` (for "nothing was delivered" checks) and then
        returns what is there. `match` (bytes) keeps only messages containing it."""
        deadline = time.monotonic() + timeout
        while True:
            result = []
            for path in self._delivered_files():
                try:
                    data = Path(path).read_bytes()
                except OSError:
                    continue
                if match is not None and match not in data:
                    continue
                m = re.search(rb"^Delivered-To: (\S+)$", data, re.M)
                result.append(Delivery(path, data, m.group(1).decode() if m else None))
            if expect_n and len(result) >= expect_n:
                return result
            if time.monotonic() >= deadline:
                return result
            time.sleep(0.05)

    def queued(self):
        """Queue files not yet delivered (incoming, active, deferred, hold)."""
        n = 0
        for d in ("incoming", "active", "deferred", "hold", "maildrop"):
            for _root, _dirs, names in os.walk(self.spool / d):
                n += len(names)
        return n

    def clear_deliveries(self):
        for path in self._delivered_files():
            try:
                os.unlink(path)
            except OSError:
                pass

    # -- making a real server hang
    def _targets(self):
        return [p for p in _children(self.proc.pid) if _comm(p) == "qmqpd"]

    def pause(self):
        """SIGSTOP master and its qmqpd children: connects still complete (kernel backlog) but nobody
        reads or answers, i.e. a real server that hangs."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = [self.proc.pid]
        for p in self._targets():
            try:
                os.kill(p, signal.SIGSTOP)
                self.paused.append(p)
            except ProcessLookupError:
                pass

    def resume(self):
        for p in reversed(self.paused):
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.paused = []

    def stop(self):
        if self.proc is not None:
            if self.paused:
                self.resume()
            if self.proc.poll() is None:
                _stop_process(self.proc, signal.SIGTERM, timeout=5)
            # children left behind (they stop on master's group kill; be thorough)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc = None
        self.dir = remove_dir(self.dir, "mxharness")


# ----------------------------------------------------------------------------------------------
# qmqp-sink
# ----------------------------------------------------------------------------------------------
class QmqpSink:
    """Postfix's qmqp-sink: answers `3:KOk,` to every well-formed request and discards it."""

    def __init__(self):
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def __enter__(self):
        if not shutil.which("qmqp-sink"):
            raise HarnessError("qmqp-sink missing: apt-get install postfix")
        self.port = free_port()
        self.proc = subprocess.Popen(["qmqp-sink", "-4", f"127.0.0.1:{self.port}", "64"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_listening(self.port, 10, alive=lambda: self.proc.poll() is None):
            self.__exit__()
            raise HarnessError("qmqp-sink did not start")
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM)
            self.proc = None


# ----------------------------------------------------------------------------------------------
# scripted misbehaving QMQP peer
# ----------------------------------------------------------------------------------------------
def _read_netstring(conn, limit=64 << 20):
    """Read one netstring from a socket; returns the raw bytes read (possibly incomplete)."""
    buf = b""
    while b":" not in buf:
        d = conn.recv(64)
        if not d:
            return buf
        buf += d
        if len(buf) > 20 and b":" not in buf:
            return buf
    head, rest = buf.split(b":", 1)
    try:
        n = int(head)
    except ValueError:
        return buf
    need = n + 1 - len(rest)
    while need > 0 and len(buf) < limit:
        d = conn.recv(min(need, 1 << 16))
        if not d:
            break
        buf += d
        need -= len(d)
    return buf


class MisbehavingQmqp:
    """A scripted QMQP peer for faults a real server cannot be made to produce on demand.

    mode='close_mid_answer': reads the request, writes `3:K` (half an answer) and closes.
    mode='garbage':          reads the request, answers `hello\\n`; closes after `hold` seconds
                             (0 = at once; otherwise it waits for the client to close first).
    mode='hang':             accepts, reads the request, never answers (until the client closes).
    mode='k_after_partial':  reads only the first 1,000 bytes of the request, answers `K` and closes
                             (the unread rest makes the kernel reset the connection).
    mode='k_and_hold':       reads the request, answers `K`, then keeps the connection open until the
                             client closes (or `hold` seconds).
    `requests` collects every request received (for 'k_after_partial': the bytes read)."""

    def __init__(self, mode, hold=0.0):
        if mode not in ("close_mid_answer", "garbage", "hang", "k_after_partial", "k_and_hold"):
            raise ValueError(mode)
        self.mode = mode
        self.hold = hold
        self.host = "127.0.0.1"
        self.port = None
        self.requests = []
        self.connections = 0
        self._sock = None
        self._stop = threading.Event()
        self._threads = []

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def __enter__(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self._sock.close()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _wait_client_close(self, conn, limit):
        deadline = time.monotonic() + limit
        conn.settimeout(0.1)
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if not conn.recv(4096):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def _serve(self, conn):
        try:
            conn.settimeout(10)
            if self.mode == "k_after_partial":
                got = b""
                while len(got) < 1000:
                    d = conn.recv(1000 - len(got))
                    if not d:
                        break
                    got += d
                self.requests.append(got)
                conn.sendall(b"23:KOk: queued as LIAR1234,")
                time.sleep(0.05)
                return
            self.requests.append(_read_netstring(conn))
            if self.mode == "k_and_hold":
                conn.sendall(b"23:KOk: queued as HOLD1234,")
                self._wait_client_close(conn, self.hold or 60)
            elif self.mode == "close_mid_answer":
                conn.sendall(b"3:K")
            elif self.mode == "garbage":
                conn.sendall(b"hello\n")
                if self.hold:
                    self._wait_client_close(conn, self.hold)
            elif self.mode == "hang":
                self._wait_client_close(conn, 120)
        except OSError:
            pass
        finally:
            conn.close()


# ----------------------------------------------------------------------------------------------
# mxfront
# ----------------------------------------------------------------------------------------------
def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(cfg: dict) -> str:
    """Tiny TOML writer for the shapes mxfront's config uses: tables of scalars/arrays and
    arrays of tables (a list of dicts, e.g. `listener`)."""
    out = []
    for section, body in cfg.items():
        if isinstance(body, list):
            for item in body:
                out.append(f"[[{section}]]")
                out.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
                out.append("")
        else:
            out.append(f"[{section}]")
            out.extend(f"{k} = {_toml_value(v)}" for k, v in body.items())
            out.append("")
    return "\n".join(out)


def ocr_worker_cpu(server_pid):
    """{pid: CPU seconds (utime+stime)} of the OCR worker processes (mxfront --ocr-worker children)
    of the server `server_pid`."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != server_pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"--ocr-worker" not in f.read():
                    continue
            out[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return out


def mxfront_bin():
    return os.environ.get("MXFRONT_BIN") or str(REPO / "build" / "mxfront")


def sanitizer_build(binary=None):
    """True when the mxfront binary is a sanitizer build (ASan/TSan runtime linked): an unoptimised,
    instrumented binary whose CPU-bound steps (image decoding, MIME parsing) take several times
    longer, so behaviour bounds that include such steps scale by slow_factor()."""
    try:
        out = subprocess.run(["ldd", binary or mxfront_bin()], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return re.search(r"lib[at]san\.so", out) is not None


def slow_factor():
    """3 for a sanitizer build, else 1: the factor for slack in behaviour bounds (never for limits
    the server itself enforces)."""
    return 3 if sanitizer_build() else 1


class Mxfront:
    """mxfront under test. `qmqp_servers`: list of "host:port" strings; `config`: dict of overrides
    merged per section over the test defaults (a list of dicts, e.g. `listener` or "rules.rule",
    is written as an array of tables and replaces the default;
    use the placeholder port 0 in an address to get a free port, e.g. "[::1]:0")."""

    def __init__(self, qmqp_servers, config=None, binary=None):
        self.binary = binary or mxfront_bin()
        self.qmqp_servers = list(qmqp_servers)
        self.overrides = config or {}
        self.proc = None
        self.dir = None
        self.port = None
        self.host = "127.0.0.1"
        self.listeners = []
        self.config_path = None
        self.stderr_path = None
        self.expected_exit = False  # set by a test that stops mxfront on purpose

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def build_config(self):
        cfg = {
            "server": {"hostname": "mx.test", "io_threads": 2, "shutdown_timeout": 10},
            "log": {"level": "info"},
            "listener": [{"address": f"127.0.0.1:{free_port()}", "profile": "mx"}],
            "limits": {},
            "relay": {"local_domains": ["example.org"]},
            "qmqp": {"servers": self.qmqp_servers, "connect_timeout": 5, "answer_timeout": 10},
        }
        for section, body in self.overrides.items():
            if section == "listener":
                cfg["listener"] = [dict(x) for x in body]
            elif isinstance(body, list):  # an array of tables, e.g. "rules.rule": [{...}, {...}]
                cfg[section] = [dict(x) for x in body]
            elif isinstance(body, dict):
                cfg.setdefault(section, {}).update(body)
            else:
                raise ValueError(f"override for [{section}] must be a dict")
        for lst in cfg["listener"]:
            host, port = lst["address"].rsplit(":", 1)
            if port == "0":
                lst["address"] = f"{host}:{free_port(host.strip('[]'))}"
        cfg = {k: v for k, v in cfg.items() if v != {}}
        return cfg

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.kill()

    def start(self, timeout=10.0):
        if not os.access(self.binary, os.X_OK):
            raise HarnessError(f"mxfront binary not found or not executable: {self.binary} "
                               "(set MXFRONT_BIN or build <repo>/build/mxfront)")
        self.dir = tempfile.mkdtemp(prefix="mxtest-mxfront.", dir="/tmp")
        cfg = self.build_config()
        self.listeners = []
        for lst in cfg["listener"]:
            host, port = lst["address"].rsplit(":", 1)
            self.listeners.append((host.strip("[]"), int(port)))
        self.host, self.port = self.listeners[0]
        self.config_path = os.path.join(self.dir, "mxfront.toml")
        with open(self.config_path, "w") as f:
            f.write(to_toml(cfg))
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.binary, "--config", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        err.close()
        for _host, port in self.listeners:
            if not wait_listening(port, timeout, alive=lambda: self.proc.poll() is None):
                code = self.proc.poll()
                text = self.log()
                self.kill()
                raise HarnessError(f"mxfront did not listen on port {port} (exit code {code}); "
                                   f"config:\n{to_toml(cfg)}\nlog:\n{text[-3000:]}")
        return self

    def log(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def wait_log(self, pattern, timeout=5.0):
        """Wait for a regex to appear in the log; returns the match or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log(), re.M)
            if m or time.monotonic() >= deadline:
                return m
            time.sleep(0.05)

    def session_id(self, client_port, timeout=5.0):
        """The session id logged for the connection from local port `client_port`."""
        m = self.wait_log(rf"connect id=(\S+) client=\[?[0-9a-fA-F.:]+\]?:{client_port} ", timeout)
        return m.group(1) if m else None

    def disconnect_reason(self, sid, timeout=5.0):
        """The reason= of the disconnect log line of session `sid` (None if not logged in time)."""
        m = self.wait_log(rf"disconnect id={re.escape(sid)} .*reason=(\S+)", timeout)
        return m.group(1) if m else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        """Raise HarnessError if mxfront has died (a crash must fail the test that caused it)."""
        if self.proc is not None and self.proc.poll() is not None and not self.expected_exit:
            raise HarnessError(f"mxfront exited unexpectedly with code {self.proc.returncode}; "
                               f"log tail:\n{self.log()[-3000:]}")

    def ocr_workers(self):
        """Live OCR worker processes (mxfront --ocr-worker children of this server)."""
        return len(ocr_worker_cpu(self.pid))

    def fd_count(self):
        """Open descriptors, not counting the one socket the server keeps to each live OCR worker
        process (persistent and owned, like a pool's connections: started on first use, so a
        baseline taken before the first picture would otherwise look like a leak)."""
        return len(os.listdir(f"/proc/{self.pid}/fd")) - self.ocr_workers()

    def close_wait_count(self):
        """CLOSE_WAIT sockets owned by this process (a peer closed, we never did)."""
        out = subprocess.run(["ss", "-tanp", "state", "close-wait"], capture_output=True, text=True,
                             timeout=10).stdout
        return sum(1 for line in out.splitlines() if f"pid={self.pid}," in line)

    def wait_fd_baseline(self, baseline, timeout=5.0):
        """Poll until the fd count is back at (or below) `baseline`; returns the last count."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.fd_count()
            if n <= baseline or time.monotonic() >= deadline:
                return n
            time.sleep(0.05)

    def settled_fd_count(self, stable=0.3, timeout=3.0):
        """The fd count once it has not changed for `stable` seconds (or after `timeout`)."""
        deadline = time.monotonic() + timeout
        last, since = self.fd_count(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.fd_count()
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= stable:
                break
        return last

    def warm_up(self, sessions=4):
        """A few concurrent EHLO/QUIT sessions, so that per-thread lazy initialisation (reactor
        descriptors of each io thread) is done; returns the settled fd count (a leak baseline)."""
        conns = [SmtpConn(self.port, host=self.host, timeout=5) for _ in range(sessions)]
        for c in conns:
            c.cmd("EHLO warmup.test")
        for c in conns:
            c.cmd("QUIT")
            c.closed_by_server(2)
            c.close()
        return self.settled_fd_count()

    def terminate(self, timeout=30.0):
        """SIGTERM and wait; returns the exit code (SIGKILL after `timeout`, code then negative)."""
        if self.proc is None:
            return None
        self.expected_exit = True
        return _stop_process(self.proc, signal.SIGTERM, timeout=timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.dir and not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif self.dir:
            print(f"[mxharness] kept {self.dir}")
        self.dir = None if not KEEP else self.dir


# ----------------------------------------------------------------------------------------------
# SMTP clients
# ----------------------------------------------------------------------------------------------
class RawResult:
    """What smtp_raw saw: `data` (all bytes received), `closed` (the server closed the connection:
    EOF or reset), `elapsed` seconds, `send_error` (a write failed because the server had closed)."""

    def __init__(self, data, closed, elapsed, send_error=None, local_port=None):
        self.data, self.closed, self.elapsed, self.send_error = data, closed, elapsed, send_error
        self.local_port = local_port

    def lines(self):
        return [l for l in self.data.split(b"\r\n") if l]

    def replies(self):
        """Final lines of every reply (e.g. b'250 2.0.0 Ok: ...'), in order."""
        return [l for l in self.lines() if len(l) >= 4 and l[:3].isdigit() and l[3:4] == b" "]

    def codes(self):
        return [int(l[:3]) for l in self.replies()]

    def __repr__(self):
        return f"RawResult(closed={self.closed}, elapsed={self.elapsed:.2f}, data={self.data!r})"


def smtp_raw(port, chunks, host="127.0.0.1", timeout=5.0, delay=0.0, wait_greeting=True,
             source=None, shut_wr=False):
    """Raw SMTP client for protocol abuse: connect, (optionally) read the greeting, send each byte
    chunk (sleeping `delay` between chunks), optionally half-close, then read everything until the
    server closes or `timeout` seconds pass without the server closing."""
    t0 = time.monotonic()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    data = b""
    closed = False
    send_error = None
    local_port = None
    try:
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        local_port = s.getsockname()[1]
        if wait_greeting:
            while b"\r\n" not in data:
                d = s.recv(4096)
                if not d:
                    closed = True
                    break
                data += d
        for i, chunk in enumerate(chunks):
            if closed:
                break
            if i and delay:
                time.sleep(delay)
            try:
                s.sendall(chunk)
            except OSError as e:  # server already closed (EPIPE / ECONNRESET)
                send_error = e
                break
        if shut_wr and send_error is None and not closed:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while not closed:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            data += d
    finally:
        s.close()
    return RawResult(data, closed, time.monotonic() - t0, send_error, local_port)


class SmtpConn:
    """Line-level SMTP client with a timeout on every read, for interactive tests.
    reply() returns (code, text_of_last_line, raw_bytes); code is None if the server closed."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, source=None, read_greeting=True):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False
        try:
            if source:
                self.sock.bind((source, 0))
            self.sock.connect((host, port))
            self.local_port = self.sock.getsockname()[1]
            self.greeting = self.reply() if read_greeting else None
        except BaseException:
            self.sock.close()
            raise

    def send(self, data: bytes):
        self.sock.sendall(data)

    def cmd(self, line: str):
        """Send one command line (CRLF added) and return its reply."""
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def reply(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        raw = b""
        while True:
            while b"\r\n" not in self.buf:
                try:
                    d = self.sock.recv(65536)
                except ConnectionResetError:
                    d = b""
                if not d:
                    self.eof = True
                    return None, "", raw + self.buf
                self.buf += d
            line, self.buf = self.buf.split(b"\r\n", 1)
            raw += line + b"\r\n"
            if len(line) < 4 or line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    code = -1
                return code, line.decode("latin-1"), raw

    def closed_by_server(self, timeout=3.0):
        """True if the server closes the connection within `timeout` (recv returns b'' / reset)."""
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    self.eof = True
                    return True
                self.buf += d
        except ConnectionResetError:
            self.eof = True
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def transaction(sender, recipients, body: bytes, helo="client.test"):
    """Pipelined bytes for EHLO + one transaction (body given with CRLF line ends, dot-stuffed by
    the caller when needed) + QUIT."""
    out = f"EHLO {helo}\r\nMAIL FROM:<{sender}>\r\n".encode()
    for r in recipients:
        out += f"RCPT TO:<{r}>\r\n".encode()
    out += b"DATA\r\n" + body
    if not body.endswith(b"\r\n"):
        out += b"\r\n"
    return out + b".\r\nQUIT\r\n"


def smtp_send(port, sender, recipients, msg: bytes, timeout=30.0, helo="client.test", host="127.0.0.1"):
    """One message in its own smtplib session: (code, text) of the first refusal, (250, "") when accepted."""
    with smtplib.SMTP(host, port, local_hostname=helo, timeout=timeout) as c:
        try:
            c.sendmail(sender, list(recipients), msg)
            return 250, ""
        except smtplib.SMTPResponseException as e:
            return e.smtp_code, e.smtp_error.decode(errors="replace")


def health_dependency(admin_port, match):
    """The dependency of /health whose name contains `match` (e.g. "(ratelimit)"): its dict
    (kind, name, up, passive_error, ...). HarnessError when /health lists none."""
    _, body = http_get(admin_port, "/health")
    for d in json.loads(body)["dependencies"]:
        if match in d["name"]:
            return d
    raise HarnessError(f"no dependency named like {match!r} in /health: {body}")


def wait_health_dependency(admin_port, match, up, timeout=15.0):
    """Polls /health until that dependency's "up" is `up`: the dependency's dict, or None at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        d = health_dependency(admin_port, match)
        if d["up"] == up:
            return d
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def http_get(port, path, timeout=5.0, host="127.0.0.1"):
    """(status, body) of GET http://host:port/path (mxfront's admin endpoints)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def unique_marker(tag="m"):
    return f"{tag}-{os.getpid()}-{time.monotonic_ns()}"


# Our Received header as prepended to relayed messages (docs/interfaces-for-helpers.md).
RECEIVED_RE = re.compile(
    rb"^Received: from (?P<helo>\S+) \((?P<addr>[^)]*)\)\n"
    rb"\tby (?P<host>\S+) \(mxfront\) with (?P<proto>E?SMTP) id (?P<id>[^;\s]+)"
    rb"(?:\n\tfor <?(?P<rcpt>[^>;\s]+)>?)?; (?P<date>[^\n]+)\n", re.M)


def split_after_received(data: bytes):
    """(match of our Received header, the bytes that follow it) in a delivered file."""
    m = RECEIVED_RE.search(data)
    if not m:
        return None, None
    return m, data[m.end():]


class PostfixMxfrontCase(unittest.TestCase):
    """Base class: one real Postfix qmqpd and one mxfront relaying to it, shared by the test class
    (started in setUpClass, stopped by class clean-ups even when a test fails). A subclass sets
    `mx_config` (Mxfront config overrides) for its own filters or limits."""

    mx_config = None

    @classmethod
    def setUpClass(cls):
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.mx = Mxfront([cls.pf.address], config=cls.mx_config)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()

    def tearDown(self):
        self.mx.check_alive()

    def diag(self):
        return (f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}"
                f"\n--- postfix maillog ---\n{self.pf.log()[-3000:]}")

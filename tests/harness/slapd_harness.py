"""A private OpenLDAP slapd for directory tests (Python 3 standard library only).

    with Slapd() as ldap:              # started: a free 127.0.0.1 port, its own temp dir
        ldap.uri                       # "ldap://127.0.0.1:PORT"
        ldap.add_user("dave", "davepw", mail="dave@example.org", alternates=["d@example.org"])
        ldap.stop(); ldap.start()      # restart on the same port, same data
        ldap.pause(); ldap.resume()    # SIGSTOP / SIGCONT: a hung directory (connects still succeed)

What it runs: slapd (Debian package `slapd`, tools from `ldap-utils`) with a slapd.conf (no
cn=config), the mdb backend (`moduleload back_mdb`), the core, cosine and inetorgperson schemas plus
a qmail-ldap-compatible subset written here with qmail-ldap's OIDs (mailAlternateAddress,
accountStatus, mailHost, mailMessageStore, ...). misc.schema is NOT loaded: it defines mailHost too.
ACL: userPassword can be used to bind ("auth") but is never readable by anonymous users.

Base data under dc=example,dc=org (passwords are {SSHA} from slappasswd):
    uid=alice,ou=people   mail alice@example.org  mailAlternateAddress alias-alice@example.org
                          accountStatus active    password alicepw
    uid=bob,ou=people     mail bob@example.org    accountStatus active    password bobpw
    uid=carol,ou=people   mail carol@example.org  accountStatus disabled  password carolpw
The rootdn cn=admin,dc=example,dc=org (password ROOT_PW) can write.

Readiness: an anonymous ldapsearch of the root DSE, polled every 50 ms. Anything that goes wrong
raises HarnessError with slapd's log: tests must fail, never skip. Every process is stopped by the
object that started it (by PID); the temp dir is removed unless KEEP=1.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SUFFIX = "dc=example,dc=org"
PEOPLE = "ou=people," + SUFFIX
ROOT_DN = "cn=admin," + SUFFIX
ROOT_PW = "rootsecret"
KEEP = os.environ.get("KEEP", "0") == "1"
SLAPD = "/usr/sbin/slapd"
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"

# qmail-ldap's attribute and class OIDs (1.3.6.1.4.1.7914), a subset sufficient for mxfront; the
# same file configures the compose farm's slapd.
QMAIL_SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docker", "slapd",
                                 "qmail.schema")
with open(QMAIL_SCHEMA_FILE) as _f:
    QMAIL_SCHEMA = _f.read()

BASE_USERS = [
    # uid, password, mail, alternates, status
    ("alice", "alicepw", "alice@example.org", ["alias-alice@example.org"], "active"),
    ("bob", "bobpw", "bob@example.org", [], "active"),
    ("carol", "carolpw", "carol@example.org", [], "disabled"),
]


try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent():
    """In the child before exec: SIGKILL when the test process dies, even a killed one (a ctest
    timeout), so that no slapd outlives its test — SIGKILL because a paused slapd ignores SIGTERM."""
    if _prctl:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class HarnessError(RuntimeError):
    """slapd could not be set up or started (the test must fail, not skip)."""


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def closed_port(host="127.0.0.1"):
    """A port nothing listens on (connects are refused)."""
    return free_port(host)


def ssha(password):
    """An {SSHA} hash made by slappasswd, as a real directory would hold it."""
    out = subprocess.run(["slappasswd", "-h", "{SSHA}", "-s", password], capture_output=True, text=True,
                         timeout=10)
    if out.returncode != 0 or not out.stdout.startswith("{SSHA}"):
        raise HarnessError(f"slappasswd failed: {out.stderr.strip()}")
    return out.stdout.strip()


def user_ldif(uid, password, mail, alternates=(), status=None):
    lines = [f"dn: uid={uid},{PEOPLE}", "objectClass: inetOrgPerson", "objectClass: qmailUser",
             f"uid: {uid}", f"cn: {uid}", f"sn: {uid}", f"mail: {mail}"]
    lines += [f"mailAlternateAddress: {a}" for a in alternates]
    if status:
        lines.append(f"accountStatus: {status}")
    if password is not None:
        lines.append(f"userPassword: {ssha(password)}")
    return "\n".join(lines) + "\n\n"


class Slapd:
    def __init__(self, users=BASE_USERS):
        for tool in (SLAPD, shutil.which("slapadd") or "/usr/sbin/slapadd", shutil.which("ldapsearch") or ""):
            if not tool or not os.path.exists(tool):
                raise HarnessError(f"{tool or 'ldapsearch'} not found: install slapd and ldap-utils")
        self.port = free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.proc = None
        self.paused = False
        self.dir = tempfile.mkdtemp(prefix="mxfront-slapd.")
        os.chmod(self.dir, 0o755)
        self._users = list(users)
        self._configured = False

    # -- context manager ---------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Stop slapd and remove the temp dir (unless KEEP=1)."""
        self.stop()
        if KEEP:
            print(f"slapd dir kept: {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- set-up --------------------------------------------------------------------------------------
    def _path(self, name):
        return os.path.join(self.dir, name)

    def _configure(self):
        os.makedirs(self._path("db"), exist_ok=True)
        with open(self._path("qmail.schema"), "w") as f:
            f.write(QMAIL_SCHEMA)
        root_hash = ssha(ROOT_PW)
        conf = f"""\
include {SCHEMA_DIR}/core.schema
include {SCHEMA_DIR}/cosine.schema
include {SCHEMA_DIR}/inetorgperson.schema
include {self._path("qmail.schema")}
pidfile {self._path("slapd.pid")}
argsfile {self._path("slapd.args")}
modulepath {MODULE_DIR}
moduleload back_mdb
database mdb
maxsize 104857600
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {root_hash}
directory {self._path("db")}
index objectClass eq
index mail,mailAlternateAddress,uid eq
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to * by * read
"""
        with open(self._path("slapd.conf"), "w") as f:
            f.write(conf)
        self._run(["slaptest", "-u", "-f", self._path("slapd.conf")], "slaptest")
        base = (f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
                f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n")
        base += "".join(user_ldif(u, p, m, a, s) for u, p, m, a, s in self._users)
        with open(self._path("base.ldif"), "w") as f:
            f.write(base)
        self._run(["slapadd", "-q", "-f", self._path("slapd.conf"), "-l", self._path("base.ldif")], "slapadd")
        self._configured = True

    def _run(self, argv, what, stdin=None):
        out = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise HarnessError(f"{what} failed ({out.returncode}): {out.stdout}{out.stderr}")
        return out.stdout

    def log(self):
        try:
            with open(self._path("slapd.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # -- life cycle ----------------------------------------------------------------------------------
    def start(self, timeout=10.0):
        """Start (or restart, on the same port with the same data) and wait until it answers."""
        if self.proc:
            return
        if not self._configured:
            self._configure()
        log = open(self._path("slapd.log"), "ab")
        # -d 0: foreground, no debug output; our child, so the PID is ours to signal.
        self.proc = subprocess.Popen([SLAPD, "-d", os.environ.get("SLAPD_DEBUG", "0"), "-f", self._path("slapd.conf"),
                                      "-h", self.uri + "/"], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise HarnessError(f"slapd exited at start-up on port {self.port}:\n{self.log()}")
            probe = subprocess.run(["ldapsearch", "-x", "-H", self.uri, "-b", "", "-s", "base", "namingContexts"],
                                   capture_output=True, timeout=5)
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise HarnessError(f"slapd did not answer on {self.uri} within {timeout}s:\n{self.log()}")

    def stop(self):
        """SIGTERM (after SIGCONT when paused) and wait; SIGKILL after 5 s."""
        if not self.proc:
            return
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def pause(self):
        """SIGSTOP: the kernel still completes TCP connects, but nothing is ever answered."""
        if self.proc and not self.paused:
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.proc and self.paused:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    # -- data ------------------------------------------------------------------------------------------
    def add_user(self, uid, password, mail=None, alternates=(), status="active"):
        """Adds an entry online (ldapadd as the rootdn). password None: no userPassword."""
        if not self.proc or self.paused:
            raise HarnessError("add_user needs a running slapd")
        ldif = user_ldif(uid, password, mail or f"{uid}@example.org", alternates, status)
        self._run(["ldapadd", "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PW], f"ldapadd {uid}", stdin=ldif)

    def search(self, ldap_filter, *attrs, bind=None):
        """ldapsearch -LLL (anonymous, or bind=(dn, password)); returns the LDIF text."""
        argv = ["ldapsearch", "-x", "-LLL", "-H", self.uri, "-b", SUFFIX]
        if bind:
            argv += ["-D", bind[0], "-w", bind[1]]
        return self._run(argv + [ldap_filter, *attrs], "ldapsearch")

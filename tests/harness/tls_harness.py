"""Throwaway PKI and TLS helpers for mxfront's integration tests (standard library + `openssl` CLI).

    with TestPki() as pki:                      # a temp dir with a fresh CA (EC P-256)
        pki.server.cert, pki.server.key         # leaf for CN/SAN mx.test + IP 127.0.0.1, signed by the CA
        pki.server.serial                       # "1A2B..." as ssl.getpeercert() shows it
        other = pki.issue("second")             # another leaf from the same CA (another serial)
        bad = pki.mismatched()                  # a certificate with the key of ANOTHER pair
        ctx = pki.client_context()              # verifies the chain against this CA and the name mx.test

Plus small TLS clients for tests: `peer_certificate()` (implicit TLS or STARTTLS; returns
the verified peer certificate dict and the negotiated version), `ehlo_keywords()` (EHLO reply parsed
into extension keywords) and the `users_file()` / `profile_overrides()` helpers that build the
three-profile mxfront configuration shared by test_tls_auth.py and test_ldap_e2e.py.

Everything lives under one temp dir, removed by close() / the context manager, and at interpreter
exit as a fallback (atexit). KEEP=1 keeps it. Any failure of `openssl` raises HarnessError: tests
must fail loudly, never skip.
"""
import atexit
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import warnings
from collections import namedtuple

KEEP = os.environ.get("KEEP", "0") == "1"
SERVER_NAME = "mx.test"

Leaf = namedtuple("Leaf", "name cert key serial")


class HarnessError(RuntimeError):
    """The PKI could not be made (the test must fail, not skip)."""


def _openssl(args, cwd):
    exe = shutil.which("openssl")
    if not exe:
        raise HarnessError("openssl CLI missing: apt-get install openssl")
    p = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise HarnessError(f"openssl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p.stdout


class TestPki:
    """A CA and leaf certificates in a private temp dir (EC P-256 keys: fast to make)."""

    __test__ = False  # not a unittest/pytest test class despite the name

    def __init__(self, cn=SERVER_NAME, ip="127.0.0.1"):
        self.cn = cn
        self.ip = ip
        self.dir = tempfile.mkdtemp(prefix="mxtest-pki.", dir="/tmp")
        self._closed = False
        atexit.register(self.close)
        try:
            self.ca_key = self._path("ca.key")
            self.ca_cert = self._path("ca.pem")
            self._keygen(self.ca_key)
            _openssl(["req", "-x509", "-new", "-key", self.ca_key, "-out", self.ca_cert, "-days", "3",
                      "-subj", "/O=mxfront tests/CN=mxfront throwaway test CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)
            self.server = self.issue("server")
        except BaseException:
            self.close()
            raise

    # -- context manager ------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._closed:
            return
        self._closed = True
        if KEEP:
            print(f"[tls_harness] kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- making things --------------------------------------------------------------------------
    def _path(self, name):
        return os.path.join(self.dir, name)

    def _keygen(self, path):
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path], self.dir)
        os.chmod(path, 0o600)

    def issue(self, name, cn=None, serial=None, days=3, usage="serverAuth"):
        """A new key and a leaf certificate `name`.pem / `name`.key signed by the CA, with CN and
        SAN (DNS cn, IP self.ip). `serial` (int) defaults to a random 63-bit number. Returns a Leaf
        whose serial is upper-case hex without leading zeros (the form ssl.getpeercert() uses).
        `usage`: the extendedKeyUsage ("clientAuth" for a client certificate)."""
        cn = cn or self.cn
        serial = serial if serial is not None else secrets.randbits(63) | (1 << 62)
        key, cert, csr, ext = (self._path(f"{name}.{x}") for x in ("key", "pem", "csr", "ext"))
        self._keygen(key)
        _openssl(["req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={cn}"], self.dir)
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    f"subjectAltName=DNS:{cn},IP:{self.ip}\n"
                    "keyUsage=critical,digitalSignature\n"
                    f"extendedKeyUsage={usage}\n")
        _openssl(["x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                  "-set_serial", str(serial), "-days", str(days), "-extfile", ext, "-out", cert], self.dir)
        got = _openssl(["x509", "-in", cert, "-noout", "-serial"], self.dir).strip()
        if not got.startswith("serial="):
            raise HarnessError(f"cannot read the serial of {cert}: {got!r}")
        want = format(serial, "X")
        if got[len("serial="):].lstrip("0") != want:
            raise HarnessError(f"serial of {cert} is {got}, expected {want}")
        return Leaf(name, cert, key, want)

    def mismatched(self, name="mismatched"):
        """A certificate paired with the private key of a DIFFERENT leaf (key_file does not match
        cert_file): a TLS configuration that must be refused."""
        a = self.issue(f"{name}-a")
        b = self.issue(f"{name}-b")
        return Leaf(name, a.cert, b.key, a.serial)

    def not_pem(self, name="garbage.pem"):
        """A file that is not PEM at all."""
        path = self._path(name)
        with open(path, "wb") as f:
            f.write(b"this is not a certificate\n" + secrets.token_bytes(64))
        return path

    def install(self, leaf, cert_path, key_path):
        """Copy a leaf's files over cert_path / key_path, each replaced atomically (write a temp
        file in the same dir, then rename), as a certificate-renewal job would."""
        for src, dst in ((leaf.cert, cert_path), (leaf.key, key_path)):
            tmp = f"{dst}.tmp-{secrets.token_hex(4)}"
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, dst)

    # -- clients --------------------------------------------------------------------------------
    def client_context(self, minimum=None, maximum=None, ciphers=None):
        """A client SSLContext that verifies the server against this CA and the name mx.test.
        minimum / maximum: ssl.TLSVersion; ciphers: an OpenSSL cipher string."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca_cert)
        ctx.check_hostname = True
        with warnings.catch_warnings():  # TLS 1.0/1.1 members are deprecated, but we need them
            warnings.simplefilter("ignore", DeprecationWarning)
            if minimum is not None:
                ctx.minimum_version = minimum
            if maximum is not None:
                ctx.maximum_version = maximum
        if ciphers:
            ctx.set_ciphers(ciphers)
        return ctx


def tls11_context(pki):
    """A client that offers ONLY TLS 1.1 (security level 0 so that OpenSSL 3 still allows it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pki.client_context(ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0")


# ----------------------------------------------------------------------------------------------
# small SMTP-over-TLS helpers (every socket has a timeout)
# ----------------------------------------------------------------------------------------------
def read_reply(sock):
    """One complete (possibly multi-line) SMTP reply from a socket, byte by byte so that nothing
    after the reply is consumed. Returns (code or None on EOF, [lines as str])."""
    lines, line = [], b""
    while True:
        try:
            b = sock.recv(1)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            b = b""
        if not b:
            return None, lines + ([line.decode("latin-1")] if line else [])
        line += b
        if line.endswith(b"\r\n"):
            text = line[:-2].decode("latin-1")
            lines.append(text)
            line = b""
            if len(text) < 4 or text[3] != "-":
                try:
                    return int(text[:3]), lines
                except ValueError:
                    return -1, lines


def ehlo_keywords(lines):
    """Extension keywords of an EHLO reply (upper-case), e.g. {'STARTTLS': '', 'AUTH': 'PLAIN LOGIN'}."""
    out = {}
    for text in lines[1:]:
        body = text[4:].strip()
        if not body:
            continue
        kw, _, params = body.partition(" ")
        out[kw.upper()] = params.strip()
    return out


def command(sock, line):
    sock.sendall(line.encode() + b"\r\n")
    return read_reply(sock)


class SmtpTls:
    """A line-level SMTP client that can do STARTTLS or implicit TLS, reading replies without
    read-ahead (so that a test sees exactly what arrives, and when). Every read has a timeout.

        c = SmtpTls(port, ctx, implicit=True)      # greeting read into c.greeting
        code, lines = c.cmd("EHLO client.test")
        c.starttls()                               # STARTTLS + handshake (plain connections)
        c.closed_by_server(3)                      # True once EOF/reset is seen"""

    def __init__(self, port, ctx, implicit=False, host="127.0.0.1", timeout=10.0):
        self.ctx = ctx
        self.timeout = timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        self.local_port = raw.getsockname()[1]
        self.sock = raw
        try:
            if implicit:
                self.sock = ctx.wrap_socket(raw, server_hostname=SERVER_NAME)
                self.sock.settimeout(timeout)
            self.greeting = read_reply(self.sock)
        except BaseException:
            self.sock.close()
            raise

    @property
    def tls_version(self):
        return self.sock.version() if isinstance(self.sock, ssl.SSLSocket) else None

    def send(self, data: bytes):
        self.sock.sendall(data)

    def cmd(self, line):
        return command(self.sock, line)

    def reply(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            return read_reply(self.sock)
        finally:
            self.sock.settimeout(self.timeout)

    def handshake(self):
        """Wrap the plain socket in TLS now (after a 220 to STARTTLS)."""
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname=SERVER_NAME)
        self.sock.settimeout(self.timeout)

    def starttls(self):
        code, lines = self.cmd("STARTTLS")
        if code != 220:
            raise AssertionError(f"STARTTLS refused: {lines}")
        self.handshake()

    def closed_by_server(self, timeout=3.0):
        """True if the server closes within `timeout` (EOF, reset, or a TLS-level EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return True
        except ssl.SSLError:
            return True
        except socket.timeout:
            return False
        finally:
            try:
                self.sock.settimeout(self.timeout)
            except OSError:
                pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def peer_certificate(port, ctx, starttls=False, host="127.0.0.1", timeout=10.0, helo="client.test"):
    """Connect, (STARTTLS if asked,) complete a verified TLS handshake, QUIT. Returns
    (getpeercert() dict, negotiated version, cipher name)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if starttls:
            code, lines = read_reply(sock)
            if code != 220:
                raise AssertionError(f"greeting: {lines}")
            code, lines = command(sock, f"EHLO {helo}")
            if code != 250:
                raise AssertionError(f"EHLO: {lines}")
            code, lines = command(sock, "STARTTLS")
            if code != 220:
                raise AssertionError(f"STARTTLS: {lines}")
        tls = ctx.wrap_socket(sock, server_hostname=SERVER_NAME)
        sock = tls
        tls.settimeout(timeout)
        cert, version, cipher = tls.getpeercert(), tls.version(), tls.cipher()[0]
        if not starttls:
            read_reply(tls)  # 220 greeting
        try:
            command(tls, "QUIT")
        except OSError:
            pass
        return cert, version, cipher
    finally:
        sock.close()


# ----------------------------------------------------------------------------------------------
# the shared three-profile server configuration
# ----------------------------------------------------------------------------------------------
USERS = [
    # address, password, status, alternates  (the same people as slapd_harness.BASE_USERS)
    ("alice@example.org", "alicepw", "active", ["alias-alice@example.org"]),
    ("bob@example.org", "bobpw", "active", []),
    ("carol@example.org", "carolpw", "disabled", []),
]


def crypt_sha512(password):
    """A $6$ crypt hash made by `openssl passwd -6`."""
    return _openssl(["passwd", "-6", password], None).strip()


def users_file(path, users=USERS):
    """Writes a users file (directory.type = "file") for `users`; returns its path."""
    with open(path, "w") as f:
        f.write("# address  hash  status  alternates\n")
        for address, password, status, alternates in users:
            line = f"{address} {crypt_sha512(password)} {status}"
            if alternates:
                line += " " + ",".join(alternates)
            f.write(line + "\n")
    return path


def profile_overrides(cert_file, key_file, directory, auth=None, tls=None, limits=None):
    """Mxfront config overrides: three listeners (mx, submission, submissions, free ports, in this
    order in Mxfront.listeners), [tls] with the given files, [auth] and the given [directory]."""
    cfg = {
        "listener": [{"address": "127.0.0.1:0", "profile": "mx"},
                     {"address": "127.0.0.1:0", "profile": "submission"},
                     {"address": "127.0.0.1:0", "profile": "submissions"}],
        "tls": {"cert_file": cert_file, "key_file": key_file},
        # the per-address and per-login limits across connections are off here: every test of
        # these stacks comes from 127.0.0.1 (test_hardening.py covers them)
        "auth": {"failure_delay": 0.3, "failure_limit": 3, "address_failure_limit": 0, "login_failure_limit": 0},
        "limits": {"greeting_timeout": 3, "tls_handshake_timeout": 3},
        "directory": dict(directory),
    }
    cfg["tls"].update(tls or {})
    cfg["auth"].update(auth or {})
    cfg["limits"].update(limits or {})
    return cfg

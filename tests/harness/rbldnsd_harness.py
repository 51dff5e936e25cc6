"""DNS lists for integration tests: a REAL rbldnsd on a free loopback UDP port, plus a black hole.

  * Rbldnsd(zones)  - rbldnsd serving the given zones (name -> (type, file text)) on 127.0.0.1:<port>;
                      started in the foreground (-n), polled with real DNS queries until it answers,
                      stopped by PID; its temp dir is removed. `TEST_ZONES` is a ready set of lists.
  * BlackHoleDns    - a bound UDP socket that never answers (a DNS server that is down but not
                      refusing: queries time out).
  * dns_query()     - a minimal DNS client (A / TXT) used for the readiness poll and by tests.

rbldnsd drops root to user `rbldns`: the temp dir is 0755 and the zone files world-readable.
Python standard library only; every socket has a timeout.
"""
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

from mxharness import HarnessError, _stop_process, remove_dir

# The test lists. Addresses are in 127.0.0.0/8 so that clients can connect FROM them.
TEST_ZONES = {
    # reject list: TXT with $ (the queried IP), a /24, an exclusion inside it
    "bl.test": ("ip4set", """\
$SOA 300 ns.bl.test. hostmaster.bl.test. 1 600 300 86400 60
:127.0.0.2:Listed in bl.test, see http://bl.test/lookup?ip=$
127.0.0.2
127.0.1.0/24
!127.0.1.99
127.0.0.8
127.0.0.9
"""),
    # zen-like score list: several answers for one IP, codes outside the honoured range
    "zen.test": ("ip4set", """\
$SOA 300 ns.zen.test. hostmaster.zen.test. 1 600 300 86400 60
127.0.0.3 :127.0.0.2:SBL listing
127.0.0.4 :127.0.0.2:SBL listing
127.0.0.4 :127.0.0.4:XBL listing
127.0.0.4 :127.0.0.10:PBL listing
127.0.0.5 :127.0.0.11:not honoured code
"""),
    # second score list (the sum) and the lists' error answer
    "sc2.test": ("ip4set", """\
$SOA 300 ns.sc2.test. hostmaster.sc2.test. 1 600 300 86400 60
127.0.0.3 :127.0.0.2:second list
127.0.0.6 :127.255.255.254:query refused (error code)
"""),
    # RHSBL
    "dbl.test": ("dnset", """\
$SOA 300 ns.dbl.test. hostmaster.dbl.test. 1 600 300 86400 60
spammer.example :127.0.1.2:Spam domain $
*.phish.example :127.0.1.4:phish
"""),
    # IPv6 clients (nibble-format queries)
    "bl6.test": ("ip6trie", """\
$SOA 300 ns.bl6.test. hostmaster.bl6.test. 1 600 300 86400 60
:127.0.0.2:IPv6 client $ listed
::1/128
"""),
    # DNSWL
    "wl.test": ("ip4set", """\
$SOA 300 ns.wl.test. hostmaster.wl.test. 1 600 300 86400 60
127.0.0.8 :127.0.10.1:trusted
"""),
}


def free_udp_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _qname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _skip_name(buf, i):
    while True:
        n = buf[i]
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1
        if n == 0:
            return i
        i += n


def dns_query(server, port, name, qtype="A", timeout=1.0):
    """One UDP query. Returns (rcode, [answers]) - A as "a.b.c.d", TXT as str - or None on timeout."""
    t = {"A": 1, "TXT": 16}[qtype]
    qid = random.randrange(65536)
    msg = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _qname(name) + struct.pack(">HH", t, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, (server, port))
        try:
            buf, _ = s.recvfrom(4096)
        except (socket.timeout, ConnectionRefusedError):
            return None
    rid, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", buf[:12])
    if rid != qid:
        return None
    i = 12
    for _ in range(qd):
        i = _skip_name(buf, i) + 4
    answers = []
    for _ in range(an):
        i = _skip_name(buf, i)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", buf[i:i + 10])
        i += 10
        rdata = buf[i:i + rdlen]
        i += rdlen
        if rtype == 1 and rdlen == 4:
            answers.append(socket.inet_ntoa(rdata))
        elif rtype == 16:
            parts, j = [], 0
            while j < len(rdata):
                k = rdata[j]
                parts.append(rdata[j + 1:j + 1 + k].decode("latin-1"))
                j += 1 + k
            answers.append("".join(parts))
    return flags & 0x0F, answers


class Rbldnsd:
    """A real rbldnsd. `zones`: {zone name: (dataset type, file text)}; `address` is "127.0.0.1:port"."""

    def __init__(self, zones=None):
        self.zones = zones if zones is not None else TEST_ZONES
        self.host = "127.0.0.1"
        self.port = None
        self.dir = None
        self.proc = None

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=10.0, port=None):
        """`port`: serve on that UDP port (e.g. to come back where a stopped server was)."""
        exe = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
        if not os.path.exists(exe):
            raise HarnessError("rbldnsd missing: apt-get install rbldnsd")
        self.dir = tempfile.mkdtemp(prefix="mxtest-rbldnsd.", dir="/tmp")
        os.chmod(self.dir, 0o755)  # rbldnsd setuid()s to user rbldns when started as root
        args = [exe, "-n", "-b", None, "-w", self.dir, "-t", "60", "-c", "60", "-a"]
        for name, (kind, text) in self.zones.items():
            fname = f"{name}.zone"
            path = os.path.join(self.dir, fname)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
            args.append(f"{name}:{kind}:{fname}")
        probe = next(iter(self.zones))
        last = ""
        for _attempt in range(3):  # the UDP port is free when chosen; retry if someone takes it
            self.port = port or free_udp_port()
            args[3] = f"{self.host}/{self.port}"
            log = open(os.path.join(self.dir, "rbldnsd.out"), "wb")
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                # any answer (NXDOMAIN for the probe name) means it serves the zones
                if dns_query(self.host, self.port, f"1.0.0.127.{probe}", "A", timeout=0.2) is not None:
                    return self
            last = self.output()
            self._kill()
        self.stop()
        raise HarnessError(f"rbldnsd did not answer on UDP {self.host}:{self.port}:\n{last}")

    def output(self):
        try:
            with open(os.path.join(self.dir, "rbldnsd.out"), errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def query(self, name, qtype="A"):
        return dns_query(self.host, self.port, name, qtype)

    def _kill(self):
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM, timeout=5)
            self.proc = None

    def stop(self):
        self._kill()
        self.dir = remove_dir(self.dir, "rbldnsd_harness")


class BlackHoleDns:
    """A UDP socket bound on loopback that reads nothing and answers nothing: queries time out."""

    def __init__(self):
        self.sock = None
        self.port = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        return self

    def __exit__(self, *exc):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

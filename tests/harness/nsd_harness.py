"""Authoritative DNS for integration tests: a REAL nsd on a free loopback port, and a fault proxy.

  * Nsd(zones)             - nsd serving the given zones on 127.0.0.1:<port> (UDP and TCP), started in
                             the foreground (-d), polled with real SOA queries until every zone answers,
                             stopped by PID; its temp dir is removed. zones = {"example.test": [
                             ("@", "TXT", "v=spf1 -all"), ("sel._domainkey", "TXT", "v=DKIM1; p=..."),
                             ("@", "A", "127.0.0.1"), ("@", "MX", "10 mx.example.test.")]}: owners are
                             relative to the zone ("@" = the apex; a name ending in "." is absolute), TXT
                             rdata is a plain str (quoted and split into 255-byte strings here), other
                             rdata is zone-file text; a 4th element is the record's TTL (else `ttl`).
                             `.address` = "127.0.0.1:<port>", `.port`.
                             Nsd(zones, port=P) serves on port P (to come back where a stopped one was).
  * DnsFilterProxy(upstream, drop=(), servfail=())
                           - a UDP+TCP forwarder in front of `upstream` ("127.0.0.1:<port>") that never
                             answers queries for names under the `drop` suffixes (a server that does not
                             answer: the client times out) and answers SERVFAIL for names under the
                             `servfail` suffixes; everything else is nsd's answer, byte for byte (a
                             truncated UDP answer stays truncated: the client must retry over TCP).
                             `.drop_all = True` makes it answer nothing at all (a DNS outage) until reset.
                             It counts what it receives: `.queries(name, transport=None)` = the queries for
                             `name` (case-insensitive) over "udp", "tcp" or both; `.truncated(name)` = the
                             UDP answers for `name` it passed on with the TC bit set.
  * dns_txt(address, name) - the TXT strings of `name` (each record's strings joined), via one UDP query
                             with EDNS0 (4096 octets), again over TCP when that answer is truncated.

nsd runs as root with `username: ""` (no privilege drop), every file in its temp dir.
Python standard library only; every socket has a timeout.
"""
import os
import random
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
from collections import Counter
import time

from mxharness import HarnessError, _stop_process, remove_dir

NSD = "/usr/sbin/nsd"


def _free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise HarnessError("no free UDP+TCP port")


def _txt_rdata(text):
    data = text.encode()
    chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for c in chunks:
        s = "".join(("\\" + chr(b)) if chr(b) in '"\\' else chr(b) if 32 <= b < 127 else "\\%03d" % b for b in c)
        out.append('"%s"' % s)
    return " ".join(out)


def zone_text(zone, records, ttl=300):
    lines = ["$ORIGIN %s." % zone, "$TTL %d" % ttl,
             "@ IN SOA ns.%s. hostmaster.%s. 1 600 300 86400 60" % (zone, zone),
             "@ IN NS ns.%s." % zone, "ns IN A 127.0.0.1"]
    for owner, rtype, rdata, *rttl in records:
        rtype = rtype.upper()
        value = _txt_rdata(rdata) if rtype == "TXT" else rdata
        lines.append("%s %s IN %s %s" % (owner, rttl[0] if rttl else "", rtype, value))
    return "\n".join(lines) + "\n"


def _qname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _read_name(buf, i):
    """The query name at offset i (no compression in questions) and the offset after it."""
    labels = []
    while True:
        n = buf[i]
        if n == 0:
            return ".".join(labels), i + 1
        if n & 0xC0:
            raise ValueError("compressed question name")
        labels.append(buf[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n


def _skip_name(buf, i):
    while True:
        n = buf[i]
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1
        if n == 0:
            return i
        i += n


def _tcp_exchange(host, port, msg, timeout):
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">H", len(msg)) + msg)
        head = s.recv(2, socket.MSG_WAITALL)
        return s.recv(struct.unpack(">H", head)[0], socket.MSG_WAITALL)


def dns_query(address, name, qtype, timeout=1.0):
    """One UDP query (again over TCP if the answer is truncated): (rcode, [(type, rdata bytes)]) or
    None on timeout."""
    host, port = address.rsplit(":", 1)
    qid = random.randrange(65536)
    # EDNS0 with a 4096-byte payload: long TXT records (DKIM keys) fit without a TCP retry
    msg = (struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1) + _qname(name) + struct.pack(">HH", qtype, 1)
           + b"\0" + struct.pack(">HHIH", 41, 4096, 0, 0))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, (host, int(port)))
        try:
            buf, _ = s.recvfrom(65535)
        except (socket.timeout, ConnectionRefusedError):
            return None
    rid, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", buf[:12])
    if rid != qid:
        return None
    if flags & 0x0200:  # TC: the whole answer over TCP
        try:
            buf = _tcp_exchange(host, port, msg, timeout)
        except (OSError, struct.error):
            return None
        rid, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", buf[:12])
    i = 12
    for _ in range(qd):
        i = _skip_name(buf, i) + 4
    answers = []
    for _ in range(an):
        i = _skip_name(buf, i)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", buf[i:i + 10])
        i += 10
        answers.append((rtype, buf[i:i + rdlen]))
        i += rdlen
    return flags & 0xF, answers


def dns_txt(address, name, timeout=1.0):
    """The TXT records of `name` (each record's strings joined), [] when none; None on timeout."""
    r = dns_query(address, name, 16, timeout)
    if r is None:
        return None
    out = []
    for rtype, rdata in r[1]:
        if rtype != 16:
            continue
        j, parts = 0, []
        while j < len(rdata):
            n = rdata[j]
            parts.append(rdata[j + 1:j + 1 + n].decode("latin-1"))
            j += 1 + n
        out.append("".join(parts))
    return out


class Nsd:
    def __init__(self, zones, ttl=300, start_timeout=10.0, port=None):
        if not os.path.exists(NSD):
            raise HarnessError("nsd is not installed (%s): scripts/install-deps.sh installs it" % NSD)
        self.zones = zones
        self.dir = tempfile.mkdtemp(prefix="mxtest-nsd.")
        self.port = port or _free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.proc = None
        conf = ["server:", "  ip-address: 127.0.0.1", "  port: %d" % self.port, '  username: ""',
                "  chroot: \"\"", "  zonesdir: \"%s\"" % self.dir, "  pidfile: \"%s/nsd.pid\"" % self.dir,
                "  zonelistfile: \"%s/zone.list\"" % self.dir, "  xfrdfile: \"%s/xfrd.state\"" % self.dir,
                "  xfrdir: \"%s\"" % self.dir, "  logfile: \"%s/nsd.log\"" % self.dir, '  database: ""',
                "  server-count: 1", "  tcp-count: 32", "  verbosity: 1", "  hide-version: yes",
                "remote-control:", "  control-enable: no"]
        for zone, records in zones.items():
            path = os.path.join(self.dir, zone + ".zone")
            with open(path, "w") as f:
                f.write(zone_text(zone, records, ttl))
            conf += ["zone:", "  name: \"%s\"" % zone, "  zonefile: \"%s\"" % path]
        self.conf = os.path.join(self.dir, "nsd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        try:
            self._start(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        check = subprocess.run(["nsd-checkconf", self.conf], capture_output=True, text=True)
        if check.returncode != 0:
            raise HarnessError("nsd-checkconf: %s" % (check.stderr or check.stdout))
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen([NSD, "-d", "-c", self.conf], stdout=self.stderr, stderr=self.stderr)
        deadline = time.monotonic() + timeout
        pending = set(self.zones)
        while pending:
            if self.proc.poll() is not None:
                raise HarnessError("nsd exited with %s: %s" % (self.proc.returncode, self.log()))
            for zone in list(pending):
                r = dns_query(self.address, zone, 6, timeout=0.3)  # SOA
                if r is not None and r[0] == 0 and r[1]:
                    pending.discard(zone)
            if pending and time.monotonic() > deadline:
                raise HarnessError("nsd does not serve %s after %.0fs: %s" % (sorted(pending), timeout, self.log()))
            if pending:
                time.sleep(0.05)

    def log(self):
        out = ""
        for name in ("stderr.log", "nsd.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()[-4000:]
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc is not None:
            _stop_process(self.proc)
            self.proc = None
        if getattr(self, "stderr", None):
            self.stderr.close()
            self.stderr = None
        remove_dir(self.dir, "nsd")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _under(name, suffixes):
    n = name.lower().rstrip(".")
    return any(n == s or n.endswith("." + s) for s in suffixes)


class DnsFilterProxy:
    """UDP+TCP forwarder to `upstream` that drops or SERVFAILs queries under given suffixes."""

    def __init__(self, upstream, drop=(), servfail=()):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.drop = [s.lower().rstrip(".") for s in drop]
        self.servfail = [s.lower().rstrip(".") for s in servfail]
        self.port = _free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.dropped = 0
        self.drop_all = False
        self._lock = threading.Lock()
        self._seen = Counter()       # (name, "udp" | "tcp") -> queries received
        self._truncated = Counter()  # name -> UDP answers passed on with TC set
        proxy = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                out = proxy.answer(data, tcp=False)
                if out is not None:
                    sock.sendto(out, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                try:
                    head = self._read(2)
                    data = self._read(struct.unpack(">H", head)[0])
                except (OSError, ValueError):
                    return
                out = proxy.answer(data, tcp=True)
                if out is not None:
                    self.request.sendall(struct.pack(">H", len(out)) + out)
                else:
                    time.sleep(5)  # never answered: hold the connection until the client gives up

            def _read(self, n):
                buf = b""
                while len(buf) < n:
                    chunk = self.request.recv(n - len(buf))
                    if not chunk:
                        raise ValueError("closed")
                    buf += chunk
                return buf

        socketserver.ThreadingUDPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp)
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)
        self.udp.daemon_threads = self.tcp.daemon_threads = True
        self.threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
                        for s in (self.udp, self.tcp)]
        for t in self.threads:
            t.start()

    def queries(self, name, transport=None):
        """Queries received for `name` over `transport` ("udp", "tcp"; None: both)."""
        n = name.lower().rstrip(".")
        with self._lock:
            return sum(v for (q, t), v in self._seen.items() if q == n and transport in (None, t))

    def truncated(self, name):
        with self._lock:
            return self._truncated[name.lower().rstrip(".")]

    def answer(self, data, tcp):
        try:
            name, _ = _read_name(data, 12)
        except (ValueError, IndexError):
            return None
        key = name.lower().rstrip(".")
        with self._lock:
            self._seen[(key, "tcp" if tcp else "udp")] += 1
        if self.drop_all or _under(name, self.drop):
            self.dropped += 1
            return None
        if _under(name, self.servfail):
            flags = struct.unpack(">H", data[2:4])[0]
            reply_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 2  # QR, opcode+RD copied, RA, SERVFAIL
            qd_end = _skip_name(data, 12) + 4
            return data[:2] + struct.pack(">HHHHH", reply_flags, 1, 0, 0, 0) + data[12:qd_end]
        out = self._forward(data, tcp)
        if out is not None and not tcp and len(out) > 3 and out[2] & 0x02:
            with self._lock:
                self._truncated[key] += 1
        return out

    def _forward(self, data, tcp):
        try:
            if tcp:
                return _tcp_exchange(self.upstream[0], self.upstream[1], data, 3)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(3)
                s.sendto(data, self.upstream)
                return s.recvfrom(65535)[0]
        except (OSError, struct.error):
            return None

    def stop(self):
        for s in (self.udp, self.tcp):
            s.shutdown()
            s.server_close()
        for t in self.threads:
            t.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

"""PROXY protocol v1/v2 listeners, end to end: the real mxfront behind a real HAProxy (TCP mode,
send-proxy-v2, SMTP health checks that send PROXY v2 LOCAL headers, one backend with the
crc32c and unique-id TLVs), swaks' PROXY headers sent directly, and raw sockets for what must be
refused. Delivery goes through a real Postfix qmqpd into Maildirs, where the Received header must
show the client address from the PROXY header.

Needs root (Postfix), haproxy and swaks; a missing or failing HAProxy fails the tests (no skip).
Run from the repo root:  python3 -m unittest -v tests/integration/test_proxy.py"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import (RECEIVED_RE, HarnessError, Mxfront, PostfixQmqp, free_port,  # noqa: E402
                       smtp_raw, unique_marker)
from haproxy_harness import Haproxy  # noqa: E402

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, dst, sport, dport, tlvs=b"", command=1):
    """A PROXY v2 header (TCP over IPv4 or IPv6; command 0 = LOCAL, 1 = PROXY)."""
    if ":" in src:
        fam, addrs = 0x21, socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    else:
        fam, addrs = 0x11, socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(body)) + body


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def v2_header_crc(src, dst, sport, dport, extra_tlvs=b""):
    """A PROXY v2 header with a correct CRC32C TLV (as HAProxy's proxy-v2-options crc32c)."""
    h = bytearray(v2_header(src, dst, sport, dport, extra_tlvs + b"\x03\x00\x04\x00\x00\x00\x00"))
    h[-4:] = struct.pack("!I", crc32c(bytes(h)))
    return bytes(h)


LOCAL_HEADER = V2_SIG + b"\x20\x00\x00\x00"  # what HAProxy's health checks send
NON_WARMUP_SESSION = r"\bconnect id=\S+ client=(?!198\.18\.0\.)"  # a session not started by warm_up()


def message(marker, sender="sender@example.net"):
    return (f"From: <{sender}>\r\nTo: <bob@example.org>\r\nSubject: {marker}\r\n\r\n"
            f"body {marker}\r\n").encode()


class Raw:
    """A client socket with a timeout on every operation (for byte-exact PROXY tests)."""

    def __init__(self, port, source=None, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.buf = b""
        try:
            if source:
                self.sock.bind((source, 0))
            self.sock.connect(("127.0.0.1", port))
        except BaseException:
            self.sock.close()
            raise
        self.local_port = self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        """One reply line (without CRLF), or None when the server closed."""
        while b"\r\n" not in self.buf:
            try:
                d = self.sock.recv(4096)
            except ConnectionResetError:
                d = b""
            if not d:
                return None
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def reply(self):
        """The last line of one (possibly multi-line) reply, or None when the server closed."""
        while True:
            line = self.line()
            if line is None or line[3:4] != "-":
                return line

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.sock.close()


def smtp_session(port, marker, source=None, header=b"", helo="client.test"):
    """A whole SMTP transaction (optionally after a PROXY header); returns the client's local port."""
    c = Raw(port, source=source)
    try:
        if header:
            c.send(header)
        greeting = c.reply()
        if not (greeting or "").startswith("220"):
            raise AssertionError(f"greeting {greeting!r}")
        for cmd, want in ((f"EHLO {helo}", "250"), ("MAIL FROM:<sender@example.net>", "250"),
                          ("RCPT TO:<bob@example.org>", "250"), ("DATA", "354")):
            r = c.cmd(cmd)
            if not (r or "").startswith(want):
                raise AssertionError(f"{cmd} -> {r!r}")
        c.send(message(marker) + b".\r\n")
        r = c.reply()
        if not (r or "").startswith("250"):
            raise AssertionError(f"end of data -> {r!r}")
        c.cmd("QUIT")
        return c.local_port
    finally:
        c.close()


def proxy_listener(trusted=("127.0.0.1/32",)):
    return {"address": "127.0.0.1:0", "profile": "mx", "proxy_protocol": True, "proxy_trusted": list(trusted)}


def warm_up(mx, sessions=4, source=None):
    """Concurrent sessions (each after a header with its own source, 198.18.0.N) so per-thread lazy
    state exists; then the settled fd count, the leak baseline."""
    conns = [Raw(mx.port, source=source, timeout=5) for _ in range(sessions)]
    try:
        for i, c in enumerate(conns):
            c.send(v2_header(f"198.18.0.{i + 1}", "127.0.0.1", 1000 + i, 25))
        for c in conns:
            if not (c.reply() or "").startswith("220"):
                raise HarnessError(f"warm-up session got no 220:\n{mx.log()[-2000:]}")
            c.cmd("EHLO warmup.test")
            c.cmd("QUIT")
    finally:
        for c in conns:
            c.close()
    return mx.settled_fd_count()


class ProxyBehindHaproxyTest(unittest.TestCase):
    """Two mxfront instances behind one HAProxy; s2 also sends the crc32c and unique-id TLVs."""

    @classmethod
    def setUpClass(cls):
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        cls.mx = []
        cls.baseline = []
        for _ in range(2):
            mx = Mxfront([cls.pf.address], {"listener": [proxy_listener()]})
            cls.addClassCleanup(mx.kill)
            mx.start()
            cls.mx.append(mx)
            cls.baseline.append(warm_up(mx))
        cls.hap = Haproxy([("s1", cls.mx[0].port, ""),
                           ("s2", cls.mx[1].port, "proxy-v2-options crc32c,unique-id")])
        cls.addClassCleanup(cls.hap.stop)
        cls.hap.start()

    def setUp(self):
        self.addCleanup(lambda: [mx.check_alive() for mx in self.mx])

    def diag(self):
        return "".join(f"\n--- mxfront s{i + 1} log ---\n{mx.log()[-2500:]}" for i, mx in enumerate(self.mx)) + (
            f"\n--- haproxy log ---\n{self.hap.log()[-1500:]}\n--- postfix maillog ---\n{self.pf.log()[-1000:]}")

    def wait_checks_ok(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        state = {}
        while time.monotonic() < deadline:
            state = self.hap.servers()
            if all(state.get(s, ("", ""))[0] == "UP" and state[s][1] == "L7OK" for s in ("s1", "s2")):
                return state
            time.sleep(0.2)
        self.fail(f"backends not UP/L7OK after {timeout}s: {state}{self.diag()}")

    def test_health_checks_pass_and_are_sessions_from_the_balancer(self):
        state = self.wait_checks_ok()
        self.assertEqual(state["s1"], ("UP", "L7OK"))
        self.assertEqual(state["s2"], ("UP", "L7OK"))
        for mx in self.mx:
            # LOCAL header: served with the socket's own addresses (the balancer, 127.0.0.1)
            self.assertIsNotNone(mx.wait_log(r"connect id=\S+ client=127\.0\.0\.1:\d+ ", 5), self.diag())
            self.assertNotRegex(mx.log(), r"proxy id=\S+ .*(bad header|untrusted)", self.diag())
        # the check is a real SMTP exchange: it waited for 220 and got 250 to its EHLO
        time.sleep(2.5)  # a few more check rounds: still healthy
        self.assertEqual(self.hap.servers(), {"s1": ("UP", "L7OK"), "s2": ("UP", "L7OK")}, self.diag())

    def test_clients_through_haproxy_keep_their_own_address(self):
        self.wait_checks_ok()
        sent = []  # (source, client port, marker)
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"):
            marker = unique_marker("hap")
            port = smtp_session(self.hap.port, marker, source=source)
            sent.append((source, port, marker))
        served = [0, 0]
        for source, port, marker in sent:
            pat = rf"connect id=\S+ client={re.escape(source)}:{port} "
            deadline = time.monotonic() + 5
            while True:
                hits = [i for i, mx in enumerate(self.mx) if re.search(pat, mx.log(), re.M)]
                if hits or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(len(hits), 1, f"{source}:{port} not logged by exactly one backend{self.diag()}")
            served[hits[0]] += 1
            got = self.pf.deliveries(15, 1, match=marker.encode())
            self.assertEqual(len(got), 1, f"{marker} not delivered{self.diag()}")
            m = RECEIVED_RE.search(got[0].data)
            self.assertIsNotNone(m, got[0].data[:500])
            self.assertEqual(m.group("addr").decode(), f"[{source}]", m.group(0))
        # round robin: both backends, so both header kinds (plain and crc32c + unique-id) were used
        self.assertEqual(served, [2, 2], self.diag())
        self.assertIsNotNone(self.mx[1].wait_log(r"proxy id=\S+ peer=127\.0\.0\.1 client=127\.0\.0\.[23]:\d+ v2", 1))

    def test_z_fd_count_back_to_baseline_once_haproxy_stops(self):
        self.hap.stop()
        for i, mx in enumerate(self.mx):
            n = mx.wait_fd_baseline(self.baseline[i], timeout=10)
            self.assertLessEqual(n, self.baseline[i], f"s{i + 1}: fd count {n} > baseline {self.baseline[i]}"
                                 f"{self.diag()}")
            self.assertEqual(mx.close_wait_count(), 0)


class ProxyDirectTest(unittest.TestCase):
    """PROXY headers sent straight to mxfront: swaks, refused peers and headers, split writes,
    the per-IP limit (IPv4-mapped sources keyed as IPv4, IPv6 per /64)."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("swaks"):
            raise HarnessError("swaks not installed (apt-get install -y swaks)")
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()

    def start_mx(self, trusted=("127.0.0.1/32",), limits=None):
        cfg = {"listener": [proxy_listener(trusted)], "limits": {"greeting_timeout": 3, **(limits or {})}}
        mx = Mxfront([self.pf.address], cfg)
        self.addCleanup(mx.kill)
        mx.start()
        self.addCleanup(mx.check_alive)  # runs before kill: a crash fails the test
        self.mx = mx
        return mx

    def baseline(self, mx, source=None):
        """The fd count after a warm-up from `source`; checked again when the test ends."""
        n = warm_up(mx, source=source)
        self.addCleanup(self.assert_fd_baseline, mx, n)
        return n

    def assert_fd_baseline(self, mx, baseline):
        if not mx.alive():
            return  # check_alive reports it
        n = mx.wait_fd_baseline(baseline, timeout=10)
        self.assertLessEqual(n, baseline, f"fd count {n} > baseline {baseline}{self.diag()}")
        self.assertEqual(mx.close_wait_count(), 0, "CLOSE_WAIT socket left behind")

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix maillog ---\n{self.pf.log()[-1000:]}"

    def assert_refused(self, result, what):
        self.assertTrue(result.closed, f"{what}: not closed: {result!r}{self.diag()}")
        self.assertEqual(result.data, b"", f"{what}: the server sent something{self.diag()}")

    def swaks(self, marker, *proxy_args):
        cmd = ["swaks", "--server", "127.0.0.1", "--port", str(self.mx.port), "--ehlo", "client.test",
               "--from", "sender@example.net", "--to", "bob@example.org", "--timeout", "10",
               "--header", f"Subject: {marker}", "--body", f"body {marker}", *proxy_args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, f"swaks exit {p.returncode}:\n{p.stdout[-2000:]}{p.stderr}{self.diag()}")
        return p

    def test_swaks_proxy_headers_v1_and_v2(self):
        mx = self.start_mx()
        self.baseline(mx)
        cases = [
            ("1", "TCP4", "203.0.113.7", "40000", "127.0.0.1"),
            ("2", "AF_INET", "203.0.113.7", "40001", "127.0.0.1"),
            ("1", "TCP6", "2001:db8::7", "40002", "::1"),
            ("2", "AF_INET6", "2001:db8::8", "40003", "::1"),
        ]
        for version, family, source, sport, dest in cases:
            with self.subTest(version=version, family=family):
                marker = unique_marker(f"swaks-v{version}")
                self.swaks(marker, "--proxy-version", version, "--proxy-family", family, "--proxy-source", source,
                           "--proxy-source-port", sport, "--proxy-dest", dest, "--proxy-dest-port", str(mx.port))
                # an IPv6 address is bracketed before its port, and is an IPv6 literal in Received
                client = f"[{source}]:{sport}" if ":" in source else f"{source}:{sport}"
                literal = f"[IPv6:{source}]" if ":" in source else f"[{source}]"
                self.assertIsNotNone(mx.wait_log(rf"connect id=\S+ client={re.escape(client)} ", 5),
                                     self.diag())
                self.assertIsNotNone(
                    mx.wait_log(rf"proxy id=\S+ peer=127\.0\.0\.1 client={re.escape(client)} v{version}", 1))
                got = self.pf.deliveries(15, 1, match=marker.encode())
                self.assertEqual(len(got), 1, f"{marker} not delivered{self.diag()}")
                m = RECEIVED_RE.search(got[0].data)
                self.assertIsNotNone(m, got[0].data[:500])
                self.assertEqual(m.group("addr").decode(), literal, m.group(0))

    def test_direct_client_without_header_is_closed_with_nothing_sent(self):
        mx = self.start_mx()
        self.baseline(mx)
        # an SMTP client that talks first
        r = smtp_raw(mx.port, [b"EHLO client.test\r\n"], wait_greeting=False, timeout=5)
        self.assert_refused(r, "EHLO without a header")
        self.assertLess(r.elapsed, 2.5, r)
        # a normal SMTP client waits for the banner: it never comes, closed at greeting_timeout (3 s)
        r = smtp_raw(mx.port, [], wait_greeting=False, timeout=8)
        self.assert_refused(r, "silent client")
        self.assertGreater(r.elapsed, 2.0, r)
        self.assertLess(r.elapsed, 6.0, r)
        self.assertIsNotNone(mx.wait_log(r'proxy id=\S+ peer=127\.0\.0\.1 bad header: "?timeout', 2), self.diag())
        self.assertNotRegex(mx.log(), NON_WARMUP_SESSION, "a session started without a header")

    def test_header_from_untrusted_peer_is_closed(self):
        mx = self.start_mx(trusted=("127.0.0.9/32",))
        self.baseline(mx, source="127.0.0.9")  # the trusted balancer is served
        for header in (v2_header("203.0.113.7", "127.0.0.1", 40000, 25), b"PROXY TCP4 203.0.113.7 127.0.0.1 1 25\r\n",
                       LOCAL_HEADER):
            r = smtp_raw(mx.port, [header + b"EHLO client.test\r\n"], wait_greeting=False, timeout=5)
            self.assert_refused(r, f"untrusted {header!r}")
            self.assertLess(r.elapsed, 2.5, r)
        self.assertIsNotNone(mx.wait_log(r"proxy id=\S+ peer=127\.0\.0\.1 untrusted", 2), self.diag())
        self.assertEqual(len(re.findall(r"untrusted", mx.log())), 3, self.diag())
        self.assertNotRegex(mx.log(), NON_WARMUP_SESSION, "a session started for an untrusted peer")
        # swaks from an untrusted address gets no banner either (exit 6: the connection broke, or
        # 21: no banner, depending on whether it saw the close while writing or reading)
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(mx.port), "--to", "bob@example.org",
                            "--timeout", "5", "--proxy-version", "2", "--proxy-family", "AF_INET",
                            "--proxy-source", "203.0.113.7", "--proxy-source-port", "40000",
                            "--proxy-dest", "127.0.0.1", "--proxy-dest-port", str(mx.port)],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertIn(p.returncode, (6, 21), p.stdout[-1500:])
        self.assertNotIn("<- 220", p.stdout)

    def test_garbage_headers_are_closed(self):
        mx = self.start_mx()
        self.baseline(mx)
        good_crc = v2_header_crc("203.0.113.7", "127.0.0.1", 40000, 25, b"\x05\x00\x04uid1")
        bad_crc = bytearray(good_crc)
        bad_crc[-9] ^= 1  # a byte of the unique-id TLV value
        cases = {
            "v1_port_65536": b"PROXY TCP4 203.0.113.7 127.0.0.1 65536 25\r\n",
            "v1_double_space": b"PROXY TCP4  203.0.113.7 127.0.0.1 1 25\r\n",
            "v1_lowercase": b"proxy TCP4 203.0.113.7 127.0.0.1 1 25\r\n",
            "v1_bad_ip": b"PROXY TCP4 203.0.113.256 127.0.0.1 1 25\r\n",
            "v1_ipv6_in_tcp4": b"PROXY TCP4 2001:db8::1 ::1 1 25\r\n",
            "v1_missing_cr": b"PROXY TCP4 203.0.113.7 127.0.0.1 1 25\nEHLO x\r\n",
            "v1_no_crlf_in_107": b"PROXY UNKNOWN " + b"x" * 120,
            "v2_bad_crc": bytes(bad_crc),
            "v2_version_1": V2_SIG + b"\x11\x11\x00\x0c" + bytes(12),
            "v2_udp": V2_SIG + b"\x21\x12\x00\x0c" + bytes(12),
            "v2_proxy_unspec": V2_SIG + b"\x21\x00\x00\x00" + b"EHLO client.test\r\n",
            "v2_tlv_overrun": V2_SIG + b"\x21\x11\x00\x10" + bytes(12) + b"\x05\x00\x09x",
            "v2_too_long": V2_SIG + b"\x21\x11\xff\xff" + bytes(64),
            "http": b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
        }
        for name, data in cases.items():
            with self.subTest(name):
                r = smtp_raw(mx.port, [data + b"EHLO client.test\r\n"], wait_greeting=False, timeout=5)
                self.assert_refused(r, name)
                self.assertLess(r.elapsed, 2.5, f"{name}: {r!r}")
        self.assertGreaterEqual(len(re.findall(r"proxy id=\S+ peer=127\.0\.0\.1 bad header: ", mx.log())),
                                len(cases), self.diag())
        self.assertNotRegex(mx.log(), NON_WARMUP_SESSION, "a session started after a bad header")
        # the good variant of the CRC header is accepted
        smtp_session(mx.port, unique_marker("crc-ok"), header=good_crc)
        self.assertIsNotNone(mx.wait_log(r"connect id=\S+ client=203\.0\.113\.7:40000 ", 5), self.diag())

    def test_header_split_over_writes_with_pauses(self):
        mx = self.start_mx()
        self.baseline(mx)
        headers = {
            "v1": b"PROXY TCP4 198.51.100.9 127.0.0.1 40010 25\r\n",
            "v2_tlvs_crc": v2_header_crc("198.51.100.10", "127.0.0.1", 40011, 25, b"\x05\x00\x06uid-42\x04\x00\x00"),
            "v2_tcp6": v2_header("2001:db8::9", "::1", 40012, 25),
        }
        for name, header in headers.items():
            with self.subTest(name):
                cuts = sorted({1, 5, 12, 13, 15, 16, len(header) // 2, len(header) - 1})
                pieces = [header[a:b] for a, b in zip([0] + cuts, cuts + [len(header)])]
                c = Raw(mx.port)
                try:
                    for p in pieces:
                        c.send(p)
                        time.sleep(0.15)
                    # nothing was sent before the header was complete; now the banner comes
                    greeting = c.reply()
                    self.assertTrue((greeting or "").startswith("220"), f"{name}: {greeting!r}{self.diag()}")
                    self.assertTrue(c.cmd("EHLO split.test").startswith("250"))
                    self.assertTrue(c.cmd("QUIT").startswith("221"))
                finally:
                    c.close()
        for src in ("198.51.100.9:40010", "198.51.100.10:40011", "[2001:db8::9]:40012"):
            self.assertIsNotNone(mx.wait_log(rf"connect id=\S+ client={re.escape(src)} ", 5), self.diag())

    def test_nothing_before_the_header_completes_and_bytes_after_it_are_smtp(self):
        mx = self.start_mx()
        self.baseline(mx)
        header = v2_header("198.51.100.11", "127.0.0.1", 40020, 25)
        c = Raw(mx.port, timeout=1.5)
        try:
            c.send(header[:-1])
            with self.assertRaises(socket.timeout, msg="the server spoke before the header was complete"):
                c.reply()
            c.sock.settimeout(10)
            # the rest of the header and the first command in one write: the command is not eaten
            c.send(header[-1:] + b"EHLO same.write.test\r\n")
            self.assertTrue((c.reply() or "").startswith("220"))
            self.assertTrue((c.reply() or "").startswith("250"))
            self.assertTrue(c.cmd("QUIT").startswith("221"))
        finally:
            c.close()
        self.assertIsNotNone(mx.wait_log(r"connect id=\S+ client=198\.51\.100\.11:40020 ", 5), self.diag())

    def test_bytes_right_after_the_shortest_v1_header_are_smtp(self):
        # "PROXY UNKNOWN\r\n" (15 bytes, the shortest header) and the first command in one write: the
        # session reads no byte past the header, so the command arrives whole.
        mx = self.start_mx()
        self.baseline(mx)
        c = Raw(mx.port)
        try:
            c.send(b"PROXY UNKNOWN\r\nEHLO same.write.test\r\n")
            self.assertTrue((c.reply() or "").startswith("220"), self.diag())
            self.assertTrue((c.reply() or "").startswith("250"), self.diag())
            self.assertTrue(c.cmd("QUIT").startswith("221"))
        finally:
            c.close()

    def test_connections_waiting_for_their_header_count_against_the_total(self):
        mx = self.start_mx(limits={"connections": 4, "greeting_timeout": 60})
        base = self.baseline(mx)
        held = [Raw(mx.port, timeout=20) for _ in range(4)]  # trusted peer, no header (yet)
        self.addCleanup(lambda: [c.close() for c in held])
        deadline = time.monotonic() + 10
        while mx.fd_count() < base + 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        over = Raw(mx.port, timeout=20)
        self.addCleanup(over.close)
        try:
            r = over.line()
        except socket.timeout:
            self.fail(f"a connection over limits.connections was held open waiting for its header{self.diag()}")
        self.assertIsNone(r, "the server sent something before the PROXY header")
        self.assertIsNotNone(mx.wait_log(r"refused id=\S+ client=127\.0\.0\.1 .*421 4\.3\.2.* closed before the PROXY header",
                                         5), self.diag())
        # the held ones are served once their header comes
        held[0].send(v2_header("198.51.100.30", "127.0.0.1", 40040, 25))
        self.assertTrue((held[0].reply() or "").startswith("220"), self.diag())
        for c in held:
            c.close()
        deadline = time.monotonic() + 10
        while mx.fd_count() > base and time.monotonic() < deadline:
            time.sleep(0.05)
        smtp_session(mx.port, unique_marker("after-hold"), header=v2_header("198.51.100.31", "127.0.0.1", 40041, 25))

    def test_per_ip_limit_counts_the_proxy_source(self):
        mx = self.start_mx(limits={"connections_per_ip": 1})
        self.baseline(mx)
        first = Raw(mx.port)
        self.addCleanup(first.close)
        first.send(v2_header("198.51.100.20", "127.0.0.1", 40030, 25))
        self.assertTrue((first.reply() or "").startswith("220"), self.diag())
        # same PROXY source, same real peer (127.0.0.1): refused
        second = Raw(mx.port)
        self.addCleanup(second.close)
        second.send(b"PROXY TCP4 198.51.100.20 127.0.0.1 40031 25\r\n")
        r = second.reply()
        self.assertTrue((r or "").startswith("421"), f"{r!r}{self.diag()}")
        self.assertIsNone(second.reply(), "not closed after 421")
        # another PROXY source through the same real peer: served
        third = Raw(mx.port)
        self.addCleanup(third.close)
        third.send(v2_header("198.51.100.21", "127.0.0.1", 40032, 25))
        self.assertTrue((third.reply() or "").startswith("220"), self.diag())
        self.assertTrue(third.cmd("EHLO third.test").startswith("250"))
        # once the first leaves, its source is served again
        self.assertTrue(first.cmd("QUIT").startswith("221"))
        first.close()
        deadline = time.monotonic() + 5
        while True:
            again = Raw(mx.port)
            again.send(v2_header("198.51.100.20", "127.0.0.1", 40033, 25))
            r = again.reply()
            again.close()
            if (r or "").startswith("220") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue((r or "").startswith("220"), f"{r!r}{self.diag()}")
        third.cmd("QUIT")
        third.close()
        second.close()

    def greeted(self, header, want="220"):
        """A connection that sent `header`; asserts the banner starts with `want`."""
        c = Raw(self.mx.port)
        self.addCleanup(c.close)
        c.send(header)
        r = c.reply()
        self.assertTrue((r or "").startswith(want), f"{header!r}: {r!r}{self.diag()}")
        if want == "421":
            self.assertIsNone(c.reply(), "not closed after 421")
        return c

    def session_when_served(self, marker, header, timeout=5.0):
        """smtp_session() after `header`, retried until the per-client slot freed by a QUIT is back."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return smtp_session(self.mx.port, marker, header=header)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def received_addr(self, marker):
        got = self.pf.deliveries(15, 1, match=marker.encode())
        self.assertEqual(len(got), 1, f"{marker} not delivered{self.diag()}")
        m = RECEIVED_RE.search(got[0].data)
        self.assertIsNotNone(m, got[0].data[:500])
        return m.group("addr").decode()

    def test_v4_mapped_proxy_source_is_keyed_and_shown_as_its_ipv4_address(self):
        mx = self.start_mx(limits={"connections_per_ip": 1})
        self.baseline(mx)
        first = self.greeted(v2_header("198.51.100.30", "127.0.0.1", 40040, 25))
        # the same client in an AF_INET6 header (::ffff:198.51.100.30): the same per-client slot
        self.greeted(v2_header("::ffff:198.51.100.30", "::1", 40041, 25), want="421")
        self.greeted(b"PROXY TCP6 ::ffff:198.51.100.30 ::1 40042 25\r\n", want="421")
        self.assertTrue(first.cmd("QUIT").startswith("221"))
        first.close()
        # once it left, a whole message from the mapped source: logged and received as IPv4
        marker = unique_marker("mapped")
        self.session_when_served(marker, v2_header("::ffff:198.51.100.30", "::1", 40043, 25))
        self.assertIsNotNone(mx.wait_log(r"connect id=\S+ client=198\.51\.100\.30:40043 ", 5), self.diag())
        self.assertIsNotNone(mx.wait_log(r"proxy id=\S+ peer=127\.0\.0\.1 client=198\.51\.100\.30:40043 v2", 1))
        self.assertNotIn("::ffff:", mx.log())
        self.assertEqual(self.received_addr(marker), "[198.51.100.30]")

    def test_ipv6_proxy_sources_are_limited_per_64_and_received_as_ipv6_literals(self):
        mx = self.start_mx(limits={"connections_per_ip": 1})
        self.baseline(mx)
        first = self.greeted(v2_header("2001:db8:1:2::1", "::1", 40050, 25))
        # another address of the same /64 (v2 and v1 headers): the same client, refused
        self.greeted(v2_header("2001:db8:1:2:ffff:ffff:ffff:ffff", "::1", 40051, 25), want="421")
        self.greeted(b"PROXY TCP6 2001:db8:1:2::99 ::1 40052 25\r\n", want="421")
        # the next /64 is another client: served, and its message delivered
        marker = unique_marker("v6-64")
        smtp_session(mx.port, marker, header=v2_header("2001:db8:1:3::1", "::1", 40053, 25))
        self.assertIsNotNone(mx.wait_log(r"connect id=\S+ client=\[2001:db8:1:3::1\]:40053 ", 5), self.diag())
        self.assertIsNotNone(
            mx.wait_log(r"proxy id=\S+ peer=127\.0\.0\.1 client=\[2001:db8:1:3::1\]:40053 v2", 1), self.diag())
        self.assertIsNotNone(mx.wait_log(r"message id=\S+ client=2001:db8:1:3::1 ", 5), self.diag())
        self.assertEqual(self.received_addr(marker), "[IPv6:2001:db8:1:3::1]")
        # once the first leaves, its /64 is served again, from any of its addresses
        self.assertTrue(first.cmd("QUIT").startswith("221"))
        first.close()
        marker = unique_marker("v6-64-again")
        self.session_when_served(marker, v2_header("2001:db8:1:2::abcd", "::1", 40054, 25))
        self.assertEqual(self.received_addr(marker), "[IPv6:2001:db8:1:2::abcd]")


if __name__ == "__main__":
    unittest.main()

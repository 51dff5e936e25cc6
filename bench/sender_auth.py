#!/usr/bin/env python3
"""The cost of sender authentication (issue 14): the same load through mxfront with the core relay
alone (filters = ["relay_control"]) and with SPF + DKIM + DMARC before it (filters = ["spf", "dkim",
"dmarc", "relay_control"]), side by side in one run, both relaying to Postfix's qmqp-sink, for
three messages: unsigned, one RSA-2048 signature and one Ed25519 signature (python3-dkim signs them
once; the same bytes are sent every time, which DKIM allows).

The records (SPF, DMARC p=reject, both keys) are served by a real nsd on loopback
(tests/harness/nsd_harness.py); every check passes (the client 127.0.0.1 is the SPF-designated
sender, the signatures verify) and the DNS caches are warm after the first message, which is what
a busy MX sees for the big senders.

* throughput: C client processes, one message per SMTP session, N messages, median of R runs with
  the two servers interleaved; the ratio auth/core;
* added latency at concurrency 1: p50/p99 of the time from MAIL to the final 250, auth minus core.
Usage: bench/sender_auth.py [-n 2000] [-c 20] [-r 3] [--latency 500] [--mxfront build/mxfront]"""
import argparse
import base64
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
from mxharness import Mxfront, QmqpSink  # noqa: E402  (also puts Debian's python3-dkim on the path)
from nsd_harness import Nsd  # noqa: E402

LIMITS = {"connections": 10000, "connections_per_ip": 10000}
DOMAIN = "bench.test"


def keys(tmp):
    import nacl.signing
    path = os.path.join(tmp, "rsa.pem")
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", path, "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    with open(path, "rb") as f:
        rsa_priv = f.read()
    sk = nacl.signing.SigningKey.generate()
    return {"rsa": (rsa_priv, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()),
            "ed": (base64.b64encode(bytes(sk)), "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(sk.verify_key)).decode())}


def report_message():
    """The unsigned message, about 4 KB of plain text (bench/rspamd.py sends it too)."""
    body = "".join(f"Line {i} of the quarterly report, nothing to see here, just text to fill 4 KB.\r\n"
                   for i in range(50))
    return (f"From: Alice <alice@{DOMAIN}>\r\nTo: Bob <bob@example.org>\r\nSubject: report\r\n"
            f"Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <bench@{DOMAIN}>\r\n\r\n{body}").encode()


def messages(k):
    import dkim
    msg = report_message()
    heads = [b"from", b"to", b"subject", b"date", b"message-id"]
    return {
        "unsigned": msg,
        "RSA-2048": dkim.sign(msg, b"rsa", DOMAIN.encode(), k["rsa"][0], include_headers=heads) + msg,
        "Ed25519": dkim.sign(msg, b"ed", DOMAIN.encode(), k["ed"][0], include_headers=heads,
                             signature_algorithm=b"ed25519-sha256") + msg,
    }


def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return int(line[:3])


def one(port, data, timing=False):
    """One SMTP session with one message; the MAIL..final-250 time when `timing`."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rb")
        assert reply(f) == 220
        s.sendall(b"EHLO bench.client\r\n")
        assert reply(f) == 250
        t0 = time.perf_counter()
        s.sendall(f"MAIL FROM:<bounce@{DOMAIN}>\r\n".encode())
        assert reply(f) == 250
        s.sendall(b"RCPT TO:<bob@example.org>\r\n")
        assert reply(f) == 250
        s.sendall(b"DATA\r\n")
        assert reply(f) == 354
        s.sendall(data + b".\r\n")
        code = reply(f)
        dt = time.perf_counter() - t0
        if code != 250:
            raise RuntimeError(f"message refused: {code}")
        s.sendall(b"QUIT\r\n")
        return dt


def worker(args):
    port, data, n = args
    for _ in range(n):
        one(port, data)
    return n


def throughput(pool, port, data, n, c):
    t0 = time.monotonic()
    done = sum(pool.map(worker, [(port, data, n // c)] * c))
    return done / (time.monotonic() - t0)


def latency(port, data, count):
    times = sorted(one(port, data, True) for _ in range(count))
    return times[len(times) // 2] * 1000, times[min(len(times) - 1, int(len(times) * 0.99))] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="messages per throughput run")
    ap.add_argument("-c", type=int, default=20, help="concurrent client processes")
    ap.add_argument("-r", type=int, default=3, help="repetitions (median)")
    ap.add_argument("--latency", type=int, default=500, help="messages for each latency run")
    ap.add_argument("--mxfront", default=os.path.join(REPO, "build", "mxfront"))
    args = ap.parse_args()
    os.environ["MXFRONT_BIN"] = args.mxfront
    tmp = tempfile.mkdtemp(prefix="mxbench-auth.")
    k = keys(tmp)
    msgs = messages(k)
    zones = {DOMAIN: [("@", "TXT", "v=spf1 ip4:127.0.0.1 -all"), ("_dmarc", "TXT", "v=DMARC1; p=reject"),
                      ("rsa._domainkey", "TXT", k["rsa"][1]), ("ed._domainkey", "TXT", k["ed"][1])]}
    with QmqpSink() as sink, Nsd(zones) as dns:
        dnscfg = {"dns_servers": [dns.address], "query_timeout": 1, "tries": 1}
        auth = {"log": {"level": "warn"}, "limits": LIMITS, "spf": dict(dnscfg), "dkim": dict(dnscfg),
                "dmarc": dict(dnscfg), "profile.mx": {"filters": ["spf", "dkim", "dmarc", "relay_control"]}}
        servers = {"core relay": Mxfront([sink.address], config={"log": {"level": "warn"}, "limits": LIMITS}),
                   "SPF+DKIM+DMARC": Mxfront([sink.address], config=auth)}
        try:
            for mx in servers.values():
                mx.start()
            for data in msgs.values():  # warm the DNS caches; a refusal here is a setup error
                one(servers["SPF+DKIM+DMARC"].port, data)
            print(f"# {os.cpu_count()} cores; {args.n} messages per run, one per SMTP session, {args.c} client "
                  f"processes; median of {args.r}; servers interleaved; DNS caches warm")
            print(f"{'message':>10} | {'core relay':>12} | {'SPF+DKIM+DMARC':>14} | auth/core | "
                  f"added p50 / p99 at c=1 (MAIL..250)")
            with multiprocessing.Pool(args.c) as pool:
                for name, data in msgs.items():
                    runs = {s: [] for s in servers}
                    for _ in range(args.r):
                        for s, mx in servers.items():
                            runs[s].append(throughput(pool, mx.port, data, args.n, args.c))
                    med = {s: statistics.median(v) for s, v in runs.items()}
                    base = latency(servers["core relay"].port, data, args.latency)
                    got = latency(servers["SPF+DKIM+DMARC"].port, data, args.latency)
                    print(f"{name:>10} | {med['core relay']:>6.0f} msg/s | {med['SPF+DKIM+DMARC']:>8.0f} msg/s | "
                          f"{med['SPF+DKIM+DMARC'] / med['core relay']:>9.2f} | "
                          f"+{got[0] - base[0]:.3f} / +{got[1] - base[1]:.3f} ms "
                          f"(core {base[0]:.3f} / {base[1]:.3f} ms)")
        finally:
            for mx in servers.values():
                mx.kill()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Per-message latency at concurrency 1, one message per connection (stdlib only).

For each of --count messages: connect, read the banner, EHLO, then time
  MAIL FROM -> 250, RCPT TO -> 250, DATA -> 354, <body>.CRLF -> 250
(the "transaction" time, MAIL sent .. final 250 received), then QUIT and close.
The whole connect..221 time is recorded too ("session").  Commands are sent one by
one (no pipelining), the body with a single write; the client sets TCP_NODELAY so
that any Nagle / delayed-ACK stall seen is the server's.

Prints one machine-readable line:
  RESULT n=.. tx_p50_ms=.. tx_p90_ms=.. tx_p99_ms=.. tx_max_ms=.. sess_p50_ms=.. sess_p99_ms=.. over40ms=..
(over40ms = transactions slower than 40 ms, the Nagle/delayed-ACK signature.)
"""
import argparse
import socket
import sys
import time


def read_reply(f):
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("EOF from server")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


def expect(f, want, what):
    code = read_reply(f)
    if code != want:
        raise RuntimeError(f"{what}: got {code}, want {want}")


def make_body(size, to, sender):
    hdr = (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: latency probe\r\n"
           f"Message-ID: <lat.{time.time_ns()}@bench.test>\r\n\r\n").encode()
    line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n"  # 78 bytes
    body = (line * (size // len(line) + 1))[:size]
    body = body[: body.rfind(b"\r\n") + 2] if b"\r\n" in body else body + b"\r\n"
    return hdr + body + b".\r\n"


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--size", type=int, default=2048, help="body bytes (plus ~150 bytes of headers)")
    ap.add_argument("--from", dest="sender", default="alice@bench.test")
    ap.add_argument("--to", default="bob@example.org")
    ap.add_argument("--warmup", type=int, default=20, help="untimed messages first")
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()

    data = make_body(a.size, a.to, a.sender)
    mail = f"MAIL FROM:<{a.sender}>\r\n".encode()
    rcpt = f"RCPT TO:<{a.to}>\r\n".encode()
    tx, sess = [], []
    failures = 0
    for i in range(a.warmup + a.count):
        try:
            t0 = time.perf_counter_ns()
            s = socket.create_connection((a.host, a.port), timeout=a.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = s.makefile("rb")
            expect(f, 220, "banner")
            s.sendall(b"EHLO latency.bench.test\r\n")
            expect(f, 250, "EHLO")
            t1 = time.perf_counter_ns()
            s.sendall(mail)
            expect(f, 250, "MAIL")
            s.sendall(rcpt)
            expect(f, 250, "RCPT")
            s.sendall(b"DATA\r\n")
            expect(f, 354, "DATA")
            s.sendall(data)
            expect(f, 250, "end of data")
            t2 = time.perf_counter_ns()
            s.sendall(b"QUIT\r\n")
            expect(f, 221, "QUIT")
            t3 = time.perf_counter_ns()
            f.close()
            s.close()
        except Exception as e:  # count, report the first few, go on
            failures += 1
            if failures <= 5:
                print(f"latency: message {i}: {e}", file=sys.stderr)
            try:
                s.close()
            except Exception:
                pass
            continue
        if i >= a.warmup:
            tx.append((t2 - t1) / 1e6)
            sess.append((t3 - t0) / 1e6)
    tx.sort()
    sess.sort()
    over = sum(1 for v in tx if v > 40.0)
    print(f"RESULT n={len(tx)} failures={failures} tx_p50_ms={pct(tx, 50):.3f} tx_p90_ms={pct(tx, 90):.3f} "
          f"tx_p99_ms={pct(tx, 99):.3f} tx_max_ms={(tx[-1] if tx else float('nan')):.3f} "
          f"sess_p50_ms={pct(sess, 50):.3f} sess_p99_ms={pct(sess, 99):.3f} over40ms={over}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

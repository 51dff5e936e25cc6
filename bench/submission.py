#!/usr/bin/env python3
"""Submission benchmark: what STARTTLS + AUTH cost per connection.

Starts qmqp-sink and one mxfront with a users file and a throwaway certificate, then sends
N messages, one per connection, from C client processes, in three modes on the same server:
  plain    connect, EHLO, MAIL, RCPT, DATA, QUIT                  (mx profile, no TLS)
  tls      connect, EHLO, STARTTLS, EHLO, MAIL, RCPT, DATA, QUIT  (mx profile)
  tls+auth connect, EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL, ...    (submission profile)
and prints msgs/s and mxfront's CPU (user+sys from /proc) per message for each, so the difference
between rows is the price of the TLS handshake and of the AUTH check (SHA-512-crypt verify on the
directory pool). Everything on 127.0.0.1; every process started is stopped on exit.
Usage: bench/submission.py [-n 600] [-c 4] [--mxfront build/mxfront]"""
import argparse
import multiprocessing as mp
import os
import shutil
import signal
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


BODY = "Subject: bench\r\n\r\n" + ("x" * 76 + "\r\n") * 26  # ~2 KB


def worker(args):
    mode, port, count = args
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ok = 0
    for _ in range(count):
        with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test", timeout=30) as s:
            if mode != "plain":
                s.starttls(context=ctx)
                s.ehlo("bench.test")
            if mode == "tls+auth":
                s.login("alice@example.org", "demo-password")
                sender, rcpt = "alice@example.org", "friend@elsewhere.test"
            else:
                sender, rcpt = "someone@example.net", "bob@example.org"
            s.sendmail(sender, [rcpt], BODY)
            ok += 1
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=600, help="messages per mode")
    ap.add_argument("-c", type=int, default=4, help="client processes")
    ap.add_argument("-r", type=int, default=3, help="repetitions (median reported)")
    ap.add_argument("--mxfront", default=os.path.join(REPO, "build", "mxfront"))
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="mxfront-subbench.")
    procs = []
    try:
        cert, key = f"{tmp}/cert.pem", f"{tmp}/key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=mx.bench.test", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        sink_port, mx_port, sub_port = free_port(), free_port(), free_port()
        procs.append(subprocess.Popen(["qmqp-sink", "-4", f"127.0.0.1:{sink_port}", "1024"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with open(f"{tmp}/mx.toml", "w") as f:
            f.write(f"""[server]
hostname = "mx.bench.test"
[log]
level = "warn"
[[listener]]
address = "127.0.0.1:{mx_port}"
profile = "mx"
[[listener]]
address = "127.0.0.1:{sub_port}"
profile = "submission"
[tls]
cert_file = "{cert}"
key_file = "{key}"
[directory]
type = "file"
users_file = "{REPO}/config/users.example"
[limits]
connections = 10000
connections_per_ip = 10000
[relay]
local_domains = ["example.org"]
[qmqp]
servers = ["127.0.0.1:{sink_port}"]
""")
        mx = subprocess.Popen([args.mxfront, "--config", f"{tmp}/mx.toml"], stderr=open(f"{tmp}/mx.log", "w"))
        procs.append(mx)
        if not (wait_port(sink_port) and wait_port(mx_port) and wait_port(sub_port)):
            sys.exit("mxfront or qmqp-sink did not start; see " + f"{tmp}/mx.log")
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  nproc={os.cpu_count()}  load={os.getloadavg()[0]:.2f}  "
              f"messages/mode={args.n}  clients={args.c}  one message per connection")
        print(f"{'mode':<9} {'msgs/s (median)':>16} {'mxfront CPU µs/msg':>20}   runs msgs/s")
        per = args.n // args.c
        results = {}
        with mp.Pool(args.c) as pool:
            for mode in ("plain", "tls", "tls+auth"):
                port = sub_port if mode == "tls+auth" else mx_port
                pool.map(worker, [(mode, port, 5)] * args.c)  # warm-up
                rates, cpus = [], []
                for _ in range(args.r):
                    c0, t0 = cpu_seconds(mx.pid), time.monotonic()
                    done = sum(pool.map(worker, [(mode, port, per)] * args.c))
                    t1, c1 = time.monotonic(), cpu_seconds(mx.pid)
                    rates.append(done / (t1 - t0))
                    cpus.append((c1 - c0) / done * 1e6)
                results[mode] = (statistics.median(rates), statistics.median(cpus))
                print(f"{mode:<9} {results[mode][0]:>16.0f} {results[mode][1]:>20.0f}   "
                      + " ".join(f"{r:.0f}" for r in rates), flush=True)
        tls_cost = results["tls"][1] - results["plain"][1]
        auth_cost = results["tls+auth"][1] - results["tls"][1]
        print(f"# CPU per TLS handshake (tls - plain): {tls_cost:.0f} µs;  per AUTH (tls+auth - tls): {auth_cost:.0f} µs")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

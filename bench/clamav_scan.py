#!/usr/bin/env python3
"""ClamAV benchmark: what the virus scan costs per MB through mxfront's worker pool.

Starts qmqp-sink and two mxfront instances on 127.0.0.1, the same config except the mx profile's
filter chain: "off" = ["relay_control"], "on" = ["relay_control", "clamav"] (libclamav with the
test signature DB of tests/harness/clamav_harness.py: EICAR .hdb/.ndb, clam.exe .hsb). Sends N
DISTINCT ~1 MB MIME messages (text, a zip, a PDF and a base64 binary attachment; every message has
different bytes, so libclamav's clean-result cache cannot fake the figures) with C concurrent smtplib
clients, one session each, alternating off/on R times. Prints per mode the median wall time, MB/s
and msgs/s, the on/off ratio, and from the "on" instance's debug log the median clamav check
duration per message (scan time on one pool thread, including the pool hop).
Usage: bench/clamav_scan.py [-n 40] [-c 2] [-r 3] [--size 1000000] [--mxfront build/mxfront]"""
import argparse
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
from clamav_harness import SignatureDb, mail_with_attachments, small_pdf, small_zip  # noqa: E402

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
         "et dolore magna aliqua quarterly report invoice meeting schedule attached please find").split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        if out.strip():
            return True
        time.sleep(0.05)
    return False


def text(rng, size):
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(11)) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out)


def make_message(i, size, seed):
    """~size bytes: 25% text body, a zip of text (~25% of size before compression), a PDF, and
    random binary base64-encoded (the rest)."""
    rng = random.Random(seed * 100003 + i)
    body = text(rng, size // 4)
    zipped = small_zip({f"notes-{i}.txt": text(rng, size // 4).encode()})
    binary = rng.randbytes(max(1000, (size - size // 4 - len(zipped)) * 3 // 4 - 4000))
    return mail_with_attachments(f"bench-{seed}-{i}", [
        ("notes.zip", zipped, "application/zip"),
        ("report.pdf", small_pdf(f"report {seed} {i}"), "application/pdf"),
        ("data.bin", binary, "application/octet-stream")], text=body)


def send_one(args):
    port, msg = args
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test", timeout=120) as c:
        try:
            c.sendmail("alice@bench.test", ["bob@example.org"], msg)
            code = 250
        except smtplib.SMTPResponseException as e:
            code = e.smtp_code
    return code, time.monotonic() - t0


def toml(port, sink, filters, db_dir, level):
    return f"""[server]
hostname = "mx.bench"
io_threads = 0
[log]
level = "{level}"
[[listener]]
address = "127.0.0.1:{port}"
profile = "mx"
[relay]
local_domains = ["example.org"]
[qmqp]
servers = ["127.0.0.1:{sink}"]
[clamav]
database_dir = "{db_dir}"
[profile.mx]
filters = {filters}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=40, help="messages per run")
    ap.add_argument("-c", type=int, default=2, help="concurrent client sessions")
    ap.add_argument("-r", type=int, default=3, help="runs per mode (alternating)")
    ap.add_argument("--size", type=int, default=1_000_000, help="approximate message size in bytes")
    ap.add_argument("--mxfront", default=os.environ.get("MXFRONT_BIN", os.path.join(REPO, "build", "mxfront")))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mxbench-clamav.")
    procs = []
    db = SignatureDb()
    try:
        sink_port = free_port()
        sink = subprocess.Popen(["qmqp-sink", "-4", f"127.0.0.1:{sink_port}", "256"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(sink)
        if not wait_listening(sink_port, sink):
            sys.exit("qmqp-sink did not start")
        servers = {}
        for mode, filters, level in (("off", '["relay_control"]', "info"),
                                     ("on", '["relay_control", "clamav"]', "debug")):
            port = free_port()
            cfg = os.path.join(tmp, f"{mode}.toml")
            with open(cfg, "w") as f:
                f.write(toml(port, sink_port, filters, db.dir, level))
            log = open(os.path.join(tmp, f"{mode}.log"), "wb")
            p = subprocess.Popen([a.mxfront, "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
            procs.append(p)
            if not wait_listening(port, p):
                sys.exit(f"mxfront ({mode}) did not start: {open(log.name).read()[-2000:]}")
            servers[mode] = (port, log.name)

        sizes = []
        results = {"off": [], "on": []}
        with mp.Pool(a.c) as pool:
            for r in range(a.r):
                for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                    # a fresh batch per run (not timed): no message is ever sent twice
                    seed = (1 if mode == "on" else 2) * 1000 + r
                    msgs = [make_message(i, a.size, seed) for i in range(a.n)]
                    sizes += [len(m) for m in msgs]
                    port = servers[mode][0]
                    t0 = time.monotonic()
                    out = pool.map(send_one, [(port, m) for m in msgs], chunksize=1)
                    wall = time.monotonic() - t0
                    bad = [c for c, _ in out if c != 250]
                    if bad:
                        sys.exit(f"{mode} run {r}: {len(bad)} messages not accepted: {bad[:5]}")
                    mb = sum(len(m) for m in msgs) / 1e6
                    results[mode].append((wall, mb))
                    print(f"  run {r} {mode:3}: {a.n} msgs, {mb:.1f} MB in {wall:.2f} s = {mb / wall:.1f} MB/s",
                          flush=True)

        with open(servers["on"][1], errors="replace") as f:
            scans = [float(x) for x in re.findall(r"filter=clamav phase=data verdict=continue score=0 "
                                                  r"duration_ms=([\d.]+)", f.read())]
        print()
        print(f"ClamAV scan benchmark: {a.n} msgs x {a.r} runs per mode, ~{statistics.median(sizes) / 1e6:.2f} MB each, "
              f"{a.c} client sessions, {os.cpu_count()} cores, filter workers = 1 per core")
        print(f"{'mode':<6}{'median wall s':>14}{'MB/s':>9}{'msgs/s':>9}   all MB/s")
        med = {}
        for mode in ("off", "on"):
            walls = [w for w, _ in results[mode]]
            rates = [mb / w for w, mb in results[mode]]
            med[mode] = statistics.median(rates)
            print(f"{mode:<6}{statistics.median(walls):>14.2f}{med[mode]:>9.1f}{a.n / statistics.median(walls):>9.1f}"
                  f"   {' '.join(f'{x:.1f}' for x in rates)}")
        print(f"on/off throughput ratio: {med['on'] / med['off']:.2f}")
        if scans:
            ms = statistics.median(scans)
            print(f"clamav check per message (on, {len(scans)} scans): median {ms:.1f} ms, p90 "
                  f"{sorted(scans)[int(len(scans) * 0.9)]:.1f} ms = {statistics.median(sizes) / 1e6 / (ms / 1e3):.1f} MB/s "
                  f"per worker thread")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        db.cleanup()
        if os.environ.get("KEEP") == "1":
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

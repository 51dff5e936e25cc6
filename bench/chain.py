#!/usr/bin/env python3
"""The cost of the MX filter chain: the same load through mxfront with the core relay alone
(filters = ["relay_control"]) and with the MX chain (rules + rbl + relay_control + clamav), side by
side in one run, both relaying to Postfix's qmqp-sink on 127.0.0.1.

* throughput: smtp-source (one message per session, `-s C` sessions at once, 4 KB messages), the
  two servers interleaved, median of R runs; the ratio chain/core;
* the chain again with the DNS cache off (rbl.cache_size = 0: every connection queries rbldnsd);
* the chain again with clamav.temp_dir on a tmpfs (--tmpfs, /dev/shm): libclamav makes and removes
  a directory per scan there, which costs a file system round trip on ext4;
* added latency at concurrency 1: bench/latency.py against each, p50/p99 of the MAIL..250 time.

The lists are served by a real rbldnsd (tests/harness/rbldnsd_harness.py; the client 127.0.0.1 is
not listed, so every message passes all filters); the signature database is the test one
(EICAR + clam.exe hashes, tests/harness/clamav_harness.py); smtp-source gives every message its
own headers, so ClamAV's clean-result cache (keyed by content hash) does not skip scans.
Usage: bench/chain.py [-n 3000] [-c 1,20] [-r 3] [--mxfront build/mxfront]"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
import benchlib  # noqa: E402
import clamav_harness  # noqa: E402
from mxharness import Mxfront, QmqpSink  # noqa: E402
from rbldnsd_harness import TEST_ZONES, Rbldnsd  # noqa: E402


LIMITS = {"connections": 10000, "connections_per_ip": 10000}  # one client address drives all the load


def chain_config(dns, sigdir, cache_size, temp_dir=""):
    return {
        "log": {"level": "warn"},
        "limits": LIMITS,
        "profile.mx": {"filters": ["rules", "rbl", "relay_control", "clamav"], "reject_score": 10, "tag_score": 5},
        "rules": {"client_block": ["192.0.2.0/24"]},
        "rules.rule": [
            {"name": "HELO_LITERAL", "kind": "helo", "pattern": r"^\[?[0-9.]+\]?$", "score": 1},
            {"name": "SENDER_NUMERIC", "kind": "sender", "pattern": r"^[0-9]{6,}@", "score": 2},
            {"name": "CASINO", "kind": "header", "header": "Subject", "pattern": r"(?i)\bcasino\b", "score": 4},
            {"name": "PHARMA", "kind": "body", "pattern": r"(?i)cheap\s+(viagra|cialis)", "action": "reject"},
        ],
        "rbl": {"servers": [dns], "query_timeout": 1, "tries": 1, "cache_size": cache_size},
        "rbl.zone": [{"zone": "bl.test", "action": "reject"}, {"zone": "zen.test", "weight": 3},
                     {"zone": "dbl.test", "kind": "domain", "weight": 5}],
        "clamav": {"database_dir": sigdir, **({"temp_dir": temp_dir} if temp_dir else {})},
    }


def core_config():
    return {"log": {"level": "warn"}, "limits": LIMITS}


def smtp_source(port, sessions, n, size=4096):
    try:
        return benchlib.smtp_source(port, sessions, n, size)
    except RuntimeError as e:
        sys.exit(str(e))


def latency(port, count):
    p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "latency.py"), "--port", str(port),
                        "--count", str(count), "--size", "4096"], capture_output=True, text=True, timeout=600)
    m = re.search(r"tx_p50_ms=([\d.]+) .*tx_p99_ms=([\d.]+)", p.stdout)
    if not m:
        sys.exit(f"latency.py failed: {p.stdout[-300:]}{p.stderr[-300:]}")
    return float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=3000, help="messages per smtp-source run")
    ap.add_argument("-c", default="1,20", help="concurrencies (smtp-source -s)")
    ap.add_argument("-r", type=int, default=3, help="repetitions (median)")
    ap.add_argument("--latency", type=int, default=1000, help="messages for the latency runs")
    ap.add_argument("--mxfront", default=os.path.join(REPO, "build", "mxfront"))
    ap.add_argument("--tmpfs", default="/dev/shm", help="clamav.temp_dir of the 'MX chain, tmpfs' server (\"\": no such server)")
    args = ap.parse_args()
    if not shutil.which("smtp-source"):
        sys.exit("smtp-source missing (apt-get install postfix)")
    os.environ["MXFRONT_BIN"] = args.mxfront
    with QmqpSink() as sink, Rbldnsd(TEST_ZONES) as dns, clamav_harness.SignatureDb() as sigs:
        sigdir = sigs.dir
        servers = {
            "core relay": Mxfront([sink.address], config=core_config()),
            "MX chain": Mxfront([sink.address], config=chain_config(dns.address, sigdir, 10000)),
            "MX chain, no DNS cache": Mxfront([sink.address], config=chain_config(dns.address, sigdir, 0)),
        }
        if args.tmpfs:  # "" leaves the row out (a binary without clamav.temp_dir)
            servers["MX chain, tmpfs"] = Mxfront([sink.address], config=chain_config(dns.address, sigdir, 10000, args.tmpfs))
        try:
            for mx in servers.values():
                mx.start()
            print(f"# {os.cpu_count()} cores; {args.n} messages of 4 KB per run, one per SMTP session; "
                  f"median of {args.r}; runs interleaved")
            print(f"{'concurrency':>11} | " + " | ".join(f"{k:>22}" for k in servers)
                  + " | chain/core" + (" | tmpfs chain/core" if args.tmpfs else ""))
            for c in (int(x) for x in args.c.split(",")):
                runs = {k: [] for k in servers}
                for _ in range(args.r):
                    for k, mx in servers.items():
                        runs[k].append(smtp_source(mx.port, c, args.n))
                med = {k: statistics.median(v) for k, v in runs.items()}
                print(f"{c:>11} | " + " | ".join(f"{med[k]:>16.0f} msg/s" for k in servers)
                      + f" | {med['MX chain'] / med['core relay']:>10.2f}"
                      + (f" | {med['MX chain, tmpfs'] / med['core relay']:.2f}" if args.tmpfs else ""))
            print("\nadded latency at concurrency 1 (MAIL .. final 250, 4 KB):")
            base = latency(servers["core relay"].port, args.latency)
            for k, mx in servers.items():
                p50, p99 = latency(mx.port, args.latency) if k != "core relay" else base
                print(f"  {k:<24} p50 {p50:.3f} ms  p99 {p99:.3f} ms   (+{p50 - base[0]:.3f} / +{p99 - base[1]:.3f} ms)")
        finally:
            for mx in servers.values():
                mx.kill()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Directory benchmark: the cost of a recipient check against a real slapd, with and without the
cache, and of an LDAP AUTH (search + bind) — measured with tests/tools/dirquery (the same directory
code mxfront runs) against a private slapd on 127.0.0.1 (tests/harness/slapd_harness.py).
Usage: bench/directory.py [-n 2000] [--dirquery build/dirquery]"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
import slapd_harness  # noqa: E402


def config(tmp, uri, cache_size):
    path = os.path.join(tmp, f"dir-{cache_size}.toml")
    with open(path, "w") as f:
        f.write(f"""[[listener]]
address = "127.0.0.1:2525"
[relay]
local_domains = ["example.org"]
[qmqp]
servers = ["127.0.0.1:628"]
[directory]
type = "ldap"
uris = ["{uri}"]
base_dn = "{slapd_harness.SUFFIX}"
cache_size = {cache_size}
""")
    return path


def run(dq, cfg, n, parallel, *question):
    out = subprocess.run([dq, cfg, "--repeat", str(n), "--parallel", str(parallel), *question],
                         capture_output=True, text=True, timeout=300)
    m = re.search(r"^latency .*$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        sys.exit(f"dirquery failed: {out.stderr[-500:]}")
    return m.group(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--dirquery", default=os.path.join(REPO, "build", "dirquery"))
    args = ap.parse_args()
    with slapd_harness.Slapd() as slapd, tempfile.TemporaryDirectory() as tmp:
        print(f"# slapd {slapd.uri}; {args.n} lookups per row; dirquery = mxfront's directory code")
        for cache in (0, 10000):
            for par in (1, 8):
                line = run(args.dirquery, config(tmp, slapd.uri, cache), args.n, par, "rcpt", "alice@example.org")
                print(f"rcpt  cache_size={cache:<5} parallel={par}: {line}")
        line = run(args.dirquery, config(tmp, slapd.uri, 0), args.n // 4, 1, "auth", "alice", "alicepw")
        print(f"auth  (search + bind)          parallel=1: {line}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The README demo: a private Postfix qmqpd delivering into a local Maildir, and mxfront on
127.0.0.1:2525 relaying to it over QMQP. Runs until Ctrl-C, then stops both.
--self-test sends one mail with swaks, checks it landed in the Maildir, and exits (0 = ok)."""
import argparse
import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "harness"))
import mxharness  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=2525, help="MX port on 127.0.0.1 (0 = any free port)")
    ap.add_argument("--submission-port", type=int, default=2587, help="submission port (0 = any free port)")
    ap.add_argument("--self-test", action="store_true", help="send one mail, check the Maildir, exit")
    args = ap.parse_args()
    port = args.port or mxharness.free_port()
    sub_port = args.submission_port or mxharness.free_port()

    with mxharness.PostfixQmqp() as pf:
        # A throwaway self-signed certificate for STARTTLS, next to the Postfix instance.
        cert, key = pf.dir + "/demo-cert.pem", pf.dir + "/demo-key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "30", "-subj", "/CN=mx.demo.test", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=30)
        mx = mxharness.Mxfront([pf.address], config={
            "server": {"hostname": "mx.demo.test", "io_threads": 0},
            "listener": [{"address": f"127.0.0.1:{port}", "profile": "mx"},
                         {"address": f"127.0.0.1:{sub_port}", "profile": "submission"}],
            "tls": {"cert_file": cert, "key_file": key},
            "directory": {"type": "file", "users_file": str(REPO / "config" / "users.example")},
        })
        with mx:
            maildir = pf.mail / "example.org" / "bob" / "Maildir" / "new"
            print(f"""
mxfront demo is running.
  MX profile:         127.0.0.1:{port}   (config: {mx.config_path})
  submission profile: 127.0.0.1:{sub_port}  (STARTTLS + AUTH, users from {REPO / "config" / "users.example"})
  mailbox server:     private Postfix qmqpd on {pf.address}, delivering to {pf.mail}
  mxfront log:        {mx.stderr_path}

Send a test mail:
  swaks --server 127.0.0.1 --port {port} --from you@example.net --to bob@example.org

It lands in:
  {maildir}/
(alice@example.org has her own Maildir; unknown example.org recipients get 550 5.1.1 and recipients
 outside example.org get 554 5.7.1: mxfront is not an open relay.)

Authenticated submission (the demo password is "demo-password"); relaying outside is allowed once
authenticated, and lands in {pf.mail}/catchall/Maildir:
  swaks --server 127.0.0.1 --port {sub_port} --tls --auth PLAIN --auth-user alice@example.org \\
        --auth-password demo-password --from alice@example.org --to friend@elsewhere.test
""", flush=True)
            if args.self_test:
                r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--from",
                                    "you@example.net", "--to", "bob@example.org", "--timeout", "10",
                                    "--header", "Subject: mxfront demo self-test"],
                                   capture_output=True, text=True, timeout=30)
                print(r.stdout[-600:])
                r2 = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(sub_port), "--tls", "--auth",
                                     "PLAIN", "--auth-user", "alice@example.org", "--auth-password", "demo-password",
                                     "--from", "alice@example.org", "--to", "friend@elsewhere.test", "--timeout", "10",
                                     "--header", "Subject: mxfront demo self-test (submission)"],
                                    capture_output=True, text=True, timeout=30)
                print(r2.stdout[-400:])
                got = pf.deliveries(timeout=10, expect_n=2)
                ok = (r.returncode == 0 and r2.returncode == 0
                      and any(b"mxfront demo self-test\n" in d.data or b"mxfront demo self-test\r\n" in d.data for d in got)
                      and any(b"demo self-test (submission)" in d.data and b"ESMTPSA" in d.data for d in got))
                print("demo self-test:", "PASS, delivered to " + ", ".join(str(d.path) for d in got) if ok else "FAIL")
                return 0 if ok else 1
            print("Ctrl-C stops mxfront and Postfix.", flush=True)
            stop = []
            signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
            try:
                while mx.alive() and not stop:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            print("\nstopping…")
    return 0


if __name__ == "__main__":
    sys.exit(main())

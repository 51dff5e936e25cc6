#!/usr/bin/env python3
"""What a hostile picture or PDF costs the server (issue 12, item 3): CPU seconds and wall time.

Starts a real Postfix qmqpd and mxfront (profile mx: rules, relay_control, ocr with image_timeout 3
and budget 10, the defaults) and sends, one at a time:
  * noise:  a 4000x4000 1-bit speckle-noise PNG (~190 KB; ocr_harness.noise_png_bytes)
  * pdf:    a ~1 MB PDF whose content stream inflates to 1 GiB (ocr_harness.inflating_pdf_bytes)
For each: the reply and its latency, and the CPU the server spent on it, counted until the server
is idle again (1.5 s without CPU): mxfront's own utime+stime, plus its children (OCR worker
processes, reaped or alive). Then `--flood`: four hostile messages at once and, 1 s later, a clean
message that only `rules` judges: its reply code and latency.

  python3 bench/ocr_hostile.py [--binary build/mxfront] [--flood]
Needs root (Postfix). Prints one line per measurement."""
import argparse
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "harness"))
from mxharness import Mxfront, PostfixQmqp, remove_dir, smtp_send  # noqa: E402
from ocr_harness import image_mail, inflating_pdf_bytes, noise_png_bytes, write_words_file  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(d))
            except OSError:
                pass
    return out


def cpu(pid):
    """CPU seconds of `pid`, its reaped children and its live children."""
    def stat(p):
        with open(f"/proc/{p}/stat") as f:
            return [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]
    ut, st, cut, cst = stat(pid)
    total = ut + st + cut + cst
    for c in children(pid):
        try:
            u, s, _, _ = stat(c)
            total += u + s
        except OSError:
            pass
    return total / TICK


def until_idle(pid, start_cpu, quiet=1.5, limit=120):
    """(CPU seconds since start_cpu, seconds until the last CPU use) once idle for `quiet` s."""
    t0 = time.monotonic()
    last, last_change = cpu(pid), time.monotonic()
    while time.monotonic() - t0 < limit:
        time.sleep(0.1)
        now = cpu(pid)
        if now - last > 0.02:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            break
    return last - start_cpu, last_change - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "build", "mxfront"))
    ap.add_argument("--flood", action="store_true")
    ap.add_argument("--only", choices=["noise", "pdf"])
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mxbench-ocr.")
    pf = PostfixQmqp()
    pf.start()
    words = write_words_file(work, ["cheap viagra", "casino"])
    cfg = {"profile.mx": {"filters": ["rules", "relay_control", "ocr"]},
           "rules.rule": [{"name": "casino", "kind": "header", "header": "Subject", "pattern": "(?i)casino", "score": 1}],
           "ocr": {"words_file": str(words), "image_timeout": 3, "budget": 10}}
    mx = Mxfront([pf.address], cfg, binary=os.path.abspath(a.binary))
    try:
        mx.start()
        print(f"binary {a.binary}; ocr image_timeout 3 s, budget 10 s, timeout 30 s; rules timeout 10 s")
        cases = [("noise", "n.png", noise_png_bytes()), ("pdf", "p.pdf", inflating_pdf_bytes())]
        for name, fname, data in cases:
            if a.only and a.only != name:
                continue
            msg = image_mail([(fname, data)], "s@example.net", "bob@example.org", f"hostile {name}")
            c0 = cpu(mx.pid)
            t0 = time.monotonic()
            code, text = smtp_send(mx.port, "s@example.net", ["bob@example.org"], msg, timeout=120)
            latency = time.monotonic() - t0
            spent, busy = until_idle(mx.pid, c0)
            print(f"{name}: {len(data)} bytes, reply {code} {text[:60]!r} after {latency:.1f} s; "
                  f"server CPU {spent:.1f} s, busy for {busy:.1f} s after the send")
        if a.flood:
            hostile = image_mail([("n.png", noise_png_bytes())], "s@example.net", "bob@example.org", "hostile")
            clean = b"From: a@example.net\r\nTo: bob@example.org\r\nSubject: lunch\r\n\r\nsee you\r\n"
            results = []

            def one(m, tag):
                t = time.monotonic()
                r = smtp_send(mx.port, "s@example.net", ["bob@example.org"], m, timeout=120)
                results.append((tag, r[0], time.monotonic() - t))
            ths = [threading.Thread(target=one, args=(hostile, f"hostile{i}")) for i in range(4)]
            c0 = cpu(mx.pid)
            for t in ths:
                t.start()
            time.sleep(1)
            one(clean, "clean")
            for t in ths:
                t.join()
            spent, busy = until_idle(mx.pid, c0)
            for tag, code, secs in sorted(results):
                print(f"flood: {tag} reply {code} after {secs:.1f} s")
            print(f"flood: server CPU {spent:.1f} s, busy for {busy:.1f} s")
    finally:
        mx.kill()
        pf.stop()
        remove_dir(work, "bench")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What the `ocr` filter (Tesseract in-process, docs/filters.md "Text in images") costs, in one run:

1. throughput: images/s with ONE filter worker (`[workers] threads = 1`, the per-core figure) and with
   two (`threads = 2`, both cores: the scaling), `[ocr] cache_size = 0`; C smtplib clients (one SMTP
   session per message) keep the pool busy for T seconds; every message carries one 600x200 PNG of
   spam text (a pool of distinct images rendered up front, not timed); mxfront's CPU ms per image
   (user / sys) from /proc/<pid>/stat before and after;
2. latency at concurrency 1 (threads = 2, cache off): the client-observed time of DATA .. final reply
   (smtplib `data()`: DATA, 354, body + ".", 250) of messages with one image and of the same messages
   without it (text only), sent alternately; p50/p90/p99/max over all runs, and the difference = the
   latency OCR adds;
3. cache: a campaign-like sequence (90 % of the messages carry one of 3 campaign images, 10 % a
   distinct image), the same sequence to mxfront with the default cache and with `cache_size = 0`,
   C clients, 2 workers; msgs/s, the ratio, and mxfront_ocr_images_total{outcome="read"|"cached"}
   from /metrics. Every repetition uses new campaign and distinct images (nothing cached earlier hits).

Every figure is measured twice: mxfront "as shipped" (its environment without OMP_THREAD_LIMIT)
and with OMP_THREAD_LIMIT=1 in mxfront's environment. Debian's libtesseract is built with OpenMP and
its LSTM opens parallel regions with an explicit num_threads(4) clause, which the filter's
omp_set_num_threads(1) does not override: each engine thread then drives a team of 4 threads
(visible as 3 extra threads per engine; the start-up line prints each server's thread count).
`--shipped-only` skips the OMP_THREAD_LIMIT=1 servers.

Each figure is measured R times, the servers interleaved (order rotated every repetition), medians
reported. All servers run for the whole run: Postfix's qmqp-sink and the mxfront instances, each with
its own admin port; everything on 127.0.0.1. Profile mx = ["relay_control", "ocr"]; ocr.reject_score = 0
and a high profile reject_score, so every message is relayed with 250 (with or without image: only
OCR differs); the filter's log line (`ocr id=... words=[...] ms=`) is parsed to check that the words
were read (words-found) and for the filter's own time per message. Before each phase the script waits
(at most BUILD_WAIT=300 s, untimed) while a compiler runs.
Usage: bench/ocr.py [--quick] [-r 3] [-t 8] [-c 4] [--latency 80] [--campaign 400] [--shipped-only]
                    [--mxfront PATH]"""
import argparse
import os
import random
import re
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
from mxharness import Mxfront, QmqpSink, free_port, http_get  # noqa: E402
from ocr_harness import OcrImages, image_mail, write_words_file  # noqa: E402

SENDER = "spammer@bench.test"
RCPT = "bob@example.org"
WORDS = [("cheap viagra", 2), "buy now", "casino", "rolex replica"]
BODY = "Hello,\n\nour best offer of the week is in the picture below.\n\nRegards\n"
W, H, PT = 600, 200, 34          # 34 pt: "CHEAP VIAGRA 39 BUY NOW" is 543 px wide, fits 600 with its margin
LIMITS = {"connections": 10000, "connections_per_ip": 10000}
TICK = os.sysconf("SC_CLK_TCK")
OCR_LINE = re.compile(r"ocr id=\S+ images=(\d+) read=(\d+) cached=(\d+) .*? score=(\S+) words=\[(.*?)\] ms=(\d+)")


def config(words, admin_port, threads, cache_size):
    ocr = {"words_file": str(words), "reject_score": 0}
    if cache_size is not None:
        ocr["cache_size"] = cache_size
    return {
        "log": {"level": "info"},  # one ocr line per message (parsed), as in production
        "limits": LIMITS,
        "workers": {"threads": threads},
        "profile.mx": {"filters": ["relay_control", "ocr"], "reject_score": 100, "tag_score": 2},
        "ocr": ocr,
        "admin": {"address": f"127.0.0.1:{admin_port}"},
    }


class Server:
    def __init__(self, name, sink, words, threads, cache_size, omp_limit=None):
        self.name, self.threads, self.omp_limit = name, threads, omp_limit
        self.admin = free_port()
        self.mx = Mxfront([sink.address], config=config(words, self.admin, threads, cache_size))

    def start(self):
        """Starts mxfront with OMP_THREAD_LIMIT set (or not) in its environment only."""
        saved = os.environ.pop("OMP_THREAD_LIMIT", None)
        try:
            if self.omp_limit is not None:
                os.environ["OMP_THREAD_LIMIT"] = str(self.omp_limit)
            self.mx.start()
        finally:
            os.environ.pop("OMP_THREAD_LIMIT", None)
            if saved is not None:
                os.environ["OMP_THREAD_LIMIT"] = saved

    def thread_count(self):
        return len(os.listdir(f"/proc/{self.mx.pid}/task"))

    def cpu_ticks(self):
        with open(f"/proc/{self.mx.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])  # utime, stime

    def log_size(self):
        return os.path.getsize(self.mx.stderr_path)

    def ocr_lines(self, since):
        """(images, read, cached, score, words, ms) of each ocr log line written after offset `since`."""
        with open(self.mx.stderr_path, errors="replace") as f:
            f.seek(since)
            return [m.groups() for m in OCR_LINE.finditer(f.read())]

    def image_counts(self):
        _, body = http_get(self.admin, "/metrics")
        return {m.group(1): int(m.group(2)) for m in
                re.finditer(r'^mxfront_ocr_images_total\{outcome="([a-z_]+)"\} (\d+)$', body, re.M)}


def send(port, msg):
    """One message in its own session: (reply code, seconds of DATA .. final reply)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.bench.test", timeout=120) as c:
        c.ehlo()
        c.mail(SENDER)
        c.rcpt(RCPT)
        t0 = time.perf_counter()
        try:
            code, _ = c.data(msg)
        except smtplib.SMTPResponseException as e:
            code = e.smtp_code
        return code, time.perf_counter() - t0


def load(port, msgs, conc, seconds=None):
    """C client threads send `msgs` in order (cycling when `seconds` is given, until then; otherwise each
    once). Returns (messages done, wall seconds from start to the last reply, reply codes)."""
    lock, pos, codes = threading.Lock(), [0], []
    t0 = time.perf_counter()
    stop = t0 + seconds if seconds else None

    def client():
        while True:
            with lock:
                if (stop and time.perf_counter() >= stop) or (not stop and pos[0] >= len(msgs)):
                    return
                m = msgs[pos[0] % len(msgs)]
                pos[0] += 1
            code, _ = send(port, m)
            with lock:
                codes.append(code)

    ts = [threading.Thread(target=client) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return len(codes), time.perf_counter() - t0, codes


def wait_builds(limit):
    waited = 0
    while any(subprocess.run(["pgrep", "-x", p], capture_output=True).returncode == 0
              for p in ("cc1plus", "ninja", "collect2")):
        if waited >= limit:
            print("  (a compiler/ninja is running: measuring anyway)", flush=True)
            break
        if waited == 0:
            print(f"  (a compiler/ninja is running: waiting up to {limit} s)", flush=True)
        time.sleep(5)
        waited += 5


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def pct(vals, p):
    s = sorted(vals)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))] if s else float("nan")


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def mail(img, tag):
    return image_mail([("offer.png", img)] if img is not None else [], SENDER, RCPT, f"offer {tag}", text=BODY)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke mode: 1 repetition, few messages (~20 s)")
    ap.add_argument("-r", type=int, default=3, help="repetitions (median)")
    ap.add_argument("-t", type=float, default=8, help="seconds per throughput run")
    ap.add_argument("-c", type=int, default=4, help="client sessions at once (throughput and cache runs)")
    ap.add_argument("--pool", type=int, default=40, help="distinct images for the throughput and latency runs")
    ap.add_argument("--latency", type=int, default=80, help="messages with image (and as many without) per latency run")
    ap.add_argument("--campaign", type=int, default=400, help="messages per cache run (90 %% campaign, 10 %% distinct)")
    ap.add_argument("--shipped-only", action="store_true", help="no OMP_THREAD_LIMIT=1 servers")
    ap.add_argument("--mxfront", default=os.environ.get("MXFRONT_BIN", os.path.join(REPO, "build", "mxfront")))
    a = ap.parse_args()
    if a.quick:
        a.r, a.t, a.pool, a.latency, a.campaign = 1, 2, 8, 5, 20
    for tool in ("qmqp-sink", "convert"):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing")
    os.environ["MXFRONT_BIN"] = a.mxfront
    build_wait = int(os.environ.get("BUILD_WAIT", "300"))
    variants = ["", "o"] if not a.shipped_only else [""]          # "" = as shipped, "o" = OMP_THREAD_LIMIT=1
    vname = {"": "as shipped", "o": "OMP_THREAD_LIMIT=1"}
    t_start = time.monotonic()
    work = tempfile.mkdtemp(prefix="mxbench-ocr.")
    images = OcrImages()
    servers = {}
    try:
        words = write_words_file(work, WORDS)
        # -- images and messages, rendered up front (not timed)
        pool = [mail(images.text_png(f"CHEAP VIAGRA {i} BUY NOW", W, H, PT), f"pool-{i}") for i in range(a.pool)]
        plain = [mail(None, f"pool-{i}") for i in range(a.pool)]
        warm = [mail(images.text_png(f"WARM UP {i} CASINO", W, H, PT), f"warm-{i}") for i in range(8)]
        ndist = max(1, a.campaign // 10)
        campaigns = []
        for r in range(a.r):
            camp = [images.text_png(t, W, H, PT) for t in
                    (f"CHEAP VIAGRA BUY NOW {r}A", f"CASINO BONUS {r}B PLAY", f"ROLEX REPLICA {r}C SALE")]
            dist = [images.text_png(f"BUY NOW OFFER {r}-{i} CASINO", W, H, PT) for i in range(ndist)]
            rng = random.Random(1000 + r)
            kinds = ["d"] * ndist + ["c"] * (a.campaign - ndist)
            rng.shuffle(kinds)
            seq, di = [], 0
            for i, k in enumerate(kinds):
                if k == "d":
                    seq.append(mail(dist[di], f"camp-{r}-{i}"))
                    di += 1
                else:
                    seq.append(mail(rng.choice(camp), f"camp-{r}-{i}"))
            campaigns.append(seq)
        print(f"# {os.cpu_count()} cores, load {loadavg()}; images {W}x{H} PNG ({len(pool[0]) // 1024} KB mail); "
              f"R={a.r}, medians; servers interleaved; rendered in {time.monotonic() - t_start:.0f} s", flush=True)

        with QmqpSink() as sink:
            for v in variants:
                lim = 1 if v else None
                servers["t1" + v] = Server(f"threads=1 cache off {vname[v]}", sink, words, 1, 0, lim)
                servers["t2" + v] = Server(f"threads=2 cache off {vname[v]}", sink, words, 2, 0, lim)
                servers["t2c" + v] = Server(f"threads=2 cache on  {vname[v]}", sink, words, 2, None, lim)
            for s in servers.values():
                s.start()
                load(s.mx.port, warm, 4)  # Tesseract engines are created on first use: not timed
            print("# threads per mxfront process after warm-up: "
                  + ", ".join(f"{s.name.strip()}: {s.thread_count()}" for s in servers.values()), flush=True)

            # -- 1. throughput, cache off
            wait_builds(build_wait)
            print(f"\n1. throughput, cache off, {a.c} clients, {a.t:g} s per run, one image per message", flush=True)
            keys = [k + v for v in variants for k in ("t1", "t2")]
            thr = {k: [] for k in keys}
            for r in range(a.r):
                for k in keys[r % len(keys):] + keys[:r % len(keys)]:
                    s = servers[k]
                    c0, off, m0 = s.cpu_ticks(), s.log_size(), s.image_counts()
                    n, dt, codes = load(s.mx.port, pool, a.c, a.t)
                    c1, lines, m1 = s.cpu_ticks(), s.ocr_lines(off), s.image_counts()
                    read = m1.get("read", 0) - m0.get("read", 0)
                    hits = sum(1 for x in lines if x[4])
                    user_ms, sys_ms = ((c1[i] - c0[i]) * 1000 / TICK / max(n, 1) for i in (0, 1))
                    fms = med([int(x[5]) for x in lines])
                    thr[k].append((n / dt, user_ms + sys_ms, fms, user_ms, sys_ms))
                    print(f"  {s.name:<39} {n:4d} msgs in {dt:4.1f} s = {n / dt:6.2f} images/s  CPU {user_ms + sys_ms:5.1f} "
                          f"ms/image (user {user_ms:.1f} sys {sys_ms:.1f})  filter ms p50 {fms:.0f}  read={read} "
                          f"words-found={hits}/{len(lines)} non-250={sum(1 for c in codes if c != 250)}", flush=True)

            # -- 2. latency at concurrency 1, cache off, with / without the image, alternating
            wait_builds(build_wait)
            print(f"\n2. latency at c=1 (threads=2, cache off), DATA .. final reply, {a.latency} messages "
                  f"with and {a.latency} without image per run, alternating", flush=True)
            lat = {v: {"image": [], "text": []} for v in variants}
            per_rep = {v: [] for v in variants}
            fms_all = {v: [] for v in variants}
            for r in range(a.r):
                for v in (variants if r % 2 == 0 else variants[::-1]):
                    s = servers["t2" + v]
                    off = s.log_size()
                    cur = {"image": [], "text": []}
                    for i in range(a.latency):
                        j = (r * a.latency + i) % len(pool)
                        order = (("image", pool[j]), ("text", plain[j]))
                        for kind, m in (order if i % 2 == 0 else order[::-1]):
                            code, dt = send(s.mx.port, m)
                            if code != 250:
                                print(f"  ! {kind} message answered {code}")
                            cur[kind].append(dt * 1000)
                    fms_all[v] += [int(x[5]) for x in s.ocr_lines(off)]
                    for k in cur:
                        lat[v][k] += cur[k]
                    per_rep[v].append((pct(cur["image"], 50), pct(cur["text"], 50)))
                    print(f"  run {r + 1} {vname[v]:<19}: p50 with image {pct(cur['image'], 50):6.1f} ms, "
                          f"without {pct(cur['text'], 50):.2f} ms", flush=True)

            # -- 3. cache on / off with a campaign-like load
            wait_builds(build_wait)
            print(f"\n3. cache, {a.campaign} messages per run (90 % one of 3 campaign images, 10 % distinct), "
                  f"{a.c} clients, threads=2", flush=True)
            ckeys = [k + v for v in variants for k in ("t2", "t2c")]
            cache = {k: [] for k in ckeys}
            counts = {k: {"read": [], "cached": []} for k in ckeys}
            for r in range(a.r):
                for k in (ckeys if r % 2 == 0 else ckeys[::-1]):
                    s = servers[k]
                    m0 = s.image_counts()
                    n, dt, codes = load(s.mx.port, campaigns[r], a.c)
                    m1 = s.image_counts()
                    d = {o: m1.get(o, 0) - m0.get(o, 0) for o in ("read", "cached")}
                    cache[k].append(n / dt)
                    for o in d:
                        counts[k][o].append(d[o])
                    print(f"  {s.name:<39} {n:4d} msgs in {dt:4.1f} s = {n / dt:7.2f} msgs/s  read={d['read']} "
                          f"cached={d['cached']}  non-250={sum(1 for c in codes if c != 250)}", flush=True)
    finally:
        for s in servers.values():
            s.mx.kill()
        images.cleanup()
        shutil.rmtree(work, ignore_errors=True)

    # -- summary
    def m(k, i):
        return med([x[i] for x in thr[k]])

    def lat_s(v, k):
        x = lat[v][k]
        return f"{pct(x, 50):.1f}/{pct(x, 90):.1f}/{pct(x, 99):.1f}/{pct(x, 100):.1f}"

    def added(v):
        li, lt = lat[v]["image"], lat[v]["text"]
        return "/".join(f"+{pct(li, p) - pct(lt, p):.1f}" for p in (50, 90, 99))

    cols = variants
    print(f"\n# summary (medians of {a.r}; load now {loadavg()}; {time.monotonic() - t_start:.0f} s in all)")
    print(f"{'figure':<42}" + "".join(f" {vname[v]:>24}" for v in cols))
    rows = [
        ("OCR images/s, 1 worker thread (per core)", lambda v: f"{m('t1' + v, 0):.2f}"),
        ("  mxfront CPU ms/image (user+sys), 1 thr", lambda v: f"{m('t1' + v, 1):.1f} ({m('t1' + v, 3):.0f}+{m('t1' + v, 4):.0f})"),
        ("  filter ms/image (log p50), 1 thread", lambda v: f"{m('t1' + v, 2):.0f}"),
        ("OCR images/s, 2 worker threads", lambda v: f"{m('t2' + v, 0):.2f}"),
        ("  mxfront CPU ms/image (user+sys), 2 thr", lambda v: f"{m('t2' + v, 1):.1f} ({m('t2' + v, 3):.0f}+{m('t2' + v, 4):.0f})"),
        ("  scaling 2 threads / 1 thread", lambda v: f"{m('t2' + v, 0) / m('t1' + v, 0):.2f}x"),
        ("latency with image p50/p90/p99/max ms", lambda v: lat_s(v, "image")),
        ("latency text only p50/p90/p99/max ms", lambda v: lat_s(v, "text")),
        ("added by OCR p50/p90/p99 ms", added),
        ("  per-run p50 with image ms", lambda v: " ".join(f"{x[0]:.1f}" for x in per_rep[v])),
        ("  filter ms/image (log p50), c=1", lambda v: f"{med(fms_all[v]):.0f}"),
    ]
    for name, f in rows:
        print(f"{name:<42}" + "".join(f" {f(v):>24}" for v in cols))
    rows = []
    for k, label in (("t2", "cache off"), ("t2c", "cache on")):
        rows.append((f"campaign msgs/s, {label}", lambda v, k=k: f"{med(cache[k + v]):.2f}"))
        rows.append((f"  images read / cached per run, {label}",
                     lambda v, k=k: f"{med(counts[k + v]['read']):.0f} / {med(counts[k + v]['cached']):.0f}"))
    rows.append(("cache gain (on / off msgs/s)", lambda v: f"{med(cache['t2c' + v]) / med(cache['t2' + v]):.1f}x"))
    for name, f in rows:
        print(f"{name:<42}" + "".join(f" {f(v):>24}" for v in cols))
    print("# all runs, images/s: " + "; ".join(f"{k} {[round(x[0], 2) for x in thr[k]]}" for k in keys)
          + "; campaign msgs/s: " + "; ".join(f"{k} {[round(x, 2) for x in cache[k]]}" for k in ckeys))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Resident memory per idle SMTP connection (stdlib only).

Reads VmRSS of the server process (--pid), opens --count client connections that
each read the banner, send "EHLO x" and read the whole reply, then holds them all
open and reads VmRSS again.  Prints one machine-readable line:

  RESULT conns=N ok=N rss_before_kib=.. rss_after_kib=.. per_conn_kib=.. alive=N rss_closed_kib=..

  ok      connections that got a 220 banner and a 250 EHLO reply
  alive   of those, how many still answered a NOOP after the measurement
  rss_closed_kib  VmRSS after all clients closed (allocator retention / leak hint)

Exit status 0 if every connection succeeded, 1 otherwise.
"""
import argparse
import asyncio
import resource
import sys
import time


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def read_reply(reader):
    """Read one (possibly multi-line) SMTP reply; return (code, lines)."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("EOF")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), lines


async def open_one(host, port, sem, timeout):
    async with sem:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            code, _ = await asyncio.wait_for(read_reply(reader), timeout)
            if code != 220:
                raise RuntimeError(f"banner {code}")
            writer.write(b"EHLO x\r\n")
            await writer.drain()
            code, _ = await asyncio.wait_for(read_reply(reader), timeout)
            if code != 250:
                raise RuntimeError(f"EHLO {code}")
        except BaseException:
            writer.close()
            raise
        return reader, writer


async def noop(conn, timeout):
    reader, writer = conn
    try:
        writer.write(b"NOOP\r\n")
        await writer.drain()
        await asyncio.wait_for(read_reply(reader), timeout)
        return True
    except Exception:
        return False


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="server process whose VmRSS is read")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--parallel", type=int, default=64, help="connections being set up at once")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before reading RSS")
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    await asyncio.sleep(a.settle)
    before = vmrss_kib(a.pid)
    sem = asyncio.Semaphore(a.parallel)
    t0 = time.monotonic()
    results = await asyncio.gather(*(open_one(a.host, a.port, sem, a.timeout) for _ in range(a.count)),
                                   return_exceptions=True)
    setup_s = time.monotonic() - t0
    conns = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    await asyncio.sleep(a.settle)
    after = vmrss_kib(a.pid)
    alive = sum(await asyncio.gather(*(noop(c, a.timeout) for c in conns)))
    for _, w in conns:
        w.close()
    await asyncio.sleep(a.settle)
    try:
        closed = vmrss_kib(a.pid)
    except Exception:
        closed = -1
    per = (after - before) / len(conns) if conns else float("nan")
    if errors:
        kinds = {}
        for e in errors:
            kinds[repr(e)[:80]] = kinds.get(repr(e)[:80], 0) + 1
        for k, n in sorted(kinds.items(), key=lambda x: -x[1])[:5]:
            print(f"idle_clients: {n} x {k}", file=sys.stderr)
    print(f"RESULT conns={a.count} ok={len(conns)} rss_before_kib={before} rss_after_kib={after} "
          f"per_conn_kib={per:.2f} alive={alive} rss_closed_kib={closed} setup_s={setup_s:.2f}")
    return 0 if len(conns) == a.count else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""Small helpers shared by the bench/ scripts (standard library only)."""
import os
import subprocess
import time


def smtp_source(port, sessions, n, size=4096, sender="bench@bench.test", rcpt="bob@example.org"):
    """Postfix's smtp-source (C): n messages of `size` bytes, one per SMTP session, `sessions` at once;
    the rate in msg/s. It stops with an error at any reply it does not expect (a refusal included):
    that raises RuntimeError, so a rate is only returned when every message got its 250."""
    t0 = time.monotonic()
    p = subprocess.run(["smtp-source", "-4", "-s", str(sessions), "-m", str(n), "-l", str(size), "-c",
                        "-f", sender, "-t", rcpt, f"127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=600)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {p.stderr[-500:]}")
    return n / dt


def cpu_trees(roots):
    """CPU seconds (user+sys, with the reaped children's cutime+cstime) of each root's process tree."""
    tick = os.sysconf("SC_CLK_TCK")
    stat = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is field 3 (state): ppid = 4, utime..cstime = 14..17
            stat[int(d)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    kids = {}
    for pid, (ppid, _t) in stat.items():
        kids.setdefault(ppid, []).append(pid)
    out = {}
    for name, root in roots.items():
        total, todo = 0, [root]
        while todo:
            p = todo.pop()
            if p in stat:
                total += stat[p][1]
                todo.extend(kids.get(p, ()))
        out[name] = total / tick
    return out

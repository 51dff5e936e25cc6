"""Small helpers shared by the bench/ scripts (standard library only)."""
import os


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

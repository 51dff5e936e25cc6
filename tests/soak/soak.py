#!/usr/bin/env python3
"""Fault soak of mxfront with a no-loss ledger (Python 3 standard library only; needs root for Postfix).

Components (all on 127.0.0.1, free ports):
  A, B  - two REAL private Postfix qmqpd mailbox servers delivering into Maildirs; mxfront has
          qmqp.servers = [A, B], connect_timeout = 1, answer_timeout = 3;
  Z, D  - two more Postfix instances whose qmqpd answers Z (milter tempfail) / D (milter reject);
          they are swapped in for A for a few seconds through a SIGHUP config reload;
  one mxfront (io_threads 2, limits.connections 60, greeting/command/data timeouts 3 s).

Load: --clients threads send messages with smtplib, each with a unique
`Message-ID: <soak-RUNID-T-N@soak.test>` and an `X-Soak-Attempt: k` header; a message told 4xx or
nothing (connection error / timeout) is retried with the same Message-ID, at most --retries times,
as a real MTA would. Every attempt and its answer goes into the ledger.

Faults (round robin in a seeded order, one at a time, for the whole run): A paused (SIGSTOP) and
resumed; A stopped and restarted on the same port (its queue and Maildirs kept); A replaced by a Z
server, then by a D server (config reload); clients dropping mid-DATA (FIN and RST); slowloris
clients (silent, trickling a command, trickling DATA); early talkers (a whole transaction sent
before the 220); a flood past limits.connections; and once, SIGKILL of mxfront and a restart on the
same port while clients are in flight.

Ledger (after Postfix's queues are empty and the Maildirs stop changing): every delivered file of
this run is parsed for Message-ID, X-Soak-Attempt and Postfix queue id.
  lost           told 250, never delivered                                 -> must be 0
  5xx-delivered  a copy of an attempt that was told 5xx                    -> must be 0
  drop-delivered a message whose client never sent end-of-data, delivered  -> must be 0
  duplicates     delivered more than once; each extra copy is explained by the attempt it comes
                 from (told 4xx/nothing and delivered anyway, Postfix redelivery of one queue id);
                 a second copy of an attempt that got 250 with another queue id is unexplained
                 (mxfront sent one request twice)                          -> must be 0
Then the surviving mxfront's fd count must return to its baseline (taken after warm-up) within
10 s and none of its sockets may be in CLOSE_WAIT; RSS is reported.

Exit code 0 only if every check holds. Usage: soak.py [--duration 60] [--clients 6] [--seed N] [--chain]
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
from mxharness import (KEEP, HarnessError, Mxfront, PostfixQmqp, SmtpConn, _stop_process,  # noqa: E402
                       smtp_raw, wait_listening)

HOST = "127.0.0.1"
RCPTS = ["alice@example.org", "bob@example.org", "carol@example.org"]  # carol -> catchall Maildir
TIMEOUTS = {"greeting_timeout": 3, "command_timeout": 3, "data_timeout": 3}
CONN_LIMIT = 60
CLIENT_TIMEOUT = 15.0  # every client socket; > connect_timeout + answer_timeout of mxfront


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# components
# ----------------------------------------------------------------------------------------------
class RestartablePostfix(PostfixQmqp):
    """PostfixQmqp that can vanish (master and children stopped) and come back on the same port with
    the same queue and Maildirs (PostfixQmqp.stop() would delete them)."""

    def vanish(self):
        if self.paused:
            self.resume()
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM, timeout=5)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc = None

    def restart(self):
        deadline = time.monotonic() + 10
        while True:
            try:
                self._launch()
                return
            except HarnessError:
                if self.proc is not None:
                    _stop_process(self.proc, signal.SIGKILL, timeout=2)
                    self.proc = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def delivered_files(self):
        return self._delivered_files()

    def queued_complete(self):
        """Queue files still to be delivered. An incoming file without the owner-execute bit is one
        cleanup(8) never finished (e.g. killed by vanish() while a request was arriving): Postfix
        never answered K for it and never delivers it, so it is not waited for."""
        n = 0
        for d in ("incoming", "active", "deferred", "hold", "maildrop"):
            for root, _dirs, names in os.walk(self.spool / d):
                for name in names:
                    try:
                        mode = os.stat(os.path.join(root, name)).st_mode
                    except OSError:
                        continue
                    if d != "incoming" or mode & 0o100:
                        n += 1
        return n


class Instance:
    """One mxfront process on a fixed port; keeps its log after it is killed."""

    def __init__(self, gen, port, servers, workdir, chain=None):
        self.gen = gen
        self.port = port
        self.workdir = workdir
        self.chain = chain
        cfg = {
            "server": {"io_threads": 2, "shutdown_timeout": 5},
            "listener": [{"address": f"{HOST}:{port}", "profile": "mx"}],
            "limits": dict(TIMEOUTS, connections=CONN_LIMIT, connections_per_ip=CONN_LIMIT,
                           session_timeout=120),
            "qmqp": {"connect_timeout": 1, "answer_timeout": 3},
        }
        cfg.update(chain or {})
        self.mx = Mxfront(servers, cfg)
        self.log_copy = None

    def start(self):
        self.mx.start()
        return self

    @property
    def pid(self):
        return self.mx.pid

    def log(self):
        return self.mx.log() if self.mx.dir else (Path(self.log_copy).read_text(errors="replace")
                                                  if self.log_copy else "")

    def save_log(self):
        if self.mx.stderr_path and os.path.exists(self.mx.stderr_path):
            self.log_copy = os.path.join(self.workdir, f"mxfront-{self.gen}.log")
            shutil.copyfile(self.mx.stderr_path, self.log_copy)

    def sigkill(self):
        self.mx.expected_exit = True
        if self.mx.proc and self.mx.proc.poll() is None:
            os.kill(self.mx.proc.pid, signal.SIGKILL)
            self.mx.proc.wait(5)
        self.save_log()

    def cleanup(self):
        try:
            if self.mx.proc and self.mx.proc.poll() is None:
                self.mx.terminate(10)
        finally:
            self.save_log()
            self.mx.kill()

    def set_servers(self, servers, timeout=5.0):
        """Rewrite qmqp.servers in the config file and SIGHUP; True once the reload is logged."""
        path = self.mx.config_path
        text = Path(path).read_text()
        new = re.sub(r"^servers = .*$", "servers = [" + ", ".join(f'"{s}"' for s in servers) + "]",
                     text, count=1, flags=re.M)
        before = self.log().count("reloaded config")
        tmp = path + ".new"
        Path(tmp).write_text(new)
        os.replace(tmp, path)
        os.kill(self.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count("reloaded config") > before:
                return True
            time.sleep(0.05)
        return False

    def rss_kb(self):
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None


# ----------------------------------------------------------------------------------------------
# the soak
# ----------------------------------------------------------------------------------------------
class Soak:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
        self.run_id = f"{time.strftime('%Y%m%d%H%M%S')}-{self.seed}"
        self.rng = random.Random(self.seed)
        self.workdir = tempfile.mkdtemp(prefix="mxsoak.", dir="/tmp")
        self.lock = threading.Lock()
        self.messages = {}      # msgid -> {"kind", "rcpt", "attempts": [...], "dropped": bool}
        self.faults = []        # {"kind", "start", "end", "ok", "detail"}
        self.stop = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.inflight = 0
        self.pfs = []
        self.inst = None
        self.instances = []
        self.t0 = time.monotonic()
        self.counter = 0
        self.problems = []      # fault checks that failed (also fail the run)

    # -- helpers ---------------------------------------------------------------------------------
    def now(self):
        return time.monotonic() - self.t0

    def new_msgid(self, tag):
        with self.lock:
            self.counter += 1
            return f"soak-{self.run_id}-{tag}-{self.counter}"

    def chain_config(self):
        """--chain: the MX filter chain in front (rules, relay_control, clamav with a test signature
        DB, ocr with a word list); every fifth message carries a picture (a clean text image)."""
        if not self.args.chain:
            return None
        from clamav_harness import SignatureDb
        from ocr_harness import OcrImages, write_words_file
        self.sigdb = SignatureDb()
        self.ocr_images = OcrImages()
        self.pictures = [self.ocr_images.text_png(f"SOAK REPORT PAGE {i}", 400, 100, 36) for i in range(3)]
        words = write_words_file(self.workdir, ["cheap viagra", "buy now"])
        return {
            "profile.mx": {"filters": ["rules", "relay_control", "clamav", "ocr"], "reject_score": 50, "tag_score": 40},
            "rules.rule": [{"name": "NEVER", "kind": "body", "pattern": "(?i)never-in-a-soak-message", "action": "reject"}],
            "clamav": {"database_dir": self.sigdb.dir},
            "ocr": {"words_file": str(words)},
        }

    def message(self, msgid, rcpt, attempt, size):
        head = (f"From: <soak@example.net>\r\nTo: <{rcpt}>\r\nMessage-ID: <{msgid}@soak.test>\r\n"
                f"X-Soak-Attempt: {attempt}\r\nSubject: soak {msgid}\r\n")
        line = "soak-body " + "x" * 64 + "\r\n"
        body = line * max(1, size // len(line))
        n = int(msgid.rsplit("-", 1)[1]) if msgid.rsplit("-", 1)[1].isdigit() else 0
        if not self.args.chain or n % 5:
            return (head + "\r\n" + body).encode()
        import base64
        pic = base64.encodebytes(self.pictures[n % len(self.pictures)]).decode().replace("\n", "\r\n")
        return (head + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="soakB"\r\n\r\n'
                "--soakB\r\nContent-Type: text/plain\r\n\r\n" + body +
                "--soakB\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n" + pic +
                "--soakB--\r\n").encode()

    def record_attempt(self, msgid, kind, rcpt, attempt):
        with self.lock:
            m = self.messages.setdefault(msgid, {"kind": kind, "rcpt": rcpt, "attempts": [],
                                                 "dropped": False})
            m["attempts"].append(attempt)

    # -- load ------------------------------------------------------------------------------------
    def attempt(self, msgid, rcpt, k, size):
        """One SMTP transaction; returns the attempt record."""
        rec = {"n": k, "t0": self.now(), "gen": self.inst.gen, "code": None, "text": "", "stage": ""}
        port = self.inst.port
        s = None
        stage = "connect"
        try:
            s = smtplib.SMTP(HOST, port, local_hostname="client.soak.test", timeout=CLIENT_TIMEOUT)
            stage = "ehlo"
            code, text = s.ehlo()
            if code == 250:
                stage = "mail"
                code, text = s.mail("soak@example.net")
            if code == 250:
                stage = "rcpt"
                code, text = s.rcpt(rcpt)
            if code == 250:
                stage = "data"
                code, text = s.data(self.message(msgid, rcpt, k, size))
            rec.update(code=code, text=text.decode("latin-1", "replace")[:120], stage=stage)
        except smtplib.SMTPConnectError as e:  # greeting was not 220 (e.g. 421 past the limit)
            rec.update(code=e.smtp_code, text=str(e.smtp_error)[:120], stage="greeting")
        except smtplib.SMTPResponseException as e:  # e.g. DATA not answered 354
            rec.update(code=e.smtp_code, text=str(e.smtp_error)[:120], stage=stage)
        except (smtplib.SMTPException, OSError) as e:
            rec.update(code=None, text=f"{type(e).__name__}: {e}"[:120], stage=stage)
        finally:
            if s is not None:
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    pass
                try:
                    s.close()
                except OSError:
                    pass
        rec["t1"] = self.now()
        c = rec["code"]
        rec["outcome"] = ("250" if c == 250 and rec["stage"] == "data" else
                          "5xx" if c is not None and 500 <= c < 600 else
                          "4xx" if c is not None and 400 <= c < 500 else "unknown")
        m = re.search(r"queued as (\S+)", rec["text"])
        rec["qid"] = m.group(1) if m else None
        return rec

    def client(self, tid):
        rng = random.Random(self.seed * 1009 + tid)
        while not self.stop.is_set():
            msgid = self.new_msgid(f"c{tid}")
            rcpt = rng.choice(RCPTS)
            size = rng.choice([400, 2000, 8000, 30000, 90000])
            for k in range(1, self.args.retries + 2):
                while not self.gate.wait(0.2):
                    if self.stop.is_set():
                        break
                if self.stop.is_set() and k > 1:
                    break
                with self.lock:
                    self.inflight += 1
                try:
                    rec = self.attempt(msgid, rcpt, k, size)
                finally:
                    with self.lock:
                        self.inflight -= 1
                self.record_attempt(msgid, "load", rcpt, rec)
                if rec["outcome"] in ("250", "5xx") or self.stop.is_set():
                    break
                self.stop.wait(rng.uniform(0.3, 1.0))
            self.stop.wait(rng.uniform(0.0, 0.1))

    # -- faults ----------------------------------------------------------------------------------
    def fault(self, kind, fn):
        f = {"kind": kind, "start": self.now(), "end": None, "ok": True, "detail": ""}
        with self.lock:
            self.faults.append(f)
        log(f"fault {kind} ...")
        try:
            ok, detail = fn()
        except Exception as e:  # a fault that could not be injected is a failed check
            ok, detail = False, f"{type(e).__name__}: {e}"
        f.update(end=self.now(), ok=ok, detail=detail)
        log(f"fault {kind}: {'ok' if ok else 'FAILED'} {detail}")
        if not ok:
            self.problems.append(f"fault {kind} at {f['start']:.1f}s: {detail}")

    def f_pause_a(self):
        A = self.pfs[0]
        A.pause()
        try:
            time.sleep(4.5)
        finally:
            A.resume()
        return True, "A SIGSTOPped 4.5 s, resumed"

    def f_vanish_a(self):
        A = self.pfs[0]
        A.vanish()
        time.sleep(2.5)
        A.restart()
        return True, f"A stopped 2.5 s, restarted on {A.address}"

    def _swap(self, other, seconds, label):
        A, B = self.pfs[0], self.pfs[1]
        if not self.inst.set_servers([other.address, B.address]):
            self.inst.set_servers([A.address, B.address])
            return False, "reload to " + label + " not logged"
        time.sleep(seconds)
        if not self.inst.set_servers([A.address, B.address]):
            return False, "reload back to [A, B] not logged"
        return True, f"servers [{label}, B] for {seconds} s (SIGHUP reload), then [A, B]"

    def f_z(self):
        return self._swap(self.pfs[2], 2.5, "Z")

    def f_d(self):
        return self._swap(self.pfs[3], 2, "D")

    def _to_data(self, s, f):
        for cmd, want in ((b"EHLO drop.soak.test", b"250"), (b"MAIL FROM:<soak@example.net>", b"250"),
                          (b"RCPT TO:<bob@example.org>", b"250"), (b"DATA", b"354")):
            s.sendall(cmd + b"\r\n")
            while True:
                line = f.readline()
                if not line.startswith(want):
                    return f"{cmd!r} answered {line!r}"
                if line[3:4] == b" ":
                    break
        return None

    def f_drop(self):
        done, errs = 0, []
        for i in range(4):
            msgid = self.new_msgid("drop")
            s = socket.create_connection((HOST, self.inst.port), timeout=CLIENT_TIMEOUT)
            try:
                f = s.makefile("rb")
                if not f.readline().startswith(b"220"):
                    errs.append("no 220")
                    continue
                err = self._to_data(s, f)
                if err:
                    errs.append(err)
                    continue
                body = self.message(msgid, "bob@example.org", 1, 20000)
                s.sendall(body[: len(body) // 2])
                with self.lock:
                    self.messages[msgid] = {"kind": "drop", "rcpt": "bob@example.org", "attempts": [],
                                            "dropped": True}
                time.sleep(0.2)
                if i % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                f.close()
                done += 1
            finally:
                s.close()
        return done == 4, f"{done}/4 clients dropped mid-DATA (2 FIN, 2 RST) {errs}"

    def _slow(self, mode):
        """A slowloris client; returns seconds from its last byte to the server's close (None if the
        server never closed within timeout + 4 s)."""
        limit = TIMEOUTS["command_timeout"]
        s = socket.create_connection((HOST, self.inst.port), timeout=CLIENT_TIMEOUT)
        try:
            f = s.makefile("rb")
            if not f.readline().startswith(b"220"):
                return "no 220"
            if mode == "silent":
                trickle = b""
            elif mode == "command":
                s.sendall(b"EHLO slow.soak.test\r\n")
                while (line := f.readline())[3:4] == b"-":
                    pass
                trickle = b"MAIL FROM:<soak@example.net>\r\n"
            else:
                err = self._to_data(s, f)
                if err:
                    return err
                msgid = self.new_msgid("slow")
                with self.lock:
                    self.messages[msgid] = {"kind": "slowdata", "rcpt": "bob@example.org",
                                            "attempts": [], "dropped": True}
                trickle = self.message(msgid, "bob@example.org", 1, 400)
            f.close()
            gap = limit + 1.5
            last = time.monotonic()
            for i in range(len(trickle) + 1):
                s.settimeout(gap)
                try:
                    d = s.recv(4096)
                    if not d or b"421" in d:
                        return time.monotonic() - last
                    continue
                except socket.timeout:
                    pass
                except OSError:
                    return time.monotonic() - last
                if i >= len(trickle) or i > 3:
                    return None  # survived a gap longer than the timeout
                try:
                    s.sendall(trickle[i:i + 1])
                except OSError:
                    return time.monotonic() - last
                last = time.monotonic()
            return None
        finally:
            s.close()

    def f_slowloris(self):
        res = {}
        ts = []
        for mode in ("silent", "command", "data"):
            t = threading.Thread(target=lambda m=mode: res.__setitem__(m, self._slow(m)), daemon=True)
            t.start()
            ts.append(t)
        for t in ts:
            t.join(30)
        limit = TIMEOUTS["command_timeout"]
        ok = all(isinstance(v, float) and v <= limit + 2.0 for v in res.values()) and len(res) == 3
        return ok, "cut after " + ", ".join(f"{k}={v:.1f}s" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in sorted(res.items())) + f" (timeout {limit} s)"

    def f_early(self):
        codes_seen = []
        for i in range(3):
            msgid = self.new_msgid("early")
            rcpt = RCPTS[i % len(RCPTS)]
            payload = (b"EHLO early.soak.test\r\nMAIL FROM:<soak@example.net>\r\n"
                       + f"RCPT TO:<{rcpt}>\r\n".encode() + b"DATA\r\n"
                       + self.message(msgid, rcpt, 1, 500) + b".\r\nQUIT\r\n")
            t0 = self.now()
            r = smtp_raw(self.inst.port, [payload], timeout=8, wait_greeting=False)
            codes = r.codes()
            codes_seen.append(codes)
            rec = {"n": 1, "t0": t0, "t1": self.now(), "gen": self.inst.gen, "stage": "early",
                   "code": None, "text": "", "qid": None}
            if 354 in codes and codes.index(354) + 1 < len(codes):
                idx = codes.index(354) + 1
                line = r.replies()[idx].decode("latin-1")
                rec.update(code=codes[idx], text=line[:120], stage="data")
                m = re.search(r"queued as (\S+)", line)
                rec["qid"] = m.group(1) if m else None
            elif codes:
                bad = [c for c in codes if c >= 400]
                rec.update(code=bad[0] if bad else None, text=r.replies()[-1].decode("latin-1")[:120])
            c = rec["code"]
            rec["outcome"] = ("250" if c == 250 and rec["stage"] == "data" else
                              "5xx" if c is not None and 500 <= c < 600 else
                              "4xx" if c is not None and 400 <= c < 500 else "unknown")
            if not r.closed:
                self.problems.append(f"early talker {msgid}: connection not closed after QUIT: {r}")
            self.record_attempt(msgid, "early", rcpt, rec)
        return True, f"3 early talkers (transaction before 220), reply codes {codes_seen}"

    def f_flood(self):
        n = CONN_LIMIT + 30
        socks = []
        got = {"220": 0, "421": 0, "other": 0}
        try:
            for _ in range(n):
                try:
                    socks.append(socket.create_connection((HOST, self.inst.port), timeout=5))
                except OSError:
                    got["other"] += 1
            for s in socks:
                try:
                    d = s.recv(512)
                except OSError:
                    d = b""
                key = d[:3].decode("latin-1") if d[:3] in (b"220", b"421") else "other"
                got[key] += 1
        finally:
            for s in socks:
                s.close()
        # and it keeps serving: a fresh session gets 220 + EHLO 250 within 5 s
        served = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not served:
            try:
                with SmtpConn(self.inst.port, timeout=5) as c:
                    served = c.greeting[0] == 220 and c.cmd("EHLO after.flood.test")[0] == 250
                    c.cmd("QUIT")
            except OSError:
                pass
            if not served:
                time.sleep(0.2)
        ok = got["421"] >= n - CONN_LIMIT and got["220"] <= CONN_LIMIT and served
        return ok, f"{n} sockets at once: {got}; serving afterwards: {served}"

    def f_sigkill(self):
        old = self.inst
        deadline = time.monotonic() + 3  # kill while clients are mid-transaction
        while time.monotonic() < deadline:
            with self.lock:
                inflight = self.inflight
            if inflight >= min(3, self.args.clients):
                break
            time.sleep(0.002)
        old_fds = old.mx.fd_count()
        old.sigkill()
        self.gate.clear()
        try:
            new = Instance(old.gen + 1, old.port, [p.address for p in self.pfs[:2]], self.workdir, old.chain)
            deadline = time.monotonic() + 10
            while True:  # the port may be busy for a moment
                try:
                    new.start()
                    break
                except HarnessError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            self.instances.append(new)
            self.inst = new
            # quiet moment for a clean leak baseline of the surviving instance
            deadline = time.monotonic() + 2 * CLIENT_TIMEOUT
            while time.monotonic() < deadline:
                with self.lock:
                    if self.inflight == 0:
                        break
                time.sleep(0.05)
            self.baseline = new.mx.warm_up()
            self.rss_before = new.rss_kb()
        finally:
            self.gate.set()
        return True, (f"mxfront gen {old.gen} SIGKILLed with {inflight} client(s) in flight "
                      f"({old_fds} fds); gen {new.gen} on port {new.port}, baseline {self.baseline} fds")

    def injector(self):
        kinds = [("pause_a", self.f_pause_a), ("vanish_a", self.f_vanish_a), ("z_server", self.f_z),
                 ("d_server", self.f_d), ("client_drop", self.f_drop), ("slowloris", self.f_slowloris),
                 ("early_talker", self.f_early), ("flood", self.f_flood)]
        D = self.args.duration
        killed = False
        order = []
        self.stop.wait(1.0)
        done = set()
        # until 5 s before the end, and in any case until every kind has run once (a slow machine
        # may stretch the run by a few seconds; the main loop bounds that)
        while not self.stop.is_set() and (self.now() - self.run_t0 < D - 5 or not killed
                                          or len(done) < len(kinds)):
            if not killed and self.now() - self.run_t0 >= D * 0.2:
                self.fault("sigkill_mxfront", self.f_sigkill)
                killed = True
            else:
                if not order:
                    order = list(kinds)
                    self.rng.shuffle(order)
                kind, fn = order.pop(0)
                self.fault(kind, fn)
                done.add(kind)
                self.inst.mx.check_alive()
            self.stop.wait(self.rng.uniform(0.5, 1.5))
        self.all_faults_done = killed and len(done) == len(kinds)

    # -- ledger ----------------------------------------------------------------------------------
    def settle(self, limit=40.0):
        """Wait until A and B have empty queues and the Maildirs stop changing for 3 s."""
        deadline = time.monotonic() + limit
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            n = sum(len(p.delivered_files()) for p in self.pfs)
            q = sum(p.queued_complete() for p in self.pfs[:2])
            if n != last or q:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= 3.0:
                return True
            time.sleep(0.2)
        return False

    def deliveries(self):
        """msgid -> list of (attempt, postfix queue id, server name, path)."""
        out = {}
        names = ["A", "B", "Z", "D"]
        pat = re.compile(rb"^Message-ID: <(soak-" + re.escape(self.run_id.encode()) + rb"-[^@>]+)@soak\.test>",
                         re.M | re.I)
        for name, pf in zip(names, self.pfs):
            for path in pf.delivered_files():
                try:
                    data = Path(path).read_bytes()
                except OSError:
                    continue
                m = pat.search(data)
                if not m:
                    continue
                a = re.search(rb"^X-Soak-Attempt: (\d+)", data, re.M)
                q = re.search(rb"\(Postfix\) with \S+ id ([0-9A-Za-z]+)", data)
                out.setdefault(m.group(1).decode(), []).append(
                    (int(a.group(1)) if a else None, q.group(1).decode() if q else None, name, path))
        return out

    def faults_during(self, t0, t1):
        kinds = []
        for f in self.faults:
            end = f["end"] if f["end"] is not None else self.now()
            if f["start"] <= t1 and end + 1.0 >= t0:
                kinds.append(f["kind"])
        return kinds or ["none"]

    @staticmethod
    def told(a):
        if a["code"] is None:
            return f"nothing ({a['text'].split(':')[0]} at {a['stage']})"
        m = re.match(r"\s*(\d\.\d+\.\d+)", a["text"])
        return f"{a['code']}" + (f" {m.group(1)}" if m else "") + f" at {a['stage']}"

    def ledger(self):
        dl = self.deliveries()
        L = {"attempted": 0, "accepted_250": 0, "final_4xx": 0, "final_5xx": 0, "final_unknown": 0,
             "attempts": 0, "attempts_250": 0, "attempts_4xx": 0, "attempts_5xx": 0,
             "attempts_unknown": 0, "retried": 0, "delivered": 0, "delivered_files": 0, "lost": 0,
             "5xx_delivered": 0, "drop_delivered": 0, "duplicates": 0, "duplicates_unexplained": 0,
             "non250_delivered": 0, "unknown_msgids_delivered": 0,
             "non250_attempt_copies": 0, "k_copies_matched": 0, "k_copies_missing": 0}
        reasons = {}
        evidence = []
        for msgid, m in sorted(self.messages.items()):
            copies = dl.get(msgid, [])
            if copies:
                L["delivered"] += 1
                L["delivered_files"] += len(copies)
            if m["dropped"]:
                if copies:
                    L["drop_delivered"] += 1
                    evidence.append(f"DROP-DELIVERED {msgid} ({m['kind']}): {copies}")
                continue
            L["attempted"] += 1
            atts = m["attempts"]
            L["attempts"] += len(atts)
            L["retried"] += len(atts) > 1
            for a in atts:
                L["attempts_" + a["outcome"]] += 1
            final = atts[-1]["outcome"] if atts else "unknown"
            accepted = any(a["outcome"] == "250" for a in atts)
            if accepted:
                L["accepted_250"] += 1
            else:
                L["final_" + final] += 1
            by_n = {a["n"]: a for a in atts}
            if accepted and not copies:
                L["lost"] += 1
                evidence.append(f"LOST {msgid}: attempts {atts}")
            for a in atts:
                if a["outcome"] == "250" and a.get("qid"):
                    if any(c[0] == a["n"] and c[1] == a["qid"] for c in copies):
                        L["k_copies_matched"] += 1
                    else:
                        L["k_copies_missing"] += 1
                        evidence.append(f"K WITHOUT ITS COPY {msgid} attempt {a['n']} queued as "
                                        f"{a['qid']}: copies {copies}")
            for (k, qid, srv, path) in copies:
                a = by_n.get(k)
                if a is not None and a["outcome"] in ("4xx", "unknown"):
                    L["non250_attempt_copies"] += 1
                if a is not None and a["outcome"] == "5xx":
                    L["5xx_delivered"] += 1
                    evidence.append(f"5XX-DELIVERED {msgid} attempt {k} told {a['code']} {a['text']!r}: {path}")
            if not accepted and copies:
                L["non250_delivered"] += 1
            if len(copies) > 1:
                L["duplicates"] += 1
                # explain every copy beyond the first of the attempt that was told 250 (or the first)
                seen_q = {}
                keep = None
                for c in copies:
                    a = by_n.get(c[0])
                    if a and a["outcome"] == "250" and (a["qid"] is None or a["qid"] == c[1]):
                        keep = c
                        break
                keep = keep or copies[0]
                for c in copies:
                    if c is keep:
                        continue
                    k, qid = c[0], c[1]
                    a = by_n.get(k)
                    if qid is not None and ((qid, c[2]) == (keep[1], keep[2]) or (qid, c[2]) in seen_q):
                        why = "Postfix delivered one queue file twice (stopped mid-delivery, redelivered)"
                    elif a is None:
                        why = "copy of an attempt the ledger does not know"
                    elif a["outcome"] in ("4xx", "unknown"):
                        why = (f"attempt told {self.told(a)} but delivered; "
                               f"faults around it: {'+'.join(self.faults_during(a['t0'], a['t1']))}")
                    elif a["outcome"] == "250" and keep[0] != k:
                        why = (f"a second attempt told 250 ({self.told(a)}) also delivered; "
                               f"faults around it: {'+'.join(self.faults_during(a['t0'], a['t1']))}")
                    else:
                        why = None
                    seen_q[(qid, c[2])] = True
                    if why is None:
                        L["duplicates_unexplained"] += 1
                        why = "UNEXPLAINED: two queue ids for one attempt told 250 (request sent twice?)"
                        evidence.append(f"DUPLICATE {msgid}: {copies} attempts {atts}")
                    reasons[why] = reasons.get(why, 0) + 1
        for msgid in dl:
            if msgid not in self.messages:
                L["unknown_msgids_delivered"] += 1
                evidence.append(f"DELIVERED BUT NEVER SENT {msgid}: {dl[msgid]}")
        return L, reasons, evidence

    # -- run -------------------------------------------------------------------------------------
    def run(self):
        a = self.args
        log(f"run {self.run_id} duration {a.duration}s clients {a.clients} seed {self.seed} "
            f"binary {os.environ.get('MXFRONT_BIN') or 'build/mxfront'}")
        for action in (None, None, "tempfail", "reject"):
            pf = RestartablePostfix(milter_action=action)
            self.pfs.append(pf)
            pf.start()
        A, B, Z, D = self.pfs
        log(f"postfix A {A.address}, B {B.address}, Z {Z.address}, D {D.address}")
        from mxharness import free_port
        self.inst = Instance(1, free_port(), [A.address, B.address], self.workdir, self.chain_config()).start()
        self.instances.append(self.inst)
        self.baseline = self.inst.mx.warm_up()
        self.rss_before = self.inst.rss_kb()
        self.first_baseline = self.baseline
        log(f"mxfront pid {self.inst.pid} port {self.inst.port}, fd baseline {self.baseline}, "
            f"rss {self.rss_before} kB")

        self.run_t0 = self.now()
        clients = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(a.clients)]
        for t in clients:
            t.start()
        inj = threading.Thread(target=self.injector, daemon=True)
        inj.start()
        end = self.run_t0 + a.duration
        while self.now() < end and inj.is_alive():
            time.sleep(0.2)
            if not self.inst.mx.alive() and not self.inst.mx.expected_exit:
                self.problems.append(f"mxfront gen {self.inst.gen} died: exit {self.inst.mx.proc.returncode}")
                break
        while self.now() < end and self.inst.mx.alive():
            time.sleep(0.2)
        inj.join(45)  # finishing the first cycle of faults, if the run was too short for it
        if inj.is_alive():
            self.problems.append("fault injector still busy 45 s after the end of the run")
        elif not getattr(self, "all_faults_done", False):
            self.problems.append("not every fault kind was injected")
        self.stop.set()
        inj.join(40)
        for t in clients:
            t.join(CLIENT_TIMEOUT * 2 + 5)
        run_secs = self.now() - self.run_t0
        log(f"load stopped after {run_secs:.1f}s; settling Postfix deliveries")
        settled = self.settle()
        if not settled:
            self.problems.append("Postfix deliveries did not settle within 40 s "
                                 f"(queued A={A.queued_complete()} B={B.queued_complete()})")

        inst = self.inst
        alive = inst.mx.alive()
        if not alive:
            self.problems.append(f"surviving mxfront exited: {inst.mx.proc.returncode}")
        fds = inst.mx.wait_fd_baseline(self.baseline, 10) if alive else None
        cw = inst.mx.close_wait_count() if alive else None
        rss_after = inst.rss_kb() if alive else None
        fd_list = []
        if alive and fds > self.baseline:
            try:
                fd_list = sorted(os.readlink(f"/proc/{inst.pid}/fd/{n}") for n in os.listdir(f"/proc/{inst.pid}/fd"))
            except OSError:
                pass
        L, reasons, evidence = self.ledger()
        with self.lock:
            after_restart = sum(1 for m in self.messages.values() for x in m["attempts"]
                                if x["gen"] == inst.gen and x["outcome"] == "250")
        if len(self.instances) > 1 and after_restart == 0:
            self.problems.append(f"no message was accepted by mxfront gen {inst.gen} after the restart")

        kinds = {}
        for f in self.faults:
            k = kinds.setdefault(f["kind"], [0, 0])
            k[0] += 1
            k[1] += 0 if f["ok"] else 1
        ok = (L["lost"] == 0 and L["5xx_delivered"] == 0 and L["drop_delivered"] == 0
              and L["duplicates_unexplained"] == 0 and L["unknown_msgids_delivered"] == 0
              and alive and fds is not None and fds <= self.baseline and cw == 0
              and not self.problems and L["accepted_250"] > 0)
        # --chain: the filters really judged the load (the ocr filter logs every message with an image)
        ocr_read = sum(len(re.findall(r"ocr id=\S+ images=1 read=1 ", i.log())) for i in self.instances)
        if a.chain and ocr_read == 0:
            self.problems.append("--chain: the ocr filter read no picture")
        ok = ok and not self.problems
        result = dict(L, run_id=self.run_id, chain=bool(a.chain), ocr_images_read=ocr_read, seed=self.seed, duration=round(run_secs, 1),
                      clients=a.clients, retries=a.retries, duplicate_reasons=reasons,
                      faults={k: v[0] for k, v in kinds.items()},
                      faults_failed={k: v[1] for k, v in kinds.items() if v[1]},
                      fd_baseline=self.baseline, fd_after=fds, first_fd_baseline=self.first_baseline,
                      rss_kb_before=self.rss_before, rss_kb_after=rss_after, close_wait=cw,
                      mxfront_restarts=len(self.instances) - 1, problems=self.problems, ok=ok,
                      loadavg=open("/proc/loadavg").read().split()[:3])
        self.print_summary(result, evidence, fd_list)
        if not ok:
            self.keep = True
        return ok

    def print_summary(self, r, evidence, fd_list):
        lines = [
            "=" * 72,
            f"SOAK SUMMARY run {r['run_id']} (seed {r['seed']})",
            f"  duration              {r['duration']} s, {r['clients']} clients, up to {r['retries']} retries",
            f"  messages attempted    {r['attempted']} ({r['attempts']} SMTP attempts, {r['retried']} retried)",
            f"  told 250              {r['accepted_250']}",
            f"  final 4xx             {r['final_4xx']}",
            f"  final 5xx             {r['final_5xx']}",
            f"  final unknown         {r['final_unknown']}",
            f"  attempts by answer    250={r['attempts_250']} 4xx={r['attempts_4xx']} "
            f"5xx={r['attempts_5xx']} unknown={r['attempts_unknown']}",
            f"  delivered             {r['delivered']} messages in {r['delivered_files']} files",
            f"  LOST (250, not delivered)      {r['lost']}",
            f"  5xx but delivered              {r['5xx_delivered']}",
            f"  dropped mid-DATA but delivered {r['drop_delivered']}",
            f"  4xx/unknown but delivered      {r['non250_attempt_copies']} copies of attempts told 4xx/nothing; "
            f"{r['non250_delivered']} messages never told 250 (allowed)",
            f"  250 copies by queue id         {r['k_copies_matched']} found, {r['k_copies_missing']} missing",
            f"  duplicates            {r['duplicates']} (unexplained {r['duplicates_unexplained']})",
        ]
        if r["chain"]:
            lines.append(f"  filter chain          rules, relay_control, clamav, ocr: {r['ocr_images_read']} pictures read by ocr")
        for why, n in sorted(r["duplicate_reasons"].items(), key=lambda x: -x[1]):
            lines.append(f"      {n:4d} x {why}")
        lines.append("  faults injected       " + ", ".join(f"{k}={v}" for k, v in sorted(r["faults"].items())))
        if r["faults_failed"]:
            lines.append(f"  faults FAILED         {r['faults_failed']}")
        lines += [
            f"  mxfront restarts      {r['mxfront_restarts']} (SIGKILL)",
            f"  fds                   baseline {r['fd_baseline']} -> after {r['fd_after']} "
            f"(first instance baseline {r['first_fd_baseline']})",
            f"  RSS                   {r['rss_kb_before']} kB -> {r['rss_kb_after']} kB",
            f"  CLOSE_WAIT            {r['close_wait']}",
            f"  load average          {' '.join(r['loadavg'])}",
        ]
        for p in r["problems"]:
            lines.append(f"  PROBLEM: {p}")
        for e in evidence[:40]:
            lines.append(f"  EVIDENCE: {e}")
        if fd_list:
            lines.append(f"  open fds: {fd_list}")
        lines.append(f"  RESULT                {'PASS' if r['ok'] else 'FAIL'}")
        lines.append("=" * 72)
        print("\n".join(lines), flush=True)
        print("SOAK-RESULT " + json.dumps(r, sort_keys=True), flush=True)

    def cleanup(self):
        self.stop.set()
        self.gate.set()
        for res in ("sigdb", "ocr_images"):
            if getattr(self, res, None):
                getattr(self, res).cleanup()
        for inst in self.instances:
            try:
                inst.cleanup()
            except Exception as e:
                log(f"cleanup mxfront: {e}")
        keep = KEEP or getattr(self, "keep", False)
        for name, pf in zip("ABZD", self.pfs):
            if keep and pf.dir:
                log(f"postfix {name} maillog: {pf.maillog}")
            try:
                if keep:
                    pf.vanish()
                else:
                    pf.stop()
            except Exception as e:
                log(f"cleanup postfix {name}: {e}")
        if keep:
            log(f"kept {self.workdir} (mxfront logs)")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=60, help="seconds of load and faults (default 60)")
    p.add_argument("--clients", type=int, default=6, help="load client threads (default 6)")
    p.add_argument("--seed", type=int, default=None, help="random seed (fault order, sizes)")
    p.add_argument("--retries", type=int, default=4, help="retries of a message told 4xx/nothing")
    p.add_argument("--chain", action="store_true", help="the MX filter chain in front (rules, clamav, ocr)")
    args = p.parse_args()
    if args.duration < 20:
        p.error("--duration must be at least 20 s (every fault kind needs room)")

    soak = Soak(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # hard bound: whatever happens, the run ends (processes are stopped by the finally below, or
    # here if the main thread is stuck)
    def watchdog():
        time.sleep(args.duration + 150)
        log("watchdog: run exceeded its bound, stopping everything")
        try:
            soak.cleanup()
        finally:
            os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    ok = False
    try:
        ok = soak.run()
    except KeyboardInterrupt as e:
        log(f"interrupted: {e}")
        soak.keep = False
    except Exception as e:
        log(f"ERROR: {type(e).__name__}: {e}")
        import traceback
        traceback.print_exc()
        soak.keep = True
    finally:
        soak.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

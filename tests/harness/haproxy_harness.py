"""HAProxy in TCP mode in front of mxfront instances, for the PROXY-protocol and farm tests: started
in the foreground, checked with `haproxy -c`, stopped by PID; its stats socket tells each server's
health-check state."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile

from mxharness import KEEP, HarnessError, free_port, wait_listening


class Haproxy:
    """HAProxy 2.6 in TCP mode in the foreground (-db), stopped by PID. Frontend on 127.0.0.1:<free>
    balancing round robin to `backends` [(name, port, extra server options)] with send-proxy-v2.
    Health checks: SMTP (check-send-proxy: each check starts with a PROXY v2 LOCAL header), or with
    `http_check="/readyz"` an HTTP GET on each backend's admin port (`extra` = "port N")."""

    def __init__(self, backends, http_check=None, inter="1s", fall=2, rise=1):
        self.backends = backends
        self.http_check = http_check
        self.inter, self.fall, self.rise = inter, fall, rise
        self.port = None
        self.proc = None
        self.dir = None

    def config(self):
        servers = "\n".join(f"    server {name} 127.0.0.1:{port} check {extra}".rstrip()
                            for name, port, extra in self.backends)
        return f"""\
global
    log stdout format raw local0 info
    stats socket {self.dir}/admin.sock mode 600 level admin
    nbthread 1

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout check 2s

frontend fe_smtp
    bind 127.0.0.1:{self.port}
    unique-id-format %{{+X}}o%ci:%cp_%fi:%fp_%Ts_%rt:%pid
    default_backend be_smtp

backend be_smtp
    balance roundrobin
{self.check_lines()}
{servers}
"""

    def check_lines(self):
        timing = f"inter {self.inter} fall {self.fall} rise {self.rise}"
        if self.http_check:
            return (f"    option httpchk\n    http-check send meth GET uri {self.http_check}\n"
                    f"    http-check expect status 200\n    default-server {timing} send-proxy-v2")
        return (f"    option smtpchk EHLO haproxy-check.test\n"
                f"    default-server {timing} send-proxy-v2 check-send-proxy")

    def start(self):
        binary = shutil.which("haproxy")
        if not binary:
            raise HarnessError("haproxy not installed (apt-get install -y haproxy): the PROXY tests need it")
        self.dir = tempfile.mkdtemp(prefix="mxtest-haproxy.", dir="/tmp")
        self.port = free_port()
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(self.config())
        check = subprocess.run([binary, "-c", "-f", cfg], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise HarnessError(f"haproxy -c failed:\n{check.stdout}{check.stderr}\n{self.config()}")
        out = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([binary, "-db", "-f", cfg], stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        # readiness without a probe connection (a probe would be forwarded like a client)
        if not wait_listening(self.port, 15, alive=lambda: self.proc.poll() is None):
            code = self.proc.poll()
            self.stop()
            raise HarnessError(f"haproxy did not listen on {self.port} (exit {code})")
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "haproxy.log"), errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def servers(self):
        """{server name: (status, check_status)} from `show stat` on the stats socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(os.path.join(self.dir, "admin.sock"))
            s.sendall(b"show stat\n")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        finally:
            s.close()
        out = {}
        for line in data.decode(errors="replace").splitlines():
            f = line.split(",")
            if len(f) > 36 and not line.startswith("#") and f[1] not in ("FRONTEND", "BACKEND"):
                out[f[1]] = (f[17], f[36])
        return out

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self.dir and not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

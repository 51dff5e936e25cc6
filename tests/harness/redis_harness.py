"""RedisServer: a REAL redis-server (Debian's redis-server) on a free 127.0.0.1 port, no
persistence, for tests; stop()/start() on the same port, pause()/resume() with SIGSTOP/SIGCONT.
With tls=RedisTls(cert, key, ca): that port is its tls-port (the plain port is off) and clients
must present a certificate signed by `ca` (tls-auth-clients yes); cli() runs redis-cli against it.
A missing redis-server raises HarnessError (tests fail, never skip)."""
import os
import shutil
import signal
import subprocess
import tempfile
from collections import namedtuple

from mxharness import HarnessError, _stop_process, free_port, wait_port


# PEM paths: the server's certificate and key, and the CA that must have signed the clients'.
RedisTls = namedtuple("RedisTls", "cert key ca")


class RedisServer:
    def __init__(self, password=None, extra_args=(), tls=None):
        self.port = free_port()
        self.password = password
        self.extra_args = list(extra_args)
        self.tls = tls
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="mxtest-redis.", dir="/tmp")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def start(self):
        binary = shutil.which("redis-server")
        if not binary:
            raise HarnessError("redis-server not found (apt-get install redis-server)")
        args = [binary, "--port", "0" if self.tls else str(self.port), "--save", "", "--appendonly", "no",
                "--bind", "127.0.0.1", "--daemonize", "no", "--dir", self.dir, "--loglevel", "warning"]
        if self.tls:
            args += ["--tls-port", str(self.port), "--tls-cert-file", self.tls.cert, "--tls-key-file", self.tls.key,
                     "--tls-ca-cert-file", self.tls.ca, "--tls-auth-clients", "yes"]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        if not wait_port("127.0.0.1", self.port, 10.0):
            self.stop()
            raise HarnessError(f"redis-server did not listen on {self.port}")
        return self

    def cli(self, *args, cert=None, key=None):
        """redis-cli against this server (with --tls, the server's CA and the client certificate
        `cert`/`key` when tls is on); returns the CompletedProcess (text)."""
        cmd = [shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(self.port)]
        if self.tls:
            cmd += ["--tls", "--cacert", self.tls.ca]
            if cert:
                cmd += ["--cert", cert, "--key", key]
        if self.password:
            cmd += ["--no-auth-warning", "-a", self.password]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            _stop_process(self.proc, signal.SIGKILL)
        self.proc = None

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisSentinel:
    """A REAL redis-sentinel (Debian's redis-sentinel) on a free 127.0.0.1 port monitoring the
    master `name` at `master_address` with quorum `quorum`; fast failover settings for tests. Its
    config file is in its own temp dir (sentinel rewrites it)."""

    def __init__(self, name, master_address, quorum=2, down_after_ms=1000, failover_timeout_ms=5000):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mxtest-sentinel.", dir="/tmp")
        host, port = master_address.rsplit(":", 1)
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write(f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\nlogfile {self.dir}/sentinel.log\n"
                    f"sentinel monitor {name} {host} {port} {quorum}\n"
                    f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
                    f"sentinel failover-timeout {name} {failover_timeout_ms}\n"
                    f"sentinel parallel-syncs {name} 1\n")
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
        if not os.path.exists(binary):
            raise HarnessError("redis-sentinel not found (apt-get install redis-sentinel)")
        self.proc = subprocess.Popen([binary, self.conf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if not wait_port("127.0.0.1", self.port, 10.0):
            self.close()
            raise HarnessError(f"redis-sentinel did not listen on {self.port}: {self.log()}")
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "sentinel.log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def close(self):
        if self.proc and self.proc.poll() is None:
            _stop_process(self.proc, signal.SIGKILL)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

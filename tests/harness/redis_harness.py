"""RedisServer: a REAL redis-server (Debian's redis-server) on a free 127.0.0.1 port, no
persistence, for tests; stop()/start() on the same port, pause()/resume() with SIGSTOP/SIGCONT.
A missing redis-server raises HarnessError (tests fail, never skip)."""
import os
import shutil
import signal
import subprocess
import tempfile

from mxharness import HarnessError, _stop_process, free_port, wait_port


class RedisServer:
    def __init__(self, password=None):
        self.port = free_port()
        self.password = password
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
        args = [binary, "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
                "--daemonize", "no", "--dir", self.dir, "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        if not wait_port("127.0.0.1", self.port, 10.0):
            self.stop()
            raise HarnessError(f"redis-server did not listen on {self.port}")
        return self

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

"""Runs docker/compose.yaml with rootful podman: what `docker compose up` does, for the subset of
the compose format the farm file uses (no Docker engine here, and podman-compose 1.0.3 ignores
replicas and health conditions). The compose file stays the single description of the farm; this
module only translates it:

* images: `build` (context, dockerfile, target) -> `podman build --isolation=chroot --network host`
  (HARNESS.md section 8: RUN steps need chroot isolation on this kind of machine), tagged `image`;
* networks: ipam subnet / ip_range / gateway -> `podman network create PROJECT_NAME`;
* volumes: named volumes -> `podman volume create PROJECT_NAME`; `./path` binds relative to the
  compose file (a test may substitute host paths: `overrides`);
* services: containers PROJECT-SERVICE-N (N = 1..deploy.replicas) on their networks with the
  service name as DNS alias and ipv4_address when given; command, environment, restart,
  stop_grace_period; started in depends_on order, waiting for `service_healthy` conditions by
  running the healthcheck test in the container; `ports` are not published unless asked (the test
  talks to the containers' addresses on the bridge).

Every object carries the label mxfront.farm=PROJECT, and down() removes them all."""
import json
import os
import re
import subprocess
import time

import yaml

LABEL = "mxfront.farm"


def run(*args, check=True, timeout=120, capture=True, input=None):
    r = subprocess.run(list(args), capture_output=capture, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


def seconds(v, default):
    if v is None:
        return default
    if isinstance(v, (int, float)):
        return float(v)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(v).strip())
    if not m:
        raise ValueError(f"duration {v!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


class Farm:
    def __init__(self, compose_path, project, overrides=None, environment=None, extra_volumes=None,
                 publish_ports=False, log=print):
        self.path = os.path.abspath(compose_path)
        self.dir = os.path.dirname(self.path)
        with open(self.path) as f:
            self.spec = yaml.safe_load(f)
        self.project = project
        self.overrides = overrides or {}        # "./x" as written in the file -> host path
        self.environment = environment or {}    # service -> {NAME: value}, added to the file's
        self.extra_volumes = extra_volumes or {}  # service -> ["host:container[:ro]"], added
        self.publish_ports = publish_ports
        self.log = log
        self.services = self.spec["services"]

    # ------------------------------------------------------------------ names
    def network(self, name):
        return f"{self.project}_{name}"

    def volume(self, name):
        return f"{self.project}_{name}"

    def replicas(self, svc):
        return int(self.services[svc].get("deploy", {}).get("replicas", 1))

    def containers(self, svc):
        return [f"{self.project}-{svc}-{i}" for i in range(1, self.replicas(svc) + 1)]

    def container(self, svc, n=1):
        return f"{self.project}-{svc}-{n}"

    # ------------------------------------------------------------------ images
    def images(self):
        """{image: build spec} for every service with a build section (each image once)."""
        out = {}
        for svc in self.services.values():
            if "build" in svc and svc["image"] not in out:
                out[svc["image"]] = svc["build"]
        return out

    def build(self, image, extra_args=(), timeout=3600):
        b = self.images()[image]
        context = os.path.normpath(os.path.join(self.dir, b.get("context", ".")))
        args = ["podman", "build", "--isolation=chroot", "--network", "host",
                "-f", os.path.join(context, b.get("dockerfile", "Dockerfile")), "-t", image]
        if b.get("target"):
            args += ["--target", b["target"]]
        args += list(extra_args) + [context]
        t0 = time.monotonic()
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"podman build {image} failed:\n{r.stdout[-6000:]}\n{r.stderr[-4000:]}")
        self.log(f"built {image} in {time.monotonic() - t0:.0f} s")

    # ------------------------------------------------------------------ up / down
    def _order(self):
        done, order = set(), []

        def visit(name, path=()):
            if name in done:
                return
            if name in path:
                raise ValueError(f"depends_on cycle through {name}")
            for dep in self._deps(name):
                visit(dep, path + (name,))
            done.add(name)
            order.append(name)

        for name in self.services:
            visit(name)
        return order

    def _deps(self, name):
        d = self.services[name].get("depends_on", [])
        return list(d) if isinstance(d, (list, dict)) else []

    def _conditions(self, name):
        d = self.services[name].get("depends_on", [])
        if isinstance(d, dict):
            return {k: (v or {}).get("condition", "service_started") for k, v in d.items()}
        return {k: "service_started" for k in d}

    def _bind_source(self, src):
        if src in self.overrides:
            return self.overrides[src]
        if src.startswith("/"):
            return src
        if src.startswith("./") or src.startswith("../"):
            return os.path.normpath(os.path.join(self.dir, src))
        return self.volume(src)  # a named volume

    def run_args(self, svc, n):
        s = self.services[svc]
        name = self.container(svc, n)
        args = ["podman", "run", "-d", "--name", name, "--label", f"{LABEL}={self.project}",
                "--hostname", name, "--no-healthcheck"]  # health tests run from here (no systemd timers)
        nets = s.get("networks", [])
        for net in (nets if isinstance(nets, list) else list(nets)):
            opts = nets[net] if isinstance(nets, dict) and nets[net] else {}
            spec = f"{self.network(net)}:alias={svc}"
            if opts.get("ipv4_address"):
                spec += f",ip={opts['ipv4_address']}"
            args += ["--network", spec]
        for v in s.get("volumes", []) + self.extra_volumes.get(svc, []):
            parts = v.split(":")
            parts[0] = self._bind_source(parts[0])
            args += ["-v", ":".join(parts)]
        for t in s.get("tmpfs", []) or []:
            args += ["--tmpfs", t]
        env = dict(s.get("environment", {}) or {})
        env.update(self.environment.get(svc, {}))
        for k, val in env.items():
            args += ["-e", f"{k}={val}"]
        if s.get("restart"):
            args += ["--restart", s["restart"]]
        args += ["--stop-timeout", str(int(seconds(s.get("stop_grace_period"), 10)))]
        if self.publish_ports:
            for p in s.get("ports", []):
                args += ["-p", p]
        args.append(s["image"])
        args += list(s.get("command", []))
        return args

    def healthy(self, svc, n=1):
        hc = self.services[svc].get("healthcheck")
        if not hc:
            return self.running(self.container(svc, n))
        test = hc["test"]
        cmd = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1] if test[0] == "CMD-SHELL" else test]
        r = run("podman", "exec", self.container(svc, n), *cmd, check=False,
                timeout=seconds(hc.get("timeout"), 30) + 10)
        return r.returncode == 0

    def running(self, name):
        r = run("podman", "inspect", "-f", "{{.State.Running}}", name, check=False)
        return r.returncode == 0 and r.stdout.strip() == "true"

    def up(self, health_timeout=120):
        self.down()  # leftovers of an interrupted run
        for net, cfg in (self.spec.get("networks") or {}).items():
            args = ["podman", "network", "create", "--label", f"{LABEL}={self.project}"]
            for pool in ((cfg or {}).get("ipam", {}) or {}).get("config", []):
                if pool.get("subnet"):
                    args += ["--subnet", pool["subnet"]]
                if pool.get("ip_range"):
                    args += ["--ip-range", pool["ip_range"]]
                if pool.get("gateway"):
                    args += ["--gateway", pool["gateway"]]
            run(*args, self.network(net))
        for vol in (self.spec.get("volumes") or {}):
            run("podman", "volume", "create", "--label", f"{LABEL}={self.project}", self.volume(vol))
        for svc in self._order():
            for dep, cond in self._conditions(svc).items():
                if cond == "service_healthy":
                    self.wait(lambda: all(self.healthy(dep, i) for i in range(1, self.replicas(dep) + 1)),
                              health_timeout, f"{dep} healthy (needed by {svc})")
            for i in range(1, self.replicas(svc) + 1):
                run(*self.run_args(svc, i))
            self.log(f"started {svc} x{self.replicas(svc)}")

    def wait(self, pred, timeout, what, every=0.5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(every)
        raise TimeoutError(f"not within {timeout:.0f} s: {what}")

    def down(self):
        cs = run("podman", "ps", "-a", "-q", "--filter", f"label={LABEL}={self.project}", check=False).stdout.split()
        if cs:
            run("podman", "rm", "-f", "-t", "0", *cs, check=False, timeout=180)
        vols = run("podman", "volume", "ls", "-q", "--filter", f"label={LABEL}={self.project}", check=False).stdout.split()
        if vols:
            run("podman", "volume", "rm", "-f", *vols, check=False)
        nets = run("podman", "network", "ls", "-q", "--filter", f"label={LABEL}={self.project}", check=False).stdout.split()
        if nets:
            run("podman", "network", "rm", "-f", *nets, check=False)

    @staticmethod
    def image_ids():
        return set(run("podman", "images", "-a", "-q", "--no-trunc", check=False).stdout.split())

    def remove_images(self, keep=()):
        """The farm's images and every image made since `keep` was listed (the build stages'
        intermediate images: the compiler stage is the big one); the base image stays."""
        for image in self.images():
            run("podman", "rmi", "-f", image, check=False)
        for image in self.image_ids() - set(keep):
            run("podman", "rmi", "-f", image, check=False)

    # ------------------------------------------------------------------ helpers for tests
    def exec(self, name, *cmd, check=True, timeout=60, input=None):
        flags = ["-i"] if input is not None else []
        return run("podman", "exec", *flags, name, *cmd, check=check, timeout=timeout, input=input)

    def address(self, name, net="mail"):
        r = run("podman", "inspect", "-f", "{{json .NetworkSettings.Networks}}", name)
        return json.loads(r.stdout)[self.network(net)]["IPAddress"]

    def logs(self, name, tail=60):
        r = run("podman", "logs", "--tail", str(tail), name, check=False)
        return r.stdout + r.stderr

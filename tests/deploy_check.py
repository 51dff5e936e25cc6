#!/usr/bin/env python3
"""Checks the deployment files, since no Docker engine or Kubernetes runs here:

* docker/compose.yaml and deploy/k8s/*.yaml parse as YAML; every Kubernetes object has apiVersion,
  kind and metadata.name; probes hit /livez and /readyz on the port the config's [admin] listens
  on; Service and HPA point at the Deployment; volumes name existing claims and config maps; the
  termination grace period outlasts the drain;
* compose: every mounted ./file exists; the balancer's address is what the instances trust for
  PROXY v2; HAProxy's health check port is their admin port; `haproxy -c` accepts haproxy.cfg;
* Kubernetes: a startupProbe covers the signature load, memory fits a ClamAV reload (two engines),
  the container is locked down (securityContext), a preStop delay fits in the grace period with
  the drain, the pods are spread over nodes, a NetworkPolicy admits the admin port and admits SMTP
  only from the addresses trusted for PROXY (never a /8), and the pod template carries the
  config's sha256 (a config change is a rollout);
* compose: every service runs an image built from this repository (nothing installed at start),
  fixed addresses lie outside the dynamic ip_range, the instances wait for signatures and restart;
* docker/Dockerfile: every runtime package exists in this Debian (apt-cache); .dockerignore keeps
  .git and build trees out of the context;
* every mxfront TOML shipped (compose MX and submission, the k8s ConfigMap, the image defaults, the
  example) passes `mxfront --check-config`, with host paths (certificates, signatures, secrets)
  pointed at throw-away fixtures;
* packaging/mxfront.service: `systemd-analyze security --offline` rates it at most 2.0 (when
  systemd-analyze is installed).

Usage: deploy_check.py MXFRONT_BINARY REPO_ROOT   (prints "N passed, N failed")."""
import hashlib
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # the system Python has python3-yaml (scripts/install-deps.sh)
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

try:
    import tomllib
except ImportError:
    tomllib = None

BIN, REPO = sys.argv[1], sys.argv[2]
failures, passed = [], 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print(f"FAIL: {what}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def admin_port(toml_text):
    m = re.search(r'^\s*\[admin\][^\[]*?address\s*=\s*"[^"]*:(\d+)"', toml_text, re.M | re.S)
    return int(m.group(1)) if m else None


def shutdown_timeout(toml_text):
    m = re.search(r"^\s*shutdown_timeout\s*=\s*(\d+)", toml_text, re.M)
    return int(m.group(1)) if m else 30


# ---------------------------------------------------------------- Kubernetes
k8s_dir = os.path.join(REPO, "deploy", "k8s")
objects = []
for name in sorted(os.listdir(k8s_dir)):
    if name.endswith(".yaml"):
        objects += load_all(os.path.join(k8s_dir, name))
check(len(objects) >= 6, f"k8s: expected the farm's objects, found {len(objects)}")
for o in objects:
    check(all(k in o for k in ("apiVersion", "kind", "metadata")) and o["metadata"].get("name"),
          f"k8s object without apiVersion/kind/metadata.name: {o}")
by_kind = {}
for o in objects:
    by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
dep = by_kind.get("Deployment", {}).get("mxfront-mx")
check(dep is not None, "k8s: Deployment mxfront-mx")
cm = by_kind.get("ConfigMap", {}).get("mxfront-mx")
check(cm is not None and "mxfront.toml" in cm["data"], "k8s: ConfigMap mxfront-mx with mxfront.toml")
if dep and cm:
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(c["livenessProbe"]["httpGet"]["path"] == "/livez", "k8s: liveness probe on /livez")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "k8s: readiness probe on /readyz")
    probe_port = c["readinessProbe"]["httpGet"]["port"]
    check(ports.get(probe_port) == admin_port(cm["data"]["mxfront.toml"]),
          "k8s: probes use the port of the config's [admin] address")
    check(pod["terminationGracePeriodSeconds"] > shutdown_timeout(cm["data"]["mxfront.toml"]),
          "k8s: terminationGracePeriodSeconds outlasts server.shutdown_timeout")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    svc = by_kind.get("Service", {}).get("mxfront-mx")
    check(svc and all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "k8s: Service selects the pods")
    check(svc and svc["spec"]["type"] == "LoadBalancer", "k8s: Service is a LoadBalancer")
    check(svc and any("proxy-protocol" in k for k in svc["metadata"].get("annotations", {})),
          "k8s: the load balancer is asked for PROXY protocol")
    hpa = by_kind.get("HorizontalPodAutoscaler", {}).get("mxfront-mx")
    check(hpa and hpa["spec"]["scaleTargetRef"]["name"] == "mxfront-mx", "k8s: HPA scales the Deployment")
    toml = cm["data"]["mxfront.toml"]
    want = hashlib.sha256(toml.encode()).hexdigest()
    got = dep["spec"]["template"]["metadata"].get("annotations", {}).get("checksum/mxfront.toml")
    check(got == want, f"k8s: pod template annotation checksum/mxfront.toml is the ConfigMap's sha256 {want} (a config change rolls the pods)")
    sp = c.get("startupProbe", {})
    check(sp.get("httpGet", {}).get("path") == "/readyz" and sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3) >= 180,
          "k8s: startupProbe on /readyz allows >= 3 minutes for the signatures to load")
    mem = c.get("resources", {}).get("limits", {}).get("memory", "")
    gib = float(mem[:-2]) if mem.endswith("Gi") else float(mem[:-2]) / 1024 if mem.endswith("Mi") else 0
    if "clamav" in toml:
        check(gib >= 2.5, f"k8s: memory limit {mem} holds two ClamAV engines during a reload (>= 2.5Gi)")
    sc = c.get("securityContext", {})
    check(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
          and "ALL" in sc.get("capabilities", {}).get("drop", []), "k8s: container securityContext locked down")
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True, "k8s: runAsNonRoot")
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    check(len(pre) == 2 and pre[0] == "sleep", "k8s: preStop delay (sleep N)")
    if len(pre) == 2:
        check(pod["terminationGracePeriodSeconds"] > int(pre[1]) + shutdown_timeout(toml),
              "k8s: terminationGracePeriodSeconds outlasts preStop + server.shutdown_timeout")
    check(any(t.get("topologyKey") == "kubernetes.io/hostname" for t in pod.get("topologySpreadConstraints", [])),
          "k8s: topologySpreadConstraints over nodes")
    trusted = re.search(r"proxy_trusted\s*=\s*\[([^\]]*)\]", toml)
    trusted = set(re.findall(r'"([^"]+)"', trusted.group(1))) if trusted else set()
    check(trusted and all(ipaddress.ip_network(n).prefixlen >= 16 for n in trusted),
          f"k8s: proxy_trusted names the balancer's addresses, not a whole network: {trusted}")
    np_ = by_kind.get("NetworkPolicy", {}).get("mxfront-mx")
    check(np_ is not None, "k8s: NetworkPolicy mxfront-mx")
    if np_:
        rules = {p["port"]: r for r in np_["spec"]["ingress"] for p in r.get("ports", [])}
        check(ports.get("admin") in rules and rules[ports["admin"]].get("from"),
              "k8s: NetworkPolicy restricts who reaches the admin port")
        smtp_from = {f["ipBlock"]["cidr"] for f in rules.get(ports.get("smtp"), {}).get("from", []) if "ipBlock" in f}
        check(smtp_from == trusted, f"k8s: NetworkPolicy admits SMTP from exactly proxy_trusted ({smtp_from} vs {trusted})")
    for v in pod["volumes"]:
        if "persistentVolumeClaim" in v:
            check(v["persistentVolumeClaim"]["claimName"] in by_kind.get("PersistentVolumeClaim", {}),
                  f"k8s: claim {v['persistentVolumeClaim']['claimName']} exists")
        if "configMap" in v:
            check(v["configMap"]["name"] in by_kind.get("ConfigMap", {}), f"k8s: config map {v['configMap']['name']} exists")

# ---------------------------------------------------------------- compose + HAProxy
docker = os.path.join(REPO, "docker")
compose = load_all(os.path.join(docker, "compose.yaml"))[0]
services = compose["services"]
for name, svc in services.items():
    for vol in svc.get("volumes", []):
        src = vol.split(":")[0]
        if src.startswith("./"):
            check(os.path.exists(os.path.join(docker, src)), f"compose: {name} mounts {src}, which exists")
with open(os.path.join(docker, "mxfront.compose.toml")) as f:
    mx_toml = f.read()
balancer_ip = services["balancer"]["networks"]["mail"]["ipv4_address"]
check(f'"{balancer_ip}/32"' in mx_toml, "compose: instances trust the balancer's address for PROXY v2")
with open(os.path.join(docker, "haproxy", "haproxy.cfg")) as f:
    hcfg = f.read()
for name, svc in services.items():
    check("image" in svc and "build" in svc, f"compose: {name} runs an image built from this repository")
    check("apt-get" not in str(svc.get("command", "")), f"compose: {name} installs nothing at start")
pool = compose["networks"]["mail"]["ipam"]["config"][0]
dynamic = ipaddress.ip_network(pool["ip_range"]) if "ip_range" in pool else ipaddress.ip_network(pool["subnet"])
for name, svc in services.items():
    nets = svc.get("networks", {})
    addr = nets.get("mail", {}).get("ipv4_address") if isinstance(nets, dict) and nets.get("mail") else None
    if addr:
        check(ipaddress.ip_address(addr) not in dynamic, f"compose: {name}'s fixed {addr} is outside the dynamic ip_range {dynamic}")
mx_deps = services["mx"].get("depends_on", {})
check(isinstance(mx_deps, dict) and mx_deps.get("sigupdate", {}).get("condition") == "service_healthy",
      "compose: the instances wait for the signature updater to be healthy (signatures present)")
check(services["mx"].get("restart") in ("on-failure", "always", "unless-stopped"), "compose: instances restart")
check("healthcheck" in services["sigupdate"], "compose: sigupdate has a healthcheck")
check(f"check port {admin_port(mx_toml)}" in hcfg, "compose: HAProxy health-checks the instances' admin port")
check("uri /readyz" in hcfg and "send-proxy-v2" in hcfg, "compose: HAProxy checks /readyz and sends PROXY v2")
haproxy = shutil.which("haproxy")
check(haproxy is not None, "haproxy installed (apt-get install haproxy)")
if haproxy:
    r = subprocess.run([haproxy, "-c", "-f", os.path.join(docker, "haproxy", "haproxy.cfg")],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"haproxy -c docker/haproxy/haproxy.cfg: {r.stdout}{r.stderr}")

# ---------------------------------------------------------------- image
with open(os.path.join(docker, "Dockerfile")) as f:
    dockerfile = f.read()
runtime = dockerfile.split("AS runtime", 1)[-1]
m = re.search(r"apt-get install[^\n]*?--no-install-recommends \\\n(.*?)(?:&&|$)", runtime, re.S)
pkgs = m.group(1).replace("\\", " ").split() if m else []
check(len(pkgs) > 5, "Dockerfile: the runtime stage's package list found")
if shutil.which("apt-cache") and pkgs:
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", *pkgs], capture_output=True, text=True, timeout=60)
    found = set(re.findall(r"^Package: (\S+)", r.stdout, re.M))
    check(set(pkgs) <= found, f"Dockerfile: runtime packages missing from this Debian: {sorted(set(pkgs) - found)}")
ignore = open(os.path.join(REPO, ".dockerignore")).read().split() if os.path.exists(os.path.join(REPO, ".dockerignore")) else []
check(".git" in ignore and "build*/" in ignore, ".dockerignore keeps .git and build*/ out of the image context")

# ---------------------------------------------------------------- systemd unit
unit = os.path.join(REPO, "packaging", "mxfront.service")
analyze = shutil.which("systemd-analyze")
if analyze:
    r = subprocess.run([analyze, "security", "--offline=true", "--no-pager", unit], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    check(m is not None and float(m.group(1)) <= 2.0,
          f"packaging/mxfront.service: systemd-analyze security rates it <= 2.0: {m.group(0) if m else r.stdout + r.stderr}")

# ---------------------------------------------------------------- every shipped mxfront TOML
tmp = tempfile.mkdtemp(prefix="mxtest-deploy.")
try:
    sigdir = os.path.join(tmp, "clamav")
    os.makedirs(sigdir)
    with open(os.path.join(sigdir, "fixture.ndb"), "w") as f:  # one harmless body signature
        # (libclamav refuses a hash signature of size 0, so no "md5 of the empty file")
        f.write(f"Fixture.Marker:0:*:{b'mxfront-deploy-fixture'.hex()}\n")
    cert, key, secret = (os.path.join(tmp, n) for n in ("cert.pem", "key.pem", "secret"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=deploy-check.test"], capture_output=True, check=True, timeout=60)
    with open(secret, "w") as f:
        f.write("x\n")
    fixtures = {"/var/lib/clamav": sigdir, "/etc/mxfront/tls/fullchain.pem": cert,
                "/etc/mxfront/tls/privkey.pem": key, "/etc/mxfront/ldap.secret": secret,
                "/etc/mxfront/users": os.path.join(REPO, "config", "users.example"),
                "/etc/mxfront/ocr_words.txt": os.path.join(REPO, "config", "ocr_words.example.txt")}
    shipped = {"docker/mxfront.compose.toml": mx_toml,
               "docker/submission.compose.toml": open(os.path.join(docker, "submission.compose.toml")).read(),
               "deploy/k8s ConfigMap": cm["data"]["mxfront.toml"] if cm else "",
               "docker/image/mxfront.toml": open(os.path.join(docker, "image", "mxfront.toml")).read(),
               "docker/image/mxfront-clamav.toml": open(os.path.join(docker, "image", "mxfront-clamav.toml")).read(),
               "config/mxfront.example.toml": open(os.path.join(REPO, "config", "mxfront.example.toml")).read()}
    for name, text in shipped.items():
        for path, fixture in fixtures.items():
            text = text.replace(f'"{path}"', f'"{fixture}"')
        if tomllib:
            try:
                tomllib.loads(text)
                check(True, "")
            except tomllib.TOMLDecodeError as e:
                check(False, f"{name}: not TOML: {e}")
        path = os.path.join(tmp, "check.toml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([BIN, "--check-config", path], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"{name}: mxfront --check-config: {r.stdout}{r.stderr}")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)

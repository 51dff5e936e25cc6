#!/usr/bin/env bash
# Installs the Debian 12 packages mxfront needs to build, test, benchmark and run its demo.
# Idempotent: only missing packages are installed. Needs root (or sudo).
#   scripts/install-deps.sh            everything (build, tests, demo, benchmarks)
#   scripts/install-deps.sh --build    only what compiling mxfront needs (the Docker build stage)
# The full set also prepares rootful podman for the container farm test (tests/deploy/): the
# containers.conf this kind of machine needs and a debian:12 base image made with debootstrap from
# the Debian archive apt already uses (no registry is reachable).
set -euo pipefail
# sudo drops DEBIAN_FRONTEND from the environment: without it slapd's postinst asks for a password.
export DEBIAN_FRONTEND=noninteractive

BUILD_PKGS=(
  g++ cmake ninja-build pkg-config git ca-certificates
  libboost1.74-dev libssl-dev libtomlplusplus-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libldap-dev libcrypt-dev libsystemd-dev
  libc-ares-dev libre2-dev libgmime-3.0-dev libclamav-dev
  libtesseract-dev libleptonica-dev libgif-dev libpoppler-cpp-dev nlohmann-json3-dev
  libhiredis-dev libpsl-dev publicsuffix
)

PKGS=(
  # build
  g++ cmake ninja-build pkg-config git
  libboost1.74-dev libssl-dev libtomlplusplus-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libldap-dev libcrypt-dev
  # filters: async DNS (RBL), linear-time regexes (rules), MIME (rules, OCR), virus scanning
  libc-ares-dev libre2-dev libgmime-3.0-dev libclamav-dev clamav clamav-testfiles
  # OCR of image spam: Tesseract + Leptonica, giflib for animated GIF frames, poppler for PDFs; the tests render
  # their images with ImageMagick and the DejaVu fonts
  libtesseract-dev libleptonica-dev libgif-dev libpoppler-cpp-dev tesseract-ocr tesseract-ocr-eng imagemagick fonts-dejavu-core
  # fuzzing and sanitizers
  clang libclang-rt-14-dev
  # real components and clients for the demo, integration tests and benchmarks
  postfix swaks libnet-ssleay-perl python3 python3-yaml iproute2 procps xxd openssl
  slapd ldap-utils haproxy rbldnsd bind9-dnsutils
  # the farm's shared state (issue 16): the async client library and a real server for the tests
  libhiredis-dev redis-server redis-sentinel
  # sender authentication (issue 14): the public suffix list (DMARC), a real authoritative DNS server and the
  # reference implementations the tests compare with (python3-dkim also signs; python3-nacl gives it Ed25519)
  libpsl-dev publicsuffix nsd python3-dkim python3-spf python3-nacl
  # rspamd filter: its JSON answers (header-only library) and a real rspamd for the integration test
  nlohmann-json3-dev rspamd
  # operations: sd_notify for the systemd unit; promtool (package prometheus) checks the /metrics text and
  # the alert rules in deploy/monitoring/ -- the Prometheus server it also ships is never started (below)
  libsystemd-dev prometheus
  # containers: the image and the compose farm run for real (tests/deploy/test_container_farm.py)
  podman runc netavark aardvark-dns iptables catatonit debootstrap podman-compose
)

if [ "${1:-}" = "--build" ]; then PKGS=("${BUILD_PKGS[@]}"); fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# Rootful podman on Debian 12 (the recipe of HARNESS.md section 8): the default nofile/nproc ulimits
# are refused by some kernels (EPERM) and crun refuses hybrid cgroup layouts, so no ulimits and runc.
# The base image: FROM debian:12 resolves to a local image made from the Debian archive.
setup_podman() {
  [ "${1:-}" = "--build" ] && return 0
  command -v podman >/dev/null || return 0
  if [ ! -e /etc/containers/containers.conf ]; then
    $SUDO mkdir -p /etc/containers
    printf '%s\n' '# written by mxfront scripts/install-deps.sh' '[containers]' 'default_ulimits = []' \
      '[engine]' 'runtime = "runc"' | $SUDO tee /etc/containers/containers.conf >/dev/null
  fi
  if ! $SUDO podman image exists docker.io/library/debian:12; then
    local mirror rootfs
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    rootfs=$($SUDO mktemp -d /var/tmp/mxfront-debian12.XXXXXX)
    echo "install-deps: debootstrap bookworm from $mirror (the debian:12 base image)"
    $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
    # The image's apt uses the archives this machine's apt uses (updates and security included).
    if [ -e /etc/apt/sources.list.d/debian.sources ]; then
      $SUDO rm -f "$rootfs/etc/apt/sources.list"
      $SUDO cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
    fi
    $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    $SUDO tar -C "$rootfs" -c . | $SUDO podman import - docker.io/library/debian:12 >/dev/null
    $SUDO rm -rf "$rootfs"
  fi
}

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  setup_podman "${1:-}"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
# A fresh postfix install asks debconf questions: preseed "No configuration". mxfront's demo and
# tests run private Postfix instances and never touch /etc/postfix.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
# Only promtool is wanted from the prometheus package: no Prometheus server may be left listening on
# :9090 (CI, developer machines). While installing, a policy-rc.d that refuses every start keeps the
# package's postinst from starting it (Docker images ship one already; an existing one is kept).
POLICY=/usr/sbin/policy-rc.d
own_policy=""
if printf '%s\n' "${missing[@]}" | grep -qx prometheus && [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# written by mxfront scripts/install-deps.sh while installing\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  own_policy=1
fi
remove_policy() { if [ -n "$own_policy" ]; then $SUDO rm -f "$POLICY"; fi; }
trap remove_policy EXIT
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
remove_policy
own_policy=""
# The slapd, haproxy, nsd and redis-sentinel packages start a system instance on install; the tests run private ones on
# other ports, so stop them (harmless either way). prometheus is installed for promtool only: stopped.
for svc in slapd haproxy prometheus nsd redis-sentinel; do
  if printf '%s\n' "${missing[@]}" | grep -qx "$svc"; then
    $SUDO systemctl stop "$svc" 2>/dev/null || $SUDO service "$svc" stop 2>/dev/null || true
  fi
done
# ... and the Prometheus server stays off after a reboot too (the package enables its unit).
if printf '%s\n' "${missing[@]}" | grep -qx prometheus; then
  $SUDO systemctl disable prometheus 2>/dev/null || $SUDO update-rc.d prometheus disable 2>/dev/null || true
fi
setup_podman "${1:-}"

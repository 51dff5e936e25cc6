#!/usr/bin/env bash
# Installs the Debian 12 packages mxfront needs to build, test, benchmark and run its demo.
# Idempotent: only missing packages are installed. Needs root (or sudo).
#   scripts/install-deps.sh            everything (build, tests, demo, benchmarks)
#   scripts/install-deps.sh --build    only what compiling mxfront needs (the Docker build stage)
set -euo pipefail

BUILD_PKGS=(
  g++ cmake ninja-build pkg-config git ca-certificates
  libboost1.74-dev libssl-dev libtomlplusplus-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libldap-dev libcrypt-dev libsystemd-dev
  libc-ares-dev libre2-dev libgmime-3.0-dev libclamav-dev
  libtesseract-dev libleptonica-dev libgif-dev libpoppler-cpp-dev
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
  # operations: sd_notify for the systemd unit; promtool (package prometheus) checks the /metrics text and
  # the alert rules in deploy/monitoring/ -- the Prometheus server it also ships is never started (below)
  libsystemd-dev prometheus
)

if [ "${1:-}" = "--build" ]; then PKGS=("${BUILD_PKGS[@]}"); fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
# A fresh postfix install asks debconf questions: preseed "No configuration". mxfront's demo and
# tests run private Postfix instances and never touch /etc/postfix.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
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
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
remove_policy
own_policy=""
# The slapd and haproxy packages start a system instance on install; the tests run private ones on
# other ports, so stop them (harmless either way). prometheus is installed for promtool only: stopped.
for svc in slapd haproxy prometheus; do
  if printf '%s\n' "${missing[@]}" | grep -qx "$svc"; then
    $SUDO systemctl stop "$svc" 2>/dev/null || $SUDO service "$svc" stop 2>/dev/null || true
  fi
done
# ... and the Prometheus server stays off after a reboot too (the package enables its unit).
if printf '%s\n' "${missing[@]}" | grep -qx prometheus; then
  $SUDO systemctl disable prometheus 2>/dev/null || $SUDO update-rc.d prometheus disable 2>/dev/null || true
fi

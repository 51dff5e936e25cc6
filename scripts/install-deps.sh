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
  # operations: sd_notify for the systemd unit
  libsystemd-dev
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
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The slapd package starts a system instance on install; the tests run private ones on other
# ports, so stop it (it is harmless either way).
for svc in slapd haproxy; do
  if printf '%s\n' "${missing[@]}" | grep -qx "$svc"; then
    $SUDO systemctl stop "$svc" 2>/dev/null || $SUDO service "$svc" stop 2>/dev/null || true
  fi
done

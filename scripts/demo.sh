#!/usr/bin/env bash
# README demo: installs what is missing, builds, and runs mxfront on 127.0.0.1:2525 relaying over
# QMQP to a private Postfix qmqpd that delivers into a local Maildir. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec python3 scripts/demo.py "$@"

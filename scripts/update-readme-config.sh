#!/usr/bin/env bash
# Regenerates README.md's configuration table from the parameter table (mxfront --config-doc).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MXFRONT_BIN:-build/mxfront}
python3 - "$BIN" <<'PY'
import subprocess, sys
doc = subprocess.run([sys.argv[1], "--config-doc"], capture_output=True, text=True, check=True).stdout
s = open("README.md").read()
b = s.index("<!-- config-doc:begin"); b = s.index("\n", b) + 1
e = s.index("<!-- config-doc:end -->")
open("README.md", "w").write(s[:b] + doc + s[e:])
PY

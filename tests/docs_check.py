#!/usr/bin/env python3
"""Fails when README.md's config table differs from `mxfront --config-doc` (the parameter table)."""
import subprocess
import sys

binary, readme = sys.argv[1], sys.argv[2]
doc = subprocess.run([binary, "--config-doc"], capture_output=True, text=True, check=True).stdout
text = open(readme).read()
missing = [line for line in doc.splitlines() if line not in text.splitlines()]
if missing:
    print("README.md config table is out of date; regenerate it with `mxfront --config-doc`. Missing rows:")
    print("\n".join(missing))
    sys.exit(1)
print(f"README.md has all {len(doc.splitlines()) - 2} config rows")

#!/usr/bin/env bash
# Configures and builds mxfront into build/ (Release with debug info). Extra args go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
# The CMake File API codemodel for tests/layers_check.py: asked for before the first configure too.
mkdir -p "$BUILD/.cmake/api/v1/query/client-mxfront" && touch "$BUILD/.cmake/api/v1/query/client-mxfront/codemodel-v2"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
ninja -C "$BUILD"

#!/usr/bin/env bash
# Sets up, builds and runs the main job on the built-in default: the bundled
# two-layer model through fairkv-opt (parse, verify, print).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir=${FAIRKV_BUILD_DIR:-build}
"$build_dir/bin/fairkv-opt" examples/tiny-2layer.mlir

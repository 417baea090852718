#!/usr/bin/env bash
# Sets up, builds and runs every FairKV test (lit + GoogleTest) via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/setup-openai.sh
scripts/build.sh
cd "${FAIRKV_BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)"

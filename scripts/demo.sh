#!/usr/bin/env bash
# Sets up, builds and runs the main job on the built-in default (no download,
# no GPU): `fairkv demo` plans a tiny random-weight model with skewed
# per-head budgets for 4 devices with tp and with fairkv, compiles both
# plans to executables, decodes the same prompts on the CPU backend, shows
# the tokens agree and how KV and attention time spread over the devices.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
"${FAIRKV_BUILD_DIR:-build}/bin/fairkv" demo "$@"

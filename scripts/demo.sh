#!/usr/bin/env bash
# Sets up, builds and runs the main job on the built-in default (no download,
# no GPU): plans the bundled two-layer model inside the compiler, then
# compares every strategy on a llama-3-8b-shaped model with a seeded
# synthetic per-head budget profile.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
bin=${FAIRKV_BUILD_DIR:-build}/bin

echo "== fairkv-opt: plan examples/tiny-2layer.mlir on 2 devices"
"$bin/fairkv-opt" examples/tiny-2layer.mlir \
  --fairkv-plan-placement="devices=2 strategy=fairkv" | grep -E "shard.grid|fairkv.attention"

echo
echo "== fairkv plan: llama-3-8b, synthetic profile, 8 devices, 10% copy budget"
"$bin/fairkv" plan --model llama-3-8b --profile synthetic --devices 8 \
  --copy-budget-fraction 0.1 --compare --time-limit 5

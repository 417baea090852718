#!/usr/bin/env bash
# Sets up, builds and runs the main job on the built-in default (no download,
# no GPU): plans and shards the bundled two-layer model in the compiler, then
# compares every strategy on a llama-3-8b-shaped model with a seeded
# synthetic per-head budget profile.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
bin=${FAIRKV_BUILD_DIR:-build}/bin

echo "== fairkv-opt: plan and shard examples/tiny-2layer.mlir on 2 devices"
echo "   (attention ops of each device program: its kv heads and batch shares)"
"$bin/fairkv-opt" examples/tiny-2layer.mlir \
  --fairkv-shard-pipeline="devices=2 strategy=fairkv" |
  grep -E "func.func|fairkv.attention|fairkv.all_reduce" |
  sed -E 's/ : \(.*//; s/ placement <devices = [0-9]+, heads = .*\]\]>//'

echo
echo "== fairkv plan: llama-3-8b, synthetic profile, 8 devices, 10% copy budget"
"$bin/fairkv" plan --model llama-3-8b --profile synthetic --devices 8 \
  --copy-budget-fraction 0.1 --compare --time-limit 5

#!/usr/bin/env bash
# Every GPU-side check in one run, for a machine with a GPU, over a build made
# elsewhere (carry ./build; nothing is installed here):
#  1. the runtime finds the GPU and NCCL (FAIRKV_EXPECT_GPU=1 makes a missing
#     GPU a failure);
#  2. fairkv-bench-gpu: the decode-attention kernel and a 2-layer model's
#     whole decode steps (cuBLAS, every kernel, and a captured CUDA graph)
#     against float64 CPU references, copy and kernel bandwidth, per-device
#     attention times of tp and fairkv plans with the planner's predicted
#     ratio, and whole-decode tokens/s of a llama-3-8b-shaped model; then
#     one summary table.
# The HeadKV profile is looked for in build/profiles/ (copy it there before
# carrying the build) or ../shared/profiles/.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${FAIRKV_BUILD_DIR:-build}
profile_name=headkv-Meta-Llama-3-8B-Instruct_retrieval_reasoning_heads.json
profile=${1:-}
if [ -z "$profile" ]; then
  for candidate in "$build_dir/profiles/$profile_name" "../shared/profiles/$profile_name"; do
    [ -f "$candidate" ] && profile=$candidate && break
  done
fi
[ -n "$profile" ] || { echo "gpu-check: no HeadKV profile found (give its path)" >&2; exit 1; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# gpu-libs/: the Debian libraries the bench needs that a bare GPU machine
# may lack (filled by the carrying side; absent is fine where installed).
export LD_LIBRARY_PATH="$PWD/$build_dir/lib:$PWD/$build_dir/gpu-libs:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
if missing=$(ldd "$build_dir/bin/fairkv-bench-gpu" | grep "not found"); then
  echo "gpu-check: libraries missing on this machine:" >&2
  echo "$missing" >&2
  exit 1
fi
echo "== runtime: devices and NCCL"
FAIRKV_EXPECT_GPU=1 "$build_dir/unittests/Runtime/FairKVRuntimeTests" --gtest_filter='RuntimeInfo.*'
echo "== kernels, bandwidth, per-device times"
"$build_dir/bin/fairkv-bench-gpu" "$profile"

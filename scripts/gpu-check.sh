#!/usr/bin/env bash
# Every GPU-side check in one run, for a machine with a GPU: expects a build
# in ./build (made on a CPU machine and carried over). Today it checks that
# the CUDA backend finds the devices and NCCL; the kernel and collective
# checks against the CPU reference join it as the CUDA backend lands.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${FAIRKV_BUILD_DIR:-build}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
export LD_LIBRARY_PATH="$PWD/$build_dir/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
FAIRKV_EXPECT_GPU=1 "$build_dir/unittests/Runtime/FairKVRuntimeTests"

#!/usr/bin/env bash
# Prepares, on the build machine (after scripts/build.sh with CUDA), one
# folder holding everything scripts/gpu-check.sh needs on a bare GPU machine,
# and no more: build/gpu-carry with bin/ (the two GPU benches), lib/ (the
# runtime), unittests/Runtime/ (the runtime tests), profiles/ (the HeadKV
# profile), gpu-libs/ (the Debian libraries a bare machine may lack) and
# gpu-programs/ (scripts/gpu-programs.sh: compiled programs and their CPU
# references). Prints its size: the device tool carries at most 64 MiB.
# Then, on the GPU machine (carry build/gpu-carry):
#   FAIRKV_BUILD_DIR=build/gpu-carry scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${FAIRKV_BUILD_DIR:-build}
carry="$build_dir/gpu-carry"
profile=../shared/profiles/headkv-Meta-Llama-3-8B-Instruct_retrieval_reasoning_heads.json
[ -f "$profile" ] || { echo "gpu-prepare: $profile not found" >&2; exit 1; }
needed=(bin/fairkv-bench-gpu bin/fairkv-bench-overlap
        unittests/Runtime/FairKVRuntimeTests lib/libFairKVRuntime.so)
for f in "${needed[@]}"; do
  [ -f "$build_dir/$f" ] || {
    echo "gpu-prepare: $build_dir/$f is missing: build with the CUDA backend first (scripts/build.sh)" >&2
    exit 1
  }
done
FAIRKV_BUILD_DIR="$build_dir" scripts/gpu-programs.sh
rm -rf "$carry"
mkdir -p "$carry"/{bin,lib,unittests/Runtime,profiles,gpu-libs}
for f in "${needed[@]}"; do
  cp "$build_dir/$f" "$carry/$f"
done
cp "$profile" "$carry/profiles/"
cp -r "$build_dir/gpu-programs" "$carry/gpu-programs"
# OpenMPI (the runtime), which the GPU machines lent so far did not have.
for lib in libltdl.so.7 libmpi.so.40 libopen-rte.so.40 libopen-pal.so.40 \
    libhwloc.so.15 libevent_core-2.1.so.7 libevent_pthreads-2.1.so.7; do
  cp -L "/lib/x86_64-linux-gnu/$lib" "$carry/gpu-libs/"
done
size=$(du -sk "$carry" | cut -f1)
echo "gpu-prepare: wrote $carry ($((size / 1024)) MiB of the 64 MiB a device run carries)"
[ "$size" -lt $((64 * 1024)) ] || { echo "gpu-prepare: too big to carry" >&2; exit 1; }

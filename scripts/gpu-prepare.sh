#!/usr/bin/env bash
# Prepares, on the build machine (after scripts/build.sh with CUDA), one
# folder holding everything scripts/gpu-check.sh needs on a bare GPU machine,
# and no more: build/gpu-carry with bin/ (the two GPU benches), lib/ (the
# runtime, its CUDA and MPI plugins, and the libraries programs link),
# unittests/Runtime/ (the runtime tests), profiles/ (the HeadKV
# profile), gpu-libs/ (the Debian libraries a bare machine may lack) and
# gpu-programs/ (scripts/gpu-programs.sh: compiled programs and their CPU
# references), packed as build/gpu-carry.tar.gz, which is what travels: the
# device tool carries at most 64 MiB, and the folder is near that unpacked.
# Then, on the GPU machine (carry build/gpu-carry.tar.gz; gpu-check.sh
# unpacks it):
#   FAIRKV_BUILD_DIR=build/gpu-carry scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${FAIRKV_BUILD_DIR:-build}
carry="$build_dir/gpu-carry"
profile=../shared/profiles/headkv-Meta-Llama-3-8B-Instruct_retrieval_reasoning_heads.json
[ -f "$profile" ] || { echo "gpu-prepare: $profile not found" >&2; exit 1; }
needed=(bin/fairkv-bench-gpu bin/fairkv-bench-overlap bin/fairkv-bench-device-times
        unittests/Runtime/FairKVRuntimeTests lib/libFairKVRuntime.so
        lib/libFairKVRuntimeCUDA.so lib/libFairKVRuntimeMPI.so
        lib/libFairKVServe.so lib/libFairKVTokenizer.so)
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
# The G = 8 tp and fairkv programs of fairkv-bench-device-times (the GPU
# machine has no MLIR to compile them; it writes their weights itself).
"$build_dir/bin/fairkv-bench-device-times" --backend cuda --compile-only 1 \
  --profiles "$(dirname "$profile")" --work "$carry/device-times"
# The Debian libraries the carried binaries, libraries and programs need
# (OpenMPI, which the GPU machines lent so far did not have; PCRE2,
# utf8proc, sentencepiece, cpp-httplib for the programs), but glibc's and
# GCC's, which every machine has, and CUDA's, which the GPU machine has.
deps=$(for f in "${needed[@]/#/$build_dir/}" \
           $(find "$carry/gpu-programs" -type f -perm -u+x); do
         ldd "$f" 2>/dev/null
       done | awk '$2 == "=>" && $3 ~ /^\/(usr\/)?lib\/x86_64-linux-gnu\// {print $3}' | sort -u)
for lib in $deps; do
  case $(basename "$lib") in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
    *) cp -L "$lib" "$carry/gpu-libs/" ;;
  esac
done
# Symbol tables are not needed to run (the dynamic ones stay): about 5 MiB.
find "$carry" -type f -perm -u+x ! -name '*.sh' ! -path "$carry/gpu-libs/*" \
  -exec strip --strip-unneeded {} +
tar -czf "$carry.tar.gz" -C "$(dirname "$carry")" "$(basename "$carry")"
unpacked=$(du -sk "$carry" | cut -f1)
size=$(du -sk "$carry.tar.gz" | cut -f1)
echo "gpu-prepare: wrote $carry.tar.gz ($((size / 1024)) MiB of the 64 MiB a device run carries; $((unpacked / 1024)) MiB unpacked)"
[ "$size" -lt $((64 * 1024)) ] || { echo "gpu-prepare: too big to carry" >&2; exit 1; }

#!/usr/bin/env bash
# Builds FairKV with ASan + UBSan into build-asan and runs every test under
# them (ctest). The CPU backend only: the CUDA runtime is not instrumented.
# Traps handled here: the shared libraries link with LLVM's -z defs, so the
# sanitizer runtimes are shared too (-shared-libsan); Debian's libMLIR is not
# instrumented (allow_user_poisoning=0); programs `fairkv compile` links get
# the same driver and flags (FAIRKV_PROGRAM_LINKER/_LINK_FLAGS).
#   scripts/sanitize.sh [ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dir=${FAIRKV_ASAN_BUILD_DIR:-build-asan}
rt=/usr/lib/llvm-22/lib/clang/22/lib/linux
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
link="$san -shared-libsan -Wl,-rpath,$rt"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -G Ninja -S . -B "$dir" \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DLLVM_USE_LINKER=lld -DFAIRKV_ENABLE_CUDA=OFF \
    -DCMAKE_C_FLAGS="$san" -DCMAKE_CXX_FLAGS="$san" \
    -DCMAKE_EXE_LINKER_FLAGS="$link" -DCMAKE_SHARED_LINKER_FLAGS="$link" \
    -DCMAKE_MODULE_LINKER_FLAGS="$link" \
    -DFAIRKV_PROGRAM_LINKER=clang++-22 -DFAIRKV_PROGRAM_LINK_FLAGS="$link"
fi
ninja -C "$dir" -j"${FAIRKV_JOBS:-$(nproc)}"
# Leaks are not checked: MLIR's and LLVM's registries live until exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allow_user_poisoning=0:verify_asan_link_order=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$dir"
ctest --output-on-failure -j"$(nproc)" "$@"

#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz with ASan + UBSan into
# build-fuzz, replays every regression input (test/fuzz/regressions/<target>,
# one per crash fixed), then fuzzes each target for SECONDS (default 30)
# from its seed corpus (test/fuzz/corpus/<target>). Fails on any finding;
# a finding's input is left in the printed directory.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
dir=${FAIRKV_FUZZ_BUILD_DIR:-build-fuzz}
rt=/usr/lib/llvm-22/lib/clang/22/lib/linux
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
if [ ! -f "$dir/build.ninja" ]; then
  # The libraries are shared and LLVM's options link with -z defs: they
  # take the sanitizer runtimes as shared libraries too.
  cmake -G Ninja -S . -B "$dir" \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DLLVM_USE_LINKER=lld -DFAIRKV_FUZZ=ON -DFAIRKV_ENABLE_CUDA=OFF \
    -DCMAKE_C_FLAGS="$san -fsanitize=fuzzer-no-link" \
    -DCMAKE_CXX_FLAGS="$san -fsanitize=fuzzer-no-link" \
    -DCMAKE_EXE_LINKER_FLAGS="$san -shared-libsan -Wl,-rpath,$rt" \
    -DCMAKE_SHARED_LINKER_FLAGS="$san -shared-libsan -Wl,-rpath,$rt"
fi
ninja -C "$dir" -j"${FAIRKV_JOBS:-$(nproc)}" fairkv-fuzzers
# With the runtime shared, libstdc++ may load before it (harmless: it
# defines no allocator the runtime must see first).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:verify_asan_link_order=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=$(mktemp -d "${TMPDIR:-/tmp}/fairkv-fuzz.XXXXXX")
status=0
for corpus in test/fuzz/corpus/*/; do
  target=$(basename "$corpus")
  bin="$dir/bin/fairkv-fuzz-$target"
  out="$work/$target"
  mkdir -p "$out/corpus"
  regressions=(test/fuzz/regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "fuzz: $target: ${#regressions[@]} regression inputs"
    "$bin" -close_fd_mask=3 -artifact_prefix="$out/" "${regressions[@]}" > "$out/regressions.log" 2>&1 \
      || { echo "fuzz: $target: a regression input fails (see $out/regressions.log)"; tail -30 "$out/regressions.log"; status=1; continue; }
  fi
  echo "fuzz: $target: fuzzing for $seconds s"
  "$bin" -max_total_time="$seconds" -max_len=16384 -timeout=20 -rss_limit_mb=2048 \
    -close_fd_mask=3 \
    -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" "$corpus" \
    > "$out/fuzz.log" 2>&1 \
    || { echo "fuzz: $target: FINDING (input and log in $out)"; tail -40 "$out/fuzz.log"; status=1; continue; }
  grep -E "stat::number_of_executed_units" "$out/fuzz.log" | sed "s/^/fuzz: $target: /" || true
done
[ $status -eq 0 ] && rm -rf "$work"
exit $status

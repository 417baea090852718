#!/usr/bin/env bash
# Every GPU-side check in one run, for a machine with a GPU, over a build made
# elsewhere (nothing is installed here):
#  1. the runtime finds the GPU and NCCL (FAIRKV_EXPECT_GPU=1 makes a missing
#     GPU a failure);
#  2. fairkv-bench-gpu: the decode-attention kernel and a 2-layer model's
#     whole decode steps (cuBLAS, every kernel, and a captured CUDA graph)
#     against float64 CPU references, copy and kernel bandwidth, per-device
#     attention times of tp and fairkv plans with the planner's predicted
#     ratio, whole-decode tokens/s of a llama-3-8b-shaped model, and that
#     model's weight GEMMs through cublasGemmEx against cuBLASLt's
#     heuristics; then one summary table;
#  3. fairkv-bench-overlap: a layer's two row-parallel projections with
#     their all_reduce, unfused and fused in 1, 2 and 4 blocks (NCCL, one
#     GPU), each fused result checked against the unfused one;
#  4. compiled programs on the CUDA backend (--backend cuda) against the CPU
#     backend's logits, unsharded and for tp / fairkv at G = 2, 3, 4 (all
#     devices on the one GPU), fed the CPU run's tokens so every step's
#     logits compare, also with projections fused with their all_reduce
#     (--overlap-chunks) or with the prefill in groups of requests
#     (--prefill-tokens), the server's continuous batching
#     (scripts/serve-check.sh), and every model family of the Hugging Face
#     fixtures (G = 1 and fairkv G = 2); and decode steps replayed from CUDA
#     graphs (--cuda-graphs) against a normal run's, bit for bit, and a G = 3
#     program's solo devices (--solo-devices) with and without graphs; built by
#     scripts/gpu-programs.sh into build/gpu-programs (skipped, saying so,
#     when absent);
#  5. fairkv-bench-device-times: every device of G = 8 tp and fairkv
#     programs alone (per-device compiled step times, the predicted 8-GPU
#     ratio, the planner's error) and the unsharded program's weights + KV
#     reads per step against the copy bandwidth of 2, with every op timed
#     and with CUDA graphs (programs compiled by
#     gpu-prepare.sh; skipped, saying so, when absent);
#  6. where this machine has Nsight Compute (ncu), the decode-attention
#     kernels and their loads alone (fairkv-bench-gpu --profile-attention)
#     under it: a few lines per kernel here, the whole report in
#     $FAIRKV_GPU_LOGS (default $build_dir)/ncu-attention.txt.
# The HeadKV profile is looked for in build/profiles/ or ../shared/profiles/.
# scripts/gpu-prepare.sh puts all of it in one folder, packed to carry
# (build/gpu-carry.tar.gz, unpacked here when newer than the folder): then
# run with FAIRKV_BUILD_DIR=build/gpu-carry.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${FAIRKV_BUILD_DIR:-build}
if [ -f "$build_dir.tar.gz" ] && { [ ! -f "$build_dir/.unpacked" ] ||
    [ "$build_dir.tar.gz" -nt "$build_dir/.unpacked" ]; }; then
  rm -rf "$build_dir"
  tar -xzf "$build_dir.tar.gz" -C "$(dirname "$build_dir")"
  touch "$build_dir/.unpacked"
fi
profile_name=headkv-Meta-Llama-3-8B-Instruct_retrieval_reasoning_heads.json
profile=${1:-}
if [ -z "$profile" ]; then
  for candidate in "$build_dir/profiles/$profile_name" "../shared/profiles/$profile_name"; do
    [ -f "$candidate" ] && profile=$candidate && break
  done
fi
[ -n "$profile" ] || { echo "gpu-check: no HeadKV profile found (give its path)" >&2; exit 1; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit --format=csv,noheader
# gpu-libs/: the Debian libraries the bench needs that a bare GPU machine
# may lack (filled by the carrying side; absent is fine where installed).
export LD_LIBRARY_PATH="$PWD/$build_dir/lib:$PWD/$build_dir/gpu-libs:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
if missing=$(ldd "$build_dir/bin/fairkv-bench-gpu" "$build_dir/lib/libFairKVRuntimeCUDA.so" | grep "not found"); then
  echo "gpu-check: libraries missing on this machine:" >&2
  echo "$missing" >&2
  exit 1
fi
# FAIRKV_GPU_STAGES picks the parts (default all four, in this order):
# "checks" (1-3), "programs" (4), "times" (5), "profile" (6); each says how long it took,
# so a run that would pass the device tool's 10 minutes a command can be
# split in two. FAIRKV_COPY_GBPS gives the copy bandwidth to "times" when
# "checks" (which measures it) does not run.
stages=${FAIRKV_GPU_STAGES:-checks programs times profile}
wants() { [[ " $stages " == *" $1 "* ]]; }
failed=0
copy_gbps=${FAIRKV_COPY_GBPS:-}
if wants checks; then
  started=$SECONDS
  echo "== runtime: devices and NCCL"
  FAIRKV_EXPECT_GPU=1 "$build_dir/unittests/Runtime/FairKVRuntimeTests" --gtest_filter='RuntimeInfo.*:CudaBackend.*' || failed=1
  echo "== kernels, bandwidth, per-device times"
  bench_gpu_log=$(mktemp)
  "$build_dir/bin/fairkv-bench-gpu" "$profile" | tee "$bench_gpu_log" || failed=1
  # The card's copy bandwidth (read + write), which the compiled programs'
  # reads are held against below.
  measured=$(sed -n 's/^ *device-to-device copy: \([0-9.]*\) GB\/s.*/\1/p' "$bench_gpu_log" | head -1)
  copy_gbps=${measured:-$copy_gbps}
  rm -f "$bench_gpu_log"
  echo "== fused projection + all_reduce (one GPU: what splitting costs)"
  overlap_results=$(mktemp)
  "$build_dir/bin/fairkv-bench-overlap" --backend cuda --results "$overlap_results" || failed=1
  rm -f "$overlap_results"
  echo "-- checks: $((SECONDS - started)) s"
fi
programs="$build_dir/gpu-programs"
if wants programs && [ ! -d "$programs" ]; then
  echo "== compiled programs on the CUDA backend: skipped (run scripts/gpu-programs.sh first)"
elif wants programs; then
  started=$SECONDS
  runs=$(mktemp -d)
  echo "== compiled programs on the CUDA backend against the CPU backend"
  args=(--weights "$programs/weights.safetensors" --random-prompts 6 --prompt-len 40
        --min-prompt-len 20 --seed 5 --backend cuda)
  programs_failed=0
  # compare LABEL PROGRAM TOKENS REFERENCE BATCH-SIZE STEPS STRICT [ARGS...]:
  # PROGRAM fed TOKENS (another run's), every step's logits against the
  # REFERENCE dump; STRICT=1 fails beyond 2e-2, STRICT=0 only reports.
  compare() {
    local label=$1 p=$2 tokens=$3 reference=$4 bs=$5 steps=$6 strict=$7
    local out="$runs/$(echo "$label $p $bs $steps $*" | tr -c 'a-z0-9\n' _)"
    shift 7
    if ! "$programs/$p" "${args[@]}" "$@" --quiet --batch-size "$bs" \
        --max-new-tokens "$steps" --force-tokens "$tokens" --tolerance 2e-2 \
        --reference-logits "$reference" > "$out.tokens" 2> "$out.err"; then
      grep -q "logits differ" "$out.err" && [ "$strict" = 0 ] || programs_failed=1
    fi
    echo "  $label, ${p#*-}, batch size ${bs/#0/all}, $steps step(s)${*:+, $*}: $(grep -h "largest difference\|error" "$out.err" | tail -1)"
  }
  # against the CPU run of the same mode (off, on, adakv)
  cpu() {
    local mode=$1 p=$2
    shift 2
    compare "compression $mode vs CPU" "${mode/adakv/on}-$p" "$programs/$mode.tokens" \
      "$programs/$mode.logits" "$@"
  }
  for p in g1 tp-2 fairkv-2 tp-3 fairkv-3 tp-4 fairkv-4; do
    for bs in 0 4; do
      cpu off $p $bs 6 1
    done
  done
  # NCCL collectives: one device per GPU, so only G = 1 on a one-GPU machine.
  cpu off g1 0 6 1 --collectives nccl
  # Projections fused with their all_reduce, three blocks each: through the
  # rendezvous (G = 3, 4 on the one GPU) and through NCCL's communication
  # stream (G = 1), whole decodes without compression and prefills with it.
  for p in g1-fused fairkv-3-fused tp-4-fused; do
    cpu off $p 0 6 1
    cpu on $p 0 1 1
  done
  cpu off g1-fused 0 6 1 --collectives nccl
  cpu on g1-fused 4 1 1 --collectives nccl
  # fp16 storage; its roundings are small enough that compression keeps the
  # CPU's tokens here, so whole decodes with compression are held too.
  for p in g1 fairkv-3; do
    cpu off $p 0 6 1 --storage fp16
    cpu on $p 0 6 1 --storage fp16
  done
  # With compression on, bf16 roundings can move a token across a head's
  # selection boundary, so only the prefill's logits (full attention) are held
  # to the bf16 tolerance; whole decodes are reported.
  for p in g1 tp-2 fairkv-2 tp-3 fairkv-3 tp-4 fairkv-4; do
    for bs in 0 4; do
      cpu on $p $bs 1 1
      cpu on $p $bs 6 0
    done
  done
  for p in g1 fairkv-3; do
    cpu adakv $p 0 1 1 --kv-method adakv --adakv-alpha 0.2
  done
  # A prefill in groups of requests (--prefill-tokens; at most 80 prompt
  # tokens a step: the 6 requests of 20-40 tokens in groups of one or
  # two): each group's prefill grows its attention calls' caches, and the
  # batch decodes after.
  for p in g1 tp-2 fairkv-3 tp-4-fused; do
    cpu off $p 0 6 1 --prefill-tokens 80
  done
  cpu off g1 0 6 1 --prefill-tokens 80 --cuda-graphs
  cpu on fairkv-3 0 1 1 --prefill-tokens 80
  cpu adakv fairkv-3 0 1 1 --kv-method adakv --adakv-alpha 0.2 --prefill-tokens 80
  # The server: continuous batching on the GPU (at most 3 running, 40 prompt
  # tokens a joining prefill), every completion's text against the same
  # program's offline batch on the GPU.
  for p in g1 fairkv-3; do
    echo "  --serve, on-$p:"
    scripts/serve-check.sh "$programs/on-$p" "$programs/weights.safetensors" \
      "$programs/serve" "$programs/serve/prompts.txt" 6 --backend cuda \
      --batch-size 3 --prefill-tokens 40 | sed 's/^/  /' || programs_failed=1
  done
  # Placement never changes the answer on the GPU either: with compression
  # on (static budgets and Ada-KV), every sharded program's whole decode
  # against the unsharded GPU run.
  for mode in on adakv; do
    extra=()
    [ $mode = adakv ] && extra=(--kv-method adakv --adakv-alpha 0.2)
    "$programs/on-g1" "${args[@]}" "${extra[@]}" --quiet --max-new-tokens 6 \
      --force-tokens "$programs/$mode.tokens" --dump-logits "$runs/$mode-gpu.logits" > /dev/null
    for p in tp-2 fairkv-2 tp-3 fairkv-3 tp-4 fairkv-4; do
      compare "$mode vs unsharded GPU" "on-$p" "$programs/$mode.tokens" \
        "$runs/$mode-gpu.logits" 0 6 1 "${extra[@]}"
    done
  done
  # Greedy decoding that asks for no logits leaves them on the GPU: the same
  # tokens as a run that copies them to the host every step.
  for p in off-g1 on-fairkv-3; do
    "$programs/$p" "${args[@]}" --quiet --max-new-tokens 6 > "$runs/$p.lazy.tokens"
    "$programs/$p" "${args[@]}" --quiet --max-new-tokens 6 --dump-logits "$runs/$p.eager.logits" > "$runs/$p.eager.tokens"
    if cmp -s "$runs/$p.lazy.tokens" "$runs/$p.eager.tokens" && [ -s "$runs/$p.lazy.tokens" ]; then
      echo "  logits left on the GPU, ${p}: the tokens of the run that copies them"
    else
      echo "  logits left on the GPU, ${p}: TOKENS DIFFER from the run that copies them"
      programs_failed=1
    fi
  done
  "$programs/on-fairkv-4" "${args[@]}" --max-new-tokens 6 2>&1 | tail -6
  # Every model family (Llama with tied embeddings and the llama3 and yarn
  # ropes, Mistral, Qwen2's biases, Qwen3's per-head norms, bf16 storage) on
  # the CUDA backend against the CPU backend, fed transformers' tokens.
  echo "== every model family (Hugging Face fixtures) on the CUDA backend against the CPU backend"
  for d in "$programs"/hf/*/; do
    m=$(basename "$d")
    for p in g1 fairkv-2; do
      out="$runs/hf-$m-$p"
      "$d/$p" --weights "$d/model.safetensors" --prompts "$d/prompts.txt" \
        --max-new-tokens 6 --quiet --backend cuda --force-tokens "$d/tokens.txt" \
        --reference-logits "$d/cpu.logits" --tolerance 2e-2 > "$out.tokens" 2> "$out.err" \
        || programs_failed=1
      echo "  $m, $p: $(grep -h "largest difference\|error" "$out.err" | tail -1)"
    done
  done
  for d in "$programs"/hf-refused/*/; do
    m=$(basename "$d")
    if "$d/g1" --weights "$d/model.safetensors" --prompts "$d/prompts.txt" \
        --max-new-tokens 6 --quiet --backend cuda > /dev/null 2> "$runs/refused-$m.err" ||
        ! grep -q "the CUDA backend does not" "$runs/refused-$m.err"; then
      programs_failed=1
    fi
    echo "  $m (refused on the GPU): $(tail -1 "$runs/refused-$m.err")"
  done
  # --time-devices on the GPU: the devices take turns, and the tokens are a
  # normal run's.
  "$programs/on-fairkv-3" "${args[@]}" --quiet --max-new-tokens 6 --time-devices > "$runs/timed.tokens"
  "$programs/on-fairkv-3" "${args[@]}" --quiet --max-new-tokens 6 > "$runs/untimed.tokens"
  if cmp -s "$runs/timed.tokens" "$runs/untimed.tokens" && [ -s "$runs/timed.tokens" ]; then
    echo "  --time-devices, on-fairkv-3: the tokens of a normal run"
  else
    echo "  --time-devices, on-fairkv-3: TOKENS DIFFER from a normal run"
    programs_failed=1
  fi
  # --op-times: events around every op, and the same tokens.
  "$programs/on-fairkv-3" "${args[@]}" --quiet --max-new-tokens 6 --op-times > "$runs/optimes.tokens"
  if cmp -s "$runs/optimes.tokens" "$runs/untimed.tokens" && [ -s "$runs/optimes.tokens" ]; then
    echo "  --op-times, on-fairkv-3: the tokens of a normal run"
  else
    echo "  --op-times, on-fairkv-3: TOKENS DIFFER from a normal run"
    programs_failed=1
  fi
  # --cuda-graphs: each decode step after the second replayed from one CUDA
  # graph per batch gives a normal run's tokens and logits, bit for bit: one
  # device (the graphs need it, or NCCL), compression off and on, fp16, two
  # batches (the first's graph goes, the second's is captured), NCCL with
  # the fused projections' communication stream, every op timed.
  graph_run=0
  for run in "off-g1" "on-g1" "on-g1 --storage fp16" "on-g1 --batch-size 4" \
      "off-g1-fused --collectives nccl" "on-g1-fused --collectives nccl" \
      "on-g1 --op-times"; do
    set -- $run
    p=$1
    shift
    graph_run=$((graph_run + 1))
    base="$runs/graphs-$graph_run"
    if ! "$programs/$p" "${args[@]}" "$@" --quiet --max-new-tokens 12 \
        --dump-logits "$base.eager.logits" > "$base.eager.tokens" 2> "$base.eager.err"; then
      echo "  --cuda-graphs, $run: the normal run failed: $(tail -1 "$base.eager.err")"
      programs_failed=1
      continue
    fi
    if "$programs/$p" "${args[@]}" "$@" --quiet --max-new-tokens 12 --cuda-graphs \
        --dump-logits "$base.graphs.logits" > "$base.graphs.tokens" 2> "$base.graphs.err" &&
        [ -s "$base.graphs.tokens" ] && cmp -s "$base.eager.tokens" "$base.graphs.tokens" &&
        cmp -s "$base.eager.logits" "$base.graphs.logits"; then
      echo "  --cuda-graphs, $run: a normal run's tokens and logits, bit for bit"
    else
      echo "  --cuda-graphs, $run: DIFFERS from a normal run or failed: $(tail -1 "$base.graphs.err")"
      programs_failed=1
    fi
  done
  # --solo-devices: on-fairkv-3's devices share this GPU, each decode step
  # alone with local stand-ins for its collectives, so its steps can be one
  # CUDA graph per device: graphs must give the eager solo run's logits bit
  # for bit, and the prefill's logits must be a normal run's.
  "$programs/on-fairkv-3" "${args[@]}" --quiet --max-new-tokens 6 \
    --dump-logits "$runs/normal.logits" > /dev/null 2> "$runs/normal.err"
  if "$programs/on-fairkv-3" "${args[@]}" --quiet --max-new-tokens 12 --solo-devices \
      --dump-logits "$runs/solo.logits" > /dev/null 2> "$runs/solo.err" &&
      "$programs/on-fairkv-3" "${args[@]}" --quiet --max-new-tokens 12 --solo-devices \
      --cuda-graphs --dump-logits "$runs/solo-graphs.logits" > /dev/null 2> "$runs/solo-graphs.err" &&
      [ -s "$runs/solo.logits" ] && cmp -s "$runs/solo.logits" "$runs/solo-graphs.logits" &&
      cmp -s <(grep '^step 0 ' "$runs/normal.logits") <(grep '^step 0 ' "$runs/solo.logits"); then
    echo "  --solo-devices --cuda-graphs, on-fairkv-3: the eager solo run's logits, bit for bit; the prefill a normal run's"
  else
    echo "  --solo-devices --cuda-graphs, on-fairkv-3: DIFFERS or failed: $(tail -1 "$runs/solo-graphs.err")"
    programs_failed=1
  fi
  if [ $programs_failed = 0 ]; then
    echo "compiled programs on the CUDA backend: PASS"
  else
    echo "compiled programs on the CUDA backend: FAIL"
    failed=1
  fi
  echo "-- programs: $((SECONDS - started)) s"
fi
if wants times; then
  started=$SECONDS
  # Every device of G = 8 tp and fairkv plans (llama-3-8b shape, 8 of its
  # layers, HeadKV budgets), compiled by gpu-prepare.sh, alone on this GPU:
  # the per-device compiled step times, the predicted 8-GPU step ratio and
  # the planner's error; and the unsharded program's step, its weights + KV
  # reads as a share of the copy bandwidth measured above. Its section goes
  # to $FAIRKV_GPU_RESULTS (default $build_dir/RESULTS-gpu.md) and stdout.
  if [ -d "$build_dir/device-times" ]; then
    echo "== every device of G = 8 plans alone (fairkv-bench-device-times)"
    timeout 420 "$build_dir/bin/fairkv-bench-device-times" --backend cuda \
      --profiles "$(dirname "$profile")" --work "$build_dir/device-times" \
      ${copy_gbps:+--copy-gbps "$copy_gbps"} \
      --results "${FAIRKV_GPU_RESULTS:-$build_dir/RESULTS-gpu.md}" || failed=1
  else
    echo "== every device of G = 8 plans alone: skipped (gpu-prepare.sh compiles them)"
  fi
  echo "-- times: $((SECONDS - started)) s"
fi
if wants profile; then
  started=$SECONDS
  ncu_bin=$(command -v ncu || ls -d /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1 || true)
  if [ -z "$ncu_bin" ]; then
    echo "== decode attention under Nsight Compute: skipped (no ncu on this machine)"
  else
    # A diagnosis, not a check: what ncu cannot do here (no permission for
    # the counters, say) is reported and fails nothing.
    echo "== decode attention under Nsight Compute ($ncu_bin)"
    report="${FAIRKV_GPU_LOGS:-$build_dir}/ncu-attention.txt"
    if "$ncu_bin" --profile-from-start off --section SpeedOfLight \
        --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
        --section WarpStateStats --section SchedulerStats \
        "$build_dir/bin/fairkv-bench-gpu" "$profile" --profile-attention > "$report" 2>&1; then
      grep -E "^  [0-9]+\. |Context [0-9]+, Stream|^ +(SM Frequency|DRAM Frequency|Duration|DRAM Throughput|Memory Throughput|Compute \(SM\) Throughput|Mem Busy|Max Bandwidth|L2 Hit Rate|Registers Per Thread|Theoretical Occupancy|Achieved Occupancy|Issue Slots Busy|Warp Cycles Per Issued Instruction|No Eligible) " "$report" || true
    else
      echo "  ncu failed (diagnosis only): $(grep -m1 -E "ERR|rror" "$report" || tail -1 "$report")"
    fi
    echo "  the whole report: $report"
  fi
  echo "-- profile: $((SECONDS - started)) s"
fi
exit $failed

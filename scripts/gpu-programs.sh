#!/usr/bin/env bash
# Prepares, on the build machine, what scripts/gpu-check.sh needs to check
# the CUDA backend of compiled programs on a GPU machine (which has no MLIR
# to compile them): a 2-layer model with head_dim 64 (12 KV heads, GQA
# group 2), its random bf16 weights (exact on both backends),
# programs for G = 1 and tp / fairkv at G = 2, 3, 4 (some also with fused
# projection + all_reduce), and the CPU backend's
# tokens and logits for the same prompts (prompts of 20 to 40 tokens,
# compression on); and for every model family of the Hugging Face fixtures,
# programs for G = 1 and fairkv G = 2 with the CPU backend's logits.
# Writes build/gpu-programs/.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${FAIRKV_BUILD_DIR:-build}
out="$build_dir/gpu-programs"
rm -rf "$out" && mkdir -p "$out"
fairkv="$build_dir/bin/fairkv"
echo '{"num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 24, "num_key_value_heads": 12, "head_dim": 64, "intermediate_size": 768, "vocab_size": 768, "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "torch_dtype": "float32"}' > "$out/config.json"
"$fairkv" weights --model "$out/config.json" --seed 21 --dtype bf16 -o "$out/weights.safetensors"
# Compression on (skewed budgets of 24 tokens on average) and off (every
# head keeps every token).
for mode in on off; do
  if [ $mode = on ]; then
    profile=(--profile synthetic --seed 3 --mean-tokens 24 --decode-tokens 6)
  else
    profile=(--profile uniform)
  fi
  "$fairkv" compile --model "$out/config.json" "${profile[@]}" --devices 1 -o "$out/$mode-g1"
  for g in 2 3 4; do
    for s in tp fairkv; do
      "$fairkv" compile --model "$out/config.json" "${profile[@]}" --devices $g \
        --strategy $s --report "$out/$mode-$s-$g.json" -o "$out/$mode-$s-$g"
    done
  done
  # Projections fused with their all_reduce, three blocks each
  # (fairkv-overlap-collectives): G = 1 runs the NCCL two-stream path on
  # one GPU, G = 3 and 4 the rendezvous's.
  for p in g1 fairkv-3 tp-4; do
    g=${p##*-}; s=${p%-*}; [ $p = g1 ] && g=1 && s=tp
    "$fairkv" compile --model "$out/config.json" "${profile[@]}" --devices $g \
      --strategy $s --overlap-chunks 3 --overlap-min-chunk-bytes 0 \
      -o "$out/$mode-$p-fused"
  done
  # The CPU reference.
  "$out/$mode-g1" --weights "$out/weights.safetensors" --random-prompts 6 \
    --prompt-len 40 --min-prompt-len 20 --max-new-tokens 6 --seed 5 --quiet \
    --dump-logits "$out/$mode.logits" > "$out/$mode.tokens"
done
# Ada-KV (floor 0.2) over the compression-on programs.
"$out/on-g1" --weights "$out/weights.safetensors" --random-prompts 6 \
  --prompt-len 40 --min-prompt-len 20 --max-new-tokens 6 --seed 5 --quiet \
  --kv-method adakv --adakv-alpha 0.2 --dump-logits "$out/adakv.logits" > "$out/adakv.tokens"
grep -h '"extra_replicas"' "$out"/on-fairkv-*.json
# Every model family of the Hugging Face fixtures (test/Fixtures/hf): G = 1
# and fairkv at G = 2 with copies (skewed budgets above every request's
# length), and the CPU backend's logits for the fixture's prompts, fed
# transformers' tokens.
hf=test/Fixtures/hf
for m in llama-gqa llama-mha-tied llama-llama3 llama-yarn mistral qwen2 qwen3 llama-gqa-bf16; do
  d="$out/hf/$m"
  mkdir -p "$d"
  cp "$hf/$m/model.safetensors" "$hf/$m/prompts.txt" "$hf/$m/tokens.txt" "$d/"
  if [ $m = llama-mha-tied ]; then
    tokens='[[400, 40, 40, 40, 40, 40, 40, 40], [40, 40, 300, 40, 40, 40, 40, 200]]'
  else
    tokens='[[400, 40, 40, 40], [40, 40, 300, 40]]'
  fi
  echo "{\"format\": \"fairkv-budgets/v1\", \"source\": \"gpu-check:skewed\", \"tokens\": $tokens}" > "$d/budgets.json"
  "$fairkv" compile --model "$hf/$m/config.json" --profile "$d/budgets.json" --devices 1 -o "$d/g1"
  "$fairkv" compile --model "$hf/$m/config.json" --profile "$d/budgets.json" --devices 2 \
    --strategy fairkv -o "$d/fairkv-2"
  "$d/g1" --weights "$d/model.safetensors" --prompts "$d/prompts.txt" --max-new-tokens 6 \
    --quiet --force-tokens "$d/tokens.txt" --dump-logits "$d/cpu.logits" > "$d/cpu.tokens"
done
# The server (scripts/serve-check.sh): the gpt2-bytelevel fixture tokenizer
# (501 ids, within the model's 768) and six text prompts.
mkdir -p "$out/serve"
cp test/Fixtures/tokenizers/gpt2-bytelevel/tokenizer.json "$out/serve/"
head -6 test/Fixtures/text/llama/prompts.txt > "$out/serve/prompts.txt"
# What the CUDA backend refuses before any work (the CPU backend computes
# it): dynamic rope past max_position_embeddings, a sliding window shorter
# than a request.
for m in llama-dynamic mistral-window-8; do
  d="$out/hf-refused/$m"
  mkdir -p "$d"
  cp "$hf/$m/model.safetensors" "$hf/$m/prompts.txt" "$d/"
  "$fairkv" compile --model "$hf/$m/config.json" --profile uniform --devices 1 -o "$d/g1"
done
echo "gpu-programs: wrote $out"

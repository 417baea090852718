//===- FairKVOps.td - FairKV op definitions ----------------*- tablegen -*-===//
//
// The ops of the fairkv dialect: the model ops of a decoder-only transformer
// and the sharding ops that the placement passes insert.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_DIALECT_FAIRKV_IR_FAIRKVOPS_TD
#define FAIRKV_DIALECT_FAIRKV_IR_FAIRKVOPS_TD

include "fairkv/Dialect/FairKV/IR/FairKVBase.td"
include "fairkv/Dialect/FairKV/IR/FairKVAttrs.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

// Activations: [batch, seq, features] or [batch, seq, heads, head_dim].
def FairKV_Hidden : TensorRankOf<[AnyFloat], [3]>;
def FairKV_Heads : TensorRankOf<[AnyFloat], [4]>;
def FairKV_Activation : TensorRankOf<[AnyFloat], [3, 4]>;
def FairKV_Matrix : TensorRankOf<[AnyFloat], [2]>;
def FairKV_Vector : TensorRankOf<[AnyFloat], [1]>;
def FairKV_TokenIds : TensorRankOf<[I64], [2]>;

def FairKV_KVCacheResource
    : Resource<"::mlir::fairkv::KVCacheResource">;

// Communication between devices: collectives are never erased or reordered
// against each other, since every participating device must issue them.
def FairKV_CommResource : Resource<"::mlir::fairkv::CommResource">;
def FairKV_Collective : MemoryEffects<[MemRead<FairKV_CommResource>,
                                       MemWrite<FairKV_CommResource>]>;

//===----------------------------------------------------------------------===//
// Model ops
//===----------------------------------------------------------------------===//

def FairKV_WeightOp : FairKV_Op<"weight", [Pure]> {
  let summary = "A named model weight, or the slice of it a device owns";
  let description = [{
    Refers to the weight tensor `name` (a Hugging Face safetensors name) of
    the model. The runtime loads it. In a sharded program the op names the
    slice a device loads: the half-open `[start, end)` ranges (given as a flat
    list of pairs) along dimension `slice_dim` of the full tensor of shape
    `full_shape`, concatenated in order.

    Example:

    ```mlir
    %wq = fairkv.weight "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    // Rows 0..15 and 48..63 (kv heads 0 and 3 of a 4-head model):
    %wq0 = fairkv.weight "model.layers.0.self_attn.q_proj.weight"
        slice 0 [0, 16, 48, 64] of [64, 64] : tensor<32x64xf32>
    ```

    **Constraints:**
    - `name` is not empty;
    - the result has a static shape;
    - a slice has `slice_dim` inside `full_shape`, at least one range, ranges
      that are non-empty, ascending, disjoint and inside the dimension, and a
      result whose shape is `full_shape` with dimension `slice_dim` replaced
      by the total length of the ranges.
  }];
  let arguments = (ins StrAttr:$name,
                       OptionalAttr<I64Attr>:$slice_dim,
                       OptionalAttr<DenseI64ArrayAttr>:$ranges,
                       OptionalAttr<DenseI64ArrayAttr>:$full_shape);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $name (`slice` $slice_dim^ $ranges `of` $full_shape)? attr-dict
    `:` type($result)
  }];
  let hasVerifier = 1;
  let builders = [
    OpBuilder<(ins "::mlir::Type":$type, "::llvm::StringRef":$name), [{
      build($_builder, $_state, type, $_builder.getStringAttr(name),
            /*slice_dim=*/nullptr, /*ranges=*/nullptr, /*full_shape=*/nullptr);
    }]>
  ];
  let extraClassDeclaration = [{
    bool isSlice() { return getSliceDim().has_value(); }
  }];
}

def FairKV_EmbeddingOp : FairKV_Op<"embedding", [Pure]> {
  let summary = "Token embedding lookup";
  let description = [{
    `result[b, s, :] = table[ids[b, s], :]`.

    Example:

    ```mlir
    %h = fairkv.embedding %ids, %table
        : (tensor<?x?xi64>, tensor<256x64xf32>) -> tensor<?x?x64xf32>
    ```

    **Constraints:**
    - the table is `[vocab, hidden]` and the result `[batch, seq, hidden]`;
    - the result's batch and seq dims match `ids`;
    - the result element type is the table's;
    - with a model config: `vocab` and `hidden` match it.
  }];
  let arguments = (ins FairKV_TokenIds:$ids, FairKV_Matrix:$table);
  let results = (outs FairKV_Hidden:$result);
  let assemblyFormat = "$ids `,` $table attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def FairKV_RMSNormOp : FairKV_Op<"rms_norm",
    [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "RMS normalization over the last dimension";
  let description = [{
    `result = input / sqrt(mean(input^2, -1) + eps) * weight`. On hidden
    states ([batch, seq, hidden]) it serves as the per-layer input and
    post-attention norms and as the final norm; on heads ([batch, seq,
    heads, head_dim]) as Qwen3's per-head `q_norm` and `k_norm`, one weight
    of `head_dim` shared by every head (so a device's heads need no slice
    of it).

    Example:

    ```mlir
    %n = fairkv.rms_norm %h, %g eps = 1.000000e-05
        : tensor<?x?x64xf32>, tensor<64xf32>
    %qn = fairkv.rms_norm %q, %qg eps = 1.000000e-06
        : tensor<?x?x4x16xf32>, tensor<16xf32>
    ```

    **Constraints:**
    - `weight` has as many elements as the input's last dimension;
    - the element types of input and weight are equal;
    - `eps` is positive;
    - with a model config: the last dimension is `hidden` (hidden states) or
      `head_dim` (heads, only for a model with `qk_norm`).
  }];
  let arguments = (ins FairKV_Activation:$input, FairKV_Vector:$weight, F64Attr:$eps);
  let results = (outs FairKV_Activation:$result);
  let assemblyFormat =
      "$input `,` $weight `eps` `=` $eps attr-dict `:` type($input) `,` type($weight)";
  let hasVerifier = 1;
}

def FairKV_QKVProjOp : FairKV_Op<"qkv_proj", [Pure, AttrSizedOperandSegments]> {
  let summary = "Query, key and value projections";
  let description = [{
    Projects `input` ([batch, seq, hidden]) with `wq` ([heads * head_dim,
    hidden]), `wk` and `wv` ([kv_heads * head_dim, hidden], Hugging Face
    out x in layout) into `q` ([batch, seq, heads, head_dim]) and `k`, `v`
    ([batch, seq, kv_heads, head_dim]). Query heads `g * heads / kv_heads` to
    `(g + 1) * heads / kv_heads - 1` form the GQA group of KV head `g`; the
    placement always keeps a group together. With `bias`, the three biases
    `bq` ([heads * head_dim]), `bk` and `bv` ([kv_heads * head_dim]) are
    added (Qwen2); a device's slice of a head carries the same slice of its
    bias.

    Example:

    ```mlir
    %q, %k, %v = fairkv.qkv_proj %n, %wq, %wk, %wv
        : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>,
           tensor<32x64xf32>)
        -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
    %q2, %k2, %v2 = fairkv.qkv_proj %n, %wq, %wk, %wv bias %bq, %bk, %bv
        : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>,
           tensor<32x64xf32>, tensor<64xf32>, tensor<32xf32>, tensor<32xf32>)
        -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
    ```

    **Constraints:**
    - query heads are divisible by KV heads;
    - `k` and `v` have the same type; all results share `head_dim`;
    - `wq` is `[heads * head_dim, hidden]`, `wk` and `wv` are
      `[kv_heads * head_dim, hidden]`;
    - biases come all three or none; `bq` is `[heads * head_dim]`, `bk` and
      `bv` are `[kv_heads * head_dim]`;
    - batch and seq dims of the results match the input;
    - with a model config: heads, KV heads, `head_dim` and `hidden` match
      it, and biases are present exactly when it has `qkv_bias`.
  }];
  let arguments = (ins FairKV_Hidden:$input, FairKV_Matrix:$wq,
                       FairKV_Matrix:$wk, FairKV_Matrix:$wv,
                       Optional<FairKV_Vector>:$bq,
                       Optional<FairKV_Vector>:$bk,
                       Optional<FairKV_Vector>:$bv);
  let results = (outs FairKV_Heads:$q, FairKV_Heads:$k, FairKV_Heads:$v);
  let assemblyFormat = [{
    $input `,` $wq `,` $wk `,` $wv (`bias` $bq^ `,` $bk `,` $bv)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def FairKV_RotaryOp : FairKV_Op<"rotary",
    [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "Rotary position embedding";
  let description = [{
    Rotates each head's `(i, i + head_dim/2)` pairs by angle
    `position * inv_freq[i]` (the Llama "rotate half" convention), where
    `inv_freq[i] = theta^(-2i/head_dim)`, rescaled by `scaling` when it is
    given (the Hugging Face rope types; see `#fairkv.rope_scaling`), and
    multiplies cos and sin by the scaling's `attention_factor`. The
    frequencies and the angles are computed in float32, as transformers
    computes them. Applied to queries and keys alike.

    Example:

    ```mlir
    %qr = fairkv.rotary %q, %pos theta = 5.000000e+05
        scaling = #fairkv.rope_scaling<type = "llama3", factor = 8.000000e+00,
                                       original_max_positions = 8192>
        : tensor<?x?x4x16xf32>, tensor<?x?xi64>
    ```

    **Constraints:**
    - `head_dim` (the last dimension) is even;
    - `positions` matches the input's batch and seq dims;
    - `theta` is positive;
    - with a model config: `head_dim`, `theta` and `scaling` match it.
  }];
  let arguments = (ins FairKV_Heads:$input, FairKV_TokenIds:$positions,
                       F64Attr:$theta,
                       OptionalAttr<FairKV_RopeScalingAttr>:$scaling);
  let results = (outs FairKV_Heads:$result);
  let assemblyFormat = [{
    $input `,` $positions `theta` `=` $theta (`scaling` `=` $scaling^)?
    attr-dict `:` type($input) `,` type($positions)
  }];
  let hasVerifier = 1;
}

def FairKV_AttentionOp : FairKV_Op<"attention", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    MemoryEffects<[MemRead<FairKV_KVCacheResource>,
                   MemWrite<FairKV_KVCacheResource>]>]> {
  let summary = "Causal attention over the compressed per-KV-head cache";
  let description = [{
    Attention of layer `layer` over its KV cache, which the runtime keeps per
    request and KV head. The new tokens' keys and values are appended to the
    cache; at prefill the prompt is scored (SnapKV-style) and each KV head
    keeps at most `budgets.tokens[h]` tokens per request; at decode the
    queries attend over the kept tokens. The queries of a GQA group attend
    over their KV head's cache.

    `placement`, added by `fairkv-plan-placement`, says which devices hold
    each KV head and how copies split the batch. `grid` names the
    `shard.grid` that placement refers to.

    In a sharded program (`fairkv-shard-heads`) an attention op computes only
    some of the layer's KV heads: `kv_heads` lists their indices in the layer
    (the operands and `budgets` hold just those heads, in that order), and for
    a copied head `batch_share` names the replica whose requests it serves.

    Example:

    ```mlir
    %o = fairkv.attention %qr, %kr, %v layer 0
        budgets <tokens = [512, 96], source = "synthetic">
        placement <devices = 2, heads = [[<0, 1.0>], [<1, 1.0>]]> on @grid
        : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
        -> tensor<?x?x4x16xf32>
    ```

    **Constraints:**
    - `layer` is non-negative (and below the config's `layers`);
    - `key` and `value` have the same type; the result has the query's type;
    - query heads are divisible by KV heads, and query and KV `head_dim`,
      batch and seq dims agree;
    - one budget per KV head;
    - the placement, if any, has one entry per KV head;
    - `grid`, if given, references a `shard.grid` whose size equals the
      placement's `devices`;
    - `kv_heads`, if given, has one distinct, non-negative entry per KV head
      of the operands, each below the placement's head count;
    - `batch_share` is given only with exactly one entry in `kv_heads`, and
      then matches one of that head's replicas in the placement;
    - with a model config (unsharded programs only): heads, KV heads and
      `head_dim` match it.
  }];
  let arguments = (ins FairKV_Heads:$query, FairKV_Heads:$key,
                       FairKV_Heads:$value,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer,
                       FairKV_KVBudgetsAttr:$budgets,
                       OptionalAttr<FairKV_PlacementAttr>:$placement,
                       OptionalAttr<FlatSymbolRefAttr>:$grid,
                       OptionalAttr<DenseI64ArrayAttr>:$kv_heads,
                       OptionalAttr<FairKV_ReplicaAttr>:$batch_share);
  let results = (outs FairKV_Heads:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `layer` $layer `budgets` $budgets
    (`placement` $placement^)? (`on` $grid^)? (`kv_heads` $kv_heads^)?
    (`share` $batch_share^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def FairKV_OutProjOp : FairKV_Op<"out_proj", [Pure]> {
  let summary = "Attention output projection";
  let description = [{
    `result = reshape(input, [batch, seq, heads * head_dim]) @ wo^T` with
    `wo` of shape `[hidden, heads * head_dim]`. Under tensor parallelism this
    is the row-parallel GEMM whose partial sums the following all_reduce adds.

    Example:

    ```mlir
    %y = fairkv.out_proj %o, %wo
        : (tensor<?x?x4x16xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    ```

    **Constraints:**
    - `wo` is `[hidden, heads * head_dim]` and the result `[batch, seq,
      hidden]` with the input's batch and seq dims;
    - with a model config: heads, `head_dim` and `hidden` match it.
  }];
  let arguments = (ins FairKV_Heads:$input, FairKV_Matrix:$wo);
  let results = (outs FairKV_Hidden:$result);
  let assemblyFormat = "$input `,` $wo attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def FairKV_MLPOp : FairKV_Op<"mlp", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "Gated SiLU MLP";
  let description = [{
    `result = (silu(x @ w_gate^T) * (x @ w_up^T)) @ w_down^T`, with `w_gate`
    and `w_up` of shape `[ffn, hidden]` and `w_down` of shape `[hidden, ffn]`.

    Example:

    ```mlir
    %m = fairkv.mlp %n, %wg, %wu, %wd
        : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>,
           tensor<64x128xf32>) -> tensor<?x?x64xf32>
    ```

    **Constraints:**
    - `w_gate` and `w_up` are `[ffn, hidden]` and `w_down` is `[hidden, ffn]`
      with the input's `hidden`;
    - with a model config: `ffn` and `hidden` match it.
  }];
  let arguments = (ins FairKV_Hidden:$input, FairKV_Matrix:$w_gate,
                       FairKV_Matrix:$w_up, FairKV_Matrix:$w_down);
  let results = (outs FairKV_Hidden:$result);
  let assemblyFormat =
      "$input `,` $w_gate `,` $w_up `,` $w_down attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def FairKV_GatedActOp : FairKV_Op<"gated_act", [Pure]> {
  let summary = "The gated SiLU activation of an MLP, before its down projection";
  let description = [{
    `result = silu(x @ w_gate^T) * (x @ w_up^T)`, with `w_gate` and `w_up` of
    shape `[ffn, hidden]`: the first half of `fairkv.mlp`. It exists so that
    `fairkv-overlap-collectives` can fuse the down projection with the
    all_reduce that follows it (`fairkv.linear_all_reduce`).

    Example:

    ```mlir
    %a = fairkv.gated_act %n, %wg, %wu
        : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>)
        -> tensor<?x?x128xf32>
    ```

    **Constraints:**
    - `w_gate` and `w_up` are `[ffn, hidden]` with the input's `hidden`;
    - the result is `[batch, seq, ffn]` with the input's batch and seq dims.
  }];
  let arguments = (ins FairKV_Hidden:$input, FairKV_Matrix:$w_gate,
                       FairKV_Matrix:$w_up);
  let results = (outs FairKV_Hidden:$result);
  let assemblyFormat =
      "$input `,` $w_gate `,` $w_up attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def FairKV_AddOp : FairKV_Op<"add", [Pure, Commutative,
                                      SameOperandsAndResultType]> {
  let summary = "Residual add";
  let description = [{
    Elementwise `lhs + rhs`: the residual connections around attention and
    the MLP.

    Example:

    ```mlir
    %r = fairkv.add %h, %y : tensor<?x?x64xf32>
    ```

    **Constraints:**
    - operands and result have the same type.
  }];
  let arguments = (ins FairKV_Hidden:$lhs, FairKV_Hidden:$rhs);
  let results = (outs FairKV_Hidden:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def FairKV_LastPositionOp : FairKV_Op<"last_position", [Pure]> {
  let summary = "Each row's hidden state at its last position";
  let description = [{
    `result[b, 0, :] = input[b, seq - 1, :]`. Prompts are left-padded, so
    the last position is every row's newest token, the only one whose
    logits choose the next token: the importer places it before the final
    norm, so that a prefill normalizes and projects onto the vocabulary one
    position per row, not every prompt token (Hugging Face's
    `logits_to_keep = 1`; the final norm is per position, so the logits are
    the same). At the Llama 3 vocabulary a prefill of 64 prompts of 640
    tokens would otherwise make 21 GB of logits only to read 33 MB.

    Example:

    ```mlir
    %l = fairkv.last_position %h : tensor<?x?x64xf32> -> tensor<?x1x64xf32>
    ```

    **Constraints:**
    - the result's seq dim is 1; its batch and feature dims and its element
      type are the input's.
  }];
  let arguments = (ins FairKV_Hidden:$input);
  let results = (outs FairKV_Hidden:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def FairKV_LMHeadOp : FairKV_Op<"lm_head", [Pure]> {
  let summary = "Projection onto the vocabulary";
  let description = [{
    `logits = input @ weight^T` with `weight` of shape `[vocab, hidden]`.

    Example:

    ```mlir
    %l = fairkv.lm_head %n, %wl
        : (tensor<?x?x64xf32>, tensor<256x64xf32>) -> tensor<?x?x256xf32>
    ```

    **Constraints:**
    - `weight` is `[vocab, hidden]` with the input's `hidden`; the result is
      `[batch, seq, vocab]` with the input's batch and seq dims;
    - with a model config: `vocab` and `hidden` match it.
  }];
  let arguments = (ins FairKV_Hidden:$input, FairKV_Matrix:$weight);
  let results = (outs FairKV_Hidden:$logits);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def FairKV_GreedySampleOp : FairKV_Op<"greedy_sample", [Pure]> {
  let summary = "Greedy next-token choice from the last position";
  let description = [{
    `tokens[b] = argmax_v logits[b, seq - 1, v]`; ties go to the smallest
    token id, so every backend picks the same token.

    Example:

    ```mlir
    %t = fairkv.greedy_sample %l : tensor<?x?x256xf32> -> tensor<?xi64>
    ```

    **Constraints:**
    - the result's batch dim matches the logits'.
  }];
  let arguments = (ins FairKV_Hidden:$logits);
  let results = (outs TensorRankOf<[I64], [1]>:$tokens);
  let assemblyFormat = "$logits attr-dict `:` type($logits) `->` type($tokens)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Sharding ops
//===----------------------------------------------------------------------===//

class FairKV_GridOp<string mnemonic, list<Trait> traits = []>
    : FairKV_Op<mnemonic, !listconcat(traits,
        [DeclareOpInterfaceMethods<SymbolUserOpInterface>])>;

def FairKV_ReplicateOp : FairKV_GridOp<"replicate", [Pure]> {
  let summary = "Split the batch between the copies of a KV head";
  let description = [{
    Marks the input of copied KV head `kv_head` as served by several replicas:
    on each device of `replicas`, the result holds only the batch rows (whole
    requests) of that replica's share. Non-batch dimensions are unchanged.
    It moves no data between devices: every device already holds the whole
    batch of its input.

    Which requests a replica serves is decided at admission, the same way on
    every device: in request order, each request goes to the replica with
    the least KV of that head relative to its share, a request's KV being
    min(prompt length, `budget`) plus the tokens still to decode (its whole
    prompt when `budget` is absent). `fairkv-shard-heads` sets `budget` to
    the head's KV budget; `fairkv.gather` and `fairkv.add_rows` carry the
    same attributes and so name the same requests.

    Canonicalization folds a copied head's gather into the all_reduce that
    follows the row-parallel output projection:
    `replicate(out_proj(gather(x), w))` becomes `out_proj(x, w)` (the output
    projection works row by row), so each replica contributes only its own
    rows through `fairkv.add_rows` and no extra collective remains.

    Example:

    ```mlir
    %local = fairkv.replicate %x head 1
        replicas [#fairkv.replica<1, 2.500000e-01>, #fairkv.replica<2, 7.500000e-01>]
        on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
    ```

    **Constraints:**
    - `kv_head` and `budget` are non-negative;
    - there is at least one replica, on distinct devices inside the grid;
    - shares are in (0, 1] and sum to 1 (within 1e-6);
    - input and result have the same rank, element type and non-batch dims;
    - `grid` references a `shard.grid`.
  }];
  let arguments = (ins AnyRankedTensor:$input,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$kv_head,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntNonNegative]>>:$budget,
                       TypedArrayAttrBase<FairKV_ReplicaAttr, "replica list">:$replicas,
                       FlatSymbolRefAttr:$grid);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `head` $kv_head (`budget` $budget^)? `replicas` $replicas `on` $grid attr-dict
    `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

def FairKV_GatherOp : FairKV_GridOp<"gather", [FairKV_Collective]> {
  let summary = "Reassemble the batch rows of a copied KV head";
  let description = [{
    The inverse of `fairkv.replicate`: every replica contributes the rows of
    its share and the result holds the whole batch on every device of
    `replicas` (a collective among them). When the consumer is the
    row-parallel output projection the gather folds into the all_reduce that
    already follows it (each replica contributes its own rows, zeros
    elsewhere); see `fairkv.replicate`.

    Example:

    ```mlir
    %full = fairkv.gather %local head 1
        replicas [#fairkv.replica<1, 2.500000e-01>, #fairkv.replica<2, 7.500000e-01>]
        on @grid : tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
    ```

    **Constraints:** the same as `fairkv.replicate`.
  }];
  let arguments = (ins FairKV_Activation:$input,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$kv_head,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntNonNegative]>>:$budget,
                       TypedArrayAttrBase<FairKV_ReplicaAttr, "replica list">:$replicas,
                       FlatSymbolRefAttr:$grid);
  let results = (outs FairKV_Activation:$result);
  let assemblyFormat = [{
    $input `head` $kv_head (`budget` $budget^)? `replicas` $replicas `on` $grid attr-dict
    `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

def FairKV_AddRowsOp : FairKV_GridOp<"add_rows", [Pure,
    AllTypesMatch<["acc", "result"]>]> {
  let summary = "Add a replica's batch rows into a whole-batch tensor";
  let description = [{
    `result = acc`, plus `rows` added at the batch rows of this device's
    replica of copied KV head `kv_head` (the rows `fairkv.replicate` gave it).
    No data moves between devices: it is how a copy contributes its requests'
    part of the output projection to the partial sum that the following
    all_reduce adds up.

    Example:

    ```mlir
    %acc2 = fairkv.add_rows %acc, %rows head 1
        replicas [#fairkv.replica<1, 2.500000e-01>, #fairkv.replica<2, 7.500000e-01>]
        on @grid : tensor<?x?x64xf32>, tensor<?x?x64xf32>
    ```

    **Constraints:**
    - the constraints of `fairkv.replicate` on `kv_head`, `replicas` and
      `grid`;
    - `rows` has the rank, element type and non-batch dims of `acc`.
  }];
  let arguments = (ins FairKV_Activation:$acc, FairKV_Activation:$rows,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$kv_head,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntNonNegative]>>:$budget,
                       TypedArrayAttrBase<FairKV_ReplicaAttr, "replica list">:$replicas,
                       FlatSymbolRefAttr:$grid);
  let results = (outs FairKV_Activation:$result);
  let assemblyFormat = [{
    $acc `,` $rows `head` $kv_head (`budget` $budget^)? `replicas` $replicas `on` $grid attr-dict
    `:` type($acc) `,` type($rows)
  }];
  let hasVerifier = 1;
}

def FairKV_ZerosLikeOp : FairKV_Op<"zeros_like",
    [Pure, AllTypesMatch<["like", "result"]>]> {
  let summary = "A zero tensor of another tensor's shape";
  let description = [{
    The partial sum of a device that holds no KV head of a layer: it still
    takes part in the layer's all_reduce.

    Example:

    ```mlir
    %z = fairkv.zeros_like %h : tensor<?x?x64xf32>
    ```

    **Constraints:**
    - the result has the type of `like`.
  }];
  let arguments = (ins FairKV_Activation:$like);
  let results = (outs FairKV_Activation:$result);
  let assemblyFormat = "$like attr-dict `:` type($like)";
}

def FairKV_AllReduceOp : FairKV_GridOp<"all_reduce",
    [FairKV_Collective, SameOperandsAndResultType]> {
  let summary = "All-reduce over every device of a grid";
  let description = [{
    Every device receives the elementwise `reduction` (sum or max) of the
    inputs of all devices of `grid`. Follows the row-parallel output
    projection and the MLP down projection.

    Example:

    ```mlir
    %s = fairkv.all_reduce %y on @grid reduction = sum : tensor<?x?x64xf32>
    ```

    **Constraints:**
    - operand and result have the same type;
    - `grid` references a `shard.grid`.
  }];
  let arguments = (ins FairKV_Activation:$input, FlatSymbolRefAttr:$grid,
                       FairKV_ReductionKind:$reduction);
  let results = (outs FairKV_Activation:$result);
  let assemblyFormat =
      "$input `on` $grid `reduction` `=` $reduction attr-dict `:` type($result)";
}

def FairKV_LinearAllReduceOp : FairKV_GridOp<"linear_all_reduce",
    [FairKV_Collective, AttrSizedOperandSegments]> {
  let summary = "A row-parallel projection fused with the all_reduce of its result";
  let description = [{
    `result = all_reduce_sum(reshape(input, [batch, seq, K]) @ weight^T +
    addend)` over every device of `grid`, with `weight` of shape
    `[hidden, K]` and `K` the product of the input's non-batch, non-seq
    dims. The projection or the addend may be absent (not both): in a layer
    with a copied KV head, the addend holds the copies' rows of this device
    (`add_rows` on zeros), and a device that holds only copies has no
    projection. It replaces an `out_proj` or a down projection (and the
    `add_rows` of copies) followed by `all_reduce` (see
    `fairkv-overlap-collectives`), so the runtime can overlap the two: it
    computes the result in up to `chunks` column blocks and reduces block
    `c` while it computes block `c + 1` (a separate stream on GPUs). A block
    holds at least `min_chunk_bytes` of fp32 result, so small (decode-sized)
    reductions stay whole: there the collective's latency, not its
    bandwidth, dominates, and splitting it would only add latency. The
    number of blocks depends only on the shape, so every device splits
    alike; every device of the grid must issue the same `linear_all_reduce`
    (same `chunks` and `min_chunk_bytes`) at the same point of its program.

    The result is that of `all_reduce` of the unfused partial sum, each
    device adding the devices' blocks in device order, as `all_reduce`
    does; only the copies' rows are added to the projection in another
    order (`p + (c1 + c2)`, not `(p + c1) + c2`).

    Example:

    ```mlir
    %r = fairkv.linear_all_reduce proj %o, %wo on @grid chunks = 4
        min_chunk_bytes = 1048576
        : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    %s = fairkv.linear_all_reduce proj %o, %wo plus %copies on @grid
        chunks = 4 min_chunk_bytes = 1048576
        : (tensor<?x?x2x16xf32>, tensor<64x32xf32>, tensor<?x?x64xf32>)
        -> tensor<?x?x64xf32>
    %t = fairkv.linear_all_reduce plus %copies on @grid chunks = 4
        min_chunk_bytes = 1048576 : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    ```

    **Constraints:**
    - `input` and `weight` are both present or both absent, and at least
      one of the projection and `addend` is present;
    - `weight` is `[hidden, K]`, the result `[batch, seq, hidden]` with the
      input's batch and seq dims, and `addend` has the result's type;
    - `chunks` >= 1 and `min_chunk_bytes` >= 0;
    - `grid` references a `shard.grid`.
  }];
  let arguments = (ins Optional<FairKV_Activation>:$input,
                       Optional<FairKV_Matrix>:$weight,
                       Optional<FairKV_Hidden>:$addend,
                       FlatSymbolRefAttr:$grid,
                       ConfinedAttr<I64Attr, [IntPositive]>:$chunks,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$min_chunk_bytes);
  let results = (outs FairKV_Hidden:$result);
  let assemblyFormat = [{
    (`proj` $input^ `,` $weight)? (`plus` $addend^)? `on` $grid
    `chunks` `=` $chunks `min_chunk_bytes` `=` $min_chunk_bytes attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def FairKV_AllGatherOp : FairKV_GridOp<"all_gather", [FairKV_Collective]> {
  let summary = "All-gather over every device of a grid";
  let description = [{
    Concatenates the inputs of all devices of `grid`, in device order, along
    dimension `axis`; every device receives the result. Used for the
    vocab-parallel LM head.

    Example:

    ```mlir
    %g = fairkv.all_gather %l on @grid axis = 2
        : tensor<?x?x64xf32> -> tensor<?x?x256xf32>
    ```

    **Constraints:**
    - `axis` is a dimension of the input;
    - input and result have the same rank and element type and equal dims
      except `axis`;
    - when static, result dim `axis` = input dim `axis` x grid size;
    - `grid` references a `shard.grid`.
  }];
  let arguments = (ins FairKV_Activation:$input, FlatSymbolRefAttr:$grid,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$axis);
  let results = (outs FairKV_Activation:$result);
  let assemblyFormat = [{
    $input `on` $grid `axis` `=` $axis attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // FAIRKV_DIALECT_FAIRKV_IR_FAIRKVOPS_TD

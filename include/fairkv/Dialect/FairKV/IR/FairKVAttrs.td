//===- FairKVAttrs.td - FairKV attributes ------------------*- tablegen -*-===//
//
// Model configuration, per-layer KV budgets, head placement and the enums of
// the fairkv dialect.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_DIALECT_FAIRKV_IR_FAIRKVATTRS_TD
#define FAIRKV_DIALECT_FAIRKV_IR_FAIRKVATTRS_TD

include "fairkv/Dialect/FairKV/IR/FairKVBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def FairKV_ReductionKind : I32EnumAttr<"ReductionKind",
    "reduction applied by an all_reduce", [
      I32EnumAttrCase<"Sum", 0, "sum">,
      I32EnumAttrCase<"Max", 1, "max">
    ]> {
  let cppNamespace = "::mlir::fairkv";
}

//===----------------------------------------------------------------------===//
// ModelConfigAttr
//===----------------------------------------------------------------------===//

def FairKV_RopeScalingAttr : FairKV_Attr<"RopeScaling", "rope_scaling"> {
  let summary = "How rotary frequencies are rescaled (a Hugging Face rope type)";
  let description = [{
    The rope types of transformers' `modeling_rope_utils.py`, with their
    parameters as a `config.json` gives them in `rope_parameters` (or
    `rope_scaling` in older checkpoints). The default frequencies are
    `theta^(-2i/head_dim)`; then

    - `linear`: every frequency is divided by `factor`;
    - `dynamic`: NTK scaling past `original_max_positions` (the config's
      `max_position_embeddings`); below it, the default frequencies. FairKV
      computes only positions below it; a request that would reach it is
      refused before any work;
    - `llama3` (Llama 3.1-3.3): wavelengths above
      `original_max_positions / low_freq_factor` are divided by `factor`,
      those below `original_max_positions / high_freq_factor` kept, and
      those between blended smoothly;
    - `yarn`: a ramp between interpolated and extrapolated frequencies over
      the dimensions between the correction bounds of `beta_fast` and
      `beta_slow` (rounded outwards when `truncate`), and cos/sin multiplied
      by `attention_factor` (from `factor`, or `mscale`/`mscale_all_dim`,
      when the config gives none; always 1 for the other types).

    Parameters a type does not use keep their defaults.

    Example:

    ```mlir
    #fairkv.rope_scaling<type = "llama3", factor = 8.000000e+00,
        original_max_positions = 8192>
    ```

    **Constraints:**
    - `type` is `linear`, `dynamic`, `llama3` or `yarn`;
    - `factor` and `attention_factor` are positive;
    - `llama3`, `yarn` and `dynamic` have a positive `original_max_positions`;
    - `llama3` has `high_freq_factor > low_freq_factor`.
  }];
  let parameters = (ins
    StringRefParameter<"rope type">:$type,
    APFloatParameter<"frequency scaling factor">:$factor,
    DefaultValuedParameter<"int64_t", "0">:$original_max_positions,
    DefaultValuedParameter<"::llvm::APFloat", "::llvm::APFloat(1.0)",
                           "llama3 low_freq_factor">:$low_freq_factor,
    DefaultValuedParameter<"::llvm::APFloat", "::llvm::APFloat(4.0)",
                           "llama3 high_freq_factor">:$high_freq_factor,
    DefaultValuedParameter<"::llvm::APFloat", "::llvm::APFloat(32.0)",
                           "yarn beta_fast">:$beta_fast,
    DefaultValuedParameter<"::llvm::APFloat", "::llvm::APFloat(1.0)",
                           "yarn beta_slow">:$beta_slow,
    DefaultValuedParameter<"bool", "true">:$truncate,
    DefaultValuedParameter<"::llvm::APFloat", "::llvm::APFloat(1.0)",
                           "yarn cos/sin multiplier">:$attention_factor
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The model library's description of this rope.
    ::fairkv::model::RopeScaling toRopeScaling() const;
  }];
}

def FairKV_ModelConfigAttr : FairKV_Attr<"ModelConfig", "model_config"> {
  let summary = "Everything about a decoder-only transformer that changes what it computes";
  let description = [{
    The configuration of a model of one of the families FairKV implements
    (`family`: `llama`, `mistral`, `qwen2` or `qwen3`, Hugging Face's
    `model_type`), read from its `config.json`: `layers` decoder layers,
    model width `hidden`, `heads` query heads and `kv_heads` KV heads of
    width `head_dim` (grouped query attention: `heads / kv_heads` query
    heads share one KV head), gated SiLU MLP width `ffn`, vocabulary size
    `vocab`, rotary base `rope_theta` with an optional `rope_scaling`, RMSNorm
    epsilon `norm_eps` and the storage type of the weights `dtype`.
    `hidden` need not equal `heads * head_dim` (Mistral-Small-24B has 5120
    against 32 x 128).

    The family's options: `max_positions` (`max_position_embeddings`, 0 when
    unknown), `tie_word_embeddings` (the LM head reads
    `model.embed_tokens.weight`), `qkv_bias` (q, k and v projections carry
    biases: qwen2), `qk_norm` (per-head RMSNorm of q and k before rotary:
    qwen3) and `sliding_window` (mistral; 0: none).

    It is attached as `fairkv.config` to an enclosing op, normally the module;
    the ops of the dialect check their shapes and options against it.

    Example:

    ```mlir
    module attributes {fairkv.config = #fairkv.model_config<layers = 2,
        hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128,
        vocab = 256, rope_theta = 1.000000e+04, norm_eps = 1.000000e-05,
        dtype = f32, family = "llama", max_positions = 2048,
        tie_word_embeddings = true>} {}
    ```

    **Constraints:**
    - `layers`, `hidden`, `heads`, `kv_heads`, `head_dim`, `ffn` and `vocab`
      are positive;
    - `heads` is divisible by `kv_heads`;
    - `head_dim` is even (rotary embedding rotates pairs);
    - `rope_theta` and `norm_eps` are positive;
    - `dtype` is `f32`, `f16` or `bf16`;
    - `family` is `llama`, `mistral`, `qwen2` or `qwen3`; `qkv_bias` only
      for qwen2 (and always there), `qk_norm` only for qwen3 (and always
      there), `sliding_window` only for mistral;
    - `max_positions` and `sliding_window` are not negative.
  }];
  let parameters = (ins
    "int64_t":$layers,
    "int64_t":$hidden,
    "int64_t":$heads,
    "int64_t":$kv_heads,
    "int64_t":$head_dim,
    "int64_t":$ffn,
    "int64_t":$vocab,
    APFloatParameter<"rotary base">:$rope_theta,
    APFloatParameter<"RMSNorm epsilon">:$norm_eps,
    "::mlir::Type":$dtype,
    StringRefParameter<"Hugging Face model_type", "\"llama\"">:$family,
    OptionalParameter<"RopeScalingAttr">:$rope_scaling,
    DefaultValuedParameter<"int64_t", "0">:$max_positions,
    DefaultValuedParameter<"bool", "false">:$tie_word_embeddings,
    DefaultValuedParameter<"bool", "false">:$qkv_bias,
    DefaultValuedParameter<"bool", "false">:$qk_norm,
    DefaultValuedParameter<"int64_t", "0">:$sliding_window
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Query heads per KV head (the GQA group size).
    int64_t getQueryGroupSize() const { return getHeads() / getKvHeads(); }
    double getRopeThetaValue() const {
      return getRopeTheta().convertToDouble();
    }
    double getNormEpsValue() const { return getNormEps().convertToDouble(); }
    /// The model library's description of this model (named `name`).
    ::fairkv::model::ModelConfig toModelConfig(::llvm::StringRef name) const;
  }];
}

//===----------------------------------------------------------------------===//
// KVBudgetsAttr
//===----------------------------------------------------------------------===//

def FairKV_KVBudgetsAttr : FairKV_Attr<"KVBudgets", "kv_budgets"> {
  let summary = "Per-KV-head KV cache budgets of one layer";
  let description = [{
    `tokens[h]` is the number of tokens of KV that KV head `h` of the layer
    keeps per request after compression. `source` says where the budgets
    came from (for example `headkv:base=512,beta=1.2,group=sum`,
    `duo:threshold=0.5,context=32768`, `uniform`), so a compiled plan can be
    traced back to its profile.

    Example:

    ```mlir
    #fairkv.kv_budgets<tokens = [512, 96], source = "synthetic:seed=1">
    ```

    **Constraints:**
    - there is at least one budget;
    - every budget is positive.
    The number of budgets equals the number of KV heads of the attention op
    that carries the attribute (checked by `fairkv.attention`).
  }];
  let parameters = (ins
    ArrayRefParameter<"int64_t", "tokens kept per KV head">:$tokens,
    StringRefParameter<"where the budgets came from">:$source
  );
  let assemblyFormat =
      "`<` `tokens` `=` custom<I64List>($tokens) `,` `source` `=` $source `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getNumKVHeads() const { return getTokens().size(); }
    /// Sum of the budgets: tokens of KV per request for the whole layer.
    int64_t getTotalTokens() const;
  }];
}

//===----------------------------------------------------------------------===//
// ReplicaAttr
//===----------------------------------------------------------------------===//

def FairKV_ReplicaAttr : FairKV_Attr<"Replica", "replica"> {
  let summary = "One copy of a KV head: its device and its batch share";
  let description = [{
    A replica of a KV head (with its whole GQA query group) lives on device
    `device` of the grid and serves the fraction `share` of the batch:
    requests are assigned whole to one replica, which holds their KV.

    Example:

    ```mlir
    #fairkv.replica<2, 5.000000e-01>
    ```

    **Constraints:**
    - `device` is non-negative;
    - `share` is in (0, 1].
  }];
  let parameters = (ins
    "int64_t":$device,
    APFloatParameter<"fraction of the batch served">:$share
  );
  let assemblyFormat = "`<` $device `,` $share `>`";
  let genVerifyDecl = 1;
  let builders = [
    AttrBuilder<(ins "int64_t":$device, "double":$share), [{
      return $_get($_ctxt, device, ::llvm::APFloat(share));
    }]>
  ];
  let extraClassDeclaration = [{
    double getShareValue() const { return getShare().convertToDouble(); }
  }];
}

//===----------------------------------------------------------------------===//
// PlacementAttr
//===----------------------------------------------------------------------===//

def FairKV_PlacementAttr : FairKV_Attr<"Placement", "placement"> {
  let summary = "Where the KV heads of one layer live, and their batch shares";
  let description = [{
    The placement of one layer over a grid of `devices` devices. Entry `h` of
    `heads` lists the replicas of KV head `h` as `<device, share>` pairs. A
    head with one replica of share 1 is placed; a head with several replicas
    is copied (Fair-Copying): each copy serves its share of the requests and
    keeps KV only for them, so KV memory is not duplicated, only the head's
    projection weights are.

    Example (4 devices; head 1 copied on devices 1 and 2 with uneven shares):

    ```mlir
    #fairkv.placement<devices = 4, heads = [[<0, 1.0>],
        [<1, 0.25>, <2, 0.75>], [<3, 1.0>]]>
    ```

    **Constraints:**
    - `devices` is positive and there is at least one KV head;
    - every KV head has at least one replica;
    - the replicas of one head are on distinct devices;
    - every device is in `[0, devices)`;
    - every share is in (0, 1] and the shares of one head sum to 1 (within
      1e-6).
    The number of heads equals the number of KV heads of the attention op
    that carries the attribute, and `devices` equals the size of its grid
    (checked by `fairkv.attention`).
  }];
  let parameters = (ins
    "int64_t":$devices,
    ArrayRefParameter<"::mlir::ArrayAttr", "replicas of each KV head">:$heads
  );
  let assemblyFormat =
      "`<` `devices` `=` $devices `,` `heads` `=` custom<HeadReplicas>($heads) `>`";
  let genVerifyDecl = 1;
  let builders = [
    AttrBuilder<(ins "int64_t":$devices,
        "::llvm::ArrayRef<::llvm::SmallVector<ReplicaAttr>>":$replicas)>
  ];
  let extraClassDeclaration = [{
    int64_t getNumKVHeads() const { return getHeads().size(); }
    /// The replicas of KV head `kvHead`, in order.
    ::llvm::SmallVector<ReplicaAttr> getReplicas(int64_t kvHead) const;
    /// Replicas beyond the first of each head, summed over heads.
    int64_t getNumExtraReplicas() const;
  }];
}

#endif // FAIRKV_DIALECT_FAIRKV_IR_FAIRKVATTRS_TD

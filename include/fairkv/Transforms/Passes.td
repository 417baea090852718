//===- Passes.td - FairKV transformation passes ------------*- tablegen -*-===//
//
// The passes that plan and materialize KV-head placement.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_TRANSFORMS_PASSES_TD
#define FAIRKV_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def FairKVPlanPlacementPass
    : Pass<"fairkv-plan-placement", "::mlir::ModuleOp"> {
  let summary = "Place every layer's KV heads on the devices of a grid";
  let description = [{
    Runs the FairKV placement engine (the same one as `fairkv plan`) on the
    per-KV-head budgets of the module's `fairkv.attention` ops and attaches
    the result to each of them as `#fairkv.placement`, referring to a
    `shard.grid` of `devices` devices (created if the module has none of that
    name).

    Input: a module with `fairkv.config` and exactly one `fairkv.attention`
    per layer, each with its `budgets`. Output: the same module, every
    attention op with `placement` and `grid` set; optionally a JSON report
    (the `fairkv plan --format json` schema) written to `report`.

    Before:

    ```mlir
    %o = fairkv.attention %q, %k, %v layer 0
        budgets <tokens = [512, 96], source = "example:skewed"> : ...
    ```

    After `--fairkv-plan-placement="devices=2 strategy=fairkv"`:

    ```mlir
    shard.grid @grid(shape = 2)
    ...
    %o = fairkv.attention %q, %k, %v layer 0
        budgets <tokens = [512, 96], source = "example:skewed">
        placement <devices = 2, heads = [[<0, 0.59375>, <1, 0.40625>],
                                         [<1, 1.0>]]> on @grid : ...
    ```

    With `plan-file`, the placement comes from a `fairkv-plan/v1` JSON file
    (the schema is `docs/schemas/fairkv-plan.schema.json`) instead: plans
    from other tools and FairKV mix, and a plan from `fairkv plan --format
    json` reproduces the module `fairkv-plan-placement` computes itself.

    Errors (with the module's location): no `fairkv.config`, a layer with no
    or two attention ops, budgets that do not match the config, a strategy
    that is not defined for the inputs (e.g. `tp` when the devices do not
    divide the KV heads), an existing grid of another size, a plan file that
    does not fit the module.
  }];
  let dependentDialects = ["::mlir::shard::ShardDialect"];
  let options = [
    Option<"strategy", "strategy", "std::string", "\"fairkv\"",
           "tp | greedy | fairkv | optimal">,
    Option<"devices", "devices", "int64_t", "8", "number of devices">,
    Option<"copyBudget", "copy-budget", "int64_t", "-1",
           "extra replicas allowed per layer (-1: no cap)">,
    Option<"copyBudgetBytes", "copy-budget-bytes", "double", "-1",
           "extra weight bytes allowed on any device (-1: no cap)">,
    Option<"copyBudgetFraction", "copy-budget-fraction", "double", "-1",
           "extra weight bytes per device as a fraction of its tp weights">,
    Option<"evenShares", "even-shares", "bool", "false",
           "fairkv: equal batch shares among the copies of a head">,
    Option<"equalHeads", "equal-heads", "bool", "false",
           "greedy: the same number of heads on every device">,
    Option<"epsilon", "epsilon", "double", "0.002",
           "stop copying a layer within this of its ideal">,
    Option<"timeLimit", "time-limit", "double", "20.0",
           "optimal: seconds for the exact solver">,
    Option<"hardware", "hw", "std::string", "\"h100-sxm\"",
           "hardware preset of the cost model">,
    Option<"batch", "batch", "int64_t", "32",
           "batch of the predicted step time in the report">,
    Option<"gridName", "grid", "std::string", "\"grid\"",
           "name of the shard.grid the placement refers to">,
    Option<"report", "report", "std::string", "\"\"",
           "write the JSON plan report to this file">,
    Option<"decodeTokens", "decode-tokens", "int64_t", "0",
           "tokens each request will decode: plan for budget + these">,
    Option<"promptTokens", "prompt-tokens", "int64_t", "0",
           "the requests' prompt length (0: unknown): a head holds at most "
           "this much of its budget">,
    Option<"promptLengths", "prompt-lengths", "std::string", "\"\"",
           "the requests' prompt lengths instead of one: \"32,64,128\", "
           "\"32:10,64:5\" (length:weight) or a file of \"length weight\" "
           "lines; a head's load is its mean over them of min(budget, "
           "length) + decode tokens">,
    Option<"loadProfile", "load-profile", "std::string", "\"\"",
           "balance what each head holds as measured (a program's "
           "--dump-kept file or fairkv-budgets/v1 JSON: e.g. Ada-KV's "
           "per-request reallocation) instead of its budget; the budgets "
           "on the attention ops, which the method runs with, stay">,
    Option<"planFile", "plan-file", "std::string", "\"\"",
           "use this plan (fairkv-plan/v1 JSON, e.g. from `fairkv plan "
           "--format json` or another planner) instead of computing one; "
           "the device count comes from the plan">
  ];
  let statistics = [
    Statistic<"numPlacedLayers", "placed-layers", "Layers placed">,
    Statistic<"numExtraReplicas", "extra-replicas",
              "Head replicas beyond one per head">
  ];
}

def FairKVShardHeadsPass : Pass<"fairkv-shard-heads", "::mlir::ModuleOp"> {
  let summary = "Turn a placed model into one program per device";
  let description = [{
    Rewrites every function holding placed `fairkv.attention` ops into one
    function per device of the grid, `@<name>_dev<g>` marked
    `fairkv.device = g`, and erases the original.

    **Why one function per device rather than SPMD.** FairKV's placement is
    per layer and uneven: a device holds a different set of KV heads in every
    layer, and a copied head serves a different batch share on each of its
    devices. In per-device functions every head list, share and weight slice
    is a literal in the IR, so it can be read, FileChecked and verified
    without evaluating per-device tables, and the runtime simply runs
    function `g` on rank `g`. The price is G copies of the program text,
    which is small next to the weights (G <= 64).

    Per layer, device `g` computes:
    - for the KV heads it holds whole: one `qkv_proj` on the rows of
      `q_proj`/`k_proj`/`v_proj` of those heads (with their GQA query groups),
      `rotary`, one `attention` with `kv_heads` listing them, and the
      `out_proj` on the matching columns of `o_proj` (row-parallel: a partial
      sum);
    - for each copied head with a replica on `g`: `replicate` (this
      replica's batch rows of the normed input and of the positions), the
      head's `qkv_proj`, `rotary`, `attention` (`share` = the replica),
      `gather` of the whole batch, `out_proj`, `replicate` back to this
      replica's rows and `add_rows` into the partial sum (the explicit form;
      canonicalization folds the gather away);
    - one `all_reduce` of the partial sum (a device holding no head adds
      `zeros_like`);
    - the MLP tensor-parallel: `gate_proj`/`up_proj` rows and `down_proj`
      columns of block `g` (`ffn / G` each), then one `all_reduce`;
    - the LM head vocab-parallel: `lm_head` rows of block `g`, then
      `all_gather` of the logits; embeddings and norms are replicated.

    Every weight is a `fairkv.weight ... slice` naming exactly what the
    device loads.

    Before (one layer, 2 devices, head 0 copied 0.59 / 0.41):

    ```mlir
    %q, %k, %v = fairkv.qkv_proj %n, %wq, %wk, %wv : ...
    %qr = fairkv.rotary %q, %pos theta = 1.0e4 : ...
    %kr = fairkv.rotary %k, %pos theta = 1.0e4 : ...
    %a = fairkv.attention %qr, %kr, %v layer 0 budgets <tokens = [512, 96], ...>
        placement <devices = 2, heads = [[<1, 0.59375>, <0, 0.40625>],
                                         [<0, 1.0>]]> on @grid : ...
    %o = fairkv.out_proj %a, %wo : ...
    ```

    After, device 1 (which holds only its share of head 0):

    ```mlir
    %nl = fairkv.replicate %n head 0 replicas [...] on @grid : ...
    %pl = fairkv.replicate %pos head 0 replicas [...] on @grid : ...
    %wq = fairkv.weight "model.layers.0.self_attn.q_proj.weight" slice 0 [0, 32] of [64, 64] : tensor<32x64xf32>
    ...
    %a = fairkv.attention ... layer 0 budgets <tokens = [512], ...> placement <...>
        on @grid kv_heads [0] share <1, 5.937500e-01> : ...
    %g = fairkv.gather %a head 0 replicas [...] on @grid : ...
    %o = fairkv.out_proj %g, %wo : ...
    %r = fairkv.replicate %o head 0 replicas [...] on @grid : ...
    %z = fairkv.zeros_like %n : tensor<?x?x64xf32>
    %s = fairkv.add_rows %z, %r head 0 replicas [...] on @grid : ...
    %y = fairkv.all_reduce %s on @grid reduction = sum : tensor<?x?x64xf32>
    ```

    Input: `fairkv.config` on the module; every attention op placed (on one
    grid) and fed by `qkv_proj -> rotary -> attention -> out_proj` with
    weights from `fairkv.weight`; `ffn` and `vocab` divisible by the devices.
    Anything else is an error naming the layer.
  }];
  let dependentDialects = ["::mlir::shard::ShardDialect"];
  let statistics = [
    Statistic<"numDevicePrograms", "device-programs",
              "Per-device functions created">,
    Statistic<"numSplitHeads", "split-heads",
              "Copied-head computations (per device)">
  ];
}

def FairKVVerifyShardingPass
    : Pass<"fairkv-verify-sharding", "::mlir::ModuleOp"> {
  let summary = "Check that a sharded module computes the model exactly once";
  let description = [{
    The last stage of `fairkv-shard-pipeline`. Fails, naming the layer and
    KV head, when:
    - some (layer, KV head, request share) is computed by no device, or by
      more than one (the batch shares of a head's attention ops across the
      devices must sum to 1, with at most one op per device);
    - a device computes a head, or serves a replica, the placement does not
      give it;
    - a device references a weight slice it does not own (rows of heads it
      does not hold, or another device's MLP or vocabulary block);
    - an unsharded op is left over: a fairkv op outside any device program,
      an attention op without `kv_heads`, or a projection (fused with its
      all_reduce or not), MLP or LM head whose weights are not slices.
  }];
}

def FairKVOverlapCollectivesPass
    : Pass<"fairkv-overlap-collectives", "::mlir::ModuleOp"> {
  let summary = "Fuse row-parallel projections with their all_reduce so the two overlap";
  let description = [{
    Runs on sharded modules (after `fairkv-shard-pipeline`). Every
    `all_reduce` (sum) of a projection's partial sums becomes one
    `fairkv.linear_all_reduce`: the runtime then computes the projection in
    column blocks and reduces each block while it computes the next one.
    What it absorbs on each device:
    - an `out_proj`, or an `mlp` (split into `gated_act` and its down
      projection);
    - in a layer with a copied KV head, an `out_proj` with the `add_rows`
      of the copies' rows on it: the rows are gathered on zeros of the
      layer's input instead, and the fused op adds them (`plus`);
    - on a device holding only copies (or nothing) of the layer, the
      `add_rows` on zeros alone: no projection, the addend only.

    **Where the plan allows.** A collective must be issued alike by every
    device, so the pass looks at the k-th `all_reduce` of all device
    programs of a function together, and fuses it on every device or on
    none: on none when some device's input is anything else (a max
    reduction, a value used twice), or when no device has a projection to
    overlap it with.

    Before (one device of two, whole heads and a copy in layer 0):

    ```mlir
    %p = fairkv.out_proj %a, %wo : ...
    ...
    %c = fairkv.out_proj %copy, %wo0 : ...
    %s = fairkv.add_rows %p, %c head 0 budget 512 replicas [...] on @grid : ...
    %r = fairkv.all_reduce %s on @grid reduction = sum : tensor<?x?x64xf32>
    %m = fairkv.mlp %n, %wg, %wu, %wd : ...
    %t = fairkv.all_reduce %m on @grid reduction = sum : tensor<?x?x64xf32>
    ```

    After `--fairkv-overlap-collectives="chunks=4"`:

    ```mlir
    %c = fairkv.out_proj %copy, %wo0 : ...
    %z = fairkv.zeros_like %input : tensor<?x?x64xf32>
    %s = fairkv.add_rows %z, %c head 0 budget 512 replicas [...] on @grid : ...
    %r = fairkv.linear_all_reduce proj %a, %wo plus %s on @grid chunks = 4
        min_chunk_bytes = 3600000 : ...
    %g = fairkv.gated_act %n, %wg, %wu : ...
    %t = fairkv.linear_all_reduce proj %g, %wd on @grid chunks = 4
        min_chunk_bytes = 3600000 : ...
    ```

    **How many blocks.** Splitting a reduction adds the collective's fixed
    cost once per extra block, and pays only while a block's bytes take at
    least that long to move: the smallest block defaults to
    `collective latency x link bandwidth x G / (2 (G - 1))` of the hardware
    preset (about 2 MB on `h100-sxm` at G = 8), so decode steps' small
    reductions stay whole and prefills split. On one device there is nothing
    to reduce: one block.

    Errors: device programs of one function that issue different numbers of
    `all_reduce` ops (they could not run together); an unknown hardware
    preset.
  }];
  let options = [
    Option<"chunks", "chunks", "int64_t", "4",
           "most column blocks a fused projection is reduced in (>= 1)">,
    Option<"minChunkBytes", "min-chunk-bytes", "int64_t", "-1",
           "fewest bytes of fp32 result per block: smaller reductions are "
           "split into fewer blocks, down to one (-1: where a block's "
           "transfer time equals the collective's fixed cost, from the "
           "hardware preset and the grid's size)">,
    Option<"hardware", "hw", "std::string", "\"h100-sxm\"",
           "hardware preset of the cost model (for min-chunk-bytes = -1)">
  ];
  let statistics = [
    Statistic<"numFused", "fused-all-reduces",
              "all_reduce ops fused with their projection (per device)">,
    Statistic<"numKept", "kept-all-reduces",
              "all_reduce ops left unfused (per device)">
  ];
}

#endif // FAIRKV_TRANSFORMS_PASSES_TD

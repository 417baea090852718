//===- FairKVBase.td - FairKV dialect definition -----------*- tablegen -*-===//
//
// The `fairkv` dialect and the base classes of its ops and attributes.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_DIALECT_FAIRKV_IR_FAIRKVBASE_TD
#define FAIRKV_DIALECT_FAIRKV_IR_FAIRKVBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def FairKV_Dialect : Dialect {
  let name = "fairkv";
  let cppNamespace = "::mlir::fairkv";
  let summary = "Decoder-only transformers with per-head compressed KV caches "
                "and head-level placement over a device grid";
  let description = [{
    The `fairkv` dialect describes a Llama/Mistral-style decoder-only
    transformer at the granularity that KV-head placement needs: one op per
    embedding, RMSNorm, QKV projection, rotary embedding, attention over the
    compressed per-KV-head cache, output projection, gated MLP, residual add,
    LM head and greedy sampling, plus the sharding ops that the placement
    passes insert (replicate with a batch split, gather, all_reduce,
    all_gather).

    Where it sits in the pipeline:

    ```
    HF config.json + budget profile
          | fairkv import
          v
    fairkv.* (unsharded; fairkv.attention carries #fairkv.kv_budgets)
          | fairkv-plan-placement          (adds #fairkv.placement per layer)
          | fairkv-shard-heads             (replicate / gather / all_reduce)
          v
    fairkv.* (per-device program over a shard.grid)
          | convert-fairkv-to-runtime
          v
    func.call @fairkv_rt_* on memrefs --> llvm --> object + FairKV runtime
    ```

    The model configuration lives in the discardable attribute
    `fairkv.config = #fairkv.model_config<...>` on an enclosing op (normally
    the module). When it is present, every op of an unsharded program checks
    its shapes against it. A sharded program is one function per device,
    marked `fairkv.device = <index>`; its ops hold per-device slices, so they
    are checked by `fairkv-verify-sharding` instead.
    Weights are named parameters (`fairkv.weight`), so the runtime can load
    (and later slice per device) exactly the tensors an op uses. Attention
    reads and appends to the KV cache, a runtime-owned state modelled as the
    side-effect resource `fairkv::KVCacheResource`.

    **Device grid and collectives: what we reuse and why.** The device grid
    is the upstream `shard.grid` symbol, so a FairKV module shares its notion
    of devices with upstream sharding tools, and every sharding op names the
    grid it runs on (`on @grid`) and verifies the reference. The collectives
    themselves are ours (`fairkv.all_reduce`, `fairkv.all_gather`) rather than
    `shard.all_reduce` / `shard.all_gather`, for three reasons: (1) FairKV's
    placement is per KV head and uneven (a copied head lives on several
    devices with fractional batch shares), which is not a split of a tensor
    axis over grid axes, the model `shard` collectives are defined in; (2) the
    gather of a copied head must be foldable into the all_reduce that follows
    the row-parallel output projection, a canonicalization that has to match
    one op family; (3) upstream lowers `shard` collectives only to MPI, while
    ours lower to the FairKV runtime (NCCL on GPUs, an in-process
    communicator on the CPU). Their semantics match the upstream ones over
    the whole grid.

    Version log: v1, first version.
  }];
  let dependentDialects = ["::mlir::shard::ShardDialect"];
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    /// Registers the attributes; defined beside their storage classes.
    void registerAttributes();

    /// Name of the discardable attribute holding the model configuration.
    static constexpr ::llvm::StringLiteral getConfigAttrName() {
      return ::llvm::StringLiteral("fairkv.config");
    }
    /// Name of the discardable attribute that marks a function as the
    /// program of one device (its index in the grid).
    static constexpr ::llvm::StringLiteral getDeviceAttrName() {
      return ::llvm::StringLiteral("fairkv.device");
    }
  }];
}

class FairKV_Op<string mnemonic, list<Trait> traits = []>
    : Op<FairKV_Dialect, mnemonic, traits>;

class FairKV_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<FairKV_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

#endif // FAIRKV_DIALECT_FAIRKV_IR_FAIRKVBASE_TD

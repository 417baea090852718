//===- Passes.td - FairKV conversion passes ----------------*- tablegen -*-===//

#ifndef FAIRKV_CONVERSION_PASSES_TD
#define FAIRKV_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertFairKVToRuntimePass
    : Pass<"convert-fairkv-to-runtime", "::mlir::ModuleOp"> {
  let summary = "Lower a sharded fairkv module to calls into the FairKV runtime";
  let description = [{
    Rewrites every op of the per-device programs written by
    `fairkv-shard-heads` into a `func.call @fairkv_rt_<op>` of the runtime
    ABI described in `include/fairkv/Runtime/RuntimeAPI.def` (the same table
    the runtime declares itself from, so the two cannot drift).

    Tensors become opaque runtime handles (`!llvm.ptr`) that the runtime
    owns: shapes are dynamic in the batch, and the runtime holds the KV cache,
    the weights and the communicator. Every device function gains the device
    context as its first argument. Attribute payloads become constants:
    scalars as `arith.constant`, strings and arrays as private
    `llvm.mlir.global` constants, deduplicated.

    The pass also emits the program's entry points, which the driver that
    `fairkv compile` links in calls:
    - `@fairkv_program_num_devices`, an i64 constant (the grid size);
    - `@fairkv_program_step(ctx, device, ids, positions) -> tokens`, which
      dispatches (`cf.switch`) to the device's program.

    Example, a device program's weight and embedding:

    ```mlir
    %0 = fairkv.weight "model.embed_tokens.weight" : tensor<256x64xf32>
    %1 = fairkv.embedding %arg0, %0 : ...
    ```

    becomes

    ```mlir
    %name = llvm.mlir.addressof @__fairkv_str_0 : !llvm.ptr
    %0 = func.call @fairkv_rt_weight(%ctx, %name, %c-1, %null, %c0, %shape, %c2) : ...
    %1 = func.call @fairkv_rt_embedding(%ctx, %arg0, %0) : ...
    ```

    Input: a module with exactly one group of device programs (functions
    marked `fairkv.device`) and nothing else of the fairkv dialect. Output:
    `func`, `arith`, `cf` and `llvm` only; `shard.grid` is dropped.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::cf::ControlFlowDialect",
                           "::mlir::func::FuncDialect"];
}

def FairKVReleaseTensorsPass
    : Pass<"fairkv-release-tensors", "::mlir::ModuleOp"> {
  let summary = "Release each runtime tensor after its last use in a step";
  let description = [{
    Runs on the output of `convert-fairkv-to-runtime`. Without it, every
    tensor a step makes lives until the step ends, so a prefill holds the
    activations of every op of every layer at once (gigabytes for a small
    model at batch 16 x 256 tokens), and each of them is fresh memory the
    system must map in.

    After the last use of each handle that a runtime call returned, the
    pass inserts `func.call @fairkv_rt_release(%ctx, %handle)`, where `%ctx`
    is that call's context operand; the runtime gives the storage to the
    next tensors the step makes. Left alone, to live until the step ends:
    - weights (`fairkv_rt_weight`, which the runtime keeps for every step);
    - handles a function returns or passes to another block, or that an
      op other than a runtime call uses.

    Example:

    ```mlir
    %2 = func.call @fairkv_rt_rms_norm(%ctx, %1, %w, %eps) : ...
    %3 = func.call @fairkv_rt_project_heads(%ctx, %2, %wq, %null, %c2, %c16) : ...
    ```

    becomes, where `%2` has no later use,

    ```mlir
    %2 = func.call @fairkv_rt_rms_norm(%ctx, %1, %w, %eps) : ...
    %3 = func.call @fairkv_rt_project_heads(%ctx, %2, %wq, %null, %c2, %c16) : ...
    func.call @fairkv_rt_release(%ctx, %2) : (!llvm.ptr, !llvm.ptr) -> ()
    ```
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::LLVM::LLVMDialect"];
}

#endif // FAIRKV_CONVERSION_PASSES_TD

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

    Errors (with the module's location): no `fairkv.config`, a layer with no
    or two attention ops, budgets that do not match the config, a strategy
    that is not defined for the inputs (e.g. `tp` when the devices do not
    divide the KV heads), an existing grid of another size.
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
           "write the JSON plan report to this file">
  ];
  let statistics = [
    Statistic<"numPlacedLayers", "placed-layers", "Layers placed">,
    Statistic<"numExtraReplicas", "extra-replicas",
              "Head replicas beyond one per head">
  ];
}

#endif // FAIRKV_TRANSFORMS_PASSES_TD

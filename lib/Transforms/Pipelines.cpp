//===- Pipelines.cpp - FairKV pass pipelines ------------------------------===//

#include "fairkv/Transforms/Pipelines.h"

#include "fairkv/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::fairkv;

//===----------------------------------------------------------------------===//
// fairkv-shard-pipeline
//===----------------------------------------------------------------------===//

void mlir::fairkv::buildShardPipeline(OpPassManager &pm,
                                      const ShardPipelineOptions &options) {
  FairKVPlanPlacementPassOptions plan;
  plan.strategy = options.strategy;
  plan.devices = options.devices;
  plan.copyBudget = options.copyBudget;
  plan.copyBudgetBytes = options.copyBudgetBytes;
  plan.copyBudgetFraction = options.copyBudgetFraction;
  plan.evenShares = options.evenShares;
  plan.equalHeads = options.equalHeads;
  plan.epsilon = options.epsilon;
  plan.timeLimit = options.timeLimit;
  plan.hardware = options.hardware;
  plan.report = options.report;
  // Decide which device holds which KV head, and the copies' shares.
  pm.addPass(createFairKVPlanPlacementPass(plan));
  // Write one program per device with explicit replicate/gather/all_reduce.
  pm.addPass(createFairKVShardHeadsPass());
  // Fold each copied head's gather into the following all_reduce, and drop
  // weights no device uses any more.
  pm.addPass(createCanonicalizerPass());
  // Reject anything computed twice or never, or weights not owned.
  pm.addPass(createFairKVVerifyShardingPass());
}

void mlir::fairkv::registerFairKVPipelines() {
  PassPipelineRegistration<ShardPipelineOptions>(
      "fairkv-shard-pipeline",
      "Plan the KV-head placement, write one program per device, fold the "
      "copied heads' gathers and verify the result",
      buildShardPipeline);
}

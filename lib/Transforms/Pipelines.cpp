//===- Pipelines.cpp - FairKV pass pipelines ------------------------------===//

#include "fairkv/Transforms/Pipelines.h"

#include "fairkv/Conversion/Passes.h"
#include "fairkv/Transforms/Passes.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
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
  plan.planFile = options.planFile;
  plan.decodeTokens = options.decodeTokens;
  plan.promptTokens = options.promptTokens;
  plan.loadProfile = options.loadProfile;
  plan.promptLengths = options.promptLengths;
  // Decide which device holds which KV head, and the copies' shares.
  pm.addPass(createFairKVPlanPlacementPass(plan));
  // Write one program per device with explicit replicate/gather/all_reduce.
  pm.addPass(createFairKVShardHeadsPass());
  // Fold each copied head's gather into the following all_reduce, and drop
  // weights no device uses any more.
  pm.addPass(createCanonicalizerPass());
  // Let each row-parallel projection's all_reduce overlap its GEMM.
  if (options.overlapChunks > 0) {
    FairKVOverlapCollectivesPassOptions overlap;
    overlap.chunks = options.overlapChunks;
    overlap.minChunkBytes = options.overlapMinChunkBytes;
    overlap.hardware = options.hardware;
    pm.addPass(createFairKVOverlapCollectivesPass(overlap));
  }
  // Reject anything computed twice or never, or weights not owned.
  pm.addPass(createFairKVVerifyShardingPass());
}

//===----------------------------------------------------------------------===//
// fairkv-lower-to-llvm-pipeline
//===----------------------------------------------------------------------===//

void mlir::fairkv::buildLowerToLLVMPipeline(OpPassManager &pm) {
  // Device programs become calls into the runtime ABI on opaque handles.
  pm.addPass(createConvertFairKVToRuntimePass());
  // Each tensor goes back to the runtime after its last use in a step.
  pm.addPass(createFairKVReleaseTensorsPass());
  // The dispatcher's cf.switch, the constants and the functions go to LLVM.
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  // Drop the casts the partial conversions left between them.
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::fairkv::registerFairKVPipelines() {
  PassPipelineRegistration<>(
      "fairkv-lower-to-llvm-pipeline",
      "Lower a sharded fairkv module to the LLVM dialect: runtime calls, "
      "the dispatcher and the device-count constant",
      buildLowerToLLVMPipeline);
  PassPipelineRegistration<ShardPipelineOptions>(
      "fairkv-shard-pipeline",
      "Plan the KV-head placement, write one program per device, fold the "
      "copied heads' gathers and verify the result",
      buildShardPipeline);
}

//===- Pipelines.h - FairKV pass pipelines ----------------------*- C++ -*-===//

#ifndef FAIRKV_TRANSFORMS_PIPELINES_H
#define FAIRKV_TRANSFORMS_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

#include <string>

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::fairkv {

/// Options of fairkv-shard-pipeline: those of fairkv-plan-placement, and
/// those of fairkv-overlap-collectives.
struct ShardPipelineOptions
    : public PassPipelineOptions<ShardPipelineOptions> {
  PassOptions::Option<std::string> strategy{
      *this, "strategy", llvm::cl::desc("tp | greedy | fairkv | optimal"),
      llvm::cl::init("fairkv")};
  PassOptions::Option<int64_t> devices{
      *this, "devices", llvm::cl::desc("number of devices"), llvm::cl::init(8)};
  PassOptions::Option<int64_t> copyBudget{
      *this, "copy-budget",
      llvm::cl::desc("extra replicas allowed per layer (-1: no cap)"),
      llvm::cl::init(-1)};
  PassOptions::Option<double> copyBudgetBytes{
      *this, "copy-budget-bytes",
      llvm::cl::desc("extra weight bytes allowed on any device (-1: no cap)"),
      llvm::cl::init(-1)};
  PassOptions::Option<double> copyBudgetFraction{
      *this, "copy-budget-fraction",
      llvm::cl::desc("extra weight bytes per device as a fraction of its tp "
                     "weights"),
      llvm::cl::init(-1)};
  PassOptions::Option<bool> evenShares{
      *this, "even-shares",
      llvm::cl::desc("fairkv: equal batch shares among the copies of a head"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> equalHeads{
      *this, "equal-heads",
      llvm::cl::desc("greedy: the same number of heads on every device"),
      llvm::cl::init(false)};
  PassOptions::Option<double> epsilon{
      *this, "epsilon",
      llvm::cl::desc("stop copying a layer within this of its ideal"),
      llvm::cl::init(0.002)};
  PassOptions::Option<double> timeLimit{
      *this, "time-limit", llvm::cl::desc("optimal: seconds for the solver"),
      llvm::cl::init(20.0)};
  PassOptions::Option<std::string> hardware{
      *this, "hw", llvm::cl::desc("hardware preset of the cost model"),
      llvm::cl::init("h100-sxm")};
  PassOptions::Option<std::string> report{
      *this, "report", llvm::cl::desc("write the JSON plan report here"),
      llvm::cl::init("")};
  PassOptions::Option<int64_t> decodeTokens{
      *this, "decode-tokens",
      llvm::cl::desc("tokens each request will decode: plan for budget + "
                     "these"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> promptTokens{
      *this, "prompt-tokens",
      llvm::cl::desc("the requests' prompt length (0: unknown): plan for at "
                     "most this much of each budget"),
      llvm::cl::init(0)};
  PassOptions::Option<std::string> promptLengths{
      *this, "prompt-lengths",
      llvm::cl::desc("the requests' prompt lengths instead of one (a list, "
                     "length:weight pairs or a histogram file)"),
      llvm::cl::init("")};
  PassOptions::Option<std::string> loadProfile{
      *this, "load-profile",
      llvm::cl::desc("balance what each head holds as measured (a program's "
                     "--dump-kept file or fairkv-budgets/v1 JSON) instead of "
                     "its budget; the budgets the method runs with stay"),
      llvm::cl::init("")};
  PassOptions::Option<int64_t> overlapChunks{
      *this, "overlap-chunks",
      llvm::cl::desc("fuse projections with their all_reduce and reduce in "
                     "up to this many overlapped blocks (0: no fusion)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> overlapMinChunkBytes{
      *this, "overlap-min-chunk-bytes",
      llvm::cl::desc("fewest fp32 result bytes per overlapped block (-1: "
                     "where it pays on the hw preset)"),
      llvm::cl::init(-1)};
  PassOptions::Option<std::string> planFile{
      *this, "plan-file",
      llvm::cl::desc("use this fairkv-plan/v1 JSON plan instead of planning"),
      llvm::cl::init("")};
};

/// plan -> shard -> canonicalize (folds gathers) -> [overlap collectives]
/// -> verify.
void buildShardPipeline(OpPassManager &pm, const ShardPipelineOptions &options);

/// convert-fairkv-to-runtime, then the upstream lowering of func, arith and
/// cf to the LLVM dialect.
void buildLowerToLLVMPipeline(OpPassManager &pm);

/// Registers fairkv-shard-pipeline and fairkv-lower-to-llvm-pipeline.
void registerFairKVPipelines();

} // namespace mlir::fairkv

#endif // FAIRKV_TRANSFORMS_PIPELINES_H

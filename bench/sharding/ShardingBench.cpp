//===- ShardingBench.cpp - Time and shape of fairkv-shard-pipeline --------===//
//
// Imports a llama-3-8b-shaped model (32 layers) with the real HeadKV budgets
// and runs fairkv-shard-pipeline in process for tp and fairkv at G in
// {2, 4, 8}: wall time of the pipeline, and the collectives and copies per
// device program. Writes its section of bench/RESULTS.md.
//
// Usage: fairkv-bench-sharding [--profiles DIR] [--results FILE]
//
//===----------------------------------------------------------------------===//

#include "Profiles.h"
#include "ResultsFile.h"
#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "fairkv/Import/ModelWriter.h"
#include "fairkv/Transforms/Pipelines.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

using namespace fairkv;

int main(int argc, char **argv) {
  fairkv::bench::BenchArgs args;
  if (int exit = fairkv::bench::parseBenchArgs(
          argc, argv, "fairkv-bench-sharding", FAIRKV_SOURCE_DIR, {}, args);
      exit >= 0)
    return exit;
  const std::string &dir = args.profiles, &results = args.results;
  placement::ModelConfig model = *placement::modelPreset("llama-3-8b");
  placement::Result<placement::BudgetProfile> profile =
      bench::loadLlama3HeadKV(dir, model);
  if (!profile) {
    std::cerr << "fairkv-bench-sharding: error: " << profile.error() << "\n";
    return 1;
  }
  const std::string source = import::writeModelModule(model, *profile);

  mlir::DialectRegistry registry;
  registry.insert<mlir::fairkv::FairKVDialect, mlir::func::FuncDialect,
                  mlir::shard::ShardDialect>();
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();

  std::ostringstream md;
  md << "## Sharding (`bench/sharding`)\n\n"
     << "Machine: " << bench::machineDescription()
     << ". Run: " << bench::utcNow() << ".\n"
     << "llama-3-8b shape (32 layers x 8 KV heads), HeadKV budgets (base "
        "512, beta 1.2, group sum); `fairkv-shard-pipeline` (plan, shard, "
        "canonicalize, verify) run in process on the parsed module; fairkv "
        "with a 10% copy budget. Counts are over all device programs.\n\n"
     << "| G | strategy | pipeline s | all_reduce | all_reduce per layer per "
        "device | gather | add_rows (copies served) |\n"
     << "|---|---|---|---|---|---|---|\n";
  for (int devices : {2, 4, 8})
    for (const char *strategy : {"tp", "fairkv"}) {
      mlir::OwningOpRef<mlir::ModuleOp> module =
          mlir::parseSourceString<mlir::ModuleOp>(source, &context);
      if (!module) {
        std::cerr << "fairkv-bench-sharding: error: cannot parse the model\n";
        return 1;
      }
      mlir::PassManager pm(&context);
      mlir::fairkv::ShardPipelineOptions options;
      options.strategy = strategy;
      options.devices = devices;
      if (std::string(strategy) == "fairkv")
        options.copyBudgetFraction = 0.1;
      mlir::fairkv::buildShardPipeline(pm, options);
      auto start = std::chrono::steady_clock::now();
      if (mlir::failed(pm.run(*module))) {
        std::cerr << "fairkv-bench-sharding: error: the pipeline failed\n";
        return 1;
      }
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start)
                           .count();
      int64_t reduces = 0, gathers = 0, addRows = 0;
      module->walk([&](mlir::Operation *op) {
        reduces += mlir::isa<mlir::fairkv::AllReduceOp>(op);
        gathers += mlir::isa<mlir::fairkv::GatherOp>(op);
        addRows += mlir::isa<mlir::fairkv::AddRowsOp>(op);
      });
      char line[256];
      std::snprintf(line, sizeof(line),
                    "| %d | %s | %.3f | %lld | %.2f | %lld | %lld |\n",
                    devices, strategy, seconds,
                    static_cast<long long>(reduces),
                    static_cast<double>(reduces) / (model.layers * devices),
                    static_cast<long long>(gathers),
                    static_cast<long long>(addRows));
      md << line;
      std::cerr << line;
    }
  md << "\n";
  if (!bench::writeSection(results, "sharding", md.str())) {
    std::cerr << "fairkv-bench-sharding: error: cannot write " << results
              << "\n";
    return 1;
  }
  std::cout << "fairkv-bench-sharding: wrote " << results << "\n";
  return 0;
}

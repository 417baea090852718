//===- main.cpp - A downstream tool using the installed FairKV ------------===//

#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Transforms/Pipelines.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    llvm::errs() << "usage: downstream MODEL.mlir\n";
    return 1;
  }
  mlir::DialectRegistry registry;
  registry.insert<mlir::fairkv::FairKVDialect, mlir::func::FuncDialect,
                  mlir::shard::ShardDialect>();
  mlir::MLIRContext context(registry);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(argv[1], &context);
  if (!module)
    return 1;
  mlir::PassManager pm(&context);
  mlir::fairkv::ShardPipelineOptions options;
  options.devices = 2;
  mlir::fairkv::buildShardPipeline(pm, options);
  if (mlir::failed(pm.run(*module)))
    return 1;
  int programs = 0;
  for (auto f : module->getOps<mlir::func::FuncOp>())
    programs += f->hasAttr(mlir::fairkv::FairKVDialect::getDeviceAttrName());
  llvm::outs() << "downstream: sharded into " << programs
               << " device programs\n";
  return programs == 2 ? 0 : 1;
}

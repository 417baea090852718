//===- FairKVPlugin.cpp - FairKV as a plugin of stock mlir-opt ------------===//
//
// One shared library with both plugin entry points, so that
//   mlir-opt --load-dialect-plugin=libFairKVPlugin.so \
//            --load-pass-plugin=libFairKVPlugin.so
// gets the fairkv dialect and every FairKV pass and pipeline. Both flags name
// the same library on purpose: two libraries would each carry a copy of the
// dialect, with two TypeIDs for it.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Conversion/Passes.h"
#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Transforms/Passes.h"
#include "fairkv/Transforms/Pipelines.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/Plugins/DialectPlugin.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Config/llvm-config.h"

extern "C" LLVM_ATTRIBUTE_WEAK ::mlir::DialectPluginLibraryInfo
mlirGetDialectPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "FairKV", LLVM_VERSION_STRING,
          [](::mlir::DialectRegistry *registry) {
            registry->insert<::mlir::fairkv::FairKVDialect>();
          }};
}

extern "C" LLVM_ATTRIBUTE_WEAK ::mlir::PassPluginLibraryInfo
mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "FairKVPasses", LLVM_VERSION_STRING, [] {
            ::mlir::fairkv::registerFairKVPasses();
            ::mlir::fairkv::registerFairKVConversionPasses();
            ::mlir::fairkv::registerFairKVPipelines();
          }};
}

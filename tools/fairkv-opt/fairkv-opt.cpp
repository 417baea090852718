//===- fairkv-opt.cpp - FairKV optimizer driver ---------------------------===//
//
// The MlirOptMain driver with the fairkv dialect and the upstream dialects and
// passes that the FairKV pipelines use. Registration is explicit (no
// InitAll*) so the tool stays small and its surface is what we support.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Conversion/Passes.h"
#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Transforms/Passes.h"
#include "fairkv/Transforms/Pipelines.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Index/IR/IndexDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "fairkv/Version.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<mlir::fairkv::FairKVDialect, mlir::arith::ArithDialect,
                  mlir::bufferization::BufferizationDialect,
                  mlir::cf::ControlFlowDialect, mlir::func::FuncDialect,
                  mlir::index::IndexDialect, mlir::LLVM::LLVMDialect,
                  mlir::memref::MemRefDialect, mlir::scf::SCFDialect,
                  mlir::shard::ShardDialect, mlir::tensor::TensorDialect>();

  mlir::fairkv::registerFairKVPasses();
  mlir::fairkv::registerFairKVPipelines();
  mlir::fairkv::registerFairKVConversionPasses();
  // Generic transforms: canonicalize, cse, symbol-dce, inline, ...
  mlir::registerTransformsPasses();
  // The upstream lowering to the LLVM dialect that follows
  // convert-fairkv-to-runtime.
  mlir::registerPass([] { return mlir::createConvertFuncToLLVMPass(); });
  mlir::registerPass([] { return mlir::createArithToLLVMConversionPass(); });
  mlir::registerPass([] { return mlir::createConvertControlFlowToLLVMPass(); });
  mlir::registerPass([] { return mlir::createConvertIndexToLLVMPass(); });
  mlir::registerPass([] { return mlir::createSCFToControlFlowPass(); });
  mlir::registerPass(
      [] { return mlir::createFinalizeMemRefToLLVMConversionPass(); });
  mlir::registerPass(
      [] { return mlir::createReconcileUnrealizedCastsPass(); });
  mlir::memref::registerExpandStridedMetadataPass();

  // --version names FairKV before the LLVM it was built with.
  llvm::cl::AddExtraVersionPrinter([](llvm::raw_ostream &os) {
    os << "FairKV fairkv-opt " << FAIRKV_VERSION << "\n";
  });
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "FairKV optimizer driver\n", registry));
}

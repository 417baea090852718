//===- FairKV.cpp - FairKV C API ------------------------------------------===//

#include "fairkv-c/FairKV.h"

#include "fairkv/Conversion/Passes.h"
#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Transforms/Passes.h"
#include "fairkv/Transforms/Pipelines.h"
#include "mlir/CAPI/IR.h"
#include "mlir/CAPI/Registration.h"
#include "mlir/CAPI/Support.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <mutex>

MLIR_DEFINE_CAPI_DIALECT_REGISTRATION(FairKV, fairkv,
                                      mlir::fairkv::FairKVDialect)

void fairkvRegisterPasses(void) {
  static std::once_flag once;
  std::call_once(once, [] {
    mlir::fairkv::registerFairKVPasses();
    mlir::fairkv::registerFairKVConversionPasses();
    mlir::fairkv::registerFairKVPipelines();
  });
}

namespace {

/// Runs `pipeline` on `module`, reporting the first error to `onError`.
MlirLogicalResult run(mlir::ModuleOp module, llvm::StringRef pipeline,
                      MlirStringCallback onError, void *userData) {
  fairkvRegisterPasses();
  std::string first;
  mlir::ScopedDiagnosticHandler handler(
      module.getContext(), [&](mlir::Diagnostic &d) {
        if (first.empty() &&
            d.getSeverity() == mlir::DiagnosticSeverity::Error) {
          llvm::raw_string_ostream os(first);
          os << d.getLocation() << ": " << d.str();
        }
        return mlir::success();
      });
  // The pipeline names its anchor ("builtin.module(...)"): the pass manager
  // must be anchored on that op, not nest it under the module.
  std::string parseError;
  llvm::raw_string_ostream errors(parseError);
  mlir::FailureOr<mlir::OpPassManager> parsed =
      mlir::parsePassPipeline(pipeline, errors);
  if (mlir::failed(parsed)) {
    if (onError)
      onError(mlirStringRefCreate(parseError.data(), parseError.size()),
              userData);
    return mlirLogicalResultFailure();
  }
  mlir::PassManager pm(module.getContext(), parsed->getOpAnchorName());
  static_cast<mlir::OpPassManager &>(pm) = std::move(*parsed);
  if (mlir::failed(pm.run(module))) {
    if (onError)
      onError(mlirStringRefCreate(first.data(), first.size()), userData);
    return mlirLogicalResultFailure();
  }
  return mlirLogicalResultSuccess();
}

} // namespace

MlirLogicalResult fairkvRunPipeline(MlirModule module, MlirStringRef pipeline,
                                    MlirStringCallback onError,
                                    void *userData) {
  return run(unwrap(module), unwrap(pipeline), onError, userData);
}

MlirLogicalResult fairkvShardModule(MlirModule module, MlirStringRef options,
                                    MlirStringCallback onReport,
                                    MlirStringCallback onError,
                                    void *userData) {
  // The pipeline writes its report to a file; hand its text back.
  llvm::SmallString<128> report;
  if (llvm::sys::fs::createTemporaryFile("fairkv-report", "json", report)) {
    const char message[] = "cannot create a temporary file for the report";
    if (onError)
      onError(mlirStringRefCreate(message, sizeof(message) - 1), userData);
    return mlirLogicalResultFailure();
  }
  std::string pipeline = "builtin.module(fairkv-shard-pipeline{" +
                         unwrap(options).str() + " report=" +
                         std::string(report) + "})";
  MlirLogicalResult result = run(unwrap(module), pipeline, onError, userData);
  if (mlirLogicalResultIsSuccess(result) && onReport) {
    if (auto text = llvm::MemoryBuffer::getFile(report))
      onReport(mlirStringRefCreate((*text)->getBufferStart(),
                                   (*text)->getBufferSize()),
               userData);
  }
  llvm::sys::fs::remove(report);
  return result;
}

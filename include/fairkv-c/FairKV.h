/*===- fairkv-c/FairKV.h - FairKV C API ---------------------------*- C -*-===//
 *
 * FairKV for compilers that talk to MLIR through its C API (the mlir-c style:
 * MlirContext, MlirModule, MlirStringRef). The library (libFairKVCAPI.so)
 * also carries the core mlir-c functions (mlirContextCreate, ...), built
 * against the same libMLIR.so as FairKV itself.
 *
 *===----------------------------------------------------------------------===*/

#ifndef FAIRKV_C_FAIRKV_H
#define FAIRKV_C_FAIRKV_H

#include "mlir-c/IR.h"
#include "mlir-c/Support.h"

#ifdef __cplusplus
extern "C" {
#endif

/// The dialect handle: mlirDialectHandleRegisterDialect(
///     mlirGetDialectHandle__fairkv__(), context) registers and loads fairkv.
MLIR_DECLARE_CAPI_DIALECT_REGISTRATION(FairKV, fairkv);

/// Registers every FairKV pass and the named pipelines
/// (fairkv-shard-pipeline, fairkv-lower-to-llvm-pipeline) so that textual
/// pipelines can name them. Idempotent.
MLIR_CAPI_EXPORTED void fairkvRegisterPasses(void);

/// Runs a textual pass pipeline, e.g.
/// "builtin.module(fairkv-shard-pipeline{devices=2 strategy=fairkv})", on
/// `module`. On failure, the first error (with its location) goes to
/// `onError` if given.
MLIR_CAPI_EXPORTED MlirLogicalResult
fairkvRunPipeline(MlirModule module, MlirStringRef pipeline,
                  MlirStringCallback onError, void *userData);

/// Plans and shards `module` with fairkv-shard-pipeline and `options` (its
/// option string, e.g. "devices=8 strategy=fairkv copy-budget-fraction=0.1"),
/// then hands the plan report (fairkv-plan/v1 JSON) to `onReport`.
MLIR_CAPI_EXPORTED MlirLogicalResult
fairkvShardModule(MlirModule module, MlirStringRef options,
                  MlirStringCallback onReport, MlirStringCallback onError,
                  void *userData);

#ifdef __cplusplus
}
#endif

#endif /* FAIRKV_C_FAIRKV_H */

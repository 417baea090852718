//===- FairKVAttrs.h - FairKV attributes ------------------------*- C++ -*-===//
//
// Declares the attributes and enums of the fairkv dialect, and the helpers
// that several ops share to check them.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_DIALECT_FAIRKV_IR_FAIRKVATTRS_H
#define FAIRKV_DIALECT_FAIRKV_IR_FAIRKVATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/SmallVector.h"

#include "fairkv/Model/ModelConfig.h"

#include "fairkv/Dialect/FairKV/IR/FairKVEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "fairkv/Dialect/FairKV/IR/FairKVAttrs.h.inc"

namespace mlir::fairkv {

/// Tolerance on the sum of the batch shares of one head.
inline constexpr double kShareSumTolerance = 1e-6;

/// Checks the replicas of one KV head: at least one, distinct devices,
/// devices in [0, numDevices) when numDevices > 0, shares summing to 1.
/// `what` names the head in messages (e.g. "kv head 3").
LogicalResult verifyHeadReplicas(function_ref<InFlightDiagnostic()> emitError,
                                 ArrayRef<Attribute> replicas,
                                 int64_t numDevices, StringRef what);

/// The model configuration attached (as `fairkv.config`) to the closest
/// ancestor of `op` that has one, or null; also null inside a device's
/// program (a function marked `fairkv.device`), whose ops hold slices.
ModelConfigAttr lookupModelConfig(Operation *op);

} // namespace mlir::fairkv

#endif // FAIRKV_DIALECT_FAIRKV_IR_FAIRKVATTRS_H

//===- FairKVOps.h - FairKV ops ---------------------------------*- C++ -*-===//
//
// Declares the ops of the fairkv dialect and the KV-cache side-effect
// resource.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_DIALECT_FAIRKV_IR_FAIRKVOPS_H
#define FAIRKV_DIALECT_FAIRKV_IR_FAIRKVOPS_H

#include "fairkv/Dialect/FairKV/IR/FairKVAttrs.h"
#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::fairkv {

/// The runtime-owned KV cache that attention reads and appends to.
struct KVCacheResource : public SideEffects::Resource::Base<KVCacheResource> {
  StringRef getName() final { return "fairkv::KVCache"; }
};

/// Communication between devices, touched by every collective.
struct CommResource : public SideEffects::Resource::Base<CommResource> {
  StringRef getName() final { return "fairkv::Comm"; }
};

} // namespace mlir::fairkv

#define GET_OP_CLASSES
#include "fairkv/Dialect/FairKV/IR/FairKVOps.h.inc"

#endif // FAIRKV_DIALECT_FAIRKV_IR_FAIRKVOPS_H

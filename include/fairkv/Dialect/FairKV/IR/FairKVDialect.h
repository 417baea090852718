//===- FairKVDialect.h - FairKV dialect -------------------------*- C++ -*-===//
//
// Declares the fairkv dialect class.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_DIALECT_FAIRKV_IR_FAIRKVDIALECT_H
#define FAIRKV_DIALECT_FAIRKV_IR_FAIRKVDIALECT_H

#include "mlir/IR/Dialect.h"

#include "fairkv/Dialect/FairKV/IR/FairKVOpsDialect.h.inc"

#endif // FAIRKV_DIALECT_FAIRKV_IR_FAIRKVDIALECT_H

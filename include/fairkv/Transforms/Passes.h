//===- Passes.h - FairKV transformation passes ------------------*- C++ -*-===//

#ifndef FAIRKV_TRANSFORMS_PASSES_H
#define FAIRKV_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir::shard {
class ShardDialect;
} // namespace mlir::shard

namespace mlir::fairkv {

#define GEN_PASS_DECL
#include "fairkv/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "fairkv/Transforms/Passes.h.inc"

} // namespace mlir::fairkv

#endif // FAIRKV_TRANSFORMS_PASSES_H

//===- FairKVDialect.cpp - FairKV dialect ---------------------------------===//
//
// Registers the ops and attributes of the fairkv dialect and verifies its
// discardable attributes.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Dialect/FairKV/IR/FairKVAttrs.h"
#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"

using namespace mlir;
using namespace mlir::fairkv;

#include "fairkv/Dialect/FairKV/IR/FairKVOpsDialect.cpp.inc"

void FairKVDialect::initialize() {
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "fairkv/Dialect/FairKV/IR/FairKVOps.cpp.inc"
      >();
}

LogicalResult FairKVDialect::verifyOperationAttribute(Operation *op,
                                                      NamedAttribute attr) {
  if (attr.getName() == getConfigAttrName()) {
    if (!isa<ModelConfigAttr>(attr.getValue()))
      return op->emitError() << "'" << getConfigAttrName()
                             << "' must be a #fairkv.model_config";
    return success();
  }
  if (attr.getName() == getDeviceAttrName()) {
    auto device = dyn_cast<IntegerAttr>(attr.getValue());
    if (!device || device.getInt() < 0)
      return op->emitError() << "'" << getDeviceAttrName()
                             << "' must be a non-negative integer";
    return success();
  }
  return op->emitError() << "unknown fairkv attribute '" << attr.getName().getValue()
                         << "'";
}

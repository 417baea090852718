//===- DevicePrograms.h - Per-device functions of a module ---*- C++ -*-===//
//
// fairkv-shard-heads writes one function per device, `@<name>_dev<g>` marked
// `fairkv.device = g`. The passes that look at all devices of a program at
// once (verification, collective fusion) group them here.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_TRANSFORMS_DEVICEPROGRAMS_H
#define FAIRKV_TRANSFORMS_DEVICEPROGRAMS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <map>
#include <string>

namespace mlir::fairkv {

/// The device index of a per-device function, or -1.
int64_t deviceOf(func::FuncOp f);

/// The module's per-device functions, keyed by the name of the function they
/// came from, each list in module order.
std::map<std::string, SmallVector<func::FuncOp>>
groupDevicePrograms(ModuleOp module);

} // namespace mlir::fairkv

#endif // FAIRKV_TRANSFORMS_DEVICEPROGRAMS_H

//===- DevicePrograms.cpp - The per-device functions of a module ----------===//

#include "fairkv/Transforms/DevicePrograms.h"

#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"

using namespace mlir;

int64_t mlir::fairkv::deviceOf(func::FuncOp f) {
  auto device =
      f->getAttrOfType<IntegerAttr>(FairKVDialect::getDeviceAttrName());
  return device ? device.getInt() : -1;
}

std::map<std::string, SmallVector<func::FuncOp>>
mlir::fairkv::groupDevicePrograms(ModuleOp module) {
  std::map<std::string, SmallVector<func::FuncOp>> programs;
  for (func::FuncOp f : module.getOps<func::FuncOp>()) {
    int64_t device = deviceOf(f);
    if (device < 0)
      continue;
    StringRef name = f.getName();
    std::string suffix = "_dev" + std::to_string(device);
    programs[(name.ends_with(suffix) ? name.drop_back(suffix.size()) : name)
                 .str()]
        .push_back(f);
  }
  return programs;
}

//===- ReleaseTensors.cpp - Release runtime tensors after their last use --===//
//
// Implements fairkv-release-tensors; see its description in
// include/fairkv/Conversion/Passes.td.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::fairkv {
#define GEN_PASS_DEF_FAIRKVRELEASETENSORSPASS
#include "fairkv/Conversion/Passes.h.inc"
} // namespace mlir::fairkv

using namespace mlir;
using namespace mlir::fairkv;

namespace {

constexpr StringLiteral kRelease = "fairkv_rt_release";

/// Whether `call` makes a tensor of the step: a runtime entry point that
/// returns a handle, other than a weight (which the runtime keeps).
bool makesStepTensor(func::CallOp call) {
  StringRef callee = call.getCallee();
  return callee.starts_with("fairkv_rt_") && callee != "fairkv_rt_weight" &&
         call.getNumResults() == 1 && call.getNumOperands() >= 1 &&
         isa<LLVM::LLVMPointerType>(call.getResult(0).getType());
}

/// The last op of `v`'s block that uses it, or null when it is not to be
/// released: a use outside the block or by anything but a runtime call, or
/// a release already there.
Operation *lastUse(Value v) {
  Block *block = v.getParentBlock();
  Operation *last = nullptr;
  for (Operation *user : v.getUsers()) {
    auto call = dyn_cast<func::CallOp>(user);
    // Released already (the pass ran before), or not only the runtime's.
    if (!call || call.getCallee() == kRelease ||
        !call.getCallee().starts_with("fairkv_rt_") ||
        user->getBlock() != block)
      return nullptr;
    if (!last || last->isBeforeInBlock(user))
      last = user;
  }
  return last;
}

struct FairKVReleaseTensorsPass
    : public mlir::fairkv::impl::FairKVReleaseTensorsPassBase<
          FairKVReleaseTensorsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<std::pair<func::CallOp, Operation *>> releases;
    module.walk([&](func::CallOp call) {
      if (call.getCallee() == kRelease || !makesStepTensor(call))
        return;
      Value handle = call.getResult(0);
      // A tensor nothing reads goes back at once.
      Operation *last = handle.use_empty() ? call.getOperation()
                                           : lastUse(handle);
      if (last)
        releases.push_back({call, last});
    });
    if (releases.empty())
      return;
    OpBuilder b(module.getContext());
    auto ptr = LLVM::LLVMPointerType::get(module.getContext());
    func::FuncOp release = module.lookupSymbol<func::FuncOp>(kRelease);
    if (!release) {
      b.setInsertionPointToEnd(module.getBody());
      release = func::FuncOp::create(b, module.getLoc(), kRelease,
                                     b.getFunctionType({ptr, ptr}, {}));
      release.setPrivate();
    }
    for (auto [call, last] : releases) {
      b.setInsertionPointAfter(last);
      func::CallOp::create(b, call.getLoc(), release,
                           ValueRange{call.getOperand(0), call.getResult(0)});
    }
  }
};

} // namespace

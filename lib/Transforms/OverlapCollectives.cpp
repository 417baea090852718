//===- OverlapCollectives.cpp - Fuse projections with their all_reduce ----===//
//
// Implements fairkv-overlap-collectives; see its description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Transforms/Passes.h"

#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "fairkv/Transforms/DevicePrograms.h"
#include "mlir/IR/Builders.h"

namespace mlir::fairkv {
#define GEN_PASS_DEF_FAIRKVOVERLAPCOLLECTIVESPASS
#include "fairkv/Transforms/Passes.h.inc"
} // namespace mlir::fairkv

using namespace mlir;
using namespace mlir::fairkv;

namespace {

/// The projection an all_reduce could absorb: its input's producer when
/// that is an out_proj or an mlp used only by this all_reduce, and the
/// reduction is a sum.
Operation *fusableProducer(AllReduceOp reduce) {
  if (reduce.getReduction() != ReductionKind::Sum)
    return nullptr;
  Operation *producer = reduce.getInput().getDefiningOp();
  if (!producer || !producer->hasOneUse() || !isa<OutProjOp, MLPOp>(producer))
    return nullptr;
  return producer;
}

struct OverlapCollectivesPass
    : public mlir::fairkv::impl::FairKVOverlapCollectivesPassBase<
          OverlapCollectivesPass> {
  using Base::Base;

  void runOnOperation() override {
    if (chunks < 1 || minChunkBytes < 0) {
      getOperation().emitError()
          << "fairkv-overlap-collectives needs chunks >= 1 and "
             "min-chunk-bytes >= 0 (got "
          << int64_t(chunks) << " and " << int64_t(minChunkBytes) << ")";
      return signalPassFailure();
    }
    for (auto &[base, funcs] : groupDevicePrograms(getOperation())) {
      SmallVector<SmallVector<AllReduceOp>> reduces;
      for (func::FuncOp f : funcs) {
        reduces.emplace_back();
        f.walk([&](AllReduceOp op) { reduces.back().push_back(op); });
        if (reduces.back().size() != reduces.front().size()) {
          f.emitOpError() << "issues " << reduces.back().size()
                          << " all_reduce ops where device program '"
                          << funcs.front().getName() << "' issues "
                          << reduces.front().size()
                          << ": the devices could not run together";
          return signalPassFailure();
        }
      }
      // The k-th all_reduce fuses on every device or on none.
      for (size_t k = 0; k < reduces.front().size(); ++k) {
        bool everywhere = llvm::all_of(reduces, [&](auto &list) {
          return fusableProducer(list[k]) != nullptr;
        });
        for (auto &list : reduces) {
          if (everywhere)
            fuse(list[k]);
          else
            ++numKept;
        }
      }
    }
  }

  void fuse(AllReduceOp reduce) {
    Operation *producer = fusableProducer(reduce);
    OpBuilder b(reduce);
    Value input, weight;
    if (auto proj = dyn_cast<OutProjOp>(producer)) {
      input = proj.getInput();
      weight = proj.getWo();
    } else {
      auto mlp = cast<MLPOp>(producer);
      b.setInsertionPoint(mlp);
      int64_t ffn =
          cast<RankedTensorType>(mlp.getWGate().getType()).getDimSize(0);
      auto hiddenType = cast<RankedTensorType>(mlp.getInput().getType());
      auto actType = RankedTensorType::get(
          {hiddenType.getDimSize(0), hiddenType.getDimSize(1), ffn},
          hiddenType.getElementType());
      input = GatedActOp::create(b, mlp.getLoc(), actType, mlp.getInput(),
                                 mlp.getWGate(), mlp.getWUp());
      weight = mlp.getWDown();
      b.setInsertionPoint(reduce);
    }
    Value fused = LinearAllReduceOp::create(
        b, reduce.getLoc(), reduce.getType(), input, weight,
        reduce.getGridAttr(), b.getI64IntegerAttr(chunks),
        b.getI64IntegerAttr(minChunkBytes));
    reduce.replaceAllUsesWith(fused);
    reduce.erase();
    producer->erase();
    ++numFused;
  }
};

} // namespace

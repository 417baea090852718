//===- OverlapCollectives.cpp - Fuse projections with their all_reduce ----===//
//
// Implements fairkv-overlap-collectives; see its description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Transforms/Passes.h"

#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "fairkv/Placement/Model.h"
#include "fairkv/Placement/Plan.h"
#include "fairkv/Transforms/DevicePrograms.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"

#include <cmath>
#include <optional>

namespace mlir::fairkv {
#define GEN_PASS_DEF_FAIRKVOVERLAPCOLLECTIVESPASS
#include "fairkv/Transforms/Passes.h.inc"
} // namespace mlir::fairkv

using namespace mlir;
using namespace mlir::fairkv;
namespace fp = ::fairkv::placement;

namespace {

/// What one device's all_reduce (a sum) absorbs. Its input is a
/// projection, an add_rows chain of copies' rows on a projection, or such
/// a chain on zeros (a device holding only copies, or nothing, of the
/// layer); each value on the way used only by the next.
struct Fusion {
  /// The out_proj or mlp whose GEMM the fused op takes over, if any.
  Operation *producer = nullptr;
  /// The first add_rows of the copies' chain, if any.
  AddRowsOp chainRoot;
  /// With both: the layer's normed input, whose zeros the chain is moved
  /// onto so it becomes the fused op's addend.
  Value zerosLike;
};

/// The [batch, seq, hidden] input of the layer whose attention output
/// `proj` projects: qkv_proj -> rotary -> attention -> out_proj, as
/// fairkv-shard-heads writes it.
Value layerInput(OutProjOp proj) {
  auto attention = proj.getInput().getDefiningOp<AttentionOp>();
  auto rotary =
      attention ? attention.getQuery().getDefiningOp<RotaryOp>() : nullptr;
  auto qkv = rotary ? rotary.getInput().getDefiningOp<QKVProjOp>() : nullptr;
  return qkv ? qkv.getInput() : Value();
}

std::optional<Fusion> analyze(AllReduceOp reduce) {
  if (reduce.getReduction() != ReductionKind::Sum)
    return std::nullopt;
  Fusion f;
  Value acc = reduce.getInput();
  while (auto addRows = acc.getDefiningOp<AddRowsOp>()) {
    if (!acc.hasOneUse())
      return std::nullopt;
    f.chainRoot = addRows;
    acc = addRows.getAcc();
  }
  Operation *def = acc.getDefiningOp();
  if (!def || !acc.hasOneUse())
    return std::nullopt;
  if (isa<ZerosLikeOp>(def))
    return f;
  if (isa<MLPOp>(def) && !f.chainRoot) {
    f.producer = def;
    return f;
  }
  auto proj = dyn_cast<OutProjOp>(def);
  if (!proj)
    return std::nullopt;
  f.producer = proj;
  if (f.chainRoot) {
    // The zeros go where the chain starts, so the input must come before.
    f.zerosLike = layerInput(proj);
    Operation *input = f.zerosLike ? f.zerosLike.getDefiningOp() : nullptr;
    if (!f.zerosLike || f.zerosLike.getType() != reduce.getType() ||
        (input && (input->getBlock() != f.chainRoot->getBlock() ||
                   !input->isBeforeInBlock(f.chainRoot))))
      return std::nullopt;
  }
  return f;
}

struct OverlapCollectivesPass
    : public mlir::fairkv::impl::FairKVOverlapCollectivesPassBase<
          OverlapCollectivesPass> {
  using Base::Base;

  void runOnOperation() override {
    if (chunks < 1 || minChunkBytes < -1) {
      getOperation().emitError()
          << "fairkv-overlap-collectives needs chunks >= 1 and "
             "min-chunk-bytes >= -1 (got "
          << int64_t(chunks) << " and " << int64_t(minChunkBytes) << ")";
      return signalPassFailure();
    }
    fp::Result<fp::Hardware> hw = fp::hardwarePreset(hardware);
    if (!hw) {
      getOperation().emitError() << hw.error();
      return signalPassFailure();
    }
    SymbolTableCollection symbols;
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
      // The k-th all_reduce fuses on every device or on none, and only
      // where some device has a projection to overlap it with.
      for (size_t k = 0; k < reduces.front().size(); ++k) {
        SmallVector<std::optional<Fusion>> plans;
        for (auto &list : reduces)
          plans.push_back(analyze(list[k]));
        bool everywhere =
            llvm::all_of(plans, [](const std::optional<Fusion> &p) {
              return p.has_value();
            });
        bool anyProjection =
            llvm::any_of(plans, [](const std::optional<Fusion> &p) {
              return p && p->producer;
            });
        if (!everywhere || !anyProjection) {
          numKept += reduces.size();
          continue;
        }
        auto [blocks, minBytes] = blocking(reduces.front()[k], *hw, symbols);
        for (auto [list, plan] : llvm::zip(reduces, plans))
          fuse(list[k], *plan, blocks, minBytes);
      }
    }
  }

  /// The fused op's (chunks, min_chunk_bytes): the options, or with
  /// min-chunk-bytes = -1 the smallest block that pays on `hw` for the
  /// grid's size (one block on one device: nothing to reduce).
  std::pair<int64_t, int64_t> blocking(AllReduceOp reduce,
                                       const fp::Hardware &hw,
                                       SymbolTableCollection &symbols) {
    if (minChunkBytes >= 0)
      return {chunks, minChunkBytes};
    int64_t devices = 1;
    if (auto grid = symbols.lookupNearestSymbolFrom<shard::GridOp>(
            reduce, reduce.getGridAttr()))
      for (int64_t dim : grid.getShape())
        devices *= ShapedType::isDynamic(dim) ? 1 : dim;
    if (devices <= 1)
      return {1, 0};
    return {chunks,
            static_cast<int64_t>(std::ceil(fp::smallestPayingReductionBlock(
                static_cast<int>(devices), hw)))};
  }

  void fuse(AllReduceOp reduce, Fusion f, int64_t blocks, int64_t minBytes) {
    OpBuilder b(reduce);
    Value input, weight, addend;
    if (auto proj = dyn_cast_or_null<OutProjOp>(f.producer)) {
      input = proj.getInput();
      weight = proj.getWo();
    } else if (auto mlp = dyn_cast_or_null<MLPOp>(f.producer)) {
      b.setInsertionPoint(mlp);
      auto hiddenType = cast<RankedTensorType>(mlp.getInput().getType());
      auto actType = RankedTensorType::get(
          {hiddenType.getDimSize(0), hiddenType.getDimSize(1),
           mlp.getWGate().getType().getDimSize(0)},
          hiddenType.getElementType());
      input = GatedActOp::create(b, mlp.getLoc(), actType, mlp.getInput(),
                                 mlp.getWGate(), mlp.getWUp());
      weight = mlp.getWDown();
    }
    if (f.producer && f.chainRoot) {
      // The copies' rows now start from zeros; the projection is added to
      // them block by block.
      b.setInsertionPoint(f.chainRoot);
      Value zeros = ZerosLikeOp::create(b, f.chainRoot.getLoc(),
                                        f.zerosLike.getType(), f.zerosLike);
      f.chainRoot.getAccMutable().assign(zeros);
    }
    if (!f.producer || f.chainRoot)
      addend = reduce.getInput();
    b.setInsertionPoint(reduce);
    Value fused = LinearAllReduceOp::create(
        b, reduce.getLoc(), reduce.getType(), input, weight, addend,
        reduce.getGridAttr(), b.getI64IntegerAttr(blocks),
        b.getI64IntegerAttr(minBytes));
    reduce.replaceAllUsesWith(fused);
    reduce.erase();
    if (f.producer)
      f.producer->erase();
    ++numFused;
  }
};

} // namespace

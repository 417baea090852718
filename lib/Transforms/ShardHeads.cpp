//===- ShardHeads.cpp - One program per device from a placed model --------===//
//
// Implements fairkv-shard-heads; see its description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Transforms/Passes.h"

#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::fairkv {
#define GEN_PASS_DEF_FAIRKVSHARDHEADSPASS
#include "fairkv/Transforms/Passes.h.inc"
} // namespace mlir::fairkv

using namespace mlir;
using namespace mlir::fairkv;

namespace {

/// The ops of one layer's attention block, as the importer writes them.
struct AttentionBlock {
  QKVProjOp qkv;
  /// Qwen3's per-head norms of q and k, between qkv_proj and rotary (null
  /// for the other families).
  RMSNormOp queryNorm, keyNorm;
  RotaryOp queryRotary, keyRotary;
  AttentionOp attention;
  OutProjOp outProj;
  WeightOp wq, wk, wv, wo;
  /// Qwen2's biases (null without).
  WeightOp bq, bk, bv;
};

/// Half-open [start, end) ranges of rows (or columns) of the given units,
/// merged where adjacent.
SmallVector<int64_t> unitRanges(ArrayRef<int64_t> units, int64_t unitSize) {
  SmallVector<int64_t> sorted(units);
  llvm::sort(sorted);
  SmallVector<int64_t> ranges;
  for (int64_t u : sorted) {
    if (!ranges.empty() && ranges.back() == u * unitSize)
      ranges.back() = (u + 1) * unitSize;
    else
      ranges.append({u * unitSize, (u + 1) * unitSize});
  }
  return ranges;
}

RankedTensorType withDims(RankedTensorType type, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, type.getElementType());
}

/// The same type with a dynamic batch (dim 0): a replica's share of rows.
RankedTensorType localBatch(Type type) {
  auto t = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(t.getShape());
  shape[0] = ShapedType::kDynamic;
  return withDims(t, shape);
}

class DeviceSharder {
public:
  DeviceSharder(func::FuncOp func, int64_t device, int64_t devices,
                FlatSymbolRefAttr grid, ModelConfigAttr config,
                int64_t &splitHeads)
      : func(func), device(device), devices(devices), grid(grid),
        config(config), splitHeads(splitHeads) {}

  LogicalResult run() {
    SmallVector<AttentionOp> attentions;
    func.walk([&](AttentionOp op) { attentions.push_back(op); });
    for (AttentionOp op : attentions)
      if (failed(shardAttention(op)))
        return failure();
    SmallVector<MLPOp> mlps;
    func.walk([&](MLPOp op) { mlps.push_back(op); });
    for (MLPOp op : mlps)
      if (failed(shardMLP(op)))
        return failure();
    SmallVector<LMHeadOp> heads;
    func.walk([&](LMHeadOp op) { heads.push_back(op); });
    for (LMHeadOp op : heads)
      if (failed(shardLMHead(op)))
        return failure();
    // The unsliced originals are no longer used.
    SmallVector<WeightOp> dead;
    func.walk([&](WeightOp op) {
      if (op->use_empty())
        dead.push_back(op);
    });
    for (WeightOp op : dead)
      op->erase();
    return success();
  }

private:
  /// A slice of `weight` along `dim` covering `ranges`.
  Value slice(OpBuilder &b, WeightOp weight, int64_t dim,
              ArrayRef<int64_t> ranges) {
    RankedTensorType full = weight.getResult().getType();
    SmallVector<int64_t> shape(full.getShape());
    int64_t total = 0;
    for (size_t i = 0; i < ranges.size(); i += 2)
      total += ranges[i + 1] - ranges[i];
    shape[dim] = total;
    return WeightOp::create(b, weight.getLoc(), withDims(full, shape),
                            weight.getNameAttr(), b.getI64IntegerAttr(dim),
                            b.getDenseI64ArrayAttr(ranges),
                            b.getDenseI64ArrayAttr(full.getShape()));
  }

  FailureOr<WeightOp> unslicedWeight(Operation *user, Value v, StringRef what) {
    auto weight = v.getDefiningOp<WeightOp>();
    if (!weight || weight.isSlice())
      return user->emitOpError()
             << "fairkv-shard-heads needs the " << what
             << " to come from an unsliced fairkv.weight";
    return weight;
  }

  FailureOr<AttentionBlock> matchBlock(AttentionOp op) {
    AttentionBlock block;
    block.attention = op;
    auto fail = [&](StringRef why) {
      return op.emitOpError() << "layer " << op.getLayer()
                              << ": fairkv-shard-heads expects qkv_proj -> "
                                 "[per-head rms_norm ->] rotary -> attention "
                                 "-> out_proj ("
                              << why << ")";
    };
    block.queryRotary = op.getQuery().getDefiningOp<RotaryOp>();
    block.keyRotary = op.getKey().getDefiningOp<RotaryOp>();
    if (!block.queryRotary || !block.keyRotary)
      return fail("query and key must come from fairkv.rotary");
    Value q = block.queryRotary.getInput(), k = block.keyRotary.getInput();
    block.queryNorm = q.getDefiningOp<RMSNormOp>();
    block.keyNorm = k.getDefiningOp<RMSNormOp>();
    if (static_cast<bool>(block.queryNorm) != static_cast<bool>(block.keyNorm))
      return fail("query and key are normalized both or neither");
    if (block.queryNorm) {
      if (!q.hasOneUse() || !k.hasOneUse())
        return fail("a per-head norm must feed only its rotary");
      q = block.queryNorm.getInput();
      k = block.keyNorm.getInput();
    }
    block.qkv = q.getDefiningOp<QKVProjOp>();
    if (!block.qkv || block.qkv.getQ() != q || block.qkv.getK() != k ||
        block.qkv.getV() != op.getValue())
      return fail("query, key and value must come from one fairkv.qkv_proj");
    if (block.queryRotary.getPositions() != block.keyRotary.getPositions())
      return fail("query and key rotary must use the same positions");
    if (!op->hasOneUse() || !isa<OutProjOp>(*op->user_begin()))
      return fail("the attention result must feed exactly one out_proj");
    block.outProj = cast<OutProjOp>(*op->user_begin());
    for (auto [slot, value, what] :
         {std::tuple(&block.wq, block.qkv.getWq(), "q weight"),
          std::tuple(&block.wk, block.qkv.getWk(), "k weight"),
          std::tuple(&block.wv, block.qkv.getWv(), "v weight")}) {
      FailureOr<WeightOp> w = unslicedWeight(block.qkv, value, what);
      if (failed(w))
        return failure();
      *slot = *w;
    }
    if (block.qkv.getBq())
      for (auto [slot, value, what] :
           {std::tuple(&block.bq, block.qkv.getBq(), "q bias"),
            std::tuple(&block.bk, block.qkv.getBk(), "k bias"),
            std::tuple(&block.bv, block.qkv.getBv(), "v bias")}) {
        FailureOr<WeightOp> w = unslicedWeight(block.qkv, value, what);
        if (failed(w))
          return failure();
        *slot = *w;
      }
    FailureOr<WeightOp> wo =
        unslicedWeight(block.outProj, block.outProj.getWo(), "o weight");
    if (failed(wo))
      return failure();
    block.wo = *wo;
    return block;
  }

  /// qkv_proj -> rotary -> attention over `heads` of the layer, on `input`
  /// rows (the whole batch, or a replica's share).
  Value buildAttention(OpBuilder &b, AttentionBlock &block,
                       ArrayRef<int64_t> heads, Value input, Value positions,
                       ReplicaAttr share) {
    AttentionOp op = block.attention;
    Location loc = op.getLoc();
    auto qType = cast<RankedTensorType>(block.qkv.getQ().getType());
    auto kType = cast<RankedTensorType>(block.qkv.getK().getType());
    int64_t group = qType.getDimSize(2) / kType.getDimSize(2);
    int64_t d = qType.getDimSize(3);
    int64_t n = heads.size();
    int64_t batch = cast<RankedTensorType>(input.getType()).getDimSize(0);
    int64_t seq = qType.getDimSize(1);

    Value wq = slice(b, block.wq, 0, unitRanges(heads, group * d));
    Value wk = slice(b, block.wk, 0, unitRanges(heads, d));
    Value wv = slice(b, block.wv, 0, unitRanges(heads, d));
    auto qTy = withDims(qType, {batch, seq, n * group, d});
    auto kTy = withDims(kType, {batch, seq, n, d});
    // A head's biases are sliced with its rows.
    Value bq, bk, bv;
    if (block.bq) {
      bq = slice(b, block.bq, 0, unitRanges(heads, group * d));
      bk = slice(b, block.bk, 0, unitRanges(heads, d));
      bv = slice(b, block.bv, 0, unitRanges(heads, d));
    }
    auto qkv = QKVProjOp::create(b, loc, TypeRange{qTy, kTy, kTy}, input, wq,
                                 wk, wv, bq, bk, bv);
    Value q = qkv.getQ(), k = qkv.getK();
    // Per-head norms share one weight of head_dim across heads: every device
    // reads it whole.
    if (block.queryNorm) {
      q = RMSNormOp::create(b, loc, qTy, q, block.queryNorm.getWeight(),
                            block.queryNorm.getEpsAttr());
      k = RMSNormOp::create(b, loc, kTy, k, block.keyNorm.getWeight(),
                            block.keyNorm.getEpsAttr());
    }
    q = RotaryOp::create(b, loc, q, positions, block.queryRotary.getThetaAttr(),
                         block.queryRotary.getScalingAttr());
    k = RotaryOp::create(b, loc, k, positions, block.keyRotary.getThetaAttr(),
                         block.keyRotary.getScalingAttr());
    SmallVector<int64_t> tokens;
    for (int64_t h : heads)
      tokens.push_back(op.getBudgets().getTokens()[h]);
    auto budgets = KVBudgetsAttr::get(b.getContext(), tokens,
                                      op.getBudgets().getSource());
    return AttentionOp::create(b, loc, qTy, q, k, qkv.getV(), op.getLayerAttr(),
                               budgets, op.getPlacementAttr(), grid,
                               b.getDenseI64ArrayAttr(heads), share);
  }

  LogicalResult shardAttention(AttentionOp op) {
    FailureOr<AttentionBlock> matched = matchBlock(op);
    if (failed(matched))
      return failure();
    AttentionBlock &block = *matched;
    PlacementAttr placement = *op.getPlacement();
    auto qType = cast<RankedTensorType>(block.qkv.getQ().getType());
    auto kType = cast<RankedTensorType>(block.qkv.getK().getType());
    int64_t group = qType.getDimSize(2) / kType.getDimSize(2);
    int64_t d = qType.getDimSize(3);
    Value input = block.qkv.getInput();
    Value positions = block.queryRotary.getPositions();
    auto hiddenType = cast<RankedTensorType>(block.outProj.getType());
    if (input.getType() != hiddenType)
      return op.emitOpError() << "layer " << op.getLayer()
                              << ": the qkv_proj input and the out_proj "
                                 "result must have the same type";

    OpBuilder b(block.outProj);
    Location loc = op.getLoc();
    MLIRContext *ctx = b.getContext();
    SmallVector<int64_t> whole;
    SmallVector<std::pair<int64_t, ReplicaAttr>> split;
    for (int64_t h = 0; h < placement.getNumKVHeads(); ++h) {
      SmallVector<ReplicaAttr> replicas = placement.getReplicas(h);
      for (ReplicaAttr r : replicas) {
        if (r.getDevice() != device)
          continue;
        if (replicas.size() == 1)
          whole.push_back(h);
        else
          split.push_back({h, r});
      }
    }

    Value acc;
    if (!whole.empty()) {
      Value a = buildAttention(b, block, whole, input, positions, nullptr);
      Value wo = slice(b, block.wo, 1, unitRanges(whole, group * d));
      acc = OutProjOp::create(b, loc, hiddenType, a, wo);
    }
    for (auto [h, replica] : split) {
      ++splitHeads;
      SmallVector<Attribute> all(placement.getHeads()[h].getValue());
      ArrayAttr replicas = ArrayAttr::get(ctx, all);
      IntegerAttr head = b.getI64IntegerAttr(h);
      IntegerAttr budget =
          b.getI64IntegerAttr(op.getBudgets().getTokens()[h]);
      Value in = ReplicateOp::create(b, loc, localBatch(input.getType()), input,
                                     head, budget, replicas, grid);
      Value pos = ReplicateOp::create(b, loc, localBatch(positions.getType()),
                                      positions, head, budget, replicas, grid);
      int64_t one[] = {h};
      Value a = buildAttention(b, block, one, in, pos, replica);
      auto fullHeads = withDims(cast<RankedTensorType>(a.getType()),
                                {qType.getDimSize(0), qType.getDimSize(1),
                                 group, d});
      Value gathered =
          GatherOp::create(b, loc, fullHeads, a, head, budget, replicas, grid);
      Value wo = slice(b, block.wo, 1, unitRanges(one, group * d));
      Value projected = OutProjOp::create(b, loc, hiddenType, gathered, wo);
      Value rows = ReplicateOp::create(b, loc, localBatch(hiddenType),
                                       projected, head, budget, replicas,
                                       grid);
      if (!acc)
        acc = ZerosLikeOp::create(b, loc, input);
      acc = AddRowsOp::create(b, loc, acc, rows, head, budget, replicas,
                              grid);
    }
    if (!acc)
      acc = ZerosLikeOp::create(b, loc, input);
    Value reduced = AllReduceOp::create(
        b, loc, acc, grid,
        ReductionKindAttr::get(b.getContext(), ReductionKind::Sum));
    block.outProj.getResult().replaceAllUsesWith(reduced);
    block.outProj->erase();
    op->erase();
    block.queryRotary->erase();
    block.keyRotary->erase();
    if (block.queryNorm) {
      block.queryNorm->erase();
      block.keyNorm->erase();
    }
    block.qkv->erase();
    return success();
  }

  LogicalResult shardMLP(MLPOp op) {
    int64_t ffn = cast<RankedTensorType>(op.getWGate().getType()).getDimSize(0);
    if (ffn % devices != 0)
      return op.emitOpError() << "ffn (" << ffn << ") must be divisible by "
                              << "the devices (" << devices << ")";
    FailureOr<WeightOp> gate = unslicedWeight(op, op.getWGate(), "gate weight");
    FailureOr<WeightOp> up = unslicedWeight(op, op.getWUp(), "up weight");
    FailureOr<WeightOp> down = unslicedWeight(op, op.getWDown(), "down weight");
    if (failed(gate) || failed(up) || failed(down))
      return failure();
    int64_t block = ffn / devices;
    int64_t range[] = {device * block, (device + 1) * block};
    OpBuilder b(op);
    Value mlp = MLPOp::create(b, op.getLoc(), op.getType(), op.getInput(),
                              slice(b, *gate, 0, range), slice(b, *up, 0, range),
                              slice(b, *down, 1, range));
    Value reduced =
        AllReduceOp::create(
        b, op.getLoc(), mlp, grid,
        ReductionKindAttr::get(b.getContext(), ReductionKind::Sum));
    op.getResult().replaceAllUsesWith(reduced);
    op->erase();
    return success();
  }

  LogicalResult shardLMHead(LMHeadOp op) {
    auto type = cast<RankedTensorType>(op.getType());
    int64_t vocab = type.getDimSize(2);
    if (ShapedType::isDynamic(vocab) || vocab % devices != 0)
      return op.emitOpError() << "vocab (" << vocab << ") must be divisible "
                              << "by the devices (" << devices << ")";
    FailureOr<WeightOp> weight = unslicedWeight(op, op.getWeight(), "weight");
    if (failed(weight))
      return failure();
    int64_t block = vocab / devices;
    int64_t range[] = {device * block, (device + 1) * block};
    OpBuilder b(op);
    auto localType =
        withDims(type, {type.getDimSize(0), type.getDimSize(1), block});
    Value local = LMHeadOp::create(b, op.getLoc(), localType, op.getInput(),
                                   slice(b, *weight, 0, range));
    Value gathered = AllGatherOp::create(b, op.getLoc(), type, local, grid,
                                         b.getI64IntegerAttr(2));
    op.getResult().replaceAllUsesWith(gathered);
    op->erase();
    return success();
  }

  func::FuncOp func;
  int64_t device, devices;
  FlatSymbolRefAttr grid;
  ModelConfigAttr config;
  int64_t &splitHeads;
};

struct ShardHeadsPass
    : public mlir::fairkv::impl::FairKVShardHeadsPassBase<ShardHeadsPass> {
  using FairKVShardHeadsPassBase::FairKVShardHeadsPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto config = module->getAttrOfType<ModelConfigAttr>(
        FairKVDialect::getConfigAttrName());
    if (!config) {
      module.emitError("fairkv-shard-heads needs the module's 'fairkv.config'");
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> models;
    for (func::FuncOp f : module.getOps<func::FuncOp>()) {
      if (f->hasAttr(FairKVDialect::getDeviceAttrName()))
        continue;
      bool hasAttention = false;
      f.walk([&](AttentionOp) { hasAttention = true; });
      if (hasAttention)
        models.push_back(f);
    }
    if (models.empty()) {
      module.emitError("fairkv-shard-heads found no function with "
                       "fairkv.attention ops to shard");
      return signalPassFailure();
    }
    SymbolTable symbols(module);
    int64_t splitHeads = 0;
    for (func::FuncOp model : models) {
      FlatSymbolRefAttr grid;
      int64_t devices = 0;
      WalkResult placed = model.walk([&](AttentionOp op) {
        if (!op.getPlacement() || !op.getGridAttr()) {
          op.emitOpError() << "layer " << op.getLayer()
                           << " has no placement on a grid: run "
                              "fairkv-plan-placement first";
          return WalkResult::interrupt();
        }
        if (grid && (op.getGridAttr() != grid ||
                     op.getPlacement()->getDevices() != devices)) {
          op.emitOpError() << "layer " << op.getLayer()
                           << " is placed on another grid than layer 0";
          return WalkResult::interrupt();
        }
        grid = op.getGridAttr();
        devices = op.getPlacement()->getDevices();
        return WalkResult::advance();
      });
      if (placed.wasInterrupted())
        return signalPassFailure();

      for (int64_t g = 0; g < devices; ++g) {
        func::FuncOp program = model.clone();
        program.setName((model.getName() + "_dev" + Twine(g)).str());
        program->setAttr(FairKVDialect::getDeviceAttrName(),
                         IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                          g));
        symbols.insert(program, Block::iterator(model));
        DeviceSharder sharder(program, g, devices, grid, config, splitHeads);
        if (failed(sharder.run()))
          return signalPassFailure();
        ++numDevicePrograms;
      }
      symbols.erase(model);
    }
    numSplitHeads = splitHeads;
  }
};

} // namespace

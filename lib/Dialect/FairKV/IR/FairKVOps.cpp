//===- FairKVOps.cpp - FairKV ops -----------------------------------------===//
//
// Verifiers of the fairkv ops. Each check implements one line of the
// op's **Constraints:** list in FairKVOps.td; messages name the bad value.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/DenseSet.h"

#include <cmath>

using namespace mlir;
using namespace mlir::fairkv;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace {

/// Two dims agree when equal or when either is dynamic.
bool dimsAgree(int64_t a, int64_t b) {
  return a == b || ShapedType::isDynamic(a) || ShapedType::isDynamic(b);
}

std::string dimStr(int64_t dim) {
  return ShapedType::isDynamic(dim) ? std::string("?") : std::to_string(dim);
}

std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, dim] : llvm::enumerate(shape)) {
    if (i)
      s += ", ";
    s += dimStr(dim);
  }
  return s + "]";
}

/// Checks that a 2-D weight has the shape `expected` (dims may be dynamic
/// on either side).
LogicalResult checkMatrix(Operation *op, StringRef name, Value weight,
                          ArrayRef<int64_t> expected, StringRef formula) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(weight.getType()).getShape();
  if (!dimsAgree(shape[0], expected[0]) || !dimsAgree(shape[1], expected[1]))
    return op->emitOpError() << name << " shape " << shapeStr(shape)
                             << " does not match " << formula << " = "
                             << shapeStr(expected);
  return success();
}

/// Checks that the leading [batch, seq] dims of `value` agree with `ref`.
LogicalResult checkBatchSeq(Operation *op, StringRef name, Value value,
                            Value ref, StringRef refName) {
  ArrayRef<int64_t> a = cast<ShapedType>(value.getType()).getShape();
  ArrayRef<int64_t> b = cast<ShapedType>(ref.getType()).getShape();
  if (!dimsAgree(a[0], b[0]) || !dimsAgree(a[1], b[1]))
    return op->emitOpError()
           << name << " batch and seq dims [" << dimStr(a[0]) << ", "
           << dimStr(a[1]) << "] do not match " << refName << "'s ["
           << dimStr(b[0]) << ", " << dimStr(b[1]) << "]";
  return success();
}

LogicalResult checkSameElementType(Operation *op, Value a, StringRef aName,
                                   Value b, StringRef bName) {
  if (getElementTypeOrSelf(a.getType()) != getElementTypeOrSelf(b.getType()))
    return op->emitOpError() << aName << " and " << bName
                             << " must have the same element type";
  return success();
}

/// Checks one dimension against the model config, if the op has one.
LogicalResult checkConfig(Operation *op, StringRef what, int64_t actual,
                          int64_t expected) {
  if (!ShapedType::isDynamic(actual) && actual != expected)
    return op->emitOpError() << what << " (" << actual
                             << ") does not match the model config ("
                             << expected << ")";
  return success();
}

int64_t dimOf(Value v, unsigned i) {
  return cast<ShapedType>(v.getType()).getDimSize(i);
}

/// Product of two dims, dynamic if either is.
int64_t mulDims(int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a) || ShapedType::isDynamic(b))
    return ShapedType::kDynamic;
  return a * b;
}

/// Checks query/key/value heads of GQA attention: kv heads divide query
/// heads, head_dims agree.
LogicalResult checkGroupedHeads(Operation *op, Value q, Value k) {
  int64_t hq = dimOf(q, 2), hk = dimOf(k, 2);
  if (!ShapedType::isDynamic(hq) && !ShapedType::isDynamic(hk) &&
      (hk == 0 || hq % hk != 0))
    return op->emitOpError() << "query heads (" << hq
                             << ") must be divisible by kv heads (" << hk
                             << ")";
  if (!dimsAgree(dimOf(q, 3), dimOf(k, 3)))
    return op->emitOpError() << "query and key head_dim differ ("
                             << dimStr(dimOf(q, 3)) << " vs "
                             << dimStr(dimOf(k, 3)) << ")";
  return success();
}

/// Resolves `grid` to a shard.grid and returns its device count (nullopt if
/// some grid dim is dynamic).
FailureOr<std::optional<int64_t>>
lookupGridSize(Operation *op, FlatSymbolRefAttr grid,
               SymbolTableCollection &tables) {
  auto gridOp = tables.lookupNearestSymbolFrom<shard::GridOp>(op, grid);
  if (!gridOp)
    return op->emitOpError() << "'" << grid
                             << "' does not reference a shard.grid";
  int64_t size = 1;
  for (int64_t dim : gridOp.getShape()) {
    if (ShapedType::isDynamic(dim))
      return std::optional<int64_t>();
    size *= dim;
  }
  return std::optional<int64_t>(size);
}

/// The shared verifier of replicate and gather.
LogicalResult verifyReplicaSplit(Operation *op, int64_t kvHead,
                                 ArrayAttr replicas, Value input,
                                 Value result) {
  std::string what = "kv head " + std::to_string(kvHead);
  if (failed(verifyHeadReplicas([&] { return op->emitOpError(); },
                                replicas.getValue(), /*numDevices=*/0, what)))
    return failure();
  auto in = cast<RankedTensorType>(input.getType());
  auto out = cast<RankedTensorType>(result.getType());
  if (in.getRank() != out.getRank() ||
      in.getElementType() != out.getElementType())
    return op->emitOpError()
           << "input and result must have the same rank and element type";
  for (int64_t i = 1; i < in.getRank(); ++i)
    if (!dimsAgree(in.getDimSize(i), out.getDimSize(i)))
      return op->emitOpError() << "result dim " << i << " ("
                               << dimStr(out.getDimSize(i))
                               << ") differs from the input's ("
                               << dimStr(in.getDimSize(i))
                               << "): only the batch dim may change";
  return success();
}

/// The shared symbol check of replicate and gather: the grid exists and
/// holds every replica's device.
LogicalResult verifyReplicaGrid(Operation *op, FlatSymbolRefAttr grid,
                                ArrayAttr replicas,
                                SymbolTableCollection &tables) {
  FailureOr<std::optional<int64_t>> size = lookupGridSize(op, grid, tables);
  if (failed(size))
    return failure();
  if (!*size)
    return success();
  for (Attribute attr : replicas) {
    int64_t device = cast<ReplicaAttr>(attr).getDevice();
    if (device >= **size)
      return op->emitOpError() << "replica device " << device
                               << " is outside grid " << grid << " of "
                               << **size << " devices";
  }
  return success();
}

} // namespace

#define GET_OP_CLASSES
#include "fairkv/Dialect/FairKV/IR/FairKVOps.cpp.inc"

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError("weight name must not be empty");
  if (!getResult().getType().hasStaticShape())
    return emitOpError("weight must have a static shape");
  bool any = getSliceDim() || getRanges() || getFullShape();
  if (!any)
    return success();
  if (!getSliceDim() || !getRanges() || !getFullShape())
    return emitOpError("a slice needs slice_dim, ranges and full_shape");
  ArrayRef<int64_t> full = *getFullShape();
  int64_t dim = *getSliceDim();
  if (dim < 0 || dim >= static_cast<int64_t>(full.size()))
    return emitOpError() << "slice_dim " << dim
                         << " is not a dimension of full_shape "
                         << shapeStr(full);
  ArrayRef<int64_t> ranges = *getRanges();
  if (ranges.empty() || ranges.size() % 2 != 0)
    return emitOpError("ranges must be a non-empty list of [start, end) pairs");
  int64_t previous = 0, total = 0;
  for (size_t i = 0; i < ranges.size(); i += 2) {
    int64_t start = ranges[i], end = ranges[i + 1];
    if (start >= end)
      return emitOpError() << "range [" << start << ", " << end
                           << ") is empty";
    if (start < previous)
      return emitOpError("ranges must be ascending and disjoint");
    if (end > full[dim])
      return emitOpError() << "range [" << start << ", " << end
                           << ") exceeds dimension " << dim << " of size "
                           << full[dim];
    total += end - start;
    previous = end;
  }
  SmallVector<int64_t> expected(full);
  expected[dim] = total;
  if (getResult().getType().getShape() != ArrayRef<int64_t>(expected))
    return emitOpError() << "result shape "
                         << shapeStr(getResult().getType().getShape())
                         << " does not match the slice "
                         << shapeStr(expected);
  return success();
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  int64_t vocab = dimOf(getTable(), 0), hidden = dimOf(getTable(), 1);
  if (!dimsAgree(dimOf(getResult(), 2), hidden))
    return emitOpError() << "result hidden size ("
                         << dimStr(dimOf(getResult(), 2))
                         << ") does not match the table's (" << dimStr(hidden)
                         << ")";
  if (failed(checkBatchSeq(*this, "result", getResult(), getIds(), "ids")) ||
      failed(checkSameElementType(*this, getResult(), "result", getTable(),
                                  "table")))
    return failure();
  if (ModelConfigAttr config = lookupModelConfig(*this))
    return success(
        succeeded(checkConfig(*this, "table vocab size", vocab,
                              config.getVocab())) &&
        succeeded(
            checkConfig(*this, "table hidden size", hidden, config.getHidden())));
  return success();
}

//===----------------------------------------------------------------------===//
// RMSNormOp
//===----------------------------------------------------------------------===//

LogicalResult RMSNormOp::verify() {
  const bool perHead =
      cast<RankedTensorType>(getInput().getType()).getRank() == 4;
  int64_t width = dimOf(getInput(), perHead ? 3 : 2);
  if (!dimsAgree(dimOf(getWeight(), 0), width))
    return emitOpError() << "weight size (" << dimStr(dimOf(getWeight(), 0))
                         << ") does not match the input's last dim ("
                         << dimStr(width) << ")";
  if (failed(checkSameElementType(*this, getInput(), "input", getWeight(),
                                  "weight")))
    return failure();
  if (!(getEps().convertToDouble() > 0.0))
    return emitOpError("eps must be positive");
  if (ModelConfigAttr config = lookupModelConfig(*this)) {
    if (perHead && !config.getQkNorm())
      return emitOpError("normalizes heads, but the model config has no "
                         "qk_norm");
    return perHead ? checkConfig(*this, "head_dim", width, config.getHeadDim())
                   : checkConfig(*this, "hidden size", width,
                                 config.getHidden());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// QKVProjOp
//===----------------------------------------------------------------------===//

LogicalResult QKVProjOp::verify() {
  if (getK().getType() != getV().getType())
    return emitOpError("key and value must have the same type");
  if (failed(checkGroupedHeads(*this, getQ(), getK())))
    return failure();
  int64_t hidden = dimOf(getInput(), 2);
  int64_t hq = dimOf(getQ(), 2), hk = dimOf(getK(), 2), d = dimOf(getQ(), 3);
  if (failed(checkMatrix(*this, "wq", getWq(), {mulDims(hq, d), hidden},
                         "[heads * head_dim, hidden]")) ||
      failed(checkMatrix(*this, "wk", getWk(), {mulDims(hk, d), hidden},
                         "[kv_heads * head_dim, hidden]")) ||
      failed(checkMatrix(*this, "wv", getWv(), {mulDims(hk, d), hidden},
                         "[kv_heads * head_dim, hidden]")))
    return failure();
  for (auto [value, name] : {std::pair<Value, StringRef>(getQ(), "q"),
                             std::pair<Value, StringRef>(getK(), "k")})
    if (failed(checkBatchSeq(*this, name, value, getInput(), "input")))
      return failure();
  const bool biased = static_cast<bool>(getBq());
  if (static_cast<bool>(getBk()) != biased ||
      static_cast<bool>(getBv()) != biased)
    return emitOpError("needs all three biases or none");
  if (biased)
    for (auto [bias, rows, name] :
         {std::tuple(getBq(), mulDims(hq, d), "bq"),
          std::tuple(getBk(), mulDims(hk, d), "bk"),
          std::tuple(getBv(), mulDims(hk, d), "bv")}) {
      if (!dimsAgree(dimOf(bias, 0), rows))
        return emitOpError() << name << " has " << dimStr(dimOf(bias, 0))
                             << " elements, its projection " << dimStr(rows)
                             << " rows";
      if (failed(checkSameElementType(*this, getInput(), "input", bias,
                                      "every bias")))
        return failure();
    }
  for (Value v : {getWq(), getWk(), getWv(), getQ(), getK()})
    if (failed(checkSameElementType(*this, getInput(), "input", v,
                                    "every weight and result")))
      return failure();
  if (ModelConfigAttr config = lookupModelConfig(*this)) {
    if (biased != config.getQkvBias())
      return emitOpError() << (biased ? "has" : "lacks")
                           << " biases, but the model config's qkv_bias is "
                           << config.getQkvBias();
    return success(
        succeeded(checkConfig(*this, "query heads", hq, config.getHeads())) &&
        succeeded(checkConfig(*this, "kv heads", hk, config.getKvHeads())) &&
        succeeded(checkConfig(*this, "head_dim", d, config.getHeadDim())) &&
        succeeded(checkConfig(*this, "hidden size", hidden,
                              config.getHidden())));
  }
  return success();
}

//===----------------------------------------------------------------------===//
// RotaryOp
//===----------------------------------------------------------------------===//

LogicalResult RotaryOp::verify() {
  int64_t d = dimOf(getInput(), 3);
  if (!ShapedType::isDynamic(d) && d % 2 != 0)
    return emitOpError() << "head_dim must be even, got " << d;
  if (failed(checkBatchSeq(*this, "positions", getPositions(), getInput(),
                           "input")))
    return failure();
  if (!(getTheta().convertToDouble() > 0.0))
    return emitOpError("theta must be positive");
  if (ModelConfigAttr config = lookupModelConfig(*this)) {
    if (getTheta() != config.getRopeTheta())
      return emitOpError() << "theta " << getTheta().convertToDouble()
                           << " differs from the model config's rope_theta "
                           << config.getRopeThetaValue();
    if (getScalingAttr() != config.getRopeScaling())
      return emitOpError("scaling differs from the model config's "
                         "rope_scaling");
    return checkConfig(*this, "head_dim", d, config.getHeadDim());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::verify() {
  if (getKey().getType() != getValue().getType())
    return emitOpError("key and value must have the same type");
  if (getResult().getType() != getQuery().getType())
    return emitOpError("result must have the query's type");
  if (failed(checkGroupedHeads(*this, getQuery(), getKey())) ||
      failed(checkBatchSeq(*this, "key", getKey(), getQuery(), "query")))
    return failure();
  int64_t hk = dimOf(getKey(), 2);
  int64_t budgets = getBudgets().getNumKVHeads();
  if (!ShapedType::isDynamic(hk) && budgets != hk)
    return emitOpError() << "expected one budget per kv head (" << hk
                         << "), got " << budgets;
  std::optional<PlacementAttr> placement = getPlacement();
  if (std::optional<ArrayRef<int64_t>> heads = getKvHeads()) {
    if (static_cast<int64_t>(heads->size()) != budgets)
      return emitOpError() << "kv_heads has " << heads->size()
                           << " entries, expected one per kv head ("
                           << budgets << ")";
    llvm::SmallDenseSet<int64_t> seen;
    for (int64_t h : *heads) {
      if (h < 0 || !seen.insert(h).second)
        return emitOpError("kv_heads entries must be distinct and "
                           "non-negative");
      if (placement && h >= placement->getNumKVHeads())
        return emitOpError() << "kv head " << h << " is outside the "
                             << placement->getNumKVHeads()
                             << " heads of the placement";
    }
  } else if (placement && placement->getNumKVHeads() != budgets) {
    return emitOpError() << "placement has " << placement->getNumKVHeads()
                         << " kv heads, expected " << budgets;
  }
  if (std::optional<ReplicaAttr> share = getBatchShare()) {
    std::optional<ArrayRef<int64_t>> heads = getKvHeads();
    if (!heads || heads->size() != 1)
      return emitOpError("batch_share needs exactly one entry in kv_heads");
    if (placement) {
      bool found = false;
      for (ReplicaAttr r : placement->getReplicas((*heads)[0]))
        found |= r.getDevice() == share->getDevice() &&
                 std::fabs(r.getShareValue() - share->getShareValue()) <=
                     kShareSumTolerance;
      if (!found)
        return emitOpError() << "batch_share " << *share
                             << " is not a replica of kv head " << (*heads)[0]
                             << " in the placement";
    }
  }
  if (ModelConfigAttr config = lookupModelConfig(*this)) {
    if (static_cast<int64_t>(getLayer()) >= config.getLayers())
      return emitOpError() << "layer " << getLayer()
                           << " is out of range for a model of "
                           << config.getLayers() << " layers";
    return success(
        succeeded(checkConfig(*this, "query heads", dimOf(getQuery(), 2),
                              config.getHeads())) &&
        succeeded(checkConfig(*this, "kv heads", hk, config.getKvHeads())) &&
        succeeded(checkConfig(*this, "head_dim", dimOf(getQuery(), 3),
                              config.getHeadDim())));
  }
  return success();
}

LogicalResult
AttentionOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  FlatSymbolRefAttr grid = getGridAttr();
  if (!grid)
    return success();
  FailureOr<std::optional<int64_t>> size =
      lookupGridSize(*this, grid, symbolTable);
  if (failed(size))
    return failure();
  std::optional<PlacementAttr> placement = getPlacement();
  if (*size && placement && placement->getDevices() != **size)
    return emitOpError() << "placement is over " << placement->getDevices()
                         << " devices but grid " << grid << " has "
                         << **size;
  return success();
}

//===----------------------------------------------------------------------===//
// OutProjOp
//===----------------------------------------------------------------------===//

LogicalResult OutProjOp::verify() {
  int64_t heads = dimOf(getInput(), 2), d = dimOf(getInput(), 3);
  int64_t hidden = dimOf(getResult(), 2);
  if (failed(checkMatrix(*this, "wo", getWo(), {hidden, mulDims(heads, d)},
                         "[hidden, heads * head_dim]")) ||
      failed(checkBatchSeq(*this, "result", getResult(), getInput(), "input")))
    return failure();
  if (ModelConfigAttr config = lookupModelConfig(*this))
    return success(
        succeeded(checkConfig(*this, "heads", heads, config.getHeads())) &&
        succeeded(checkConfig(*this, "head_dim", d, config.getHeadDim())) &&
        succeeded(checkConfig(*this, "hidden size", hidden,
                              config.getHidden())));
  return success();
}

//===----------------------------------------------------------------------===//
// MLPOp
//===----------------------------------------------------------------------===//

/// Checks the gate and up projections of a gated MLP: both [ffn, hidden].
static LogicalResult checkGateUp(Operation *op, Value wGate, Value wUp,
                                 int64_t hidden) {
  int64_t ffn = dimOf(wGate, 0);
  return success(
      succeeded(
          checkMatrix(op, "w_gate", wGate, {ffn, hidden}, "[ffn, hidden]")) &&
      succeeded(checkMatrix(op, "w_up", wUp, {ffn, hidden}, "[ffn, hidden]")));
}

LogicalResult MLPOp::verify() {
  int64_t hidden = dimOf(getInput(), 2), ffn = dimOf(getWGate(), 0);
  if (failed(checkGateUp(*this, getWGate(), getWUp(), hidden)) ||
      failed(checkMatrix(*this, "w_down", getWDown(), {hidden, ffn},
                         "[hidden, ffn]")))
    return failure();
  if (ModelConfigAttr config = lookupModelConfig(*this))
    return success(
        succeeded(checkConfig(*this, "ffn size", ffn, config.getFfn())) &&
        succeeded(checkConfig(*this, "hidden size", hidden,
                              config.getHidden())));
  return success();
}

//===----------------------------------------------------------------------===//
// GatedActOp
//===----------------------------------------------------------------------===//

LogicalResult GatedActOp::verify() {
  int64_t hidden = dimOf(getInput(), 2), ffn = dimOf(getWGate(), 0);
  if (failed(checkGateUp(*this, getWGate(), getWUp(), hidden)) ||
      failed(checkBatchSeq(*this, "result", getResult(), getInput(), "input")))
    return failure();
  if (!dimsAgree(dimOf(getResult(), 2), ffn))
    return emitOpError() << "result features (" << dimStr(dimOf(getResult(), 2))
                         << ") must be w_gate's rows (" << dimStr(ffn) << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// LastPositionOp
//===----------------------------------------------------------------------===//

LogicalResult LastPositionOp::verify() {
  // A dynamic seq dim would let a result of every position through, which
  // is the very cost this op removes.
  if (dimOf(getResult(), 1) != 1)
    return emitOpError() << "result seq dim (" << dimStr(dimOf(getResult(), 1))
                         << ") must be 1";
  if (!dimsAgree(dimOf(getResult(), 0), dimOf(getInput(), 0)) ||
      !dimsAgree(dimOf(getResult(), 2), dimOf(getInput(), 2)))
    return emitOpError() << "result batch and feature dims ["
                         << dimStr(dimOf(getResult(), 0)) << ", "
                         << dimStr(dimOf(getResult(), 2))
                         << "] do not match the input's ["
                         << dimStr(dimOf(getInput(), 0)) << ", "
                         << dimStr(dimOf(getInput(), 2)) << "]";
  return checkSameElementType(*this, getInput(), "input", getResult(),
                              "result");
}

//===----------------------------------------------------------------------===//
// LMHeadOp
//===----------------------------------------------------------------------===//

LogicalResult LMHeadOp::verify() {
  int64_t hidden = dimOf(getInput(), 2), vocab = dimOf(getLogits(), 2);
  if (failed(checkMatrix(*this, "weight", getWeight(), {vocab, hidden},
                         "[vocab, hidden]")) ||
      failed(checkBatchSeq(*this, "logits", getLogits(), getInput(), "input")))
    return failure();
  if (ModelConfigAttr config = lookupModelConfig(*this))
    return success(
        succeeded(checkConfig(*this, "vocab size", vocab, config.getVocab())) &&
        succeeded(checkConfig(*this, "hidden size", hidden,
                              config.getHidden())));
  return success();
}

//===----------------------------------------------------------------------===//
// GreedySampleOp
//===----------------------------------------------------------------------===//

LogicalResult GreedySampleOp::verify() {
  if (!dimsAgree(dimOf(getTokens(), 0), dimOf(getLogits(), 0)))
    return emitOpError() << "result batch dim (" << dimStr(dimOf(getTokens(), 0))
                         << ") does not match the logits' ("
                         << dimStr(dimOf(getLogits(), 0)) << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// ReplicateOp / GatherOp
//===----------------------------------------------------------------------===//

LogicalResult ReplicateOp::verify() {
  return verifyReplicaSplit(*this, getKvHead(), getReplicas(), getInput(),
                            getResult());
}

LogicalResult
ReplicateOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyReplicaGrid(*this, getGridAttr(), getReplicas(), symbolTable);
}

namespace {

/// Whether `a` and `b` split the same head the same way on the same grid.
template <typename OpA, typename OpB>
bool sameSplit(OpA a, OpB b) {
  return a.getKvHead() == b.getKvHead() && a.getBudget() == b.getBudget() &&
         a.getReplicas() == b.getReplicas() && a.getGrid() == b.getGrid();
}

/// replicate(gather(x)) -> x: a replica's rows of the gathered batch are the
/// rows it contributed.
struct ReplicateOfGather : public OpRewritePattern<ReplicateOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReplicateOp op,
                                PatternRewriter &rewriter) const override {
    auto gather = op.getInput().getDefiningOp<GatherOp>();
    if (!gather || !sameSplit(op, gather) ||
        gather.getInput().getType() != op.getType())
      return failure();
    rewriter.replaceOp(op, gather.getInput());
    if (gather->use_empty())
      rewriter.eraseOp(gather);
    return success();
  }
};

/// replicate(out_proj(gather(x), w)) -> out_proj(x, w): the output
/// projection works row by row, so a copy can project its own requests and
/// contribute them to the all_reduce that follows; the gather disappears.
struct FoldGatherIntoAllReduce : public OpRewritePattern<ReplicateOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReplicateOp op,
                                PatternRewriter &rewriter) const override {
    auto proj = op.getInput().getDefiningOp<OutProjOp>();
    if (!proj)
      return failure();
    auto gather = proj.getInput().getDefiningOp<GatherOp>();
    if (!gather || !sameSplit(op, gather))
      return failure();
    auto local = OutProjOp::create(rewriter, op.getLoc(), op.getType(),
                                   gather.getInput(), proj.getWo());
    rewriter.replaceOp(op, local.getResult());
    if (proj->use_empty())
      rewriter.eraseOp(proj);
    if (gather->use_empty())
      rewriter.eraseOp(gather);
    return success();
  }
};

} // namespace

void ReplicateOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *context) {
  results.add<ReplicateOfGather, FoldGatherIntoAllReduce>(context);
}

//===----------------------------------------------------------------------===//
// AddRowsOp
//===----------------------------------------------------------------------===//

LogicalResult AddRowsOp::verify() {
  return verifyReplicaSplit(*this, getKvHead(), getReplicas(), getAcc(),
                            getRows());
}

LogicalResult AddRowsOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyReplicaGrid(*this, getGridAttr(), getReplicas(), symbolTable);
}

LogicalResult GatherOp::verify() {
  return verifyReplicaSplit(*this, getKvHead(), getReplicas(), getInput(),
                            getResult());
}

LogicalResult GatherOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyReplicaGrid(*this, getGridAttr(), getReplicas(), symbolTable);
}

//===----------------------------------------------------------------------===//
// AllReduceOp / AllGatherOp
//===----------------------------------------------------------------------===//

LogicalResult
AllReduceOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return success(succeeded(lookupGridSize(*this, getGridAttr(), symbolTable)));
}

//===----------------------------------------------------------------------===//
// LinearAllReduceOp
//===----------------------------------------------------------------------===//

LogicalResult LinearAllReduceOp::verify() {
  if (!getInput() != !getWeight())
    return emitOpError("needs both the projection's input and its weight, "
                       "or neither");
  if (!getInput() && !getAddend())
    return emitOpError("needs a projection, an addend or both");
  if (getAddend() && getAddend().getType() != getResult().getType())
    return emitOpError() << "addend type " << getAddend().getType()
                         << " differs from the result type "
                         << getResult().getType();
  if (!getInput())
    return success();
  auto in = cast<RankedTensorType>(getInput().getType());
  int64_t k = in.getRank() == 4 ? mulDims(in.getDimSize(2), in.getDimSize(3))
                                : in.getDimSize(2);
  int64_t hidden = dimOf(getResult(), 2);
  if (failed(checkMatrix(*this, "weight", getWeight(), {hidden, k},
                         "[hidden, K]")) ||
      failed(checkBatchSeq(*this, "result", getResult(), getInput(), "input")))
    return failure();
  if (ModelConfigAttr config = lookupModelConfig(*this))
    return checkConfig(*this, "hidden size", hidden, config.getHidden());
  return success();
}

LogicalResult
LinearAllReduceOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return success(succeeded(lookupGridSize(*this, getGridAttr(), symbolTable)));
}

LogicalResult AllGatherOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  auto out = cast<RankedTensorType>(getResult().getType());
  int64_t axis = getAxis();
  if (axis >= in.getRank())
    return emitOpError() << "axis " << axis << " is not a dimension of a rank "
                         << in.getRank() << " input";
  if (in.getRank() != out.getRank() ||
      in.getElementType() != out.getElementType())
    return emitOpError(
        "input and result must have the same rank and element type");
  for (int64_t i = 0; i < in.getRank(); ++i)
    if (i != axis && !dimsAgree(in.getDimSize(i), out.getDimSize(i)))
      return emitOpError() << "result dim " << i << " ("
                           << dimStr(out.getDimSize(i))
                           << ") differs from the input's ("
                           << dimStr(in.getDimSize(i))
                           << "): only the gathered axis may change";
  return success();
}

LogicalResult
AllGatherOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  FailureOr<std::optional<int64_t>> size =
      lookupGridSize(*this, getGridAttr(), symbolTable);
  if (failed(size))
    return failure();
  int64_t axis = getAxis();
  int64_t inDim = getInput().getType().getDimSize(axis);
  int64_t outDim = getResult().getType().getDimSize(axis);
  if (*size && !ShapedType::isDynamic(inDim) &&
      !ShapedType::isDynamic(outDim) && outDim != inDim * **size)
    return emitOpError() << "result dim " << axis << " (" << outDim
                         << ") must be the input's (" << inDim
                         << ") times the grid size (" << **size << ")";
  return success();
}

//===- FairKVAttrs.cpp - FairKV attributes --------------------------------===//
//
// Verifiers, builders, query helpers and the custom syntax of the fairkv
// attributes.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Dialect/FairKV/IR/FairKVAttrs.h"
#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/SmallSet.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <cstdio>

using namespace mlir;
using namespace mlir::fairkv;

namespace mlir {
/// Parses a float parameter (rope_theta, norm_eps, share) as an IEEE double.
/// MLIR has no FieldParser for APFloat; the printer side (printFloat) exists
/// and prints the shortest text that round-trips.
template <>
struct FieldParser<llvm::APFloat> {
  static FailureOr<llvm::APFloat> parse(AsmParser &parser) {
    double value;
    if (parser.parseFloat(value))
      return failure();
    return llvm::APFloat(value);
  }
};
} // namespace mlir

//===----------------------------------------------------------------------===//
// Custom directive: the replica lists of a placement
//===----------------------------------------------------------------------===//

// Syntax: `[[<device, share>, ...], ...]`, entry h for KV head h. Empty lists
// parse, so that the verifier (not the parser) reports a head with no replica.
static ParseResult parseHeadReplicas(AsmParser &parser,
                                     SmallVector<ArrayAttr> &heads) {
  MLIRContext *ctx = parser.getContext();
  auto parseHead = [&]() -> ParseResult {
    SmallVector<Attribute> replicas;
    auto parseReplica = [&]() -> ParseResult {
      SMLoc loc = parser.getCurrentLocation();
      int64_t device;
      double share;
      if (parser.parseLess() || parser.parseInteger(device) ||
          parser.parseComma() || parser.parseFloat(share) ||
          parser.parseGreater())
        return failure();
      auto replica = ReplicaAttr::getChecked(
          [&] { return parser.emitError(loc); }, ctx, device,
          llvm::APFloat(share));
      if (!replica)
        return failure();
      replicas.push_back(replica);
      return success();
    };
    if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square,
                                       parseReplica))
      return failure();
    heads.push_back(ArrayAttr::get(ctx, replicas));
    return success();
  };
  return parser.parseCommaSeparatedList(AsmParser::Delimiter::Square,
                                        parseHead);
}

static void printHeadReplicas(AsmPrinter &printer, ArrayRef<ArrayAttr> heads) {
  printer << "[";
  llvm::interleaveComma(heads, printer, [&](ArrayAttr head) {
    printer << "[";
    llvm::interleaveComma(head, printer, [&](Attribute attr) {
      if (auto replica = dyn_cast<ReplicaAttr>(attr)) {
        printer << "<" << replica.getDevice() << ", ";
        printer.printFloat(replica.getShare());
        printer << ">";
      } else {
        // Only reachable from C++-built, unverified attributes; print the
        // attribute itself so the verifier's complaint can be read.
        printer << attr;
      }
    });
    printer << "]";
  });
  printer << "]";
}

// Syntax: `[i, j, ...]`. The empty list parses, so that the verifier reports
// a layer without budgets.
static ParseResult parseI64List(AsmParser &parser,
                                SmallVector<int64_t> &values) {
  return parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&] {
    return parser.parseInteger(values.emplace_back());
  });
}

static void printI64List(AsmPrinter &printer, ArrayRef<int64_t> values) {
  printer << "[";
  llvm::interleaveComma(values, printer);
  printer << "]";
}

#define GET_ATTRDEF_CLASSES
#include "fairkv/Dialect/FairKV/IR/FairKVAttrs.cpp.inc"

#include "fairkv/Dialect/FairKV/IR/FairKVEnums.cpp.inc"

void FairKVDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "fairkv/Dialect/FairKV/IR/FairKVAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

/// Prints a double the way a person writes it (0.9, not 9.000000e-01).
static std::string formatShort(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.10g", value);
  return buffer;
}

LogicalResult
mlir::fairkv::verifyHeadReplicas(function_ref<InFlightDiagnostic()> emitError,
                                 ArrayRef<Attribute> replicas,
                                 int64_t numDevices, StringRef what) {
  if (replicas.empty())
    return emitError() << what << " has no replica";
  llvm::SmallSet<int64_t, 8> devices;
  double sum = 0.0;
  for (Attribute attr : replicas) {
    auto replica = dyn_cast<ReplicaAttr>(attr);
    if (!replica)
      return emitError() << what << " has a replica entry that is not a "
                         << "#fairkv.replica: " << attr;
    int64_t device = replica.getDevice();
    if (numDevices > 0 && device >= numDevices)
      return emitError() << what << " has a replica on device " << device
                         << ", outside the grid of " << numDevices
                         << " devices";
    if (!devices.insert(device).second)
      return emitError() << what << " has two replicas on device " << device;
    sum += replica.getShareValue();
  }
  if (std::fabs(sum - 1.0) > kShareSumTolerance)
    return emitError() << "shares of " << what << " sum to "
                       << formatShort(sum) << ", not 1";
  return success();
}

ModelConfigAttr mlir::fairkv::lookupModelConfig(Operation *op) {
  for (Operation *cur = op; cur; cur = cur->getParentOp()) {
    // A device's program holds slices: the config does not describe it.
    if (cur->hasAttr(FairKVDialect::getDeviceAttrName()))
      return {};
    if (auto config = cur->getAttrOfType<ModelConfigAttr>(
            FairKVDialect::getConfigAttrName()))
      return config;
  }
  return {};
}

//===----------------------------------------------------------------------===//
// ModelConfigAttr
//===----------------------------------------------------------------------===//

LogicalResult
RopeScalingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                        StringRef type, llvm::APFloat factor,
                        int64_t originalMaxPositions,
                        llvm::APFloat lowFreqFactor,
                        llvm::APFloat highFreqFactor, llvm::APFloat betaFast,
                        llvm::APFloat betaSlow, bool truncate,
                        llvm::APFloat attentionFactor) {
  if (type != "linear" && type != "dynamic" && type != "llama3" &&
      type != "yarn")
    return emitError() << "rope_scaling 'type' must be linear, dynamic, "
                          "llama3 or yarn, got '"
                       << type << "'";
  if (!(factor.convertToDouble() > 0.0) ||
      !(attentionFactor.convertToDouble() > 0.0))
    return emitError()
           << "rope_scaling 'factor' and 'attention_factor' must be positive";
  if (type != "linear" && originalMaxPositions <= 0)
    return emitError() << "rope_scaling of type '" << type
                       << "' needs a positive 'original_max_positions'";
  if (type == "llama3" &&
      !(highFreqFactor.convertToDouble() > lowFreqFactor.convertToDouble()))
    return emitError() << "rope_scaling 'high_freq_factor' must exceed "
                          "'low_freq_factor'";
  return success();
}

::fairkv::model::RopeScaling RopeScalingAttr::toRopeScaling() const {
  ::fairkv::model::RopeScaling r;
  r.type = getType().str();
  r.factor = getFactor().convertToDouble();
  r.originalMaxPositions = getOriginalMaxPositions();
  r.lowFreqFactor = getLowFreqFactor().convertToDouble();
  r.highFreqFactor = getHighFreqFactor().convertToDouble();
  r.betaFast = getBetaFast().convertToDouble();
  r.betaSlow = getBetaSlow().convertToDouble();
  r.truncate = getTruncate();
  r.attentionFactor = getAttentionFactor().convertToDouble();
  return r;
}

::fairkv::model::ModelConfig
ModelConfigAttr::toModelConfig(StringRef name) const {
  ::fairkv::model::ModelConfig m;
  m.name = name.str();
  m.family = getFamily().str();
  m.layers = getLayers();
  m.hidden = getHidden();
  m.heads = getHeads();
  m.kvHeads = getKvHeads();
  m.headDim = getHeadDim();
  m.ffn = getFfn();
  m.vocab = getVocab();
  m.ropeTheta = getRopeThetaValue();
  if (RopeScalingAttr scaling = getRopeScaling())
    m.rope = scaling.toRopeScaling();
  m.normEps = getNormEpsValue();
  m.maxPositions = getMaxPositions();
  m.tiedEmbeddings = getTieWordEmbeddings();
  m.qkvBias = getQkvBias();
  m.qkNorm = getQkNorm();
  m.slidingWindow = getSlidingWindow();
  Type dtype = getDtype();
  m.dtype = dtype.isF32() ? "f32" : dtype.isF16() ? "f16" : "bf16";
  return m;
}

LogicalResult ModelConfigAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, int64_t layers,
    int64_t hidden, int64_t heads, int64_t kvHeads, int64_t headDim,
    int64_t ffn, int64_t vocab, llvm::APFloat ropeTheta, llvm::APFloat normEps,
    Type dtype, StringRef family, RopeScalingAttr ropeScaling,
    int64_t maxPositions, bool tieWordEmbeddings, bool qkvBias, bool qkNorm,
    int64_t slidingWindow) {
  std::pair<StringRef, int64_t> sizes[] = {
      {"layers", layers}, {"hidden", hidden},    {"heads", heads},
      {"kv_heads", kvHeads}, {"head_dim", headDim}, {"ffn", ffn},
      {"vocab", vocab}};
  for (auto [name, value] : sizes)
    if (value <= 0)
      return emitError() << "model_config '" << name
                         << "' must be positive, got " << value;
  if (heads % kvHeads != 0)
    return emitError() << "model_config 'heads' (" << heads
                       << ") must be divisible by 'kv_heads' (" << kvHeads
                       << ")";
  if (headDim % 2 != 0)
    return emitError() << "model_config 'head_dim' must be even for rotary "
                       << "embedding, got " << headDim;
  if (!(ropeTheta.convertToDouble() > 0.0))
    return emitError() << "model_config 'rope_theta' must be positive";
  if (!(normEps.convertToDouble() > 0.0))
    return emitError() << "model_config 'norm_eps' must be positive";
  if (!dtype || !(dtype.isF32() || dtype.isF16() || dtype.isBF16()))
    return emitError() << "model_config 'dtype' must be f32, f16 or bf16, got "
                       << dtype;
  if (family != "llama" && family != "mistral" && family != "qwen2" &&
      family != "qwen3")
    return emitError() << "model_config 'family' must be llama, mistral, "
                          "qwen2 or qwen3, got '"
                       << family << "'";
  if (qkvBias != (family == "qwen2"))
    return emitError() << "model_config 'qkv_bias' is " << qkvBias
                       << " for family '" << family
                       << "' (q/k/v biases are qwen2's, and always there)";
  if (qkNorm != (family == "qwen3"))
    return emitError() << "model_config 'qk_norm' is " << qkNorm
                       << " for family '" << family
                       << "' (q/k norms are qwen3's, and always there)";
  if (slidingWindow != 0 && family != "mistral")
    return emitError() << "model_config 'sliding_window' is mistral's, not "
                       << family << "'s";
  if (maxPositions < 0 || slidingWindow < 0)
    return emitError()
           << "model_config 'max_positions' and 'sliding_window' must not be "
              "negative";
  return success();
}

//===----------------------------------------------------------------------===//
// KVBudgetsAttr
//===----------------------------------------------------------------------===//

LogicalResult KVBudgetsAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                    ArrayRef<int64_t> tokens,
                                    StringRef source) {
  if (tokens.empty())
    return emitError() << "kv_budgets must have at least one budget";
  for (auto [head, budget] : llvm::enumerate(tokens))
    if (budget <= 0)
      return emitError() << "budget of kv head " << head
                         << " must be positive, got " << budget;
  return success();
}

int64_t KVBudgetsAttr::getTotalTokens() const {
  int64_t total = 0;
  for (int64_t budget : getTokens())
    total += budget;
  return total;
}

//===----------------------------------------------------------------------===//
// ReplicaAttr
//===----------------------------------------------------------------------===//

LogicalResult ReplicaAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t device, llvm::APFloat share) {
  if (device < 0)
    return emitError() << "replica device must be non-negative, got "
                       << device;
  double value = share.convertToDouble();
  if (!(value > 0.0 && value <= 1.0))
    return emitError() << "replica share must be in (0, 1], got "
                       << formatShort(value);
  return success();
}

//===----------------------------------------------------------------------===//
// PlacementAttr
//===----------------------------------------------------------------------===//

PlacementAttr PlacementAttr::get(MLIRContext *context, int64_t devices,
                                 ArrayRef<SmallVector<ReplicaAttr>> replicas) {
  SmallVector<ArrayAttr> heads;
  heads.reserve(replicas.size());
  for (const SmallVector<ReplicaAttr> &head : replicas)
    heads.push_back(ArrayAttr::get(
        context, SmallVector<Attribute>(head.begin(), head.end())));
  return get(context, devices, heads);
}

LogicalResult PlacementAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                    int64_t devices,
                                    ArrayRef<ArrayAttr> heads) {
  if (devices <= 0)
    return emitError() << "placement 'devices' must be positive, got "
                       << devices;
  if (heads.empty())
    return emitError() << "placement must have at least one kv head";
  for (auto [index, head] : llvm::enumerate(heads)) {
    std::string what = "kv head " + std::to_string(index);
    if (failed(verifyHeadReplicas(emitError, head.getValue(), devices, what)))
      return failure();
  }
  return success();
}

SmallVector<ReplicaAttr> PlacementAttr::getReplicas(int64_t kvHead) const {
  SmallVector<ReplicaAttr> result;
  for (Attribute attr : getHeads()[kvHead])
    result.push_back(cast<ReplicaAttr>(attr));
  return result;
}

int64_t PlacementAttr::getNumExtraReplicas() const {
  int64_t extra = 0;
  for (ArrayAttr head : getHeads())
    extra += static_cast<int64_t>(head.size()) - 1;
  return extra;
}

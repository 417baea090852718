//===- VerifySharding.cpp - Reject sharded modules that miscompute --------===//
//
// Implements fairkv-verify-sharding; see its description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Transforms/Passes.h"

#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "fairkv/Transforms/DevicePrograms.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

namespace mlir::fairkv {
#define GEN_PASS_DEF_FAIRKVVERIFYSHARDINGPASS
#include "fairkv/Transforms/Passes.h.inc"
} // namespace mlir::fairkv

using namespace mlir;
using namespace mlir::fairkv;

namespace {

/// What a weight name says: which layer and which tensor.
struct WeightRole {
  enum Kind { Q, K, V, O, Gate, Up, Down, LMHead, Replicated } kind;
  int64_t layer = -1;
};

WeightRole classify(StringRef name) {
  WeightRole role{WeightRole::Replicated};
  if (name == "lm_head.weight") {
    role.kind = WeightRole::LMHead;
    return role;
  }
  if (!name.consume_front("model.layers."))
    return role;
  int64_t layer;
  if (name.consumeInteger(10, layer) || !name.consume_front("."))
    return role;
  static const std::pair<const char *, WeightRole::Kind> kinds[] = {
      {"self_attn.q_proj.weight", WeightRole::Q},
      {"self_attn.k_proj.weight", WeightRole::K},
      {"self_attn.v_proj.weight", WeightRole::V},
      // Qwen2's biases travel with their heads like the weights' rows.
      {"self_attn.q_proj.bias", WeightRole::Q},
      {"self_attn.k_proj.bias", WeightRole::K},
      {"self_attn.v_proj.bias", WeightRole::V},
      {"self_attn.o_proj.weight", WeightRole::O},
      {"mlp.gate_proj.weight", WeightRole::Gate},
      {"mlp.up_proj.weight", WeightRole::Up},
      {"mlp.down_proj.weight", WeightRole::Down}};
  for (auto [suffix, kind] : kinds)
    if (name == suffix) {
      role.kind = kind;
      role.layer = layer;
    }
  return role;
}

/// A share as a person writes it (0.5, not 5.000000e-01).
std::string formatShare(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.10g", value);
  return buffer;
}

/// One attention op's claim: device `device` computes `share` of the
/// requests of a (layer, kv head).
struct Claim {
  int64_t device;
  double share;
  AttentionOp op;
};

struct VerifyShardingPass
    : public mlir::fairkv::impl::FairKVVerifyShardingPassBase<
          VerifyShardingPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool ok = true;
    auto config = module->getAttrOfType<ModelConfigAttr>(
        FairKVDialect::getConfigAttrName());
    if (!config) {
      module.emitError("fairkv-verify-sharding needs the module's "
                       "'fairkv.config'");
      return signalPassFailure();
    }
    const int64_t group = config.getQueryGroupSize();
    const int64_t d = config.getHeadDim();

    for (func::FuncOp f : module.getOps<func::FuncOp>())
      if (deviceOf(f) < 0)
        f.walk([&](Operation *op) {
          if (isa<FairKVDialect>(op->getDialect()) && !isa<WeightOp>(op) &&
              ok) {
            op->emitOpError("is an unsharded op left over outside any device "
                            "program: run fairkv-shard-heads");
            ok = false;
          }
        });
    if (!ok)
      return signalPassFailure();

    // Programs are grouped by the function they came from.
    for (auto &[base, funcs] : groupDevicePrograms(module)) {
      // The placement of every layer, from any attention op of it.
      std::map<int64_t, PlacementAttr> placements;
      int64_t devices = 0;
      for (func::FuncOp f : funcs)
        f.walk([&](AttentionOp op) {
          if (std::optional<PlacementAttr> p = op.getPlacement()) {
            placements.try_emplace(op.getLayer(), *p);
            devices = p->getDevices();
          }
        });
      std::map<std::pair<int64_t, int64_t>, SmallVector<Claim>> claims;
      for (func::FuncOp f : funcs) {
        int64_t device = deviceOf(f);
        WalkResult walk = f.walk([&](Operation *op) {
          if (auto attention = dyn_cast<AttentionOp>(op))
            return checkAttention(attention, device, claims);
          if (auto weight = dyn_cast<WeightOp>(op))
            return checkWeight(weight, device, devices, placements, config,
                               group, d);
          SmallVector<Value> weights;
          if (isa<QKVProjOp, OutProjOp, MLPOp, GatedActOp, LMHeadOp>(op))
            llvm::append_range(weights, op->getOperands().drop_front());
          if (auto fused = dyn_cast<LinearAllReduceOp>(op);
              fused && fused.getWeight())
            weights.push_back(fused.getWeight());
          for (Value operand : weights)
            if (auto weight = operand.getDefiningOp<WeightOp>();
                !weight || !weight.isSlice()) {
              op->emitOpError("is an unsharded op left over: its weights "
                              "are not per-device slices");
              return WalkResult::interrupt();
            }
          return WalkResult::advance();
        });
        if (walk.wasInterrupted())
          return signalPassFailure();
      }
      // Every (layer, kv head) is computed exactly once over the batch.
      for (auto &[layer, placement] : placements) {
        for (int64_t h = 0; h < placement.getNumKVHeads(); ++h) {
          SmallVector<Claim> &c = claims[{layer, h}];
          if (c.empty()) {
            module.emitError() << "layer " << layer << ", kv head " << h
                               << " is computed by no device";
            ok = false;
            continue;
          }
          double sum = 0;
          std::map<int64_t, int> perDevice;
          for (Claim &claim : c) {
            sum += claim.share;
            if (++perDevice[claim.device] > 1) {
              claim.op.emitOpError()
                  << "computes layer " << layer << ", kv head " << h
                  << " a second time on device " << claim.device;
              ok = false;
            }
          }
          if (ok && std::fabs(sum - 1.0) > kShareSumTolerance) {
            std::string list;
            for (const Claim &claim : c)
              list += (list.empty() ? "" : ", ") +
                      std::to_string(claim.device);
            module.emitError()
                << "layer " << layer << ", kv head " << h
                << " is computed for " << formatShare(sum) << " of the batch (devices " << list << "), not exactly once";
            ok = false;
          }
        }
      }
    }
    if (!ok)
      signalPassFailure();
  }

  WalkResult
  checkAttention(AttentionOp op, int64_t device,
                 std::map<std::pair<int64_t, int64_t>, SmallVector<Claim>>
                     &claims) {
    std::optional<ArrayRef<int64_t>> heads = op.getKvHeads();
    std::optional<PlacementAttr> placement = op.getPlacement();
    if (!heads || !placement) {
      op.emitOpError() << "is an unsharded attention op of layer "
                       << op.getLayer()
                       << " left over (no kv_heads or no placement)";
      return WalkResult::interrupt();
    }
    std::optional<ReplicaAttr> share = op.getBatchShare();
    for (int64_t h : *heads) {
      SmallVector<ReplicaAttr> replicas = placement->getReplicas(h);
      std::optional<ReplicaAttr> mine;
      for (ReplicaAttr r : replicas)
        if (r.getDevice() == device)
          mine = r;
      if (!mine) {
        op.emitOpError() << "device " << device << " computes layer "
                         << op.getLayer() << ", kv head " << h
                         << ", which the placement does not give it";
        return WalkResult::interrupt();
      }
      if (replicas.size() > 1 && !share) {
        op.emitOpError() << "device " << device << " computes all requests "
                         << "of copied layer " << op.getLayer()
                         << ", kv head " << h << " instead of its share";
        return WalkResult::interrupt();
      }
      if (share && share->getDevice() != device) {
        op.emitOpError() << "runs on device " << device
                         << " but serves the replica of layer "
                         << op.getLayer() << ", kv head " << h
                         << " on device " << share->getDevice();
        return WalkResult::interrupt();
      }
      claims[{static_cast<int64_t>(op.getLayer()), h}].push_back(
          Claim{device, share ? share->getShareValue() : 1.0, op});
    }
    return WalkResult::advance();
  }

  WalkResult checkWeight(WeightOp op, int64_t device, int64_t devices,
                         const std::map<int64_t, PlacementAttr> &placements,
                         ModelConfigAttr config, int64_t group, int64_t d) {
    WeightRole role = classify(op.getName());
    if (role.kind == WeightRole::Replicated)
      return WalkResult::advance();
    if (!op.isSlice())
      return WalkResult::advance(); // its user reports the unsharded op
    int64_t dim = *op.getSliceDim();
    ArrayRef<int64_t> ranges = *op.getRanges();

    // The units (head groups, MLP or vocab blocks) this device owns.
    int64_t unit = 0, expectedDim = 0;
    SmallVector<int64_t> owned;
    std::string what;
    switch (role.kind) {
    case WeightRole::Q:
    case WeightRole::O:
    case WeightRole::K:
    case WeightRole::V: {
      unit = role.kind == WeightRole::K || role.kind == WeightRole::V
                 ? d
                 : group * d;
      expectedDim = role.kind == WeightRole::O ? 1 : 0;
      auto it = placements.find(role.layer);
      if (it != placements.end())
        for (int64_t h = 0; h < it->second.getNumKVHeads(); ++h)
          for (ReplicaAttr r : it->second.getReplicas(h))
            if (r.getDevice() == device)
              owned.push_back(h);
      what = "kv head";
      break;
    }
    case WeightRole::Gate:
    case WeightRole::Up:
    case WeightRole::Down:
      unit = config.getFfn() / std::max<int64_t>(1, devices);
      expectedDim = role.kind == WeightRole::Down ? 1 : 0;
      owned.push_back(device);
      what = "mlp block";
      break;
    case WeightRole::LMHead:
      unit = config.getVocab() / std::max<int64_t>(1, devices);
      owned.push_back(device);
      what = "vocab block";
      break;
    case WeightRole::Replicated:
      break;
    }
    if (dim != expectedDim) {
      op.emitOpError() << "slices '" << op.getName() << "' along dim " << dim
                       << ", expected " << expectedDim;
      return WalkResult::interrupt();
    }
    for (size_t i = 0; i < ranges.size(); i += 2) {
      for (int64_t u = ranges[i] / unit; u * unit < ranges[i + 1]; ++u) {
        if (llvm::is_contained(owned, u))
          continue;
        InFlightDiagnostic diag = op.emitOpError();
        diag << "device " << device << " references " << what << " " << u
             << " of '" << op.getName() << "'";
        if (role.layer >= 0)
          diag << " (layer " << role.layer << ")";
        diag << ", which it does not own";
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  }
};

} // namespace

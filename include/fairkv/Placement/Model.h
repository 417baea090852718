//===- Model.h - Model shapes and hardware presets --------------*- C++ -*-===//
//
// The shape of a decoder-only transformer (from a preset or a Hugging Face
// config.json) and the hardware presets of the cost model.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_PLACEMENT_MODEL_H
#define FAIRKV_PLACEMENT_MODEL_H

#include "fairkv/Placement/Result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fairkv::placement {

struct ModelShape {
  std::string name;
  int64_t layers = 0;
  int64_t hidden = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  int64_t ffn = 0;
  int64_t vocab = 0;
  double ropeTheta = 10000.0;
  double normEps = 1e-5;
  /// "f32", "f16" or "bf16".
  std::string dtype = "bf16";

  int64_t dtypeBytes() const { return dtype == "f32" ? 4 : 2; }
  int64_t queryGroup() const { return heads / kvHeads; }
  /// Weight bytes that travel with one KV head: its K and V columns, its
  /// query group's Q columns and O rows. Also the price of one copy.
  double kvHeadWeightBytes() const;
  /// KV cache bytes of one token of one KV head (K and V).
  double kvBytesPerToken() const { return 2.0 * headDim * dtypeBytes(); }
  /// Weight bytes of one device's MLP shard of one layer under TP.
  double mlpBytesPerDevice(int devices) const;
  /// Weight bytes a device holds outside the attention heads: its MLP shards,
  /// its vocab-parallel embedding and LM head slices, replicated norms.
  double nonAttentionBytesPerDevice(int devices) const;
  /// All weight bytes of one device under contiguous TP.
  double tpWeightBytesPerDevice(int devices) const;

  /// Checks every size is positive and heads divide evenly into KV heads.
  Status validate() const;
};

/// The names accepted by modelPreset(), for --help and errors.
std::vector<std::string> modelPresetNames();
Result<ModelShape> modelPreset(const std::string &name);
/// Reads a Hugging Face config.json (Llama/Mistral fields).
Result<ModelShape> loadHFConfig(const std::string &path);
/// A preset name, or else a path to a config.json.
Result<ModelShape> resolveModel(const std::string &spec);

struct Hardware {
  std::string name;
  double hbmBytes = 0;
  /// Achievable HBM bandwidth (measured copy), bytes/s.
  double hbmBandwidth = 0;
  /// Interconnect bandwidth per GPU, one direction, bytes/s.
  double linkBandwidth = 0;
  /// Fixed cost of one collective (launch + synchronisation), seconds.
  double collectiveLatency = 8e-6;
  /// Fixed cost per head replica per layer (kernel work, gather), seconds.
  double perReplicaOverhead = 1e-6;
  /// The decode-attention kernel: achieved bandwidth on compressed KV, and
  /// the fixed time of one (device, layer) launch. Measured on an H100 with
  /// FairKV's kernel (bench/RESULTS.md, GPU checks); 0 falls back to
  /// hbmBandwidth and no launch cost.
  double attentionBandwidth = 0;
  double attentionLaunchSeconds = 0;
  /// Fraction of HBM kept back for activations and workspace.
  double workspaceFraction = 0.1;
};

std::vector<std::string> hardwarePresetNames();
Result<Hardware> hardwarePreset(const std::string &name);

} // namespace fairkv::placement

#endif // FAIRKV_PLACEMENT_MODEL_H

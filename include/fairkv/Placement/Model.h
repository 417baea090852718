//===- Model.h - Model and hardware presets --------------*- C++ -*-===//
//
// Model presets (ModelConfig, from fairkv/Model) and the hardware presets of
// the cost model.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_PLACEMENT_MODEL_H
#define FAIRKV_PLACEMENT_MODEL_H

#include "fairkv/Model/ModelConfig.h"
#include "fairkv/Placement/Result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fairkv::placement {

/// The planner reads the project's one model description.
using model::ModelConfig;

/// The names accepted by modelPreset(), for --help and errors.
std::vector<std::string> modelPresetNames();
Result<ModelConfig> modelPreset(const std::string &name);
/// A preset name, or else a path to a config.json.
Result<ModelConfig> resolveModel(const std::string &spec);

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

//===- Model.cpp - Model shapes and hardware presets ----------------------===//

#include "fairkv/Placement/Model.h"
#include "fairkv/Placement/Profile.h"

#include <nlohmann/json.hpp>

#include <map>

using namespace fairkv::placement;

namespace {

ModelConfig shape(std::string name, int64_t layers, int64_t hidden,
                 int64_t heads, int64_t kvHeads, int64_t headDim, int64_t ffn,
                 int64_t vocab, double theta, double eps, std::string dtype) {
  ModelConfig m = ModelConfig::llama(std::move(name), layers, hidden, heads,
                                     kvHeads, headDim, ffn, vocab);
  m.ropeTheta = theta;
  m.normEps = eps;
  m.dtype = std::move(dtype);
  return m;
}

const std::map<std::string, ModelConfig> &presets() {
  static const std::map<std::string, ModelConfig> table = {
      // The bundled examples/tiny-2layer.mlir model.
      {"tiny", shape("tiny", 2, 64, 4, 2, 16, 128, 256, 1e4, 1e-5, "f32")},
      // `fairkv demo`'s model: 8 KV heads, so tp is defined on 2, 4, 8
      // devices.
      {"demo", shape("demo", 4, 128, 16, 8, 16, 256, 512, 1e4, 1e-5, "f32")},
      {"llama-3-8b", shape("llama-3-8b", 32, 4096, 32, 8, 128, 14336, 128256,
                           5e5, 1e-5, "bf16")},
      {"llama-3-70b", shape("llama-3-70b", 80, 8192, 64, 8, 128, 28672,
                            128256, 5e5, 1e-5, "bf16")},
      {"mistral-small-24b", shape("mistral-small-24b", 40, 5120, 32, 8, 128,
                                  32768, 131072, 1e8, 1e-5, "bf16")},
      {"mistral-7b", shape("mistral-7b", 32, 4096, 32, 8, 128, 14336, 32000,
                           1e6, 1e-5, "bf16")},
      {"llama-2-7b", shape("llama-2-7b", 32, 4096, 32, 32, 128, 11008, 32000,
                           1e4, 1e-5, "f16")},
  };
  return table;
}

/// The names of a preset table, in order.
template <typename Map> std::vector<std::string> keysOf(const Map &table) {
  std::vector<std::string> names;
  for (const auto &[name, value] : table)
    names.push_back(name);
  return names;
}

/// Preset `name` of `table`, or an error naming the known ones.
template <typename Map>
Result<typename Map::mapped_type> findPreset(const Map &table,
                                             const std::string &name,
                                             const char *kind) {
  auto it = table.find(name);
  if (it != table.end())
    return it->second;
  std::string known;
  for (const std::string &key : keysOf(table))
    known += (known.empty() ? "" : ", ") + key;
  return makeError("unknown " + std::string(kind) + " preset '" + name +
                   "' (known: " + known + ")");
}

} // namespace

std::vector<std::string> fairkv::placement::modelPresetNames() {
  return keysOf(presets());
}

Result<ModelConfig> fairkv::placement::modelPreset(const std::string &name) {
  return findPreset(presets(), name, "model");
}

Result<ModelConfig> fairkv::placement::resolveModel(const std::string &spec) {
  if (presets().count(spec))
    return presets().at(spec);
  if (spec.find('/') == std::string::npos &&
      spec.find(".json") == std::string::npos)
    return modelPreset(spec); // an unknown preset name: say which exist
  return model::loadHFConfig(spec);
}

namespace {
const std::map<std::string, Hardware> &hardwareTable() {
  static const std::map<std::string, Hardware> table = [] {
    std::map<std::string, Hardware> t;
    Hardware h100;
    h100.name = "h100-sxm";
    h100.hbmBytes = 80e9;
    h100.hbmBandwidth = 3.0e12; // measured copy; spec 3.35 TB/s
    h100.linkBandwidth = 450e9; // NVLink 4, per GPU, one direction
    // Measured with fairkv-bench-gpu on an H100 80GB HBM3 (bench/RESULTS.md).
    h100.attentionBandwidth = 2.41e12;
    h100.attentionLaunchSeconds = 23.4e-6;
    t[h100.name] = h100;
    Hardware h200 = h100;
    h200.name = "h200-sxm";
    h200.hbmBytes = 141e9;
    h200.hbmBandwidth = 4.3e12; // measured copy; spec 4.8 TB/s
    // Fitted by fairkv-bench-gpu on an H200 (bench/RESULTS.md) with the
    // online split kernel, which the runtime uses for its per-layer
    // launches. The H100's efficiency scaled by the copy bandwidths, used
    // before, overstated it by 20%: the kernel gains only 1.15x there.
    h200.attentionBandwidth = 2.88e12;
    h200.attentionLaunchSeconds = 18.1e-6;
    t[h200.name] = h200;
    return t;
  }();
  return table;
}
} // namespace

std::vector<std::string> fairkv::placement::hardwarePresetNames() {
  return keysOf(hardwareTable());
}

Result<Hardware> fairkv::placement::hardwarePreset(const std::string &name) {
  return findPreset(hardwareTable(), name, "hardware");
}

//===- Rope.cpp - Rotary inverse frequencies, as transformers derives them ===//
//
// transformers computes the inverse frequencies in float32 tensors with
// Python floats as scalars (modeling_rope_utils.py); every step here is the
// same float32 operation in the same order, so the tables agree to the last
// bit or two and the logits to float32 rounding.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Model/ModelConfig.h"

#include <algorithm>
#include <cmath>

using namespace fairkv::model;

namespace {

/// 1 / base^(2i / dim) for i < dim / 2: `1.0 / (base ** (arange(0, dim, 2)
/// .float() / dim))`.
std::vector<float> defaultFrequencies(double base, int64_t dim) {
  std::vector<float> inv(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) {
    float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(base), exponent);
  }
  return inv;
}

void llama3(std::vector<float> &inv, const RopeScaling &r) {
  const float factor = static_cast<float>(r.factor);
  const double oldContext = static_cast<double>(r.originalMaxPositions);
  const float lowWavelen = static_cast<float>(oldContext / r.lowFreqFactor);
  const float highWavelen = static_cast<float>(oldContext / r.highFreqFactor);
  const float twoPi = static_cast<float>(2 * M_PI);
  for (float &f : inv) {
    float wavelen = twoPi / f;
    float scaled = wavelen > lowWavelen ? f / factor : f;
    float smooth = (static_cast<float>(oldContext) / wavelen -
                    static_cast<float>(r.lowFreqFactor)) /
                   static_cast<float>(r.highFreqFactor - r.lowFreqFactor);
    float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
    bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    f = medium ? smoothed : scaled;
  }
}

/// _compute_yarn_parameters: a ramp between interpolated (divided by the
/// factor) and extrapolated (default) frequencies over the dimensions
/// between the correction bounds, computed in Python floats.
std::vector<float> yarnFrequencies(const RopeScaling &r, double base,
                                   int64_t dim) {
  auto correctionDim = [&](double rotations) {
    return dim * std::log(r.originalMaxPositions / (rotations * 2 * M_PI)) /
           (2 * std::log(base));
  };
  double low = correctionDim(r.betaFast), high = correctionDim(r.betaSlow);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high)
    high += 0.001; // transformers' guard against a zero-width ramp
  const float factor = static_cast<float>(r.factor);
  std::vector<float> inv(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) {
    float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    float posFreq = std::pow(static_cast<float>(base), exponent);
    float extrapolation = 1.0f / posFreq;
    float interpolation = 1.0f / (factor * posFreq);
    float ramp = (static_cast<float>(i) - static_cast<float>(low)) /
                 static_cast<float>(high - low);
    float extrapolationFactor = 1.0f - std::clamp(ramp, 0.0f, 1.0f);
    inv[i] = interpolation * (1.0f - extrapolationFactor) +
             extrapolation * extrapolationFactor;
  }
  return inv;
}

} // namespace

std::vector<float> ModelConfig::ropeInverseFrequencies(int64_t seqLen) const {
  if (rope.type == "yarn")
    return yarnFrequencies(rope, ropeTheta, headDim);
  double base = ropeTheta;
  if (rope.type == "dynamic" && seqLen > rope.originalMaxPositions) {
    // _compute_dynamic_ntk_parameters, in Python floats.
    const double dim = static_cast<double>(headDim);
    base = ropeTheta *
           std::pow(rope.factor * seqLen / rope.originalMaxPositions -
                        (rope.factor - 1),
                    dim / (dim - 2));
  }
  std::vector<float> inv = defaultFrequencies(base, headDim);
  if (rope.type == "linear")
    for (float &f : inv)
      f /= static_cast<float>(rope.factor);
  else if (rope.type == "llama3")
    llama3(inv, rope);
  return inv;
}

//===- Sampler.h - Next-token sampling as transformers samples --*- C++ -*-===//
//
// transformers' generate() warps the last logits in this order before it
// samples: temperature, top-k, top-p, min-p (each only when set). The
// Sampler applies the same warpers with the same tie and boundary rules,
// then draws from what is left with its own seeded generator: a request's
// draws are reproducible from (seed, request). Temperature 0 is greedy and
// takes the device's argmax unchanged.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_SERVE_SAMPLER_H
#define FAIRKV_SERVE_SAMPLER_H

#include "fairkv/Placement/Result.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace fairkv::serve {

using placement::Status;

struct SamplingParams {
  /// 0: greedy.
  double temperature = 0;
  /// 0: off.
  int64_t topK = 0;
  /// 1: off.
  double topP = 1;
  /// 0: off.
  double minP = 0;
  uint64_t seed = 0;

  bool greedy() const { return temperature == 0; }
  /// One line for a value outside its range.
  Status validate() const;
};

/// The probabilities the warpers leave (0 for a removed token), in double.
std::vector<double> warpedDistribution(const float *logits, int64_t vocab,
                                       const SamplingParams &params);

class Sampler {
public:
  /// `stream` tells apart the requests that share a seed.
  Sampler(const SamplingParams &params, uint64_t stream);
  /// The next token from `logits`; `argmax` is the device's greedy choice,
  /// returned as is when greedy.
  int64_t next(const float *logits, int64_t vocab, int64_t argmax);

private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

} // namespace fairkv::serve

#endif // FAIRKV_SERVE_SAMPLER_H

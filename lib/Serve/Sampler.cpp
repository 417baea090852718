//===- Sampler.cpp - transformers' sampling warpers and a seeded draw -----===//

#include "fairkv/Serve/Sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace fairkv::serve;
using fairkv::placement::makeError;

Status SamplingParams::validate() const {
  if (!(temperature >= 0 && std::isfinite(temperature)))
    return makeError("temperature must be finite and non-negative");
  if (topK < 0)
    return makeError("top_k must be non-negative");
  if (!(topP > 0 && topP <= 1))
    return makeError("top_p must be in (0, 1]");
  if (!(minP >= 0 && minP <= 1))
    return makeError("min_p must be in [0, 1]");
  return Status::ok();
}

namespace {

/// Softmax of `scores` (-inf for removed tokens), in double.
std::vector<double> softmax(const std::vector<double> &scores) {
  double top = -INFINITY;
  for (double s : scores)
    top = std::max(top, s);
  std::vector<double> p(scores.size(), 0.0);
  double sum = 0;
  for (size_t i = 0; i < scores.size(); ++i)
    if (scores[i] != -INFINITY)
      sum += p[i] = std::exp(scores[i] - top);
  for (double &v : p)
    v /= sum;
  return p;
}

} // namespace

std::vector<double>
fairkv::serve::warpedDistribution(const float *logits, int64_t vocab,
                                  const SamplingParams &params) {
  std::vector<double> scores(logits, logits + vocab);
  if (params.temperature != 1.0)
    for (double &s : scores)
      s /= params.temperature;
  if (params.topK > 0) {
    // Everything below the k-th largest goes; ties with it stay.
    std::vector<double> sorted(scores);
    const int64_t k = std::min<int64_t>(params.topK, vocab);
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(),
                     std::greater<double>());
    const double kth = sorted[k - 1];
    for (double &s : scores)
      if (s < kth)
        s = -INFINITY;
  }
  if (params.topP < 1.0) {
    // Ascending order; a token goes when the cumulative probability up to
    // and including it is at most 1 - top_p; the largest always stays.
    std::vector<int64_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return scores[a] != scores[b] ? scores[a] < scores[b] : a < b;
    });
    std::vector<double> p = softmax(scores);
    double cumulative = 0;
    std::vector<int64_t> removed;
    for (int64_t i = 0; i + 1 < vocab; ++i) {
      cumulative += p[order[i]];
      if (cumulative <= 1 - params.topP)
        removed.push_back(order[i]);
    }
    for (int64_t t : removed)
      scores[t] = -INFINITY;
  }
  if (params.minP > 0) {
    std::vector<double> p = softmax(scores);
    const double threshold = params.minP * *std::max_element(p.begin(), p.end());
    const int64_t best = std::max_element(p.begin(), p.end()) - p.begin();
    for (int64_t t = 0; t < vocab; ++t)
      if (p[t] < threshold && t != best)
        scores[t] = -INFINITY;
  }
  return softmax(scores);
}

Sampler::Sampler(const SamplingParams &params, uint64_t stream)
    : params_(params) {
  std::seed_seq seq{static_cast<uint32_t>(params.seed),
                    static_cast<uint32_t>(params.seed >> 32),
                    static_cast<uint32_t>(stream),
                    static_cast<uint32_t>(stream >> 32)};
  rng_.seed(seq);
}

int64_t Sampler::next(const float *logits, int64_t vocab, int64_t argmax) {
  if (params_.greedy())
    return argmax;
  std::vector<double> p = warpedDistribution(logits, vocab, params_);
  // One uniform draw against the cumulative distribution (the generator's
  // 53-bit doubles; the last kept token takes any rounding left over).
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  int64_t last = argmax;
  for (int64_t t = 0; t < vocab; ++t) {
    if (p[t] <= 0)
      continue;
    last = t;
    if ((u -= p[t]) < 0)
      return t;
  }
  return last;
}

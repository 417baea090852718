//===- PrefillAttentionCheck.cu - Prefill attention kernels on a GPU ------===//
//
// See PrefillAttentionCheck.h.
//
//===----------------------------------------------------------------------===//

#include "PrefillAttentionCheck.h"

#include "CudaCheck.h"
#include "EventTiming.h"
#include "PrefillAttention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

using fairkv::cuda::PrefillAttentionArgs;

namespace {

/// One prefill's inputs and outputs on the device.
struct Prefill {
  PrefillAttentionArgs args;
  std::vector<float> q, k, v;
  std::vector<int> lengths;
  std::vector<void *> owned;

  Prefill(std::vector<int> promptLengths, int seq, int nq, int nk, int d,
          uint64_t seed)
      : lengths(std::move(promptLengths)) {
    const int b = static_cast<int>(lengths.size());
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> dist(-1, 1);
    q.resize(size_t(b) * seq * nq * d);
    k.resize(size_t(b) * seq * nk * d);
    v.resize(k.size());
    for (float &x : q)
      x = dist(rng) * 2;
    for (float &x : k)
      x = dist(rng) * 2;
    for (float &x : v)
      x = dist(rng);
    args.queries = upload(q);
    args.keys = upload(k);
    args.values = upload(v);
    args.lengths = upload(lengths);
    args.out = static_cast<float *>(alloc(q.size() * sizeof(float)));
    args.batch = b;
    args.seq = seq;
    args.nq = nq;
    args.nk = nk;
    args.headDim = d;
  }
  ~Prefill() {
    for (void *p : owned)
      cudaFree(p);
  }
  void *alloc(size_t bytes) {
    void *p = nullptr;
    CHECK_CUDA(cudaMalloc(&p, std::max<size_t>(bytes, 16)));
    owned.push_back(p);
    return p;
  }
  template <typename T>
  T *upload(const std::vector<T> &host) {
    void *p = alloc(host.size() * sizeof(T));
    CHECK_CUDA(cudaMemcpy(p, host.data(), host.size() * sizeof(T),
                          cudaMemcpyHostToDevice));
    return static_cast<T *>(p);
  }
  std::vector<float> run(bool tiled) {
    CHECK_CUDA(fairkv::cuda::launchPrefillAttention(args, tiled, 0));
    std::vector<float> out(q.size());
    CHECK_CUDA(cudaMemcpy(out.data(), args.out, out.size() * sizeof(float),
                          cudaMemcpyDeviceToHost));
    return out;
  }

  /// Largest |out - float64| over `samples` random rows (request, position,
  /// query head), plus every request's first and last prompt position and
  /// a padded one.
  double worstOnSamples(const std::vector<float> &out, int samples,
                        uint64_t seed) const {
    const int b = args.batch, s = args.seq, nq = args.nq, nk = args.nk,
              d = args.headDim;
    std::mt19937_64 rng(seed);
    std::vector<std::array<int, 3>> rows;
    for (int i = 0; i < b; ++i) {
      const int pad = s - lengths[i];
      rows.push_back({i, pad, 0});
      rows.push_back({i, s - 1, nq - 1});
      if (pad > 0)
        rows.push_back({i, pad - 1, 0});
    }
    for (int r = 0; r < samples; ++r)
      rows.push_back({static_cast<int>(rng() % b), static_cast<int>(rng() % s),
                      static_cast<int>(rng() % nq)});
    double worst = 0;
    for (auto [i, t, h] : rows) {
      const int pad = s - lengths[i], j = h / (nq / nk), n = t - pad + 1;
      const float *got = &out[((size_t(i) * s + t) * nq + h) * d];
      std::vector<double> want(d, 0.0);
      if (n > 0) {
        std::vector<double> p(n);
        double mx = -INFINITY, sum = 0;
        const float *qr = &q[((size_t(i) * s + t) * nq + h) * d];
        for (int u = 0; u < n; ++u) {
          const float *kr = &k[((size_t(i) * s + pad + u) * nk + j) * d];
          double dot = 0;
          for (int e = 0; e < d; ++e)
            dot += double(qr[e]) * kr[e];
          p[u] = dot / std::sqrt(double(d));
          mx = std::max(mx, p[u]);
        }
        for (double &x : p)
          sum += (x = std::exp(x - mx));
        for (int u = 0; u < n; ++u) {
          const float *vr = &v[((size_t(i) * s + pad + u) * nk + j) * d];
          for (int e = 0; e < d; ++e)
            want[e] += p[u] / sum * vr[e];
        }
      }
      for (int e = 0; e < d; ++e)
        worst = std::max(worst, std::fabs(want[e] - got[e]));
    }
    return worst;
  }
};

/// Milliseconds per launch of one kernel over `repeats` launches.
double milliseconds(Prefill &p, bool tiled, int repeats) {
  CHECK_CUDA(fairkv::cuda::launchPrefillAttention(p.args, tiled, 0));
  return 1e3 * fairkv::bench::secondsPerRepeat(repeats, [&] {
           CHECK_CUDA(fairkv::cuda::launchPrefillAttention(p.args, tiled, 0));
         });
}

} // namespace

bool fairkv::bench::checkPrefillAttention() {
  const double tolerance = 1e-4;
  bool ok = true;
  // Short prompts: both kernels, against float64 and against each other.
  for (auto [d, nq, nk] : {std::array<int, 3>{64, 4, 2}, {128, 8, 2}}) {
    Prefill p({700, 333, 1}, 700, nq, nk, d, d);
    std::vector<float> row = p.run(false), tiled = p.run(true);
    double apart = 0;
    for (size_t e = 0; e < row.size(); ++e)
      apart = std::max(apart, double(std::fabs(row[e] - tiled[e])));
    const double worstRow = p.worstOnSamples(row, 64, 1),
                 worstTiled = p.worstOnSamples(tiled, 64, 1);
    const bool pass =
        worstRow < tolerance && worstTiled < tolerance && apart < tolerance;
    ok &= pass;
    std::printf("  prefill attention, head_dim %3d, GQA %d, prompts 700/333/1: "
                "max error row %.1e, tiled %.1e, row vs tiled %.1e  %s\n",
                d, nq / nk, worstRow, worstTiled, apart,
                pass ? "PASS" : "FAIL");
  }
  // Beyond the row kernel's longest prompt: the tiled kernel alone.
  {
    const int d = 128, seq = fairkv::cuda::rowKernelMaxSeq(d) + 840;
    Prefill p({seq, seq - 4001}, seq, 8, 2, d, 7);
    const double worst = p.worstOnSamples(p.run(true), 48, 2);
    const bool pass = worst < tolerance &&
                      fairkv::cuda::launchPrefillAttention(p.args, false, 0) ==
                          cudaErrorInvalidValue;
    cudaGetLastError();
    ok &= pass;
    std::printf("  prefill attention, head_dim 128, GQA 4, a %d-token prompt "
                "(tiled only; the row kernel refuses it): max error %.1e  %s\n",
                seq, worst, pass ? "PASS" : "FAIL");
  }
  // Speed: one llama-3-8b layer (32 query heads, 8 KV heads of 128).
  {
    const int seq = 4096;
    Prefill p({seq}, seq, 32, 8, 128, 3);
    const double row = milliseconds(p, false, 3),
                 tiled = milliseconds(p, true, 3);
    std::printf(
        "  prefill attention, one llama-3-8b layer, a %d-token "
        "prompt: row kernel %.2f ms, tiled %.2f ms (row / tiled %.2f)\n",
        seq, row, tiled, row / tiled);
  }
  return ok;
}

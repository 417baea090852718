//===- ExactSolverTest.cpp - The exact per-layer solver against brute force ===//

#include "LayerSolvers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

using namespace fairkv::placement;
using namespace fairkv::placement::detail;

namespace {

/// The best makespan over every partition of the heads into at most G
/// groups, each group's devices chosen by brute force too: the optimum of
/// the problem's group form, computed without the solver's shortcuts.
double bruteForce(const std::vector<double> &w, int G, int k) {
  const int H = static_cast<int>(w.size());
  double best = 1e300;
  std::vector<int> group(H, 0);
  std::function<void(int, int)> partitions = [&](int h, int groups) {
    if (h == H) {
      std::vector<double> weight(groups, 0.0);
      for (int j = 0; j < H; ++j)
        weight[group[j]] += w[j];
      // Every device count c_i >= 1 with sum c_i <= G, sum (c_i - 1) <= k.
      std::vector<int> c(groups, 1);
      std::function<void(int, int)> counts = [&](int i, int spare) {
        if (i == groups) {
          double span = 0;
          for (int e = 0; e < groups; ++e)
            span = std::max(span, weight[e] / c[e]);
          best = std::min(best, span);
          return;
        }
        for (int extra = 0; extra <= spare; ++extra) {
          c[i] = 1 + extra;
          counts(i + 1, spare - extra);
        }
        c[i] = 1;
      };
      counts(0, std::min(G - groups, k));
      return;
    }
    for (int g = 0; g <= std::min(groups, G - 1); ++g) {
      group[h] = g;
      partitions(h + 1, std::max(groups, g + 1));
    }
  };
  partitions(0, 0);
  return best;
}

int extras(const LayerPlacement &layer) {
  int n = 0;
  for (const auto &replicas : layer)
    n += static_cast<int>(replicas.size()) - 1;
  return n;
}

} // namespace

// On random small layers the solver proves the brute-force optimum, from a
// poor incumbent (every head on device 0), with a placement that keeps to
// the copies and whose makespan is the optimum.
TEST(ExactSolver, ProvesTheBruteForceOptimum) {
  std::mt19937_64 rng(17);
  std::lognormal_distribution<double> weight(0.0, 1.0);
  int checked = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int H = 2 + static_cast<int>(rng() % 6), G = 2 + static_cast<int>(rng() % 3);
    const int k = static_cast<int>(rng() % G);
    std::vector<double> w(H);
    for (double &x : w)
      x = weight(rng);
    LayerPlacement poor(H);
    for (auto &replicas : poor)
      replicas = {Replica{0, 1.0}};
    ExactLayerResult r = exactLayer(w, G, k, poor, 10.0);
    ASSERT_TRUE(r.proved) << "trial " << trial;
    const double optimum = bruteForce(w, G, k);
    EXPECT_NEAR(r.makespan, optimum, 1e-9 * optimum) << "trial " << trial;
    EXPECT_NEAR(makespan(r.placement, w, G), r.makespan, 1e-9 * optimum);
    EXPECT_LE(extras(r.placement), k) << "trial " << trial;
    EXPECT_GE(r.makespan, layerLowerBound(w, G, k) * (1 - 1e-12));
    ++checked;
  }
  EXPECT_EQ(checked, 60);
}

// Without copies it is makespan scheduling: {3, 3, 2, 2, 2} on 2 devices
// is 6 (3 + 3 | 2 + 2 + 2), where LPT gives 7.
TEST(ExactSolver, PartitionsWithoutCopies) {
  std::vector<double> w = {3, 3, 2, 2, 2};
  LayerPlacement lpt = lptPlacement(w, 2, false);
  ASSERT_DOUBLE_EQ(makespan(lpt, w, 2), 7);
  ExactLayerResult r = exactLayer(w, 2, 0, lpt, 10.0);
  EXPECT_TRUE(r.proved);
  EXPECT_DOUBLE_EQ(r.makespan, 6);
  EXPECT_EQ(extras(r.placement), 0);
}

//===- ExactSolver.cpp - Exact per-layer placement by branch and bound ----===//
//
// The structure that makes the layer problem small: take the bipartite
// graph of heads and the devices holding their replicas. A connected part
// with c devices and a heads has at least a + c - 1 replicas, so it costs at
// least c - 1 copies; and wrap-around filling of its heads over its c
// devices reaches the part's mean W / c with exactly c - 1 copies at most
// (each device boundary cuts at most one head). So the optimum with k
// copies is the best partition of the heads into groups with device counts
// c_i >= 1: minimise max W_i / c_i subject to sum c_i <= G and
// sum (c_i - 1) <= k. For given groups the best counts follow by giving
// each spare device to the group of the largest W_i / c_i (optimal for a
// max of ratios). The search assigns heads heaviest first to a group or a
// new one (groups are interchangeable: a new group only at the end, and
// never into a second group of the same weight), bounded below by the
// assigned part's optimum, which adding heads never lowers.
//
//===----------------------------------------------------------------------===//

#include "LayerSolvers.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

using namespace fairkv::placement;
using namespace fairkv::placement::detail;

namespace {

using Clock = std::chrono::steady_clock;

/// The best makespan of groups of these weights on at most `devices`
/// devices with at most `copies` spare ones (c_i - 1 summed).
double groupsMakespan(const std::vector<double> &weights, int devices,
                      int copies, std::vector<int> *counts = nullptr) {
  const int m = static_cast<int>(weights.size());
  std::vector<int> c(m, 1);
  int spare = std::min(devices - m, copies);
  for (; spare > 0; --spare) {
    int best = 0;
    for (int i = 1; i < m; ++i)
      if (weights[i] * c[best] > weights[best] * c[i])
        best = i;
    if (m == 0 || weights[best] == 0)
      break;
    ++c[best];
  }
  double span = 0;
  for (int i = 0; i < m; ++i)
    span = std::max(span, weights[i] / c[i]);
  if (counts)
    *counts = std::move(c);
  return span;
}

struct Search {
  const std::vector<double> &w;
  std::vector<int> order; // heads, heaviest first
  int devices, copies;
  double lowerBound;      // of the whole layer (no search can beat it)
  Clock::time_point deadline;
  std::vector<double> groups;
  std::vector<int> groupOf; // by position in `order`
  double best;
  std::vector<int> bestGroupOf;
  bool complete = true;
  int64_t nodes = 0;

  void run(size_t j) {
    if ((++nodes & 1023) == 0 && Clock::now() > deadline) {
      complete = false;
      return;
    }
    if (!complete)
      return;
    const double span = groupsMakespan(groups, devices, copies);
    if (span >= best * (1 - 1e-12))
      return; // adding heads never lowers it
    if (j == order.size()) {
      best = span;
      bestGroupOf = groupOf;
      return;
    }
    const double wj = w[order[j]];
    for (size_t i = 0; i < groups.size() && complete; ++i) {
      bool repeat = false; // a group of the same weight was tried already
      for (size_t e = 0; e < i && !repeat; ++e)
        repeat = groups[e] == groups[i];
      if (repeat)
        continue;
      groups[i] += wj;
      groupOf[j] = static_cast<int>(i);
      run(j + 1);
      groups[i] -= wj;
      if (best <= lowerBound * (1 + 1e-12))
        return; // proven optimal
    }
    if (static_cast<int>(groups.size()) < devices && complete) {
      groups.push_back(wj);
      groupOf[j] = static_cast<int>(groups.size()) - 1;
      run(j + 1);
      groups.pop_back();
    }
  }
};

/// Wrap-around filling of each group over its own devices.
LayerPlacement placeGroups(const std::vector<double> &w,
                           const std::vector<int> &order,
                           const std::vector<int> &groupOf, int groupCount,
                           int devices, int copies) {
  std::vector<double> weights(groupCount, 0.0);
  std::vector<std::vector<int>> members(groupCount);
  for (size_t j = 0; j < order.size(); ++j) {
    weights[groupOf[j]] += w[order[j]];
    members[groupOf[j]].push_back(order[j]);
  }
  std::vector<int> counts;
  groupsMakespan(weights, devices, copies, &counts);
  LayerPlacement layer(w.size());
  int first = 0;
  for (int i = 0; i < groupCount; ++i) {
    const double room = weights[i] / counts[i], tol = 1e-12 * weights[i];
    int g = first;
    double left = room;
    for (int h : members[i]) {
      double rest = w[h];
      if (rest <= 0) {
        layer[h].push_back(Replica{g, 1.0});
        continue;
      }
      while (rest > tol) {
        const bool lastDevice = g == first + counts[i] - 1;
        double piece = lastDevice ? rest : std::min(rest, left);
        if (piece > tol)
          layer[h].push_back(Replica{g, piece / w[h]});
        rest -= piece;
        left -= piece;
        if (left <= tol && !lastDevice) {
          ++g;
          left = room;
        }
      }
    }
    first += counts[i];
  }
  // Shares that sum to 1 exactly, whatever the rounding did.
  normaliseShares(layer);
  return layer;
}

} // namespace

ExactLayerResult detail::exactLayer(const std::vector<double> &w, int devices,
                                    int copies,
                                    const LayerPlacement &incumbent,
                                    double timeLimitSeconds) {
  ExactLayerResult result;
  result.placement = incumbent;
  result.makespan = makespan(incumbent, w, devices);
  const double bound = layerLowerBound(w, devices, copies);
  result.bound = bound;
  if (result.makespan <= bound * (1 + 1e-9)) {
    result.proved = true;
    return result;
  }
  Search s{w, heaviestFirst(w), devices, copies, bound,
           Clock::now() + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(
                                  std::max(0.0, timeLimitSeconds))),
           {}, std::vector<int>(w.size(), 0), result.makespan, {}};
  s.run(0);
  if (!s.bestGroupOf.empty()) {
    int groupCount = 0;
    for (int g : s.bestGroupOf)
      groupCount = std::max(groupCount, g + 1);
    LayerPlacement found = placeGroups(w, s.order, s.bestGroupOf, groupCount,
                                       devices, copies);
    const double span = makespan(found, w, devices);
    if (span < result.makespan) {
      result.placement = std::move(found);
      result.makespan = span;
    }
  }
  result.proved = s.complete;
  result.bound = s.complete ? result.makespan : bound;
  return result;
}

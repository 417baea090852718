//===- LayerSolvers.h - Per-layer placement solvers -------------*- C++ -*-===//
//
// Internal to the placement library. Every layer is an independent
// subproblem (each ends in an all-reduce): place H KV heads with weights w
// on G devices, with at most `copies` extra replicas.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_LIB_PLACEMENT_LAYERSOLVERS_H
#define FAIRKV_LIB_PLACEMENT_LAYERSOLVERS_H

#include "fairkv/Placement/Plan.h"

#include <vector>

namespace fairkv::placement::detail {

/// The largest device load of `layer`.
double makespan(const LayerPlacement &layer, const std::vector<double> &w,
                int devices);
/// Replicas beyond one per head.
int extraReplicas(const LayerPlacement &layer);
/// Makes the shares of every head sum to exactly 1.
void normaliseShares(LayerPlacement &layer);

/// Heads by weight, heaviest first (ties: the lower head).
std::vector<int> heaviestFirst(const std::vector<double> &w);
/// Contiguous tensor parallelism: head h on device h / (H / G).
LayerPlacement contiguousPlacement(int heads, int devices);
/// Tensor parallelism over more devices than KV heads, as vLLM lays it out:
/// head h on the r = G / H devices h r .. h r + r - 1, each holding the
/// whole KV head and `queries` heads of its query group.
LayerPlacement replicatedPlacement(int heads, int devices, int queries);
/// LPT: heaviest head first onto the least-loaded device; with
/// `equalHeads`, only onto devices holding fewer than ceil(H / G) heads;
/// with `allowance`, only onto devices with heads left in it (one is spent
/// per head placed; the caller keeps the total at least the heads).
LayerPlacement lptPlacement(const std::vector<double> &w, int devices,
                            bool equalHeads,
                            std::vector<int64_t> *allowance = nullptr);
/// McNaughton's wrap-around filling: the ideal makespan with at most G - 1
/// extra replicas.
LayerPlacement wrapAroundPlacement(const std::vector<double> &w, int devices);
/// Uneven shares: the smallest makespan found (binary search over a
/// first-fit-decreasing packing that splits a head only when it fits
/// nowhere whole) with at most `copies` extra replicas.
LayerPlacement splitPlacement(const std::vector<double> &w, int devices,
                              int copies);
/// Even shares: the reference heuristic (one more copy for the head with the
/// largest load per copy, re-placed by LPT, kept only if it helps).
LayerPlacement evenSharePlacement(const std::vector<double> &w, int devices,
                                  int copies);
/// A lower bound on the makespan of any placement with at most `copies`
/// extra replicas.
double layerLowerBound(const std::vector<double> &w, int devices, int copies);

struct ExactLayerResult {
  LayerPlacement placement;
  double makespan = 0;
  /// Lower bound proven by the solver (the optimum when `proved`).
  double bound = 0;
  bool proved = false;
};

/// The exact optimum with at most `copies` extra replicas and uneven
/// shares (branch and bound over the partition of the heads into groups
/// that share devices; ExactSolver.cpp), seeded with `incumbent`, within
/// `timeLimitSeconds`; `proved` when the search finished.
ExactLayerResult exactLayer(const std::vector<double> &w, int devices,
                            int copies, const LayerPlacement &incumbent,
                            double timeLimitSeconds);

} // namespace fairkv::placement::detail

#endif // FAIRKV_LIB_PLACEMENT_LAYERSOLVERS_H

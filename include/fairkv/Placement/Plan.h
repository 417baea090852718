//===- Plan.h - Head placements and their metrics ---------------*- C++ -*-===//
//
// A plan places every KV head of every layer: a list of replicas, each on a
// device with a share of the batch. The metrics of DESIGN.md section 2 are
// computed from the replicas alone, so anyone can recompute them.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_PLACEMENT_PLAN_H
#define FAIRKV_PLACEMENT_PLAN_H

#include "fairkv/Placement/Model.h"
#include "fairkv/Placement/Profile.h"

#include <string>
#include <vector>

namespace fairkv::placement {

/// One copy of a KV head. A copy serves `share` of the batch with the whole
/// query group (Fair-Copying), or, when `queryCount` > 0, the whole batch for
/// query heads `queryBegin` .. `queryBegin + queryCount - 1` of the group
/// only: tp's replicated KV heads when there are more devices than KV heads,
/// as vLLM lays them out. A head's copies are all of one kind.
struct Replica {
  int device = 0;
  double share = 1.0;
  int queryBegin = 0;
  int queryCount = 0;

  bool splitsQueries() const { return queryCount > 0; }
};

/// heads[h]: the replicas of KV head h.
using LayerPlacement = std::vector<std::vector<Replica>>;

struct Plan {
  std::string strategy;
  int devices = 0;
  std::vector<LayerPlacement> layers;
};

/// Checks shares in (0, 1] summing to 1 (1e-6), distinct devices per head,
/// devices in range, and the plan's shape against the profile. Copies that
/// split the query group each serve the whole batch, and their query ranges
/// tile 0 .. `queryGroup` - 1 (any contiguous tiling when `queryGroup` is 0).
Status validatePlan(const Plan &plan, const BudgetProfile &profile,
                    int64_t queryGroup = 0);

/// Whether any copy of the plan splits a query group.
bool splitsQueries(const Plan &plan);

/// Weight bytes of one replica's head: all of them, or its query slice's.
double replicaWeightBytes(const Replica &replica, const ModelConfig &model);
/// weights[l][g] = head weight bytes on device g in layer l.
std::vector<std::vector<double>> deviceHeadWeights(const Plan &plan,
                                                   const ModelConfig &model);

/// load[l][g] = sum over the replicas on g of share * tokens[l][h] (a copy
/// that splits queries holds and reads its head's whole KV).
std::vector<std::vector<double>> deviceLoads(const Plan &plan,
                                             const BudgetProfile &profile);
/// replicas[l][g] = number of head replicas on device g in layer l.
std::vector<std::vector<int>> replicaCounts(const Plan &plan);

struct PlanMetrics {
  double attentionImbalance = 0;
  double memoryImbalance = 0;
  int64_t extraReplicas = 0;
  /// Weight bytes of all copies beyond one per head.
  double extraWeightBytes = 0;
  /// Weight bytes the fullest device holds beyond its share under TP.
  double extraWeightBytesFullestDevice = 0;
  /// extraWeightBytesFullestDevice / that device's weight bytes under TP.
  double extraWeightFraction = 0;
  /// Predicted decode step time at `batch`, seconds.
  double predictedStepSeconds = 0;
  /// Its attention part: sum over layers of the slowest device's decode
  /// attention (KV bytes / attention bandwidth + the launch time).
  double predictedAttentionSeconds = 0;
  int64_t batch = 0;
  /// Predicted largest batch that fits in every device's HBM.
  int64_t predictedMaxBatch = 0;
  /// Predicted tokens/s at the max batch.
  double predictedThroughput = 0;
  /// KV bytes per request on each device.
  std::vector<double> kvBytesPerRequest;
};

/// Computes every metric of a plan that does not depend on other plans.
PlanMetrics evaluatePlan(const Plan &plan, const BudgetProfile &profile,
                         const ModelConfig &model, const Hardware &hw,
                         int64_t batch);

/// Predicted decode step time of `plan` at `batch`, seconds.
double predictStepSeconds(const Plan &plan, const BudgetProfile &profile,
                          const ModelConfig &model, const Hardware &hw,
                          int64_t batch);

/// Ring all-reduce of `bytes` over `devices` devices, seconds: the
/// collective's fixed cost plus 2 (G - 1) / G of the bytes over the link.
double allReduceSeconds(double bytes, int devices, const Hardware &hw);

/// A decode step's collectives at `batch` on `devices` devices, seconds:
/// two all-reduces of the activations in each of `layers` layers and the
/// logits' all-gather (what predictStepSeconds adds to the slowest
/// devices' work).
double collectiveStepSeconds(const ModelConfig &model, const Hardware &hw,
                             int devices, int64_t layers, int64_t batch);

/// The fewest bytes worth a block of its own when an all-reduce is split to
/// overlap the GEMM before it: a block's transfer time then equals the
/// collective's fixed cost, which each extra block adds. 0 when there is
/// nothing to reduce (one device).
double smallestPayingReductionBlock(int devices, const Hardware &hw);

} // namespace fairkv::placement

#endif // FAIRKV_PLACEMENT_PLAN_H

//===- Plan.cpp - Plan validation, loads and the cost model ---------------===//
//
// The cost model of DESIGN.md section 2. Decode is memory-bound, so a
// device's time in a layer is the bytes it reads: the KV of its replicas'
// requests through the decode-attention kernel (its measured bandwidth plus
// a fixed time per launch), and the weights of the heads it holds plus its
// MLP shard over HBM bandwidth, plus a fixed cost per replica; every layer
// ends in two all-reduces, so the layer takes as long as its slowest device.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Placement/Plan.h"

#include <algorithm>
#include <cmath>
#include <set>

using namespace fairkv::placement;

Status fairkv::placement::validatePlan(const Plan &plan,
                                       const BudgetProfile &profile,
                                       int64_t queryGroup) {
  if (plan.devices <= 0)
    return makeError("plan has no devices");
  if (static_cast<int64_t>(plan.layers.size()) != profile.layers())
    return makeError("plan has " + std::to_string(plan.layers.size()) +
                     " layers, profile has " +
                     std::to_string(profile.layers()));
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    const LayerPlacement &layer = plan.layers[l];
    std::string where = "layer " + std::to_string(l);
    if (static_cast<int64_t>(layer.size()) != profile.kvHeads())
      return makeError(where + " places " + std::to_string(layer.size()) +
                       " kv heads, profile has " +
                       std::to_string(profile.kvHeads()));
    for (size_t h = 0; h < layer.size(); ++h) {
      std::string head = where + ", kv head " + std::to_string(h);
      if (layer[h].empty())
        return makeError(head + " has no replica");
      std::set<int> devices;
      double sum = 0;
      const bool split = layer[h].front().splitsQueries();
      std::vector<std::pair<int, int>> ranges;
      for (const Replica &r : layer[h]) {
        if (r.device < 0 || r.device >= plan.devices)
          return makeError(head + " has a replica on device " +
                           std::to_string(r.device) + ", outside 0.." +
                           std::to_string(plan.devices - 1));
        if (!devices.insert(r.device).second)
          return makeError(head + " has two replicas on device " +
                           std::to_string(r.device));
        if (!(r.share > 0 && r.share <= 1))
          return makeError(head + " has a share outside (0, 1]");
        if (r.splitsQueries() != split || r.queryCount < 0 ||
            r.queryBegin < 0 || (!split && r.queryBegin != 0))
          return makeError(head + " mixes copies that split its queries "
                                  "with copies that split its batch");
        if (split && r.share != 1.0)
          return makeError(head + " has a copy that splits the queries but "
                                  "serves only part of the batch");
        sum += r.share;
        ranges.emplace_back(r.queryBegin, r.queryCount);
      }
      if (split) {
        std::sort(ranges.begin(), ranges.end());
        int next = 0;
        for (auto [begin, count] : ranges) {
          if (begin != next)
            return makeError(head + "'s query ranges do not tile its group");
          next = begin + count;
        }
        if (queryGroup > 0 && next != queryGroup)
          return makeError(head + "'s query ranges cover " +
                           std::to_string(next) + " of its " +
                           std::to_string(queryGroup) + " query heads");
        continue;
      }
      if (std::fabs(sum - 1.0) > 1e-6)
        return makeError(head + " has shares summing to " +
                         std::to_string(sum) + ", not 1");
    }
  }
  return Status::ok();
}

bool fairkv::placement::splitsQueries(const Plan &plan) {
  for (const LayerPlacement &layer : plan.layers)
    for (const auto &head : layer)
      for (const Replica &r : head)
        if (r.splitsQueries())
          return true;
  return false;
}

double fairkv::placement::replicaWeightBytes(const Replica &replica,
                                             const ModelConfig &model) {
  return replica.splitsQueries() ? model.kvHeadWeightBytes(replica.queryCount)
                                 : model.kvHeadWeightBytes();
}

std::vector<std::vector<double>>
fairkv::placement::deviceHeadWeights(const Plan &plan,
                                     const ModelConfig &model) {
  std::vector<std::vector<double>> weights(
      plan.layers.size(), std::vector<double>(plan.devices, 0.0));
  for (size_t l = 0; l < plan.layers.size(); ++l)
    for (const auto &head : plan.layers[l])
      for (const Replica &r : head)
        weights[l][r.device] += replicaWeightBytes(r, model);
  return weights;
}

std::vector<std::vector<double>>
fairkv::placement::deviceLoads(const Plan &plan, const BudgetProfile &profile) {
  std::vector<std::vector<double>> loads(
      plan.layers.size(), std::vector<double>(plan.devices, 0.0));
  for (size_t l = 0; l < plan.layers.size(); ++l)
    for (size_t h = 0; h < plan.layers[l].size(); ++h)
      for (const Replica &r : plan.layers[l][h])
        loads[l][r.device] += r.share * profile.tokens[l][h];
  return loads;
}

std::vector<std::vector<int>>
fairkv::placement::replicaCounts(const Plan &plan) {
  std::vector<std::vector<int>> counts(plan.layers.size(),
                                       std::vector<int>(plan.devices, 0));
  for (size_t l = 0; l < plan.layers.size(); ++l)
    for (const auto &head : plan.layers[l])
      for (const Replica &r : head)
        ++counts[l][r.device];
  return counts;
}

double fairkv::placement::allReduceSeconds(double bytes, int devices,
                                           const Hardware &hw) {
  if (devices <= 1)
    return 0;
  return hw.collectiveLatency +
         2.0 * (devices - 1) / devices * bytes / hw.linkBandwidth;
}

double fairkv::placement::collectiveStepSeconds(const ModelConfig &model,
                                                const Hardware &hw,
                                                int devices, int64_t layers,
                                                int64_t batch) {
  const double activation =
      static_cast<double>(batch) * model.hidden * model.dtypeBytes();
  // One all-reduce after each layer's output projection, one after its
  // MLP, and the all-gather of the vocab-parallel logits (half an
  // all-reduce's traffic).
  return layers * 2 * allReduceSeconds(activation, devices, hw) +
         allReduceSeconds(static_cast<double>(batch) * model.vocab * 4,
                          devices, hw) /
             2;
}

double fairkv::placement::smallestPayingReductionBlock(int devices,
                                                       const Hardware &hw) {
  if (devices <= 1 || hw.linkBandwidth <= 0)
    return 0;
  return hw.collectiveLatency * hw.linkBandwidth * devices /
         (2.0 * (devices - 1));
}

namespace {

/// One device's decode attention over `kv` bytes in one layer.
double attentionSeconds(double kv, const Hardware &hw) {
  const double bandwidth =
      hw.attentionBandwidth > 0 ? hw.attentionBandwidth : hw.hbmBandwidth;
  return kv > 0 ? kv / bandwidth + hw.attentionLaunchSeconds : 0.0;
}

/// Sum over layers of the slowest device's decode attention.
double attentionStepSeconds(const std::vector<std::vector<double>> &loads,
                            const ModelConfig &model, const Hardware &hw,
                            int64_t batch) {
  double total = 0;
  for (const auto &layer : loads) {
    double slowest = 0;
    for (double load : layer)
      slowest = std::max(
          slowest, attentionSeconds(batch * load * model.kvBytesPerToken(), hw));
    total += slowest;
  }
  return total;
}

double stepSeconds(const std::vector<std::vector<double>> &loads,
                   const std::vector<std::vector<int>> &counts,
                   const std::vector<std::vector<double>> &headWeights,
                   const ModelConfig &model, const Hardware &hw, int devices,
                   int64_t batch) {
  const double mlp = model.mlpBytesPerDevice(devices);
  double total = 0;
  for (size_t l = 0; l < loads.size(); ++l) {
    double slowest = 0;
    for (int g = 0; g < devices; ++g) {
      double attention =
          attentionSeconds(batch * loads[l][g] * model.kvBytesPerToken(), hw);
      double weights = headWeights[l][g] + mlp;
      slowest = std::max(slowest, attention + weights / hw.hbmBandwidth +
                                      counts[l][g] * hw.perReplicaOverhead);
    }
    total += slowest;
  }
  // Vocab-parallel LM head.
  total += 2.0 * model.vocab * model.hidden * model.dtypeBytes() / devices /
           hw.hbmBandwidth;
  return total + collectiveStepSeconds(model, hw, devices,
                                       static_cast<int64_t>(loads.size()),
                                       batch);
}

} // namespace

double fairkv::placement::predictStepSeconds(const Plan &plan,
                                             const BudgetProfile &profile,
                                             const ModelConfig &model,
                                             const Hardware &hw,
                                             int64_t batch) {
  return stepSeconds(deviceLoads(plan, profile), replicaCounts(plan),
                     deviceHeadWeights(plan, model), model, hw, plan.devices,
                     batch);
}

PlanMetrics fairkv::placement::evaluatePlan(const Plan &plan,
                                            const BudgetProfile &profile,
                                            const ModelConfig &model,
                                            const Hardware &hw,
                                            int64_t batch) {
  PlanMetrics m;
  const int G = plan.devices;
  std::vector<std::vector<double>> loads = deviceLoads(plan, profile);
  std::vector<std::vector<int>> counts = replicaCounts(plan);
  std::vector<std::vector<double>> headWeights = deviceHeadWeights(plan, model);

  // Imbalances are against the ideal, every head's KV held once and spread
  // evenly: copies that split queries hold their head's KV several times,
  // which costs them, rather than raising the mean they are measured by.
  double sumMax = 0, sumIdeal = 0, totalTokens = 0;
  for (size_t l = 0; l < loads.size(); ++l) {
    double layerTokens = 0;
    for (int64_t t : profile.tokens[l])
      layerTokens += static_cast<double>(t);
    sumMax += *std::max_element(loads[l].begin(), loads[l].end());
    sumIdeal += layerTokens / G;
    totalTokens += layerTokens;
  }
  m.attentionImbalance = sumIdeal > 0 ? sumMax / sumIdeal : 1.0;

  m.kvBytesPerRequest.assign(G, 0.0);
  for (const auto &layer : loads)
    for (int g = 0; g < G; ++g)
      m.kvBytesPerRequest[g] += layer[g] * model.kvBytesPerToken();
  const double memMax =
      *std::max_element(m.kvBytesPerRequest.begin(), m.kvBytesPerRequest.end());
  const double memIdeal = totalTokens * model.kvBytesPerToken() / G;
  m.memoryImbalance = memIdeal > 0 ? memMax / memIdeal : 1.0;

  int64_t replicas = 0;
  double weightSum = 0;
  std::vector<double> perDevice(G, 0.0);
  for (size_t l = 0; l < counts.size(); ++l)
    for (int g = 0; g < G; ++g) {
      replicas += counts[l][g];
      perDevice[g] += headWeights[l][g];
      weightSum += headWeights[l][g];
    }
  const double headBytes = model.kvHeadWeightBytes();
  m.extraReplicas = replicas - profile.layers() * profile.kvHeads();
  m.extraWeightBytes = std::max(
      0.0, weightSum - static_cast<double>(profile.layers()) *
                           profile.kvHeads() * headBytes);
  // Against the head weights every device holds under tp.
  const double fullest = *std::max_element(perDevice.begin(), perDevice.end());
  m.extraWeightBytesFullestDevice =
      std::max(0.0, fullest - model.tpAttentionBytesPerDevice(G));
  m.extraWeightFraction =
      m.extraWeightBytesFullestDevice / model.tpWeightBytesPerDevice(G);

  m.batch = batch;
  m.predictedStepSeconds =
      stepSeconds(loads, counts, headWeights, model, hw, G, batch);
  m.predictedAttentionSeconds = attentionStepSeconds(loads, model, hw, batch);

  // The fullest device caps the batch for all of them.
  const double usable = hw.hbmBytes * (1.0 - hw.workspaceFraction);
  int64_t maxBatch = INT64_MAX;
  for (int g = 0; g < G; ++g) {
    double weights = model.nonAttentionBytesPerDevice(G) + perDevice[g];
    double free = usable - weights;
    if (m.kvBytesPerRequest[g] <= 0)
      continue;
    maxBatch = std::min<int64_t>(
        maxBatch, free <= 0 ? 0
                            : static_cast<int64_t>(
                                  std::floor(free / m.kvBytesPerRequest[g])));
  }
  m.predictedMaxBatch = maxBatch == INT64_MAX ? 0 : maxBatch;
  m.predictedThroughput =
      m.predictedMaxBatch > 0
          ? m.predictedMaxBatch / stepSeconds(loads, counts, headWeights,
                                              model, hw, G,
                                              m.predictedMaxBatch)
          : 0.0;
  return m;
}

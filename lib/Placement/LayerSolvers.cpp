//===- LayerSolvers.cpp - Per-layer placement heuristics ------------------===//

#include "LayerSolvers.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

using namespace fairkv::placement;
using namespace fairkv::placement::detail;

double detail::makespan(const LayerPlacement &layer,
                        const std::vector<double> &w, int devices) {
  std::vector<double> load(devices, 0.0);
  for (size_t h = 0; h < layer.size(); ++h)
    for (const Replica &r : layer[h])
      load[r.device] += r.share * w[h];
  return *std::max_element(load.begin(), load.end());
}

int detail::extraReplicas(const LayerPlacement &layer) {
  int extra = 0;
  for (const auto &head : layer)
    extra += static_cast<int>(head.size()) - 1;
  return extra;
}

void detail::normaliseShares(LayerPlacement &layer) {
  for (auto &head : layer) {
    double sum = 0;
    for (const Replica &r : head)
      sum += r.share;
    for (Replica &r : head)
      r.share /= sum;
  }
}

LayerPlacement detail::contiguousPlacement(int heads, int devices) {
  LayerPlacement layer(heads);
  const int perDevice = heads / devices;
  for (int h = 0; h < heads; ++h)
    layer[h] = {Replica{h / perDevice, 1.0}};
  return layer;
}

LayerPlacement detail::replicatedPlacement(int heads, int devices,
                                           int queries) {
  LayerPlacement layer(heads);
  const int copies = devices / heads;
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < copies; ++i)
      layer[h].push_back(Replica{h * copies + i, 1.0, i * queries, queries});
  return layer;
}

std::vector<int> detail::heaviestFirst(const std::vector<double> &w) {
  std::vector<int> order(w.size());
  std::iota(order.begin(), order.end(), 0);
  // Stable: equal budgets keep index order, so plans are deterministic.
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return w[a] > w[b]; });
  return order;
}

namespace {

/// First-fit-decreasing packing into G bins of capacity T that splits a head
/// (over the bins with the most room) only when it fits in no bin whole.
std::optional<LayerPlacement> packWithSplits(const std::vector<double> &w,
                                             const std::vector<int> &order,
                                             int devices, double capacity,
                                             int maxExtra) {
  const double tol = 1e-9 * capacity;
  std::vector<double> room(devices, capacity);
  // The bins in (room, index) order, kept sorted as rooms shrink: best fit
  // and roomiest bin are then binary searches (H log G rather than H G).
  std::vector<int> byRoom(devices);
  std::iota(byRoom.begin(), byRoom.end(), 0);
  auto before = [&](int a, int b) {
    return room[a] < room[b] || (room[a] == room[b] && a < b);
  };
  auto firstWithRoom = [&](double atLeast) {
    return static_cast<size_t>(
        std::partition_point(byRoom.begin(), byRoom.end(),
                             [&](int g) { return room[g] < atLeast; }) -
        byRoom.begin());
  };
  auto take = [&](size_t i, double amount) {
    const int g = byRoom[i];
    room[g] -= amount;
    for (; i > 0 && before(g, byRoom[i - 1]); --i)
      byRoom[i] = byRoom[i - 1];
    byRoom[i] = g;
  };
  LayerPlacement layer(w.size());
  int extra = 0;
  for (int h : order) {
    double amount = w[h];
    // Best fit: the least room that holds the head (lowest index on ties).
    if (size_t i = firstWithRoom(amount - tol); i < byRoom.size()) {
      layer[h].push_back(Replica{byRoom[i], 1.0});
      take(i, amount);
      continue;
    }
    // Split over the bins with the most room, roomiest first (lowest index
    // on ties). Each piece but the last fills its bin.
    while (amount > tol) {
      size_t i = firstWithRoom(room[byRoom.back()]);
      const int g = byRoom[i];
      if (room[g] <= tol)
        break;
      double piece = std::min(amount, room[g]);
      layer[h].push_back(Replica{g, piece / w[h]});
      amount -= piece;
      take(i, piece);
    }
    if (amount > tol)
      return std::nullopt;
    extra += static_cast<int>(layer[h].size()) - 1;
    if (extra > maxExtra)
      return std::nullopt;
  }
  normaliseShares(layer);
  return layer;
}

/// LPT over pieces: head h is cut into copies[h] equal pieces, each placed on
/// the least-loaded device that holds no other piece of h.
LayerPlacement placeEvenPieces(const std::vector<double> &w,
                               const std::vector<int> &copies, int devices) {
  struct Piece {
    int head;
    double load;
  };
  std::vector<Piece> pieces;
  for (size_t h = 0; h < w.size(); ++h)
    for (int c = 0; c < copies[h]; ++c)
      pieces.push_back(Piece{static_cast<int>(h), w[h] / copies[h]});
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const Piece &a, const Piece &b) { return a.load > b.load; });
  std::vector<double> load(devices, 0.0);
  LayerPlacement layer(w.size());
  for (const Piece &p : pieces) {
    int best = -1;
    for (int g = 0; g < devices; ++g) {
      bool taken = false;
      for (const Replica &r : layer[p.head])
        taken |= r.device == g;
      if (!taken && (best < 0 || load[g] < load[best]))
        best = g;
    }
    layer[p.head].push_back(Replica{best, 1.0 / copies[p.head]});
    load[best] += p.load;
  }
  return layer;
}

} // namespace

LayerPlacement detail::lptPlacement(const std::vector<double> &w, int devices,
                                    bool equalHeads,
                                    std::vector<int64_t> *allowance) {
  const int heads = static_cast<int>(w.size());
  const int cap = (heads + devices - 1) / devices;
  std::vector<double> load(devices, 0.0);
  std::vector<int> held(devices, 0);
  LayerPlacement layer(heads);
  for (int h : heaviestFirst(w)) {
    int best = -1;
    for (int g = 0; g < devices; ++g)
      if ((!equalHeads || held[g] < cap) &&
          (!allowance || (*allowance)[g] > 0) &&
          (best < 0 || load[g] < load[best]))
        best = g;
    layer[h] = {Replica{best, 1.0}};
    load[best] += w[h];
    ++held[best];
    if (allowance)
      --(*allowance)[best];
  }
  return layer;
}

LayerPlacement detail::wrapAroundPlacement(const std::vector<double> &w,
                                           int devices) {
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  const double ideal = total / devices;
  const double tol = 1e-9 * ideal;
  LayerPlacement layer(w.size());
  int g = 0;
  double room = ideal;
  for (int h : heaviestFirst(w)) {
    double amount = w[h];
    while (amount > tol) {
      // The last device takes whatever rounding left over.
      double piece = g == devices - 1 ? amount : std::min(amount, room);
      if (piece > tol)
        layer[h].push_back(Replica{g, piece / w[h]});
      amount -= piece;
      room -= piece;
      if (room <= tol && g < devices - 1) {
        ++g;
        room = ideal;
      }
    }
  }
  normaliseShares(layer);
  return layer;
}

double detail::layerLowerBound(const std::vector<double> &w, int devices,
                               int copies) {
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  double bound = total / devices;
  std::vector<double> sorted(w);
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  // The j heaviest heads are cut into at most j + copies pieces, so they
  // occupy at most min(j + copies, G) devices.
  double prefix = 0;
  for (size_t j = 1; j <= sorted.size(); ++j) {
    prefix += sorted[j - 1];
    bound = std::max(bound, prefix / std::min<double>(j + copies, devices));
  }
  // Without copies, two of the G + 1 heaviest heads share a device.
  if (copies == 0 && static_cast<int>(sorted.size()) > devices)
    bound = std::max(bound, sorted[devices - 1] + sorted[devices]);
  return bound;
}

LayerPlacement detail::splitPlacement(const std::vector<double> &w,
                                      int devices, int copies) {
  if (copies >= devices - 1)
    return wrapAroundPlacement(w, devices);
  LayerPlacement best = lptPlacement(w, devices, /*equalHeads=*/false);
  double hi = makespan(best, w, devices);
  double lo = layerLowerBound(w, devices, copies);
  if (copies == 0 || hi <= lo * (1 + 1e-9))
    return best;
  std::vector<int> order = heaviestFirst(w);
  for (int iter = 0; iter < 40 && hi - lo > 1e-7 * lo; ++iter) {
    double mid = (lo + hi) / 2;
    if (auto layer = packWithSplits(w, order, devices, mid, copies)) {
      double m = makespan(*layer, w, devices);
      best = std::move(*layer);
      hi = std::min(mid, m);
    } else {
      lo = mid;
    }
  }
  return best;
}

/// Sum of squared device loads: breaks ties between equal makespans, so a
/// copy of one of several equally heavy heads still counts as progress.
static double spread(const LayerPlacement &layer, const std::vector<double> &w,
                     int devices) {
  std::vector<double> load(devices, 0.0);
  for (size_t h = 0; h < layer.size(); ++h)
    for (const Replica &r : layer[h])
      load[r.device] += r.share * w[h];
  double sum = 0;
  for (double v : load)
    sum += v * v;
  return sum;
}

LayerPlacement detail::evenSharePlacement(const std::vector<double> &w,
                                          int devices, int copies) {
  std::vector<int> count(w.size(), 1);
  LayerPlacement best = placeEvenPieces(w, count, devices);
  double bestSpan = makespan(best, w, devices);
  double bestSpread = spread(best, w, devices);
  for (int step = 0; step < copies; ++step) {
    std::vector<int> candidates;
    for (size_t h = 0; h < w.size(); ++h)
      if (count[h] < devices)
        candidates.push_back(static_cast<int>(h));
    std::stable_sort(candidates.begin(), candidates.end(), [&](int a, int b) {
      return w[a] / count[a] > w[b] / count[b];
    });
    bool improved = false;
    // The head with the largest load per copy first; a few runners-up in
    // case its copy does not help.
    for (size_t i = 0; i < candidates.size() && i < 4 && !improved; ++i) {
      std::vector<int> next = count;
      ++next[candidates[i]];
      LayerPlacement layer = placeEvenPieces(w, next, devices);
      double span = makespan(layer, w, devices);
      double sq = spread(layer, w, devices);
      if (span < bestSpan * (1 - 1e-12) ||
          (span <= bestSpan * (1 + 1e-12) && sq < bestSpread * (1 - 1e-12))) {
        count = std::move(next);
        best = std::move(layer);
        bestSpan = span;
        bestSpread = sq;
        improved = true;
      }
    }
    if (!improved)
      break;
  }
  return best;
}

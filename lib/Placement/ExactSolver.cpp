//===- ExactSolver.cpp - Exact per-layer placement by MILP (GLPK) ---------===//
//
// min T  s.t.  sum_g y[h][g] = 1            every head served once
//              y[h][g] <= x[h][g]          a share needs a replica
//              sum_h w[h] y[h][g] <= T     device loads
//              sum_hg x[h][g] <= H + k     the copy budget
//              load[g] >= load[g + 1]      devices are interchangeable
// x binary, y in [0, 1]. Weights are scaled so the ideal makespan is 1.
// The heuristic placement seeds the search as its first incumbent.
//
//===----------------------------------------------------------------------===//

#include "LayerSolvers.h"

#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace fairkv::placement;
using namespace fairkv::placement::detail;

namespace {

struct SearchState {
  std::vector<double> incumbent; // 1-based column values
  bool seeded = false;
  double bound = 0;
};

void onSearchEvent(glp_tree *tree, void *info) {
  auto *state = static_cast<SearchState *>(info);
  if (int node = glp_ios_best_node(tree))
    state->bound = std::max(state->bound, glp_ios_node_bound(tree, node));
  if (glp_ios_reason(tree) == GLP_IHEUR && !state->seeded) {
    state->seeded = true;
    glp_ios_heur_sol(tree, state->incumbent.data());
  }
}

} // namespace

ExactLayerResult detail::exactLayer(const std::vector<double> &w, int devices,
                                    int copies,
                                    const LayerPlacement &incumbent,
                                    double timeLimitSeconds) {
  const int H = static_cast<int>(w.size()), G = devices;
  const double ideal = std::accumulate(w.begin(), w.end(), 0.0) / G;
  std::vector<double> ws(H);
  for (int h = 0; h < H; ++h)
    ws[h] = w[h] / ideal;

  // Columns: x[h][g] = 1 + h*G + g, y[h][g] = 1 + H*G + h*G + g, T last.
  auto xCol = [&](int h, int g) { return 1 + h * G + g; };
  auto yCol = [&](int h, int g) { return 1 + H * G + h * G + g; };
  const int tCol = 2 * H * G + 1;

  glp_term_out(GLP_OFF);
  glp_prob *lp = glp_create_prob();
  glp_set_obj_dir(lp, GLP_MIN);
  glp_add_cols(lp, tCol);
  for (int h = 0; h < H; ++h)
    for (int g = 0; g < G; ++g) {
      glp_set_col_kind(lp, xCol(h, g), GLP_BV);
      glp_set_col_bnds(lp, yCol(h, g), GLP_DB, 0.0, 1.0);
    }
  glp_set_col_bnds(lp, tCol, GLP_LO, 0.0, 0.0);
  glp_set_obj_coef(lp, tCol, 1.0);

  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0};
  auto add = [&](int row, int col, double v) {
    ia.push_back(row);
    ja.push_back(col);
    ar.push_back(v);
  };
  int row = 0;
  for (int h = 0; h < H; ++h) {
    row = glp_add_rows(lp, 1);
    glp_set_row_bnds(lp, row, GLP_FX, 1.0, 1.0);
    for (int g = 0; g < G; ++g)
      add(row, yCol(h, g), 1.0);
  }
  for (int h = 0; h < H; ++h)
    for (int g = 0; g < G; ++g) {
      row = glp_add_rows(lp, 1);
      glp_set_row_bnds(lp, row, GLP_UP, 0.0, 0.0);
      add(row, yCol(h, g), 1.0);
      add(row, xCol(h, g), -1.0);
    }
  for (int g = 0; g < G; ++g) {
    row = glp_add_rows(lp, 1);
    glp_set_row_bnds(lp, row, GLP_UP, 0.0, 0.0);
    for (int h = 0; h < H; ++h)
      add(row, yCol(h, g), ws[h]);
    add(row, tCol, -1.0);
  }
  row = glp_add_rows(lp, 1);
  glp_set_row_bnds(lp, row, GLP_UP, 0.0, static_cast<double>(H + copies));
  for (int h = 0; h < H; ++h)
    for (int g = 0; g < G; ++g)
      add(row, xCol(h, g), 1.0);
  for (int g = 0; g + 1 < G; ++g) {
    row = glp_add_rows(lp, 1);
    glp_set_row_bnds(lp, row, GLP_LO, 0.0, 0.0);
    for (int h = 0; h < H; ++h) {
      add(row, yCol(h, g), ws[h]);
      add(row, yCol(h, g + 1), -ws[h]);
    }
  }
  glp_load_matrix(lp, static_cast<int>(ia.size()) - 1, ia.data(), ja.data(),
                  ar.data());

  // The incumbent, relabelled so device loads are non-increasing.
  SearchState state;
  state.incumbent.assign(tCol + 1, 0.0);
  {
    std::vector<double> load(G, 0.0);
    for (int h = 0; h < H; ++h)
      for (const Replica &r : incumbent[h])
        load[r.device] += r.share * ws[h];
    std::vector<int> byLoad(G);
    std::iota(byLoad.begin(), byLoad.end(), 0);
    std::stable_sort(byLoad.begin(), byLoad.end(),
                     [&](int a, int b) { return load[a] > load[b]; });
    std::vector<int> label(G);
    for (int i = 0; i < G; ++i)
      label[byLoad[i]] = i;
    for (int h = 0; h < H; ++h)
      for (const Replica &r : incumbent[h]) {
        state.incumbent[xCol(h, label[r.device])] = 1.0;
        state.incumbent[yCol(h, label[r.device])] = r.share;
      }
    state.incumbent[tCol] = load[byLoad[0]];
  }

  ExactLayerResult result;
  result.placement = incumbent;
  result.makespan = makespan(incumbent, w, devices);
  result.bound = layerLowerBound(w, devices, copies);

  glp_smcp simplex;
  glp_init_smcp(&simplex);
  simplex.msg_lev = GLP_MSG_OFF;
  if (glp_simplex(lp, &simplex) != 0 || glp_get_status(lp) != GLP_OPT) {
    glp_delete_prob(lp);
    return result;
  }
  // The LP relaxation is itself a lower bound.
  result.bound = std::max(result.bound, glp_get_obj_val(lp) * ideal);

  glp_iocp params;
  glp_init_iocp(&params);
  params.msg_lev = GLP_MSG_OFF;
  params.presolve = GLP_OFF; // the callback seeds the original columns
  params.tm_lim = std::max(1, static_cast<int>(timeLimitSeconds * 1000));
  params.mip_gap = 1e-7;
  params.cb_func = onSearchEvent;
  params.cb_info = &state;
  glp_intopt(lp, &params);
  int status = glp_mip_status(lp);
  if (status == GLP_OPT || status == GLP_FEAS) {
    double span = glp_mip_obj_val(lp) * ideal;
    if (span < result.makespan * (1 - 1e-9)) {
      LayerPlacement layer(H);
      for (int h = 0; h < H; ++h)
        for (int g = 0; g < G; ++g) {
          double y = glp_mip_col_val(lp, yCol(h, g));
          if (y > 1e-9)
            layer[h].push_back(Replica{g, y});
        }
      normaliseShares(layer);
      result.placement = std::move(layer);
      result.makespan = makespan(result.placement, w, devices);
    }
    if (status == GLP_OPT) {
      result.proved = true;
      result.bound = std::max(result.bound, glp_mip_obj_val(lp) * ideal /
                                                (1 + params.mip_gap));
    }
  }
  result.bound = std::max(result.bound, state.bound * ideal);
  result.bound = std::min(result.bound, result.makespan);
  glp_delete_prob(lp);
  return result;
}

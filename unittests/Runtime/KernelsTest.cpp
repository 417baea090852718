//===- KernelsTest.cpp - CPU kernels against a float64 reference ----------===//
//
// RMSNorm, rotary embedding, prefill and decode attention, the compressed
// cache (SnapKV selection up to each head's budget), row splits of copied
// heads and the in-process all_reduce, each against a straightforward
// double-precision implementation written here.
//
//===----------------------------------------------------------------------===//

#include "RuntimeTestSupport.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>
#include <map>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace {

/// The tests' small random weights, in a file `name` of this process's own
/// (ctest runs the tests as parallel processes, and another one may have
/// that name mapped); its path in `path`.
void writeWeights(const std::string &name, std::string &path) {
  path = uniqueTempPath(name);
  ASSERT_EQ(fairkv_rt_write_random_weights(path.c_str(), 1, 16, 2, 1, 8, 16,
                                           32, 1, "f32"),
            FAIRKV_OK)
      << fairkv_rt_last_error();
}

class Kernels : public ::testing::Test {
protected:
  void SetUp() override { open(1); }
  void TearDown() override { fairkv_rt_session_destroy(session); }

  void open(int64_t devices, int64_t slidingWindow = 0) {
    if (session)
      fairkv_rt_session_destroy(session);
    session = nullptr;
    ctx = nullptr;
    std::string path;
    ASSERT_NO_FATAL_FAILURE(writeWeights("kernels.safetensors", path));
    fairkv_rt_options o;
    fairkv_rt_default_options(&o);
    o.devices = devices;
    o.snapkv_window = window;
    o.max_new_tokens = 4;
    o.page_tokens = 4; // several pages per request
    o.sliding_window = slidingWindow;
    ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
        << fairkv_rt_last_error();
    ctx = fairkv_rt_session_device(session, 0);
  }

  fairkv_rt_tensor *tensor(const std::vector<float> &data,
                           std::vector<int64_t> shape) {
    return fairkv_rt_tensor_from_f32(ctx, data.data(), shape.data(),
                                     shape.size());
  }

  static void expectNear(const float *got, const std::vector<double> &want,
                         double tolerance) {
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], tolerance) << "element " << i;
  }

  const int64_t window = 4;
  fairkv_rt_session *session = nullptr;
  fairkv_rt_ctx *ctx = nullptr;
};

TEST_F(Kernels, RMSNorm) {
  fairkv_rt_step_begin(ctx, 2, 3);
  std::vector<float> x = random(2 * 3 * 16, 1), w = random(16, 2);
  const float *got = fairkv_rt_tensor_f32_data(
      fairkv_rt_rms_norm(ctx, tensor(x, {2, 3, 16}), tensor(w, {16}), 1e-5));
  std::vector<double> want(x.size());
  for (int r = 0; r < 6; ++r) {
    double sq = 0;
    for (int e = 0; e < 16; ++e)
      sq += double(x[r * 16 + e]) * x[r * 16 + e];
    double inv = 1 / std::sqrt(sq / 16 + 1e-5);
    for (int e = 0; e < 16; ++e)
      want[r * 16 + e] = x[r * 16 + e] * inv * w[e];
  }
  expectNear(got, want, 1e-5);
}

TEST_F(Kernels, RotaryRotatesHalves) {
  fairkv_rt_step_begin(ctx, 1, 3);
  std::vector<float> x = random(3 * 2 * 8, 3);
  int64_t positions[] = {0, 5, 1000};
  fairkv_rt_tensor *pos = fairkv_rt_tensor_from_i64(ctx, positions, 1, 3);
  // A table the compiler would not make (it is the runtime's input), and a
  // yarn-style factor on cos and sin.
  const double invFreq[] = {1.0, 0.1, 0.01, 0.3};
  const double factor = 1.25;
  const float *got = fairkv_rt_tensor_f32_data(
      fairkv_rt_rotary(ctx, tensor(x, {1, 3, 2, 8}), pos, invFreq, factor,
                       /*dynamicMaxPositions=*/0, 1.0, 1e4));
  std::vector<double> want(x.size());
  for (int t = 0; t < 3; ++t)
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 4; ++i) {
        double a = positions[t] * invFreq[i];
        double c = factor * std::cos(a), sn = factor * std::sin(a);
        int base = (t * 2 + h) * 8;
        want[base + i] = x[base + i] * c - x[base + i + 4] * sn;
        want[base + i + 4] = x[base + i + 4] * c + x[base + i] * sn;
      }
  // Angles are float32, as in transformers: position 1000 rounds by 6e-5.
  expectNear(got, want, 2e-4);
}

/// Causal GQA attention in double: q [S, group, d] over keys/values [T, d].
std::vector<double> attend(const std::vector<const float *> &keys,
                           const std::vector<const float *> &values,
                           const float *q, int d) {
  std::vector<double> s(keys.size()), out(d, 0);
  double mx = -INFINITY, sum = 0;
  for (size_t t = 0; t < keys.size(); ++t) {
    s[t] = 0;
    for (int e = 0; e < d; ++e)
      s[t] += double(q[e]) * keys[t][e];
    s[t] /= std::sqrt(double(d));
    mx = std::max(mx, s[t]);
  }
  for (double &v : s)
    sum += (v = std::exp(v - mx));
  for (size_t t = 0; t < keys.size(); ++t)
    for (int e = 0; e < d; ++e)
      out[e] += s[t] / sum * values[t][e];
  return out;
}

/// kvpress's SnapKV scores of request i's candidates (the s - window
/// tokens before the window) for KV head j, in double: per query head, the
/// mean over the window queries of their softmax attention, average-pooled
/// over 5 tokens (zero-padded), then the mean over the group.
std::vector<double> snapkvScores(const std::vector<float> &q,
                                 const std::vector<float> &k, int i, int j,
                                 int s, int nq, int nk, int d,
                                 int window = 4) {
  const int group = nq / nk, candidates = s - window;
  std::vector<double> pooled(candidates, 0.0);
  for (int g = 0; g < group; ++g) {
    std::vector<double> score(candidates, 0.0);
    for (int t = s - window; t < s; ++t) {
      const float *qq = &q[((i * s + t) * nq + j * group + g) * d];
      std::vector<double> logits(t + 1);
      double mx = -INFINITY, sum = 0;
      for (int u = 0; u <= t; ++u) {
        logits[u] = 0;
        for (int e = 0; e < d; ++e)
          logits[u] += double(qq[e]) * k[((i * s + u) * nk + j) * d + e];
        logits[u] /= std::sqrt(double(d));
        mx = std::max(mx, logits[u]);
      }
      for (double &l : logits)
        sum += (l = std::exp(l - mx));
      for (int u = 0; u < candidates; ++u)
        score[u] += logits[u] / sum / window;
    }
    for (int u = 0; u < candidates; ++u) {
      double acc = 0;
      for (int w = std::max(0, u - 2); w <= std::min(candidates - 1, u + 2); ++w)
        acc += score[w];
      pooled[u] += acc / 5 / group;
    }
  }
  return pooled;
}

// Prefill of 2 requests x 12 tokens over 2 KV heads (GQA group 2): head 0
// keeps 7 tokens (kvpress's SnapKV), head 1 (budget 20) keeps all 12. Prefill outputs
// are full causal attention; the decode step then attends over exactly the
// kept tokens plus the new one.
TEST_F(Kernels, AttentionPrefillCompressionAndDecode) {
  const int b = 2, s = 12, nq = 4, nk = 2, d = 8, group = 2;
  int64_t heads[] = {0, 1}, budgets[] = {7, 20};
  fairkv_rt_step_begin(ctx, b, s);
  std::vector<float> q = random(b * s * nq * d, 4), k = random(b * s * nk * d, 5),
                     v = random(b * s * nk * d, 6);
  const float *out = fairkv_rt_tensor_f32_data(fairkv_rt_attention(
      ctx, tensor(q, {b, s, nq, d}), tensor(k, {b, s, nk, d}),
      tensor(v, {b, s, nk, d}), /*layer=*/0, nk, heads, budgets, -1, -1, 0,
      nullptr, nullptr));
  // The heads choose what they keep when the prefill step ends.
  fairkv_rt_step_end(ctx);
  auto kAt = [&](const std::vector<float> &x, int i, int t, int j) {
    return &x[((i * s + t) * nk + j) * d];
  };
  // Which tokens each (request, kv head) keeps, by the SnapKV rule.
  std::vector<std::vector<std::vector<int>>> kept(b, std::vector<std::vector<int>>(nk));
  for (int i = 0; i < b; ++i)
    for (int j = 0; j < nk; ++j) {
      for (int t = 0; t < s; ++t)
        for (int g = 0; g < group; ++g) {
          std::vector<const float *> ks, vs;
          for (int u = 0; u <= t; ++u) {
            ks.push_back(kAt(k, i, u, j));
            vs.push_back(kAt(v, i, u, j));
          }
          const float *qq = &q[((i * s + t) * nq + j * group + g) * d];
          expectNear(&out[((i * s + t) * nq + j * group + g) * d],
                     attend(ks, vs, qq, d), 1e-5);
        }
      if (budgets[j] >= s) {
        for (int t = 0; t < s; ++t)
          kept[i][j].push_back(t);
        continue;
      }
      int candidates = s - window;
      std::vector<double> pooled = snapkvScores(q, k, i, j, s, nq, nk, d);
      std::vector<int> order(candidates);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int c) { return pooled[a] > pooled[c]; });
      order.resize(budgets[j] - window);
      std::sort(order.begin(), order.end());
      for (int t = candidates; t < s; ++t)
        order.push_back(t);
      kept[i][j] = order;
    }
  double prefill = 0, decode = 0;
  int64_t tokens = 0, bytes = 0;
  fairkv_rt_ctx_stats(ctx, &prefill, &decode, &tokens, &bytes);
  EXPECT_EQ(tokens, b * (7 + 12));

  // One decode step.
  fairkv_rt_step_begin(ctx, b, 1);
  std::vector<float> q1 = random(b * nq * d, 7), k1 = random(b * nk * d, 8),
                     v1 = random(b * nk * d, 9);
  const float *out1 = fairkv_rt_tensor_f32_data(fairkv_rt_attention(
      ctx, tensor(q1, {b, 1, nq, d}), tensor(k1, {b, 1, nk, d}),
      tensor(v1, {b, 1, nk, d}), 0, nk, heads, budgets, -1, -1, 0, nullptr,
      nullptr));
  for (int i = 0; i < b; ++i)
    for (int j = 0; j < nk; ++j) {
      std::vector<const float *> ks, vs;
      for (int t : kept[i][j]) {
        ks.push_back(kAt(k, i, t, j));
        vs.push_back(kAt(v, i, t, j));
      }
      ks.push_back(&k1[(i * nk + j) * d]);
      vs.push_back(&v1[(i * nk + j) * d]);
      for (int g = 0; g < group; ++g)
        expectNear(&out1[(i * nq + j * group + g) * d],
                   attend(ks, vs, &q1[(i * nq + j * group + g) * d], d), 1e-5);
    }
  fairkv_rt_ctx_stats(ctx, &prefill, &decode, &tokens, &bytes);
  EXPECT_EQ(tokens, b * (7 + 12) + b * nk);
}

// Mistral's sliding window of 3: prefill position t attends to t - 2 .. t;
// the cache keeps only what the next queries can see (2 of the 6 prompt
// tokens, then always the last 3), giving pages back so that 8 decode steps
// fit in the 2 pages sized for 2 + 4 tokens.
TEST_F(Kernels, SlidingWindowAttendsToTheLastPositions) {
  ASSERT_NO_FATAL_FAILURE(open(1, /*slidingWindow=*/3));
  const int s = 6, nq = 2, nk = 1, d = 8, w = 3;
  int64_t heads[] = {0}, budgets[] = {100};
  fairkv_rt_step_begin(ctx, 1, s);
  std::vector<float> q = random(s * nq * d, 14), k = random(s * nk * d, 15),
                     v = random(s * nk * d, 16);
  const float *out = fairkv_rt_tensor_f32_data(fairkv_rt_attention(
      ctx, tensor(q, {1, s, nq, d}), tensor(k, {1, s, nk, d}),
      tensor(v, {1, s, nk, d}), 0, nk, heads, budgets, -1, -1, 0, nullptr,
      nullptr));
  std::vector<const float *> keys, values;
  for (int t = 0; t < s; ++t) {
    keys.push_back(&k[t * d]);
    values.push_back(&v[t * d]);
    std::vector<const float *> ks(keys.end() - std::min(t + 1, w), keys.end()),
        vs(values.end() - std::min(t + 1, w), values.end());
    for (int g = 0; g < nq; ++g)
      expectNear(&out[(t * nq + g) * d], attend(ks, vs, &q[(t * nq + g) * d], d),
                 1e-5);
  }
  fairkv_rt_step_end(ctx);
  double prefill = 0, decode = 0;
  int64_t tokens = 0, bytes = 0;
  fairkv_rt_ctx_stats(ctx, &prefill, &decode, &tokens, &bytes);
  EXPECT_EQ(tokens, w - 1);
  std::vector<std::vector<float>> kept;
  for (int step = 0; step < 8; ++step) {
    fairkv_rt_step_begin(ctx, 1, 1);
    std::vector<float> q1 = random(nq * d, 20 + step), k1 = random(d, 40 + step),
                       v1 = random(d, 60 + step);
    kept.push_back(k1);
    kept.push_back(v1);
    keys.push_back(kept[kept.size() - 2].data());
    values.push_back(kept.back().data());
    const float *out1 = fairkv_rt_tensor_f32_data(fairkv_rt_attention(
        ctx, tensor(q1, {1, 1, nq, d}), tensor(k1, {1, 1, nk, d}),
        tensor(v1, {1, 1, nk, d}), 0, nk, heads, budgets, -1, -1, 0, nullptr,
        nullptr));
    std::vector<const float *> ks(keys.end() - w, keys.end()),
        vs(values.end() - w, values.end());
    for (int g = 0; g < nq; ++g)
      expectNear(&out1[g * d], attend(ks, vs, &q1[g * d], d), 1e-5);
    fairkv_rt_step_end(ctx);
    fairkv_rt_ctx_stats(ctx, &prefill, &decode, &tokens, &bytes);
    EXPECT_EQ(tokens, w) << "step " << step;
  }
}

// DuoAttention: with a sink of 2, a head whose budget (6) is below the
// 10-token prompt streams: it keeps positions 0, 1 and the last 4, and stays
// at 6 while decoding (the oldest recent token leaves); the other head
// (budget 20) keeps everything and grows.
TEST(DuoAttention, StreamingHeadsStayAtSinkPlusRecent) {
  std::string path = uniqueTempPath("duo.safetensors");
  ASSERT_EQ(fairkv_rt_write_random_weights(path.c_str(), 1, 16, 2, 1, 8, 16,
                                           32, 1, "f32"),
            FAIRKV_OK);
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  o.max_new_tokens = 6;
  o.page_tokens = 4;
  o.duo_sink = 2;
  fairkv_rt_session *session = nullptr;
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
      << fairkv_rt_last_error();
  fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, 0);
  const int s = 10, nq = 2, nk = 2, d = 8;
  int64_t heads[] = {0, 1}, budgets[] = {6, 20};
  auto run = [&](int seq, uint64_t seed) {
    fairkv_rt_step_begin(ctx, 1, seq);
    std::vector<float> q = random(seq * nq * d, seed),
                       k = random(seq * nk * d, seed + 1),
                       v = random(seq * nk * d, seed + 2);
    std::vector<int64_t> qs = {1, seq, nq, d}, ks = {1, seq, nk, d};
    fairkv_rt_attention(
        ctx, fairkv_rt_tensor_from_f32(ctx, q.data(), qs.data(), 4),
        fairkv_rt_tensor_from_f32(ctx, k.data(), ks.data(), 4),
        fairkv_rt_tensor_from_f32(ctx, v.data(), ks.data(), 4), 0, nk, heads,
        budgets, -1, -1, 0, nullptr, nullptr);
    fairkv_rt_step_end(ctx);
  };
  auto keptOf = [&](int64_t wanted) {
    int64_t layer, head, request;
    const int64_t *positions;
    for (int64_t e = 0, n;
         (n = fairkv_rt_ctx_kept(ctx, e, &layer, &head, &request, &positions)) >=
         0;
         ++e)
      if (head == wanted)
        return std::vector<int64_t>(positions, positions + n);
    return std::vector<int64_t>();
  };
  run(s, 30);
  EXPECT_EQ(keptOf(0), (std::vector<int64_t>{0, 1, 6, 7, 8, 9}));
  EXPECT_EQ(keptOf(1).size(), 10u);
  for (int step = 0; step < 5; ++step)
    run(1, 40 + 3 * step);
  EXPECT_EQ(keptOf(0), (std::vector<int64_t>{0, 1, 11, 12, 13, 14}));
  EXPECT_EQ(keptOf(1).size(), 15u);
  fairkv_rt_session_destroy(session);
}

// Ada-KV as kvpress's AdaKVPress: a layer's candidate slots K = min(7 - 4,
// 8) + min(20 - 4, 8) = 11 go to the best SnapKV scores across its two
// heads, after each head's safeguard of max(1, alpha * budget) tokens (its
// window counting first). With alpha 1 the safeguard is the head's whole
// budget: the static budgets again.
TEST_F(Kernels, AdaKVReallocatesTheLayerBudget) {
  const int b = 2, s = 12, nq = 4, nk = 2, d = 8;
  int64_t heads[] = {0, 1}, budgets[] = {7, 20};
  std::vector<float> q = random(b * s * nq * d, 4),
                     k = random(b * s * nk * d, 5),
                     v = random(b * s * nk * d, 6);
  // Tokens kept by (request, head).
  auto keptWith = [&](double alpha) {
    std::string path = uniqueTempPath("kernels.safetensors");
    fairkv_rt_options o;
    fairkv_rt_default_options(&o);
    o.snapkv_window = window;
    o.max_new_tokens = 4;
    o.adakv_alpha = alpha;
    fairkv_rt_session *own = nullptr;
    // ASSERT before the session is used (a lambda: the caller checks
    // HasFatalFailure()).
    [&] {
      ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &own), FAIRKV_OK)
          << fairkv_rt_last_error();
    }();
    if (!own)
      return std::map<std::pair<int64_t, int64_t>, int64_t>{};
    fairkv_rt_ctx *c = fairkv_rt_session_device(own, 0);
    fairkv_rt_step_begin(c, b, s);
    auto t = [&](const std::vector<float> &x, std::vector<int64_t> shape) {
      return fairkv_rt_tensor_from_f32(c, x.data(), shape.data(),
                                       shape.size());
    };
    fairkv_rt_attention(c, t(q, {b, s, nq, d}), t(k, {b, s, nk, d}),
                        t(v, {b, s, nk, d}), 0, nk, heads, budgets, -1, -1,
                        0, nullptr, nullptr);
    fairkv_rt_step_end(c);
    std::map<std::pair<int64_t, int64_t>, int64_t> kept;
    int64_t layer, head, request;
    const int64_t *positions;
    for (int64_t e = 0, n;
         (n = fairkv_rt_ctx_kept(c, e, &layer, &head, &request, &positions)) >=
         0;
         ++e)
      kept[{request, head}] = n;
    fairkv_rt_session_destroy(own);
    return kept;
  };
  for (int i = 0; i < b; ++i) {
    // The flattened top 11 of both heads' candidates.
    std::vector<std::pair<double, int>> all;
    for (int j = 0; j < nk; ++j)
      for (double score : snapkvScores(q, k, i, j, s, nq, nk, d))
        all.push_back({-score, j});
    std::sort(all.begin(), all.end());
    int head0 = 0;
    for (int n = 0; n < 11; ++n)
      head0 += all[n].second == 0;
    auto floor0 = keptWith(0.0);
    EXPECT_EQ(floor0[std::make_pair(i, 0)], head0 + window) << "request " << i;
    EXPECT_EQ(floor0[std::make_pair(i, 1)], 11 - head0 + window)
        << "request " << i;
    auto whole = keptWith(1.0);
    EXPECT_EQ(whole[std::make_pair(i, 0)], 7);
    EXPECT_EQ(whole[std::make_pair(i, 1)], 12);
  }
}

// A copied head's replicas split the batch by admission (least KV relative
// to the share) and cover it exactly once; add_rows puts a replica's rows
// back in place.
TEST_F(Kernels, ReplicaRowsCoverTheBatchOnce) {
  ASSERT_NO_FATAL_FAILURE(open(3));
  const int64_t devices[] = {2, 0, 1};
  const double shares[] = {0.25, 0.35, 0.4};
  std::vector<int> owner(10, -1);
  for (int64_t g = 0; g < 3; ++g) {
    fairkv_rt_ctx *c = fairkv_rt_session_device(session, g);
    fairkv_rt_step_begin(c, 10, 1);
    std::vector<float> rows(10 * 2);
    for (int r = 0; r < 10; ++r)
      rows[2 * r] = rows[2 * r + 1] = static_cast<float>(r);
    int64_t shape[] = {10, 2};
    fairkv_rt_tensor *x = fairkv_rt_tensor_from_f32(c, rows.data(), shape, 2);
    fairkv_rt_tensor *mine =
        fairkv_rt_take_rows(c, x, 5, -1, 3, devices, shares);
    const float *data = fairkv_rt_tensor_f32_data(mine);
    for (int64_t e = 0; e < fairkv_rt_tensor_numel(mine); e += 2) {
      int r = static_cast<int>(data[e]);
      EXPECT_EQ(owner[r], -1) << "row " << r << " taken twice";
      owner[r] = static_cast<int>(g);
    }
    fairkv_rt_tensor *zero = fairkv_rt_zeros_like(c, x);
    const float *back = fairkv_rt_tensor_f32_data(
        fairkv_rt_add_rows(c, zero, mine, 5, -1, 3, devices, shares));
    for (int r = 0; r < 10; ++r)
      EXPECT_EQ(back[2 * r], owner[r] == g ? static_cast<float>(r) : 0.0f);
  }
  for (int r = 0; r < 10; ++r)
    EXPECT_NE(owner[r], -1) << "row " << r << " served by no replica";
  // Equal requests, shares 0.25 / 0.35 / 0.4 on devices 2, 0, 1: each goes
  // where (load + 1) / share is least, so 2, 4 and 4 rows.
  EXPECT_EQ(owner, (std::vector<int>{1, 0, 2, 1, 0, 1, 2, 0, 1, 0}));
}

// Admission prices a request at min(prompt, budget) + tokens to decode: the
// same prompts split differently under a small and a large budget.
TEST_F(Kernels, AdmissionCountsTheHeadsKV) {
  ASSERT_NO_FATAL_FAILURE(open(2));
  const int64_t lengths[] = {50, 8, 8, 40, 8, 8};
  fairkv_rt_session_begin_batch(session, lengths, 6);
  const int64_t devices[] = {0, 1};
  const double shares[] = {0.5, 0.5};
  auto rowsOf = [&](int64_t budget) {
    fairkv_rt_ctx *c = fairkv_rt_session_device(session, 1);
    fairkv_rt_step_begin(c, 6, 1);
    std::vector<float> rows = {0, 1, 2, 3, 4, 5};
    int64_t shape[] = {6, 1};
    fairkv_rt_tensor *x = fairkv_rt_tensor_from_f32(c, rows.data(), shape, 2);
    fairkv_rt_tensor *mine =
        fairkv_rt_take_rows(c, x, 0, budget, 2, devices, shares);
    const float *data = fairkv_rt_tensor_f32_data(mine);
    return std::vector<float>(data, data + fairkv_rt_tensor_numel(mine));
  };
  // Costs 24 12 12 24 12 12 (budget 20, 4 tokens to decode): loads 48 / 48.
  EXPECT_EQ(rowsOf(20), (std::vector<float>{1, 2, 4, 5}));
  // Costs 54 12 12 44 12 12 (budget 100): loads 78 / 68.
  EXPECT_EQ(rowsOf(100), (std::vector<float>{1, 2, 3}));
  // The C entry point states the same rule.
  const int64_t costs[] = {3, 1, 1};
  const double uneven[] = {0.75, 0.25};
  int64_t owner[3];
  fairkv_rt_admit(costs, 3, uneven, 2, owner);
  EXPECT_EQ(std::vector<int64_t>(owner, owner + 3),
            (std::vector<int64_t>{0, 1, 0}));
}

// A copied head's replicas take their requests' rows (take_rows) and give
// every device the whole step back in place (gather_rows), with the same
// owners, whatever a step's rows are: a batch's, some of a batch's (a
// prefill in groups), a continuous batch's joined slots. Prompts of unequal
// lengths and a budget above them make admission split by cost.
TEST_F(Kernels, GatherRowsPutsRowsWhereTakeRowsTookThem) {
  ASSERT_NO_FATAL_FAILURE(open(3));
  const int64_t devices[] = {0, 1, 2};
  const double shares[] = {0.5, 0.25, 0.25};
  const int64_t budget = 100;
  // Each device's taken rows and gathered step, for a step of `rows` rows
  // (row r's values: r + 100 * device, so each copy's rows show where
  // they came from).
  auto exchange = [&](int64_t rows) {
    std::vector<std::vector<float>> taken(3), gathered(3);
    std::vector<std::thread> threads;
    for (int g = 0; g < 3; ++g)
      threads.emplace_back([&, g] {
        fairkv_rt_ctx *c = fairkv_rt_session_device(session, g);
        fairkv_rt_step_begin(c, rows, 1);
        std::vector<float> x(rows);
        for (int64_t r = 0; r < rows; ++r)
          x[r] = float(r + 100 * g);
        int64_t shape[] = {rows, 1};
        fairkv_rt_tensor *t = fairkv_rt_tensor_from_f32(c, x.data(), shape, 2);
        fairkv_rt_tensor *mine =
            fairkv_rt_take_rows(c, t, 0, budget, 3, devices, shares);
        fairkv_rt_tensor *back =
            fairkv_rt_gather_rows(c, mine, 0, budget, 3, devices, shares);
        const float *m = fairkv_rt_tensor_f32_data(mine);
        const float *b = fairkv_rt_tensor_f32_data(back);
        taken[g].assign(m, m + fairkv_rt_tensor_numel(mine));
        gathered[g].assign(b, b + fairkv_rt_tensor_numel(back));
        fairkv_rt_step_end(c);
      });
    for (std::thread &t : threads)
      t.join();
    // Every row once, from the copy that took it, on every device.
    std::vector<float> want(rows, -1);
    for (int g = 0; g < 3; ++g)
      for (float v : taken[g]) {
        const int64_t r = static_cast<int64_t>(v) - 100 * g;
        EXPECT_EQ(want.at(r), -1) << "row " << r << " taken twice";
        want.at(r) = v;
      }
    for (int g = 0; g < 3; ++g)
      EXPECT_EQ(gathered[g], want) << "device " << g << ", " << rows << " rows";
    return taken;
  };
  const int64_t lengths[] = {90, 8, 30, 8, 60, 8};
  fairkv_rt_session_begin_batch(session, lengths, 6);
  const auto whole = exchange(6);
  // Some of the batch: requests 4, 1 and 5 as rows 0-2 stay with the
  // copies the whole batch's admission gave them.
  const int64_t some[] = {4, 1, 5};
  fairkv_rt_session_set_rows(session, some, 3);
  const auto part = exchange(3);
  for (int g = 0; g < 3; ++g) {
    std::vector<float> want;
    for (float v : whole[g]) {
      const int64_t request = static_cast<int64_t>(v) - 100 * g;
      for (int64_t r = 0; r < 3; ++r)
        if (some[r] == request)
          want.push_back(float(r + 100 * g));
    }
    std::sort(want.begin(), want.end());
    EXPECT_EQ(part[g], want) << "device " << g;
  }
  // A continuous batch's slots (any ids), joined with their lengths.
  ASSERT_EQ(fairkv_rt_session_begin_continuous(session), FAIRKV_OK);
  const int64_t slots[] = {70, 71, 72, 73};
  const int64_t slotLengths[] = {90, 8, 30, 60};
  fairkv_rt_session_join(session, slots, slotLengths, 4);
  exchange(4);
}

TEST_F(Kernels, AllReduceAndAllGatherAcrossThreads) {
  ASSERT_NO_FATAL_FAILURE(open(3));
  // Sums {6, 60}; gathered {1, 10, 2, 20, 3, 30}.
  expectCollectivesAgree(session, 3);
}

TEST(Session, SoloDevicesStandInForDecodeCollectives) {
  std::string path;
  ASSERT_NO_FATAL_FAILURE(writeWeights("solo.safetensors", path));
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  o.devices = 3;
  o.solo_devices = 1;
  fairkv_rt_session *session = nullptr;
  // A way of timing devices, not a mode of its own.
  EXPECT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session),
            FAIRKV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(fairkv_rt_last_error()),
            "solo devices are a way of timing devices: they need "
            "time_devices");
  o.time_devices = 1;
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
      << fairkv_rt_last_error();
  expectSoloStandIns(session, 3);
  fairkv_rt_session_destroy(session);
}

TEST_F(Kernels, LinearAllReduceSumsEveryBlock) {
  // 16 result columns in 1, 3 (5 + 5 + 6) and 16 blocks, on 3 devices
  // holding 5, 5 and 6 of the 16 ffn columns.
  ASSERT_NO_FATAL_FAILURE(open(3));
  for (int64_t chunks : {1, 3, 40})
    expectLinearAllReduceSums(
        session, 3, uniqueTempPath("kernels.safetensors"), 16, 16,
        chunks, 1e-6);
}

TEST(Runtime, ReductionBlocksFollowTheShape) {
  // llama-3-70b at tp 8, decode batch 64: 2 MiB of fp32 result.
  EXPECT_EQ(fairkv_rt_reduction_blocks(64, 8192, 4, 1 << 20), 2);
  EXPECT_EQ(fairkv_rt_reduction_blocks(64, 8192, 4, 0), 4);
  // A prefill of 64 x 512 tokens: as many blocks as asked.
  EXPECT_EQ(fairkv_rt_reduction_blocks(64 * 512, 8192, 4, 1 << 20), 4);
  // Small results stay whole; never more blocks than columns.
  EXPECT_EQ(fairkv_rt_reduction_blocks(1, 64, 4, 1 << 20), 1);
  EXPECT_EQ(fairkv_rt_reduction_blocks(0, 64, 4, 1 << 20), 1);
  EXPECT_EQ(fairkv_rt_reduction_blocks(8, 3, 8, 0), 3);
}

TEST(Session, BadWeightsAreOneLineErrors) {
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  fairkv_rt_session *s = nullptr;
  EXPECT_EQ(fairkv_rt_session_create("/nonexistent/w.safetensors", &o, &s),
            FAIRKV_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(fairkv_rt_last_error(),
               "cannot open weights '/nonexistent/w.safetensors'");
  std::string path = uniqueTempPath("bad.safetensors");
  FILE *f = std::fopen(path.c_str(), "wb");
  uint64_t header = 1000;
  std::fwrite(&header, 8, 1, f);
  std::fwrite("{}", 1, 2, f);
  std::fclose(f);
  EXPECT_EQ(fairkv_rt_session_create(path.c_str(), &o, &s),
            FAIRKV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(fairkv_rt_last_error()),
            path + ": safetensors header runs past the end of the file");
}

TEST(Session, ShardedWeightsThroughAnIndex) {
  std::string dir = uniqueTempPath("sharded");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(fairkv_rt_write_random_weights(
                (dir + "/fairkv-shard-1.safetensors").c_str(), 1, 16, 2, 1, 8,
                16, 32, 1, "bf16"),
            FAIRKV_OK);
  auto writeIndex = [&](const std::string &name, const std::string &body) {
    std::string path = dir + "/" + name;
    FILE *f = std::fopen(path.c_str(), "w");
    std::fputs(body.c_str(), f);
    std::fclose(f);
    return path;
  };
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  fairkv_rt_session *s = nullptr;
  std::string good = writeIndex(
      "fairkv-good.safetensors.index.json",
      R"({"weight_map": {"lm_head.weight": "fairkv-shard-1.safetensors",
          "model.embed_tokens.weight": "fairkv-shard-1.safetensors"}})");
  ASSERT_EQ(fairkv_rt_session_create(good.c_str(), &o, &s), FAIRKV_OK)
      << fairkv_rt_last_error();
  EXPECT_EQ(fairkv_rt_session_vocab(s), 32);
  fairkv_rt_session_destroy(s);
  EXPECT_EQ(fairkv_rt_check_weights(good.c_str(), 1, 16, 2, 1, 8, 16, 32),
            FAIRKV_OK)
      << fairkv_rt_last_error();

  std::string misplaced = writeIndex(
      "fairkv-bad.safetensors.index.json",
      R"({"weight_map": {"model.norm.weight": "fairkv-shard-1.safetensors",
          "nonexistent.weight": "fairkv-shard-1.safetensors"}})");
  EXPECT_EQ(fairkv_rt_session_create(misplaced.c_str(), &o, &s),
            FAIRKV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(fairkv_rt_last_error()),
            dir + "/fairkv-shard-1.safetensors: missing tensor "
                  "'nonexistent.weight' that the index places there");
  std::string notIndex =
      writeIndex("fairkv-empty.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_EQ(fairkv_rt_session_create(notIndex.c_str(), &o, &s),
            FAIRKV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(fairkv_rt_last_error()),
            notIndex + ": not a safetensors index (no \"weight_map\" object)");
}

} // namespace

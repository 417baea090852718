//===- Ops.cpp - The CPU reference implementation of the runtime ABI ------===//
//
// fp32 everywhere, GEMMs through BLAS. Slow is fine, wrong is not: this is
// the oracle every other backend is checked against.
//
//===----------------------------------------------------------------------===//

#include "GpuBackend.h"
#include "Runtime.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

#define FAIRKV_RT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace fairkv::rt;

namespace {

void require(bool condition, const std::string &op, const std::string &what) {
  if (!condition)
    fatal(op + ": " + what);
}

/// y[M, N] = x[M, K] * W[N, K]^T.
void linear(const float *x, int64_t m, int64_t k, const float *w, int64_t n,
            float *y) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    std::fill(y, y + m * n, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w,
              k, 0.0f, y, n);
}

/// silu(x @ wg^T) * (x @ wu^T) for x [rows, hidden]: [rows, ffn].
std::vector<float> gatedActivation(const Tensor *x, const Tensor *wg,
                                   const Tensor *wu) {
  int64_t hidden = x->shape.back(), rows = x->numel() / hidden,
          ffn = wg->dim(0);
  require(wg->dim(1) == hidden && wu->dim(0) == ffn && wu->dim(1) == hidden,
          "gated_act",
          "weights " + wg->shapeString() + " and " + wu->shapeString() +
              " do not match " + x->shapeString());
  std::vector<float> gate(rows * ffn), up(rows * ffn);
  linear(x->f.data(), rows, hidden, wg->f.data(), ffn, gate.data());
  linear(x->f.data(), rows, hidden, wu->f.data(), ffn, up.data());
  for (int64_t e = 0; e < rows * ffn; ++e)
    gate[e] = gate[e] / (1.0f + std::exp(-gate[e])) * up[e];
  return gate;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else { // subnormal
      exponent = 127 - 15 + 1;
      while (!(mantissa & 0x400)) {
        mantissa <<= 1;
        --exponent;
      }
      bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float element(const WeightFile::Info &info, int64_t index) {
  if (info.dtype == "F32") {
    float f;
    std::memcpy(&f, info.data + 4 * index, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, info.data + 2 * index, 2);
  return info.dtype == "F16" ? halfToFloat(h) : bf16ToFloat(h);
}

Split split(int64_t head, int64_t budget, int64_t n, const int64_t *devices,
            const double *shares) {
  Split s;
  s.head = head;
  s.budget = budget;
  s.devices.assign(devices, devices + n);
  s.shares.assign(shares, shares + n);
  return s;
}

/// This device's index among a split's replicas.
int64_t replicaIndex(const fairkv_rt_ctx *ctx, const Split &s,
                     const std::string &op) {
  for (size_t r = 0; r < s.devices.size(); ++r)
    if (s.devices[r] == ctx->device)
      return static_cast<int64_t>(r);
  fatal(op + ": device " + std::to_string(ctx->device) +
        " holds no replica of kv head " + std::to_string(s.head));
}

/// Every replica's requests of a split in this batch (computed once).
const std::vector<std::vector<int64_t>> &admitted(fairkv_rt_ctx *ctx,
                                                  const Split &s,
                                                  int64_t batch) {
  std::string key = std::to_string(batch) + "|" + splitKey(s);
  auto it = ctx->admissions.find(key);
  if (it == ctx->admissions.end())
    it = ctx->admissions.emplace(key, admit(*ctx->session, s, batch)).first;
  return it->second;
}

/// The request (slot) of batch row `row`: what the driver set (a continuous
/// batch, or a prefill in groups of rows), else the row itself.
int64_t requestOf(const fairkv_rt_ctx *ctx, int64_t row) {
  const fairkv_rt_session &session = *ctx->session;
  return session.rowSlots.empty()
             ? row
             : session.rowSlots.at(static_cast<size_t>(row));
}

/// The rows of a step of `batch` rows that each replica of a copied head
/// serves, in order.
std::vector<std::vector<int64_t>> replicaRows(fairkv_rt_ctx *ctx,
                                              const Split &s, int64_t batch) {
  const fairkv_rt_session &session = *ctx->session;
  if (!session.continuous && session.rowSlots.empty())
    return admitted(ctx, s, batch);
  std::vector<std::vector<int64_t>> rows(s.devices.size());
  if (!session.continuous) {
    // Some requests of the batch: each stays with the replica the whole
    // batch's admission gave it.
    const auto &whole =
        admitted(ctx, s, static_cast<int64_t>(session.promptLengths.size()));
    std::vector<int64_t> owner(session.promptLengths.size());
    for (size_t r = 0; r < whole.size(); ++r)
      for (int64_t request : whole[r])
        owner[request] = static_cast<int64_t>(r);
    for (int64_t row = 0; row < batch; ++row)
      rows[owner.at(requestOf(ctx, row))].push_back(row);
    return rows;
  }
  // A continuous batch: a request joins the replica with the least KV of
  // the requests still running, relative to its share, and stays there.
  Owners &owners = ctx->owners[splitKey(s)];
  const fairkv_rt_options &opt = ctx->session->options;
  for (int64_t row = 0; row < batch; ++row) {
    const int64_t slot = requestOf(ctx, row);
    const int64_t cost = admissionCost(session.slotLengths.at(slot), s.budget,
                                       opt.max_new_tokens);
    rows[owners.assign(slot, cost, s.shares)].push_back(row);
  }
  return rows;
}

/// The rows of a step of `batch` rows this device serves for a split.
std::vector<int64_t> myRows(fairkv_rt_ctx *ctx, const Split &s, int64_t batch,
                            const std::string &op) {
  if (s.whole()) {
    std::vector<int64_t> all(batch);
    std::iota(all.begin(), all.end(), 0);
    return all;
  }
  const int64_t me = replicaIndex(ctx, s, op);
  return replicaRows(ctx, s, batch)[me];
}

/// SnapKV scores of a prompt's candidate tokens (all but the last `window`):
/// the largest attention any of the group's last `window` queries pays
/// them, max-pooled over neighbouring tokens.
std::vector<float> poolScores(const std::vector<std::vector<float>> &probs,
                              int64_t candidates, int64_t group,
                              const fairkv_rt_options &opt) {
  // SnapKV as kvpress's SnapKVPress computes it: per query head, the mean of
  // the window queries' softmaxed attention, pooled over `snapkv_kernel`
  // tokens (zero-padded average, or max), then the mean over the KV head's
  // query group. Rows come window query by window query, each the group's
  // heads in order.
  const int64_t n = std::max<int64_t>(0, candidates);
  const int64_t queries = static_cast<int64_t>(probs.size()) / group;
  const int64_t radius = opt.snapkv_kernel / 2;
  std::vector<float> pooled(n, 0.0f), score(n), one(n);
  for (int64_t g = 0; g < group; ++g) {
    std::fill(score.begin(), score.end(), 0.0f);
    for (int64_t q = 0; q < queries; ++q)
      for (int64_t t = 0; t < n; ++t)
        score[t] += probs[q * group + g][t];
    for (float &v : score)
      v /= static_cast<float>(queries);
    for (int64_t t = 0; t < n; ++t) {
      float acc = 0.0f; // scores are probabilities: 0 is below every max
      for (int64_t u = std::max<int64_t>(0, t - radius);
           u <= std::min(n - 1, t + radius); ++u)
        acc = opt.snapkv_pool == FAIRKV_RT_POOL_MAX ? std::max(acc, score[u])
                                                    : acc + score[u];
      one[t] = opt.snapkv_pool == FAIRKV_RT_POOL_MAX
                   ? acc
                   : acc / static_cast<float>(opt.snapkv_kernel);
    }
    for (int64_t t = 0; t < n; ++t)
      pooled[t] += one[t];
  }
  for (float &v : pooled)
    v /= static_cast<float>(group);
  return pooled;
}

/// The `count` best candidates by pooled score (ties: the earlier token),
/// in token order.
std::vector<int64_t> topCandidates(const std::vector<float> &pooled,
                                   int64_t count) {
  std::vector<int64_t> order(pooled.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return pooled[a] > pooled[b]; });
  order.resize(std::min<int64_t>(count, order.size()));
  std::sort(order.begin(), order.end());
  return order;
}

/// Tokens a head keeps under its static budget: everything if the prompt
/// fits; else the window's last `budget` tokens if the budget is no larger;
/// else the window plus the best budget - window candidates.
std::vector<int64_t> staticKeep(const PendingPrefill &p) {
  std::vector<int64_t> keep;
  if (p.length <= p.budget) {
    keep.resize(p.length);
    std::iota(keep.begin(), keep.end(), 0);
    return keep;
  }
  if (p.budget <= p.window) {
    for (int64_t t = p.length - p.budget; t < p.length; ++t)
      keep.push_back(t);
    return keep;
  }
  keep = topCandidates(p.pooled, p.budget - p.window);
  for (int64_t t = p.length - p.window; t < p.length; ++t)
    keep.push_back(t);
  return keep;
}

/// Ada-KV as kvpress's AdaKVPress computes it, over one layer's heads of
/// one request: a head keeps its window (scored above everything), its
/// best max(1, alpha * budget) tokens (the safeguard: the window counts
/// first), and the layer shares the rest of its candidate slots (the sum
/// of budget - window over its heads) by the best scores across all its
/// heads. Returns each head's number of candidates kept. Ties go to the
/// lower head, then the earlier token: the same on every device and in
/// every placement.
std::map<int64_t, int64_t>
adaKVAllocation(const std::vector<const PendingPrefill *> &heads,
                double alpha) {
  struct Pick {
    float score;
    int64_t head, token;
  };
  auto better = [](const Pick &a, const Pick &b) {
    if (a.score != b.score)
      return a.score > b.score;
    return a.head != b.head ? a.head < b.head : a.token < b.token;
  };
  int64_t slots = 0;
  std::map<int64_t, int64_t> allocation;
  std::vector<Pick> rest;
  for (const PendingPrefill *p : heads) {
    const int64_t candidates = static_cast<int64_t>(p->pooled.size());
    slots += std::min(std::max<int64_t>(0, p->budget - p->window), candidates);
    const int64_t safe = adaKVSafeguard(p->budget, alpha);
    const int64_t forced =
        std::min(candidates, std::max<int64_t>(0, safe - p->window));
    std::vector<Pick> mine;
    for (int64_t t = 0; t < candidates; ++t)
      mine.push_back({p->pooled[t], p->head, t});
    std::sort(mine.begin(), mine.end(), better);
    allocation[p->head] = forced;
    rest.insert(rest.end(), mine.begin() + forced, mine.end());
  }
  int64_t free = slots;
  for (auto &[head, forced] : allocation)
    free -= forced;
  free = std::clamp<int64_t>(free, 0, rest.size());
  std::nth_element(rest.begin(), rest.begin() + free, rest.end(), better);
  for (int64_t i = 0; i < free; ++i)
    ++allocation[rest[i].head];
  return allocation;
}

/// Softmax attention of one query over keys `first` .. `count - 1` given by
/// `keyAt` (the earlier ones are outside a sliding window); `probs` gets
/// all `count` probabilities, 0 before `first`.
template <typename KeyFn, typename ValueFn>
void attendOne(const float *q, int64_t d, int64_t count, int64_t first,
               KeyFn keyAt, ValueFn valueAt, float *out,
               std::vector<float> *probs) {
  std::vector<float> scores(count, 0.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  float mx = -INFINITY;
  for (int64_t t = first; t < count; ++t) {
    const float *k = keyAt(t);
    float s = 0;
    for (int64_t e = 0; e < d; ++e)
      s += q[e] * k[e];
    scores[t] = s * scale;
    mx = std::max(mx, scores[t]);
  }
  double sum = 0;
  for (int64_t t = first; t < count; ++t) {
    scores[t] = std::exp(scores[t] - mx);
    sum += scores[t];
  }
  std::fill(out, out + d, 0.0f);
  for (int64_t t = first; t < count; ++t) {
    float p = static_cast<float>(scores[t] / sum);
    scores[t] = p;
    const float *v = valueAt(t);
    for (int64_t e = 0; e < d; ++e)
      out[e] += p * v[e];
  }
  if (probs)
    *probs = std::move(scores);
}

/// Times one runtime op into ctx->opTimes (fairkv_rt_options.op_times):
/// when asked, or `always` (attention: fairkv_rt_ctx_stats reports it). On a GPU the time is the device stream's between two events,
/// settled later, so the host does not wait; on the CPU it is the clock's.
/// An op run by another op (the CPU's fused projection reduces through
/// all_reduce) counts in the outer one only.
class OpScope {
public:
  OpScope(fairkv_rt_ctx *ctx, const char *op,
          std::initializer_list<const Tensor *> weights = {},
          bool always = false)
      : ctx_(ctx), op_(op), prefill_(ctx->seq > 1) {
    active_ = ctx->opDepth++ == 0 &&
              (always || ctx->session->options.op_times);
    if (!active_)
      return;
    fairkv_rt_ctx::OpTotals &t = ctx->opTimes[op];
    const int phase = prefill_ ? 0 : 1;
    ++t.calls[phase];
    for (const Tensor *w : weights)
      if (w)
        t.weightBytes[phase] += w->numel() * (w->storage16 ? 2.0 : 4.0);
    if (ctx->gpu)
      gpu::backend().opBegin(ctx);
    else
      start_ = std::chrono::steady_clock::now();
  }
  ~OpScope() {
    --ctx_->opDepth;
    if (!active_)
      return;
    if (ctx_->gpu)
      gpu::backend().opEnd(ctx_, op_, prefill_);
    else
      ctx_->addOpTime(op_, prefill_, start_);
  }
  OpScope(const OpScope &) = delete;
  OpScope &operator=(const OpScope &) = delete;

private:
  fairkv_rt_ctx *ctx_;
  const char *op_;
  bool prefill_, active_;
  std::chrono::steady_clock::time_point start_;
};

} // namespace

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_weight(fairkv_rt_ctx *ctx, const char *name, int64_t sliceDim,
                 const int64_t *ranges, int64_t numRanges,
                 const int64_t *shape, int64_t rank) {
  std::string key = std::string(name) + "|" + std::to_string(sliceDim);
  for (int64_t i = 0; i < numRanges; ++i)
    key += "," + std::to_string(ranges[i]);
  auto cached = ctx->weights.find(key);
  if (cached != ctx->weights.end())
    return cached->second.get();
  // A whole weight is the same on every device: the first one to ask loads
  // it for all (weights are read-only), and each device keeps a reference,
  // so later steps find it without the session's lock.
  // (On GPUs every device keeps its own copy on its GPU.)
  const bool shared = sliceDim < 0 && !ctx->gpu;
  std::unique_lock<std::mutex> sharedLock(ctx->session->sharedWeightsMutex,
                                          std::defer_lock);
  if (shared) {
    sharedLock.lock();
    auto it = ctx->session->sharedWeights.find(key);
    if (it != ctx->session->sharedWeights.end())
      return (ctx->weights[key] = it->second).get();
  }
  const WeightFile::Info *info = ctx->session->weights.find(name);
  require(info, "weight", std::string("the weights have no tensor '") + name +
                              "'");
  std::vector<int64_t> expected(shape, shape + rank);
  auto t = std::make_shared<Tensor>();
  t->shape = expected;
  t->f.assign(t->numel(), 0.0f);
  std::vector<int64_t> full = info->shape;
  auto shapeText = [](const std::vector<int64_t> &s) {
    std::string text = "[";
    for (size_t i = 0; i < s.size(); ++i)
      text += (i ? ", " : "") + std::to_string(s[i]);
    return text + "]";
  };
  if (sliceDim < 0) {
    require(full == expected, "weight",
            std::string("'") + name + "' has shape " + shapeText(full) +
                ", the program expects " + shapeText(expected));
    for (int64_t i = 0; i < t->numel(); ++i)
      t->f[i] = element(*info, i);
  } else {
    // A vector (a bias) slices like a one-column matrix.
    const bool vector = full.size() == 1;
    require((full.size() == 2 && rank == 2 && sliceDim < 2) ||
                (vector && rank == 1 && sliceDim == 0),
            "weight",
            std::string("'") + name +
                "' can only be sliced as a matrix or along a vector");
    int64_t rows = full[0], cols = vector ? 1 : full[1], out = 0;
    std::vector<int64_t> kept;
    for (int64_t i = 0; i < numRanges; i += 2)
      for (int64_t u = ranges[i]; u < ranges[i + 1]; ++u)
        kept.push_back(u);
    int64_t limit = sliceDim == 0 ? rows : cols;
    for (int64_t u : kept)
      require(u >= 0 && u < limit, "weight",
              std::string("slice of '") + name + "' exceeds its shape " +
                  shapeText(full));
    const int64_t count = static_cast<int64_t>(kept.size());
    std::vector<int64_t> got = vector          ? std::vector<int64_t>{count}
                               : sliceDim == 0 ? std::vector<int64_t>{count, cols}
                                               : std::vector<int64_t>{rows, count};
    require(got == expected, "weight",
            std::string("slice of '") + name + "' has shape " + shapeText(got) +
                ", the program expects " + shapeText(expected));
    if (sliceDim == 0) {
      for (int64_t u : kept)
        for (int64_t c = 0; c < cols; ++c)
          t->f[out++] = element(*info, u * cols + c);
    } else {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t u : kept)
          t->f[out++] = element(*info, r * cols + u);
    }
  }
  Tensor *raw = t.get();
  if (ctx->gpu)
    gpu::backend().adoptWeight(ctx, raw);
  if (shared)
    ctx->session->sharedWeights[key] = t;
  ctx->weights[key] = std::move(t);
  return raw;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_embedding(fairkv_rt_ctx *ctx, fairkv_rt_tensor *ids,
                    fairkv_rt_tensor *table) {
  OpScope timed(ctx, "embedding");
  if (ctx->gpu)
    return gpu::backend().embedding(ctx, ids, table);
  require(ids->isInt && ids->shape.size() == 2, "embedding", "ids must be [B, S] int64");
  int64_t vocab = table->dim(0), hidden = table->dim(1);
  Tensor *out = ctx->make({ids->dim(0), ids->dim(1), hidden});
  for (int64_t i = 0; i < ids->numel(); ++i) {
    int64_t id = ids->i[i];
    require(id >= 0 && id < vocab, "embedding",
            "token id " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(vocab));
    std::copy(&table->f[id * hidden], &table->f[(id + 1) * hidden],
              &out->f[i * hidden]);
  }
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *fairkv_rt_rms_norm(fairkv_rt_ctx *ctx,
                                                      fairkv_rt_tensor *x,
                                                      fairkv_rt_tensor *w,
                                                      double eps) {
  OpScope timed(ctx, "rms_norm", {w});
  if (ctx->gpu)
    return gpu::backend().rmsNorm(ctx, x, w, eps);
  int64_t width = x->shape.back();
  require(w->numel() == width, "rms_norm", "weight does not match the input");
  Tensor *out = ctx->make(x->shape);
  for (int64_t r = 0; r < x->numel() / width; ++r) {
    const float *in = &x->f[r * width];
    double sq = 0;
    for (int64_t e = 0; e < width; ++e)
      sq += static_cast<double>(in[e]) * in[e];
    float inv = static_cast<float>(1.0 / std::sqrt(sq / width + eps));
    for (int64_t e = 0; e < width; ++e)
      out->f[r * width + e] = in[e] * inv * w->f[e];
  }
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_project_heads(fairkv_rt_ctx *ctx, fairkv_rt_tensor *x,
                        fairkv_rt_tensor *w, fairkv_rt_tensor *bias,
                        int64_t heads, int64_t headDim) {
  OpScope timed(ctx, "project_heads", {w, bias});
  require(!bias || bias->numel() == heads * headDim, "project_heads",
          "bias " + (bias ? bias->shapeString() : std::string()) +
              " does not match " + std::to_string(heads) + " heads of " +
              std::to_string(headDim));
  if (ctx->gpu)
    return gpu::backend().projectHeads(ctx, x, w, bias, heads, headDim);
  int64_t hidden = x->shape.back(), rows = x->numel() / std::max<int64_t>(1, hidden);
  require(w->dim(0) == heads * headDim && w->dim(1) == hidden, "project_heads",
          "weight " + w->shapeString() + " does not match " +
              std::to_string(heads) + " heads of " + std::to_string(headDim));
  Tensor *out = ctx->make({x->dim(0), x->dim(1), heads, headDim});
  linear(x->f.data(), rows, hidden, w->f.data(), heads * headDim,
         out->f.data());
  if (bias)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < heads * headDim; ++c)
        out->f[r * heads * headDim + c] += bias->f[c];
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_rotary(fairkv_rt_ctx *ctx, fairkv_rt_tensor *x,
                 fairkv_rt_tensor *pos, const double *invFreq,
                 double attentionFactor, int64_t dynamicMaxPositions,
                 double dynamicFactor, double theta) {
  OpScope timed(ctx, "rotary");
  if (ctx->gpu)
    return gpu::backend().rotary(ctx, x, pos, invFreq, attentionFactor,
                       dynamicMaxPositions);
  int64_t b = x->dim(0), s = x->dim(1), n = x->dim(2), d = x->dim(3);
  require(pos->isInt && pos->dim(0) == b && pos->dim(1) == s, "rotary",
          "positions " + pos->shapeString() + " do not match " +
              x->shapeString());
  require(invFreq != nullptr, "rotary", "no frequency table");
  Tensor *out = ctx->make(x->shape);
  const int64_t half = d / 2;
  const float scale = static_cast<float>(attentionFactor);
  // The program's table, converted once per call. Dynamic NTK:
  // transformers rescales the base for a forward pass whose largest position
  // reaches max_position_embeddings; FairKV does it per request (as
  // transformers computes a request alone), so placement and batching never
  // change a request's answer.
  const std::vector<float> table(invFreq, invFreq + half);
  std::vector<float> rescaled;
  for (int64_t i = 0; i < b; ++i) {
    const float *freq = table.data();
    if (dynamicMaxPositions > 0) {
      int64_t last = 0;
      for (int64_t t = 0; t < s; ++t)
        last = std::max(last, pos->i[i * s + t]);
      if (last + 1 > dynamicMaxPositions) {
        fairkv::model::ModelConfig dynamic;
        dynamic.headDim = d;
        dynamic.ropeTheta = theta;
        dynamic.rope.type = "dynamic";
        dynamic.rope.factor = dynamicFactor;
        dynamic.rope.originalMaxPositions = dynamicMaxPositions;
        rescaled = dynamic.ropeInverseFrequencies(last + 1);
        freq = rescaled.data();
      }
    }
    for (int64_t t = 0; t < s; ++t) {
      const int64_t r = i * s + t;
      // transformers: float32 angles, float32 cos/sin times the factor.
      const float p = static_cast<float>(pos->i[r]);
      for (int64_t e = 0; e < half; ++e) {
        const float angle = p * freq[e];
        const float c = static_cast<float>(std::cos(angle)) * scale,
                    sn = static_cast<float>(std::sin(angle)) * scale;
        for (int64_t h = 0; h < n; ++h) {
          const float *in = &x->f[(r * n + h) * d];
          float *o = &out->f[(r * n + h) * d];
          o[e] = in[e] * c - in[e + half] * sn;
          o[e + half] = in[e + half] * c + in[e] * sn;
        }
      }
    }
  }
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *fairkv_rt_attention(
    fairkv_rt_ctx *ctx, fairkv_rt_tensor *q, fairkv_rt_tensor *k,
    fairkv_rt_tensor *v, int64_t layer, int64_t numHeads,
    const int64_t *kvHeads, const int64_t *budgets, int64_t head,
    int64_t budget, int64_t n, const int64_t *devices, const double *shares) {
  OpScope timed(ctx, "attention", {}, /*always=*/true);
  Split sp = split(head, budget, n, devices, shares);
  std::vector<int64_t> rows = myRows(ctx, sp, ctx->batch, "attention");
  const int64_t b = q->dim(0), s = q->dim(1), nq = q->dim(2), d = q->dim(3);
  const int64_t nk = k->dim(2);
  require(b == static_cast<int64_t>(rows.size()), "attention",
          "query has " + std::to_string(b) + " rows, the replica owns " +
              std::to_string(rows.size()));
  require(nk == numHeads && nq % nk == 0, "attention",
          "head counts do not match the kv head list");
  if (ctx->gpu) {
    std::vector<int64_t> requests;
    for (int64_t row : rows)
      requests.push_back(requestOf(ctx, row));
    return gpu::backend().attention(ctx, q, k, v, layer, kvHeads, budgets,
                                    requests);
  }
  const int64_t group = nq / nk;
  const fairkv_rt_options &opt = ctx->session->options;
  const int64_t window = opt.sliding_window;
  Tensor *out = ctx->make(q->shape);
  for (int64_t j = 0; j < nk; ++j) {
    HeadCache &cache = ctx->cache[{layer, kvHeads[j]}];
    for (int64_t i = 0; i < b; ++i) {
      const int64_t request = requestOf(ctx, rows[i]);
      auto qAt = [&](int64_t t, int64_t g) {
        return &q->f[((i * s + t) * nq + j * group + g) * d];
      };
      auto kAt = [&](int64_t t) { return &k->f[((i * s + t) * nk + j) * d]; };
      auto vAt = [&](int64_t t) { return &v->f[((i * s + t) * nk + j) * d]; };
      if (s > 1) {
        require(!cache.has(request), "attention",
                "prefill of a request that already has KV (layer " +
                    std::to_string(layer) + ")");
        // Prompts are left-padded to the longest: this one starts at `pad`,
        // and neither its queries nor its keys see the padding.
        const int64_t length = ctx->session->promptLength(request, s);
        require(length >= 1 && length <= s, "attention",
                "request " + std::to_string(request) + " has a prompt of " +
                    std::to_string(length) + " tokens in a prefill of " +
                    std::to_string(s));
        const int64_t pad = s - length;
        const int64_t w = std::min(opt.snapkv_window, length);
        std::vector<std::vector<float>> probs;
        for (int64_t t = pad; t < s; ++t)
          for (int64_t g = 0; g < group; ++g) {
            std::vector<float> p;
            float *o = &out->f[((i * s + t) * nq + j * group + g) * d];
            // A sliding window of N shows position t - pad the keys after
            // t - pad - N (transformers: kv_idx > q_idx - sliding_window).
            const int64_t first =
                window > 0 ? std::max<int64_t>(0, t - pad - window + 1) : 0;
            attendOne(
                qAt(t, g), d, t - pad + 1, first,
                [&](int64_t u) { return kAt(pad + u); },
                [&](int64_t u) { return vAt(pad + u); }, o,
                t >= s - w ? &p : nullptr);
            if (t >= s - w)
              probs.push_back(std::move(p));
          }
        PendingPrefill pending;
        pending.layer = layer;
        pending.head = kvHeads[j];
        pending.request = request;
        pending.budget = budgets[j];
        pending.length = length;
        pending.window = w;
        pending.pooled = poolScores(probs, length - w, group, opt);
        for (int64_t t = pad; t < s; ++t) {
          pending.keys.insert(pending.keys.end(), kAt(t), kAt(t) + d);
          pending.values.insert(pending.values.end(), vAt(t), vAt(t) + d);
        }
        ctx->pending.push_back(std::move(pending));
      } else {
        require(cache.has(request), "attention",
                "decode of request " + std::to_string(request) +
                    " without a prefill (layer " + std::to_string(layer) + ")");
        const int64_t position = cache.nextPosition(request);
        cache.append(request, kAt(0), vAt(0), position);
        // Keys a sliding window hides from this query are hidden from every
        // later one too: the head gives them back.
        if (window > 0)
          cache.dropBefore(request, position - window + 1);
        int64_t len = cache.length(request);
        for (int64_t g = 0; g < group; ++g)
          attendOne(
              qAt(0, g), d, len, 0,
              [&](int64_t t) { return cache.key(request, t); },
              [&](int64_t t) { return cache.value(request, t); },
              &out->f[(i * nq + j * group + g) * d], nullptr);
      }
    }
  }
  return out;
}

namespace {

/// What a prefill step left for its end: choosing what each head keeps.
void finishPrefill(fairkv_rt_ctx *ctx) {
  // Only a prefill leaves work; every device knows which step this was.
  // (With static budgets the CUDA backend chooses what to keep during the
  // prefill itself; with Ada-KV it leaves the scores here like the CPU.)
  if (ctx->seq <= 1 ||
      (ctx->gpu && ctx->session->options.adakv_alpha < 0))
    return;
  auto start = std::chrono::steady_clock::now();
  const fairkv_rt_options &opt = ctx->session->options;
  // What each pending prefill keeps, in token order of its prompt.
  std::vector<std::vector<int64_t>> keep(ctx->pending.size());
  if (opt.adakv_alpha < 0) {
    for (size_t e = 0; e < ctx->pending.size(); ++e) {
      const PendingPrefill &p = ctx->pending[e];
      // A budget of a whole sliding window holds everything a query can
      // still see: nothing to choose (the window filter below keeps it).
      if (opt.sliding_window > 0 && p.budget >= opt.sliding_window) {
        keep[e].resize(p.length);
        std::iota(keep[e].begin(), keep[e].end(), 0);
      } else if (duoStreams(opt, p.length, p.budget)) {
        // DuoAttention's streaming head: the sink and the recent tokens.
        const int64_t sink = std::min(opt.duo_sink, p.budget);
        for (int64_t t = 0; t < sink; ++t)
          keep[e].push_back(t);
        for (int64_t t = p.length - (p.budget - sink); t < p.length; ++t)
          keep[e].push_back(t);
      } else {
        keep[e] = staticKeep(p);
      }
    }
  } else {
    // Every device shares its heads' scores: ints (layer, head, request,
    // budget, length, window, candidates) per entry, floats the scores.
    Tensor mine;
    for (const PendingPrefill &p : ctx->pending) {
      mine.i.insert(mine.i.end(),
                    {p.layer, p.head, p.request, p.budget, p.length, p.window,
                     static_cast<int64_t>(p.pooled.size())});
      mine.f.insert(mine.f.end(), p.pooled.begin(), p.pooled.end());
    }
    const int64_t G = static_cast<int64_t>(ctx->session->devices.size());
    std::vector<int64_t> everyone(G);
    std::iota(everyone.begin(), everyone.end(), 0);
    std::string key = ctx->collectiveKey("prefill_scores", everyone);
    std::vector<const Tensor *> parts =
        ctx->session->comm.exchange(key, everyone, ctx->device, &mine);
    std::map<std::pair<int64_t, int64_t>, std::vector<PendingPrefill>> byLayer;
    for (const Tensor *part : parts) {
      size_t f = 0;
      for (size_t e = 0; e + 7 <= part->i.size(); e += 7) {
        PendingPrefill p;
        p.layer = part->i[e];
        p.head = part->i[e + 1];
        p.request = part->i[e + 2];
        p.budget = part->i[e + 3];
        p.length = part->i[e + 4];
        p.window = part->i[e + 5];
        p.pooled.assign(part->f.begin() + f,
                        part->f.begin() + f + part->i[e + 6]);
        f += part->i[e + 6];
        byLayer[{p.layer, p.request}].push_back(std::move(p));
      }
    }
    ctx->session->comm.leave(key, ctx->device);
    std::map<std::pair<int64_t, int64_t>, std::map<int64_t, int64_t>> alloc;
    for (size_t e = 0; e < ctx->pending.size(); ++e) {
      const PendingPrefill &p = ctx->pending[e];
      auto layerRequest = std::make_pair(p.layer, p.request);
      auto it = alloc.find(layerRequest);
      if (it == alloc.end()) {
        std::vector<const PendingPrefill *> heads;
        for (const PendingPrefill &q : byLayer[layerRequest])
          heads.push_back(&q);
        it = alloc.emplace(layerRequest,
                           adaKVAllocation(heads, opt.adakv_alpha))
                 .first;
      }
      keep[e] = topCandidates(p.pooled, it->second.at(p.head));
      for (int64_t t = p.length - p.window; t < p.length; ++t)
        keep[e].push_back(t);
    }
  }
  if (ctx->gpu) {
    gpu::backend().fillCache(ctx, keep);
    ctx->pending.clear();
    ctx->addOpTime("attention", /*prefill=*/true, start);
    return;
  }
  // Commit each request's pages for what it keeps plus its decode steps;
  // a head's pool grows only when its free pages do not cover them (in a
  // running batch, a finished request's pages go to the next one).
  for (size_t e = 0; e < ctx->pending.size(); ++e) {
    const PendingPrefill &p = ctx->pending[e];
    // What the head holds at the end of the request: a DuoAttention
    // streaming head stays at its budget (one more for the token that
    // arrives before the oldest recent one leaves).
    const bool streaming = duoStreams(opt, p.length, p.budget);
    const int64_t tokens = static_cast<int64_t>(keep[e].size()) +
                           (streaming ? 1 : opt.max_new_tokens);
    const int64_t headDim = static_cast<int64_t>(p.keys.size()) / p.length;
    HeadCache &cache = ctx->cache[{p.layer, p.head}];
    const int64_t before = cache.bytes();
    cache.commit(p.request, (tokens + opt.page_tokens - 1) / opt.page_tokens,
                 opt.page_tokens, headDim);
    ctx->reservedKVBytes += cache.bytes() - before;
    if (opt.kv_bytes_per_device > 0 &&
        ctx->reservedKVBytes > opt.kv_bytes_per_device)
      fatal("out of memory for the requested batch: device " +
            std::to_string(ctx->device) + " needs " +
            std::to_string(ctx->reservedKVBytes) +
            " bytes of KV pages (layer " + std::to_string(p.layer) +
            ", kv head " + std::to_string(p.head) + ") but may hold " +
            std::to_string(opt.kv_bytes_per_device));
  }
  for (size_t e = 0; e < ctx->pending.size(); ++e) {
    const PendingPrefill &p = ctx->pending[e];
    HeadCache &cache = ctx->cache[{p.layer, p.head}];
    const int64_t headDim = static_cast<int64_t>(p.keys.size()) / p.length;
    // Prompt token t sits at position t; the first decode query (position
    // `length`) no longer sees what a sliding window hides from it.
    for (int64_t t : keep[e])
      if (opt.sliding_window <= 0 || t > p.length - opt.sliding_window)
        cache.append(p.request, &p.keys[t * headDim], &p.values[t * headDim],
                     t);
    if (duoStreams(opt, p.length, p.budget))
      cache.setStreaming(p.request, p.budget, std::min(opt.duo_sink, p.budget));
  }
  ctx->pending.clear();
  ctx->addOpTime("attention", /*prefill=*/true, start);
}

} // namespace

FAIRKV_RT_EXPORT void fairkv_rt_step_end(fairkv_rt_ctx *ctx) {
  finishPrefill(ctx);
  if (DeviceTurns *turns = ctx->session->turns.get()) {
    turns->give(ctx->device);
    turns->endStep(ctx->device);
  }
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *fairkv_rt_out_proj(fairkv_rt_ctx *ctx,
                                                      fairkv_rt_tensor *x,
                                                      fairkv_rt_tensor *wo) {
  OpScope timed(ctx, "out_proj", {wo});
  if (ctx->gpu)
    return gpu::backend().outProj(ctx, x, wo);
  int64_t inner = x->dim(2) * x->dim(3), rows = x->dim(0) * x->dim(1);
  require(wo->dim(1) == inner, "out_proj", "weight " + wo->shapeString() +
                                               " does not match " +
                                               x->shapeString());
  Tensor *out = ctx->make({x->dim(0), x->dim(1), wo->dim(0)});
  linear(x->f.data(), rows, inner, wo->f.data(), wo->dim(0), out->f.data());
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_mlp(fairkv_rt_ctx *ctx, fairkv_rt_tensor *x, fairkv_rt_tensor *wg,
              fairkv_rt_tensor *wu, fairkv_rt_tensor *wd) {
  OpScope timed(ctx, "mlp", {wg, wu, wd});
  if (ctx->gpu)
    return gpu::backend().mlp(ctx, x, wg, wu, wd);
  int64_t hidden = x->shape.back(), rows = x->numel() / hidden,
          ffn = wg->dim(0);
  std::vector<float> act = gatedActivation(x, wg, wu);
  Tensor *out = ctx->make(x->shape);
  linear(act.data(), rows, ffn, wd->f.data(), hidden, out->f.data());
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *fairkv_rt_gated_act(fairkv_rt_ctx *ctx,
                                                       fairkv_rt_tensor *x,
                                                       fairkv_rt_tensor *wg,
                                                       fairkv_rt_tensor *wu) {
  OpScope timed(ctx, "gated_act", {wg, wu});
  if (ctx->gpu)
    return gpu::backend().gatedAct(ctx, x, wg, wu);
  Tensor *out = ctx->make({x->dim(0), x->dim(1), wg->dim(0)});
  out->f = gatedActivation(x, wg, wu);
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *fairkv_rt_add(fairkv_rt_ctx *ctx,
                                                 fairkv_rt_tensor *a,
                                                 fairkv_rt_tensor *b) {
  OpScope timed(ctx, "add");
  if (ctx->gpu)
    return gpu::backend().add(ctx, a, b);
  require(a->shape == b->shape, "add", "shapes differ");
  Tensor *out = ctx->make(a->shape);
  for (int64_t e = 0; e < a->numel(); ++e)
    out->f[e] = a->f[e] + b->f[e];
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_last_position(fairkv_rt_ctx *ctx, fairkv_rt_tensor *x) {
  OpScope timed(ctx, "last_position");
  if (x->shape.size() != 3 || x->dim(1) < 1)
    fatal("last_position: input " + x->shapeString() +
          " is not [batch, seq >= 1, hidden]");
  if (ctx->gpu)
    return gpu::backend().lastPosition(ctx, x);
  const int64_t b = x->dim(0), s = x->dim(1), hidden = x->dim(2);
  Tensor *out = ctx->make({b, 1, hidden});
  for (int64_t i = 0; i < b; ++i)
    std::copy_n(x->f.begin() + (i * s + s - 1) * hidden, hidden,
                out->f.begin() + i * hidden);
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *fairkv_rt_lm_head(fairkv_rt_ctx *ctx,
                                                     fairkv_rt_tensor *x,
                                                     fairkv_rt_tensor *w) {
  OpScope timed(ctx, "lm_head", {w});
  if (ctx->gpu)
    return gpu::backend().lmHead(ctx, x, w);
  int64_t hidden = x->shape.back(), rows = x->numel() / hidden;
  Tensor *out = ctx->make({x->dim(0), x->dim(1), w->dim(0)});
  linear(x->f.data(), rows, hidden, w->f.data(), w->dim(0), out->f.data());
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_greedy_sample(fairkv_rt_ctx *ctx, fairkv_rt_tensor *logits) {
  OpScope timed(ctx, "greedy_sample");
  if (ctx->gpu)
    return gpu::backend().greedySample(ctx, logits);
  int64_t b = logits->dim(0), s = logits->dim(1), vocab = logits->dim(2);
  Tensor *out = ctx->make({b}, /*isInt=*/true);
  ctx->lastLogits.assign(b * vocab, 0.0f);
  for (int64_t i = 0; i < b; ++i) {
    const float *row = &logits->f[((i * s) + s - 1) * vocab];
    std::copy(row, row + vocab, &ctx->lastLogits[i * vocab]);
    // Ties go to the smallest id, so every backend agrees.
    out->i[i] = std::max_element(row, row + vocab) - row;
  }
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_take_rows(fairkv_rt_ctx *ctx, fairkv_rt_tensor *x, int64_t head,
                    int64_t budget, int64_t n, const int64_t *devices,
                    const double *shares) {
  OpScope timed(ctx, "take_rows");
  Split sp = split(head, budget, n, devices, shares);
  std::vector<int64_t> rows = myRows(ctx, sp, x->dim(0), "take_rows");
  if (ctx->gpu)
    return gpu::backend().takeRows(ctx, x, rows);
  std::vector<int64_t> shape = x->shape;
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor *out = ctx->make(shape, x->isInt);
  int64_t row = x->rowSize();
  for (size_t i = 0; i < rows.size(); ++i) {
    if (x->isInt)
      std::copy_n(x->i.begin() + rows[i] * row, row, out->i.begin() + i * row);
    else
      std::copy_n(x->f.begin() + rows[i] * row, row, out->f.begin() + i * row);
  }
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_gather_rows(fairkv_rt_ctx *ctx, fairkv_rt_tensor *x, int64_t head,
                      int64_t budget, int64_t n, const int64_t *devices,
                      const double *shares) {
  OpScope timed(ctx, "gather_rows");
  Split sp = split(head, budget, n, devices, shares);
  int64_t index = replicaIndex(ctx, sp, "gather_rows");
  const std::vector<std::vector<int64_t>> owners =
      replicaRows(ctx, sp, ctx->batch);
  std::string key = ctx->collectiveKey("gather", sp.devices);
  if (ctx->gpu)
    return gpu::backend().gatherRows(ctx, x, key, sp.devices, index, owners);
  // Solo devices' stand-in: this copy's rows in place, the others' zero.
  const bool standIn = ctx->standInCollectives();
  std::vector<const Tensor *> parts(n, nullptr);
  if (standIn)
    parts[index] = x;
  else
    parts = ctx->session->comm.exchange(key, sp.devices, index, x);
  std::vector<int64_t> shape = x->shape;
  shape[0] = ctx->batch;
  Tensor *out = ctx->make(shape);
  int64_t row = x->rowSize();
  for (int64_t r = 0; r < n; ++r) {
    if (!parts[r])
      continue;
    const std::vector<int64_t> &rows = owners[r];
    require(parts[r]->dim(0) == static_cast<int64_t>(rows.size()),
            "gather_rows", "replica rows do not match the admission");
    for (size_t i = 0; i < rows.size(); ++i)
      std::copy_n(parts[r]->f.begin() + i * row, row,
                  out->f.begin() + rows[i] * row);
  }
  if (!standIn)
    ctx->session->comm.leave(key, ctx->device);
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_add_rows(fairkv_rt_ctx *ctx, fairkv_rt_tensor *acc,
                   fairkv_rt_tensor *rows, int64_t head, int64_t budget,
                   int64_t n, const int64_t *devices, const double *shares) {
  OpScope timed(ctx, "add_rows");
  Split sp = split(head, budget, n, devices, shares);
  std::vector<int64_t> mine = myRows(ctx, sp, acc->dim(0), "add_rows");
  if (ctx->gpu)
    return gpu::backend().addRows(ctx, acc, rows, mine);
  require(rows->dim(0) == static_cast<int64_t>(mine.size()) &&
              rows->rowSize() == acc->rowSize(),
          "add_rows", "rows " + rows->shapeString() + " do not fit " +
                          acc->shapeString());
  Tensor *out = ctx->make(acc->shape);
  out->f = acc->f;
  int64_t row = acc->rowSize();
  for (size_t i = 0; i < mine.size(); ++i)
    for (int64_t e = 0; e < row; ++e)
      out->f[mine[i] * row + e] += rows->f[i * row + e];
  return out;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *fairkv_rt_zeros_like(fairkv_rt_ctx *ctx,
                                                        fairkv_rt_tensor *x) {
  OpScope timed(ctx, "zeros_like");
  if (ctx->gpu)
    return gpu::backend().zerosLike(ctx, x);
  return ctx->make(x->shape);
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_all_reduce(fairkv_rt_ctx *ctx, fairkv_rt_tensor *x, int64_t kind) {
  OpScope timed(ctx, "all_reduce");
  const int64_t G = static_cast<int64_t>(ctx->session->devices.size());
  std::vector<int64_t> all(G);
  std::iota(all.begin(), all.end(), 0);
  std::string key = ctx->collectiveKey("all_reduce", all);
  if (ctx->gpu)
    return gpu::backend().allReduce(ctx, x, kind, key);
  if (ctx->standInCollectives()) {
    // Solo devices' stand-in: this device's own part.
    Tensor *out = ctx->make(x->shape);
    out->f = x->f;
    return out;
  }
  std::vector<const Tensor *> parts =
      ctx->session->comm.exchange(key, all, ctx->device, x);
  Tensor *out = ctx->make(x->shape);
  // Every device adds in device order: identical results everywhere.
  for (int64_t g = 0; g < G; ++g) {
    require(parts[g]->shape == x->shape, "all_reduce",
            "devices contribute different shapes");
    for (int64_t e = 0; e < x->numel(); ++e)
      out->f[e] = g == 0       ? parts[g]->f[e]
                  : kind == 0  ? out->f[e] + parts[g]->f[e]
                               : std::max(out->f[e], parts[g]->f[e]);
  }
  ctx->session->comm.leave(key, ctx->device);
  return out;
}

FAIRKV_RT_EXPORT int64_t fairkv_rt_reduction_blocks(int64_t rows,
                                                    int64_t columns,
                                                    int64_t chunks,
                                                    int64_t minChunkBytes) {
  int64_t blocks = chunks;
  if (minChunkBytes > 0)
    blocks = std::min(blocks, rows * columns * 4 / minChunkBytes);
  return std::max<int64_t>(1, std::min(blocks, columns));
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_linear_all_reduce(fairkv_rt_ctx *ctx, fairkv_rt_tensor *x,
                            fairkv_rt_tensor *w, fairkv_rt_tensor *addend,
                            int64_t chunks, int64_t minChunkBytes) {
  OpScope timed(ctx, "linear_all_reduce", {w});
  require(chunks >= 1 && minChunkBytes >= 0, "linear_all_reduce",
          "needs chunks >= 1 and min_chunk_bytes >= 0");
  require(!x == !w && (x || addend), "linear_all_reduce",
          "needs a projection (input and weight), an addend or both");
  Tensor *like = x ? x : addend;
  const int64_t rows = like->dim(0) * like->dim(1),
                hidden = w ? w->dim(0) : addend->dim(2);
  int64_t k = 1;
  for (size_t d = 2; x && d < x->shape.size(); ++d)
    k *= x->dim(d);
  require(!w || w->dim(1) == k, "linear_all_reduce",
          "weight " + (w ? w->shapeString() : "") + " does not match " +
              like->shapeString());
  require(!addend ||
              addend->shape ==
                  std::vector<int64_t>{like->dim(0), like->dim(1), hidden},
          "linear_all_reduce",
          "addend " + (addend ? addend->shapeString() : "") +
              " does not match the result");
  const int64_t blocks =
      fairkv_rt_reduction_blocks(rows, hidden, chunks, minChunkBytes);
  if (ctx->gpu)
    return gpu::backend().linearAllReduce(ctx, x, w, addend, blocks);
  Tensor *out = ctx->make({like->dim(0), like->dim(1), hidden});
  // Block c holds result columns [c * hidden / blocks, (c + 1) * ...): its
  // GEMM is the weight's rows of those columns, then the addend's columns
  // are added; its all_reduce adds in device order, like the unfused
  // all_reduce, element for element.
  for (int64_t c = 0; c < blocks; ++c) {
    const int64_t c0 = c * hidden / blocks, c1 = (c + 1) * hidden / blocks,
                  width = c1 - c0;
    Tensor *part = ctx->make({rows, width});
    if (x)
      linear(x->f.data(), rows, k, w->f.data() + c0 * k, width, part->f.data());
    if (addend)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t e = 0; e < width; ++e)
          part->f[r * width + e] += addend->f[r * hidden + c0 + e];
    Tensor *sum = fairkv_rt_all_reduce(ctx, part, 0);
    for (int64_t r = 0; r < rows; ++r)
      std::copy(sum->f.begin() + r * width, sum->f.begin() + (r + 1) * width,
                out->f.begin() + r * hidden + c0);
  }
  return out;
}

FAIRKV_RT_EXPORT void fairkv_rt_release(fairkv_rt_ctx *ctx,
                                        fairkv_rt_tensor *t) {
  // The tensor stays in the arena, empty; its storage is the next
  // tensor's. (Every op's result is its own tensor, never an input, and a
  // collective's inputs are read by the others only until it returns.)
  if (!t)
    return;
  // On a GPU its buffers go back to the stream-ordered pool on the
  // device's stream, after every kernel enqueued there so far: its last
  // readers. Nothing else reads them later: the communication stream's
  // work is joined back to the device's stream before its op returns, the
  // rendezvous' peers copy before they leave, and whatever keeps a buffer
  // past the op (the logits, Ada-KV's pending prefills) holds its own
  // reference. While a decode step is captured the buffer goes back to
  // the graph, for the capture's later tensors (StepGraph::release). A
  // prefill of 64 prompts of 640 tokens at the Llama 3 8B shape made
  // about 14 GB of activations a layer, all kept until the step ended.
  t->device.reset();
  t->deviceStorage16.reset();
  if (!ctx->gpu)
    ctx->tensorBytes->remove(t->hostBytes());
  ctx->hostBuffers.put(t->f);
  ctx->hostBuffers.put(t->i);
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_all_gather(fairkv_rt_ctx *ctx, fairkv_rt_tensor *x, int64_t axis) {
  OpScope timed(ctx, "all_gather");
  const int64_t G = static_cast<int64_t>(ctx->session->devices.size());
  std::vector<int64_t> all(G);
  std::iota(all.begin(), all.end(), 0);
  std::string key = ctx->collectiveKey("all_gather", all);
  if (ctx->gpu)
    return gpu::backend().allGather(ctx, x, axis, key);
  // Solo devices' stand-in: this device's part in every device's place.
  const bool standIn = ctx->standInCollectives();
  std::vector<const Tensor *> parts =
      standIn ? std::vector<const Tensor *>(G, x)
              : ctx->session->comm.exchange(key, all, ctx->device, x);
  std::vector<int64_t> shape = x->shape;
  shape[axis] *= G;
  Tensor *out = ctx->make(shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= x->shape[d];
  for (size_t d = axis; d < x->shape.size(); ++d)
    inner *= x->shape[d];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t g = 0; g < G; ++g)
      std::copy(parts[g]->f.begin() + o * inner,
                parts[g]->f.begin() + (o + 1) * inner,
                out->f.begin() + (o * G + g) * inner);
  if (!standIn)
    ctx->session->comm.leave(key, ctx->device);
  return out;
}

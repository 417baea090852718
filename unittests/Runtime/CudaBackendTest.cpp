//===- CudaBackendTest.cpp - The CUDA backend against the CPU backend -----===//
//
// The same attention calls (identical fp32 inputs) on a CPU session and a
// CUDA session: prefill of left-padded prompts with compression (a budget
// above the prompt, one within the window, two in between), then decode
// steps over the kept tokens. Skipped, saying so, without a GPU.
//
//===----------------------------------------------------------------------===//

#include "RuntimeTestSupport.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Sessions {
  fairkv_rt_session *cpu = nullptr, *gpu = nullptr;
  ~Sessions() {
    fairkv_rt_session_destroy(cpu);
    fairkv_rt_session_destroy(gpu);
  }
};

/// A small weight file (sessions need one; attention reads none). Writing
/// it cannot fail short of a full disk: then the test stops, loudly.
std::string weightFile() {
  std::string path = uniqueTempPath("cuda-backend.safetensors");
  if (fairkv_rt_write_random_weights(path.c_str(), 1, 16, 2, 1, 8, 16, 32, 1,
                                     "f32") != FAIRKV_OK) {
    ADD_FAILURE() << fairkv_rt_last_error();
    std::abort();
  }
  return path;
}

/// The CUDA devices the runtime finds; 0 where there are none (then
/// fairkv_rt_last_error says why).
int64_t cudaDevices() {
  int64_t count = 0;
  return fairkv_rt_cuda_device_count(&count) == FAIRKV_OK ? count : 0;
}

/// Ends the test as skipped, saying why, where the runtime finds no GPU.
#define SKIP_WITHOUT_A_GPU()                                                   \
  if (cudaDevices() == 0)                                                      \
  GTEST_SKIP() << "no CUDA device: " << fairkv_rt_last_error()

fairkv_rt_options cudaOptions() {
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  o.backend = FAIRKV_RT_BACKEND_CUDA;
  return o;
}

/// A batch of 3 left-padded prompts over 4 KV heads (8 query heads,
/// head_dim 64): their lengths, each head's budget and the steps run
/// (prefill included).
struct Batch {
  int S = 40;
  int64_t lengths[3] = {40, 25, 33};
  int64_t budgets[4] = {12, 50, 6, 20};
  int steps = 3;
};

/// Runs the same prefill and decode steps on a CPU and a CUDA session with
/// Ada-KV's floor `alpha` (negative: static budgets) and the CUDA storage
/// type `storage`, and compares them.
void compareAttention(double alpha, int64_t storage = FAIRKV_RT_STORAGE_BF16,
                      const Batch &batch = Batch()) {
  std::string path = weightFile();
  Sessions s;
  fairkv_rt_options o = cudaOptions();
  o.snapkv_window = 8;
  o.max_new_tokens = batch.steps;
  o.adakv_alpha = alpha;
  o.backend = FAIRKV_RT_BACKEND_CPU;
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &s.cpu), FAIRKV_OK);
  o.backend = FAIRKV_RT_BACKEND_CUDA;
  o.storage = storage;
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &s.gpu), FAIRKV_OK)
      << fairkv_rt_last_error();

  const int b = 3, S = batch.S, nq = 8, nk = 4, d = 64;
  const int64_t *lengths = batch.lengths;
  int64_t heads[] = {0, 1, 2, 3}, budgets[4];
  std::copy_n(batch.budgets, 4, budgets);
  double worstPrefill = 0, worstDecode = 0;
  int64_t tokens[2] = {0, 0};
  // The GPU session's attention seconds, timed by events on the device.
  double gpuPrefillSeconds = 0, gpuDecodeSeconds = 0;
  for (int step = 0; step < batch.steps; ++step) {
    const int seq = step == 0 ? S : 1;
    std::vector<float> q = random(size_t(b) * seq * nq * d, 10 + step),
                       k = random(size_t(b) * seq * nk * d, 20 + step),
                       v = random(size_t(b) * seq * nk * d, 30 + step);
    std::vector<float> outs[2];
    for (int which = 0; which < 2; ++which) {
      fairkv_rt_session *session = which ? s.gpu : s.cpu;
      if (step == 0)
        fairkv_rt_session_begin_batch(session, lengths, b);
      fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, 0);
      fairkv_rt_step_begin(ctx, b, seq);
      int64_t qShape[] = {b, seq, nq, d}, kShape[] = {b, seq, nk, d};
      fairkv_rt_tensor *out = fairkv_rt_attention(
          ctx, fairkv_rt_tensor_from_f32(ctx, q.data(), qShape, 4),
          fairkv_rt_tensor_from_f32(ctx, k.data(), kShape, 4),
          fairkv_rt_tensor_from_f32(ctx, v.data(), kShape, 4), 0, nk, heads,
          budgets, -1, -1, 0, nullptr, nullptr);
      const float *data = fairkv_rt_tensor_f32_data(out);
      outs[which].assign(data, data + fairkv_rt_tensor_numel(out));
      fairkv_rt_step_end(ctx);
      double prefill = 0, decode = 0;
      int64_t bytes = 0;
      fairkv_rt_ctx_stats(ctx, &prefill, &decode, &tokens[which], &bytes);
      if (which == 1) {
        gpuPrefillSeconds = prefill;
        gpuDecodeSeconds = decode;
      }
    }
    // Prefill: fp32 on both sides. Decode: the GPU keeps K/V in bf16.
    for (int i = 0; i < b; ++i)
      for (int t = 0; t < seq; ++t) {
        if (step == 0 && t < S - lengths[i])
          continue; // padding
        for (int e = 0; e < nq * d; ++e) {
          size_t at = (size_t(i) * seq + t) * nq * d + e;
          double diff = std::fabs(outs[0][at] - outs[1][at]);
          (step == 0 ? worstPrefill : worstDecode) =
              std::max(step == 0 ? worstPrefill : worstDecode, diff);
        }
      }
    EXPECT_EQ(tokens[0], tokens[1]) << "KV tokens held after step " << step;
  }
  std::printf("CUDA backend attention (%s, %s KV): max |gpu - cpu| prefill "
              "%.2e, decode %.2e; KV tokens %lld on both\n",
              alpha < 0 ? "static budgets" : "Ada-KV, floor 0.2",
              storage == FAIRKV_RT_STORAGE_FP16 ? "fp16" : "bf16", worstPrefill,
              worstDecode, static_cast<long long>(tokens[1]));
  EXPECT_LT(worstPrefill, 1e-4);
  EXPECT_LT(worstDecode, 2e-2);
  EXPECT_GT(gpuPrefillSeconds, 0);
  EXPECT_GT(gpuDecodeSeconds, 0);
}

TEST(CudaBackend, AttentionMatchesTheCpuBackend) {
  SKIP_WITHOUT_A_GPU();
  compareAttention(-1);
}

// Ada-KV: the GPU scores, the host allocates across heads (as on the CPU),
// the GPU keeps what was chosen.
TEST(CudaBackend, AdaKVAttentionMatchesTheCpuBackend) {
  SKIP_WITHOUT_A_GPU();
  compareAttention(0.2);
}

// Decode is planned once per batch over each segment's room, in chunks of
// 128 tokens clipped to each step on the device (ChunkTable.h): segments
// kept at 126 and 127 tokens cross a chunk boundary while decoding, one of
// 131 starts in its second chunk.
TEST(CudaBackend, DecodeAcrossChunkBoundariesMatchesTheCpuBackend) {
  SKIP_WITHOUT_A_GPU();
  Batch batch;
  batch.S = 160;
  const int64_t lengths[] = {160, 131, 150}, budgets[] = {126, 127, 140, 20};
  std::copy_n(lengths, 3, batch.lengths);
  std::copy_n(budgets, 4, batch.budgets);
  batch.steps = 6;
  compareAttention(-1, FAIRKV_RT_STORAGE_BF16, batch);
}

// fp16 storage: the KV cache rounds to fp16 instead of bf16 (3 more
// mantissa bits), so decode comes closer to the fp32 CPU.
TEST(CudaBackend, Fp16StorageMatchesTheCpuBackend) {
  SKIP_WITHOUT_A_GPU();
  compareAttention(-1, FAIRKV_RT_STORAGE_FP16);
}

// NCCL collectives (one communicator over the devices, one GPU each): every
// device's all_reduce and all_gather against the values they must give. With
// fewer GPUs than devices the session refuses to start, saying why.
TEST(CudaBackend, NcclCollectives) {
  SKIP_WITHOUT_A_GPU();
  const int64_t gpus = cudaDevices();
  std::string path = weightFile();
  fairkv_rt_options o = cudaOptions();
  o.collectives = FAIRKV_RT_COLLECTIVES_NCCL;
  o.devices = gpus + 1;
  fairkv_rt_session *session = nullptr;
  EXPECT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session),
            FAIRKV_ERROR_UNAVAILABLE);
  EXPECT_NE(std::string(fairkv_rt_last_error()).find("one GPU per device"),
            std::string::npos)
      << fairkv_rt_last_error();

  const int G = static_cast<int>(std::min<int64_t>(gpus, 4));
  o.devices = G;
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
      << fairkv_rt_last_error();
  expectCollectivesAgree(session, G);
  std::printf("NCCL collectives over %d GPU(s): all_reduce and all_gather "
              "agree\n", G);
  fairkv_rt_session_destroy(session);
}

TEST(CudaBackend, LinearAllReduceSumsEveryBlock) {
  SKIP_WITHOUT_A_GPU();
  const int64_t gpus = cudaDevices();
  std::string path = weightFile();
  // bf16 activations and weights, fp32 sums: 2e-2 of the largest value.
  const double tolerance = 2e-2;
  // The rendezvous (2 devices, one GPU is enough): one GEMM, one all_reduce.
  fairkv_rt_options o = cudaOptions();
  o.devices = 2;
  fairkv_rt_session *session = nullptr;
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
      << fairkv_rt_last_error();
  expectLinearAllReduceSums(session, 2, path, 16, 16, 3, tolerance);
  fairkv_rt_session_destroy(session);
  // NCCL: each block's all_reduce on the communication stream while the
  // next block's GEMM runs (one GPU per device).
  const int G = static_cast<int>(std::min<int64_t>(gpus, 4));
  o.devices = G;
  o.collectives = FAIRKV_RT_COLLECTIVES_NCCL;
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
      << fairkv_rt_last_error();
  for (int64_t chunks : {1, 3, 16})
    expectLinearAllReduceSums(session, G, path, 16, 16, chunks, tolerance);
  std::printf("linear_all_reduce over NCCL on %d GPU(s): 1, 3 and 16 blocks "
              "sum correctly\n",
              G);
  fairkv_rt_session_destroy(session);
}

TEST(CudaBackend, Fp16StorageNeedsTheCudaBackend) {
  std::string path = weightFile();
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  o.storage = FAIRKV_RT_STORAGE_FP16;
  fairkv_rt_session *session = nullptr;
  EXPECT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session),
            FAIRKV_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(fairkv_rt_last_error()).find("fp16 storage"),
            std::string::npos);
}

/// A one-layer model's step through the runtime's entry points (what a
/// compiled program's step calls): embedding, q/k/v with rotary, attention
/// with two KV heads' budgets, o_proj, the residual, the last position,
/// lm_head and greedy sampling; with `release`, each tensor released after
/// its last use, as fairkv-release-tensors makes a compiled program do.
namespace mini {
constexpr int64_t kVocab = 96, kHidden = 128, kHeads = 4, kKvHeads = 2,
                  kHeadDim = 64, kFfn = 128;
fairkv_rt_tensor *weight(fairkv_rt_ctx *ctx, const char *name, int64_t rows,
                         int64_t cols) {
  const int64_t shape[] = {rows, cols};
  return fairkv_rt_weight(ctx, name, -1, nullptr, 0, shape, 2);
}
fairkv_rt_tensor *stepWith(fairkv_rt_ctx *ctx, fairkv_rt_tensor *ids,
                           fairkv_rt_tensor *positions, bool release) {
  auto done = [&](std::initializer_list<fairkv_rt_tensor *> ts) {
    if (release)
      for (fairkv_rt_tensor *t : ts)
        fairkv_rt_release(ctx, t);
  };
  static const std::vector<double> invFreq = [] {
    std::vector<double> f(kHeadDim / 2);
    for (size_t i = 0; i < f.size(); ++i)
      f[i] = 1.0 / std::pow(10000.0, 2.0 * i / kHeadDim);
    return f;
  }();
  static const int64_t kvHeads[] = {0, 1}, budgets[] = {6, 9};
  fairkv_rt_tensor *x = fairkv_rt_embedding(
      ctx, ids, weight(ctx, "model.embed_tokens.weight", kVocab, kHidden));
  auto project = [&](const char *name, int64_t heads) {
    fairkv_rt_tensor *w = weight(ctx, name, heads * kHeadDim, kHidden);
    return fairkv_rt_project_heads(ctx, x, w, nullptr, heads, kHeadDim);
  };
  auto rotate = [&](fairkv_rt_tensor *heads) {
    fairkv_rt_tensor *r = fairkv_rt_rotary(
        ctx, heads, positions, invFreq.data(), 1.0, 0, 1.0, 10000.0);
    done({heads});
    return r;
  };
  fairkv_rt_tensor *q =
      rotate(project("model.layers.0.self_attn.q_proj.weight", kHeads));
  fairkv_rt_tensor *k =
      rotate(project("model.layers.0.self_attn.k_proj.weight", kKvHeads));
  fairkv_rt_tensor *v =
      project("model.layers.0.self_attn.v_proj.weight", kKvHeads);
  fairkv_rt_tensor *a = fairkv_rt_attention(ctx, q, k, v, 0, kKvHeads, kvHeads,
                                            budgets, -1, -1, 0, nullptr,
                                            nullptr);
  done({q, k, v});
  fairkv_rt_tensor *o = fairkv_rt_out_proj(
      ctx, a,
      weight(ctx, "model.layers.0.self_attn.o_proj.weight", kHidden,
             kHeads * kHeadDim));
  done({a});
  fairkv_rt_tensor *h = fairkv_rt_add(ctx, x, o);
  done({x, o});
  fairkv_rt_tensor *last = fairkv_rt_last_position(ctx, h);
  done({h});
  fairkv_rt_tensor *logits = fairkv_rt_lm_head(
      ctx, last, weight(ctx, "lm_head.weight", kVocab, kHidden));
  done({last});
  fairkv_rt_tensor *tokens = fairkv_rt_greedy_sample(ctx, logits);
  // The context keeps its own reference to the logits it may be asked for.
  done({logits});
  return tokens;
}
fairkv_rt_tensor *step(fairkv_rt_ctx *ctx, int64_t, fairkv_rt_tensor *ids,
                       fairkv_rt_tensor *positions) {
  return stepWith(ctx, ids, positions, false);
}
fairkv_rt_tensor *stepReleasing(fairkv_rt_ctx *ctx, int64_t,
                                fairkv_rt_tensor *ids,
                                fairkv_rt_tensor *positions) {
  return stepWith(ctx, ids, positions, true);
}
/// The tests' three prompts (12, 7 and 10 tokens).
const std::vector<std::vector<int64_t>> kPrompts = {
    {5, 17, 3, 88, 41, 2, 9, 60, 33, 12, 7, 71},
    {90, 4, 26, 11, 58, 3, 19},
    {8, 8, 45, 67, 1, 30, 95, 23, 14, 50}};
/// kPrompts[which[i]] as row i of ids and positions, left-padded to the
/// longest; returns its length.
int64_t leftPad(const std::vector<size_t> &which, std::vector<int64_t> &ids,
                std::vector<int64_t> &positions) {
  int64_t S = 0;
  for (size_t w : which)
    S = std::max(S, static_cast<int64_t>(kPrompts[w].size()));
  ids.assign(which.size() * S, 0);
  positions.assign(ids.size(), 0);
  for (size_t i = 0; i < which.size(); ++i) {
    const std::vector<int64_t> &p = kPrompts[which[i]];
    const int64_t pad = S - static_cast<int64_t>(p.size());
    for (size_t t = 0; t < p.size(); ++t) {
      ids[i * S + pad + t] = p[t];
      positions[i * S + pad + t] = static_cast<int64_t>(t);
    }
  }
  return S;
}
/// One step of `rows` x `seq` through the mini model on `ctx` (releasing
/// its tensors or not); its tokens and logits, row by row.
void runStep(fairkv_rt_ctx *ctx, const std::vector<int64_t> &ids,
             const std::vector<int64_t> &positions, int64_t rows, int64_t seq,
             bool release, std::vector<int64_t> &tokens,
             std::vector<float> &logits) {
  fairkv_rt_step_begin(ctx, rows, seq);
  fairkv_rt_tensor *out = fairkv_rt_run_step(
      ctx, 0, fairkv_rt_tensor_from_i64(ctx, ids.data(), rows, seq),
      fairkv_rt_tensor_from_i64(ctx, positions.data(), rows, seq),
      release ? stepReleasing : step);
  const int64_t *data = fairkv_rt_tensor_i64_data(out);
  tokens.assign(data, data + rows);
  int64_t count = 0;
  const float *all = fairkv_rt_ctx_last_logits(ctx, &count);
  logits.assign(all, all + count);
  fairkv_rt_step_end(ctx);
}
} // namespace mini

/// What a session's whole decode of one batch gave: every step's tokens
/// and logits, the KV tokens held, decode attention's seconds and calls.
struct Decode {
  std::vector<std::vector<int64_t>> tokens;
  std::vector<std::vector<float>> logits;
  int64_t kvTokens = 0, attentionCalls = 0, decodeSteps = 0;
  double attentionSeconds = 0;
};

/// `groups`: the requests each prefill step takes (all three in one by
/// default), as a program's --prefill-tokens makes them; `backend`: CUDA,
/// or the CPU's for the tests' own check.
Decode
decodeBatch(const std::string &path, bool graphs, bool opTimes, int steps,
            bool release = false,
            const std::vector<std::vector<int64_t>> &groups = {{0, 1, 2}},
            int64_t backend = FAIRKV_RT_BACKEND_CUDA) {
  Decode d;
  fairkv_rt_options o = cudaOptions();
  o.backend = backend;
  o.snapkv_window = 4;
  o.max_new_tokens = steps;
  o.cuda_graphs = graphs;
  o.op_times = opTimes;
  fairkv_rt_session *session = nullptr;
  if (fairkv_rt_session_create(path.c_str(), &o, &session) != FAIRKV_OK) {
    ADD_FAILURE() << fairkv_rt_last_error();
    return d;
  }
  const int64_t b = 3;
  const int64_t lengths[] = {12, 7, 10};
  fairkv_rt_session_begin_batch(session, lengths, b);
  fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, 0);
  // The prefill, group by group, each left-padded to its longest prompt;
  // its tokens and logits by request.
  d.tokens.emplace_back(b);
  std::vector<std::vector<float>> prefillLogits(b);
  std::vector<int64_t> ids, positions, tokens;
  std::vector<float> logits;
  for (const std::vector<int64_t> &group : groups) {
    const int64_t rows = static_cast<int64_t>(group.size());
    const int64_t S =
        mini::leftPad({group.begin(), group.end()}, ids, positions);
    if (groups.size() > 1)
      fairkv_rt_session_set_rows(session, group.data(), rows);
    mini::runStep(ctx, ids, positions, rows, S, release, tokens, logits);
    const size_t vocab = logits.size() / group.size();
    for (int64_t i = 0; i < rows; ++i) {
      d.tokens[0][group[i]] = tokens[i];
      prefillLogits[group[i]].assign(logits.begin() + i * vocab,
                                     logits.begin() + (i + 1) * vocab);
    }
  }
  d.logits.emplace_back();
  for (const std::vector<float> &row : prefillLogits)
    d.logits[0].insert(d.logits[0].end(), row.begin(), row.end());
  fairkv_rt_session_set_rows(session, nullptr, 0);
  for (int step = 1; step < steps; ++step) {
    ids = d.tokens.back();
    positions.clear();
    for (int64_t i = 0; i < b; ++i)
      positions.push_back(lengths[i] + step - 1);
    mini::runStep(ctx, ids, positions, b, 1, release, tokens, logits);
    d.tokens.push_back(tokens);
    d.logits.push_back(logits);
  }
  double prefill = 0;
  int64_t bytes = 0;
  fairkv_rt_ctx_stats(ctx, &prefill, &d.attentionSeconds, &d.kvTokens, &bytes);
  std::vector<fairkv_rt_op_time> ops(16);
  const int64_t n = fairkv_rt_ctx_op_times(ctx, ops.data(), 16, &d.decodeSteps);
  for (int64_t i = 0; i < n && i < 16; ++i)
    if (std::string(ops[i].name) == "attention")
      d.attentionCalls = ops[i].decode_calls;
  fairkv_rt_session_destroy(session);
  return d;
}

/// The mini model's seeded random weights, in a file of the test's own.
/// Writing it cannot fail short of a full disk: then the test stops,
/// loudly.
std::string miniWeights(const char *name, uint64_t seed) {
  std::string path = uniqueTempPath(name);
  if (fairkv_rt_write_random_weights(path.c_str(), 1, mini::kHidden,
                                     mini::kHeads, mini::kKvHeads,
                                     mini::kHeadDim, mini::kFfn, mini::kVocab,
                                     seed, "f32") != FAIRKV_OK) {
    ADD_FAILURE() << fairkv_rt_last_error();
    std::abort();
  }
  return path;
}

/// `got` ran `steps` steps with `want`'s tokens and logits, bit for bit,
/// and holds as much KV.
void expectSameSteps(const Decode &got, const Decode &want, int steps) {
  ASSERT_EQ(got.tokens.size(), size_t(steps));
  ASSERT_EQ(want.tokens.size(), size_t(steps));
  for (int t = 0; t < steps; ++t) {
    EXPECT_EQ(got.tokens[t], want.tokens[t]) << "step " << t;
    EXPECT_EQ(got.logits[t], want.logits[t]) << "step " << t;
  }
  EXPECT_EQ(got.kvTokens, want.kvTokens);
}

TEST(CudaBackend, GraphStepsGiveTheEagerStepsResults) {
  SKIP_WITHOUT_A_GPU();
  const std::string path = miniWeights("graph-steps.safetensors", 7);
  // A prefill, the decode step that plans, the captured one and 5 replays.
  const int steps = 8;
  const Decode eager = decodeBatch(path, false, false, steps);
  for (bool opTimes : {false, true}) {
    const Decode graphs = decodeBatch(path, true, opTimes, steps);
    expectSameSteps(graphs, eager, steps);
    EXPECT_EQ(graphs.decodeSteps, steps - 1);
    EXPECT_EQ(graphs.attentionCalls, steps - 1);
    EXPECT_GT(graphs.attentionSeconds, 0);
    std::printf("CUDA graphs%s: %d steps (5 replayed) give the eager steps' "
                "tokens and logits; decode attention %.2e s over %lld calls\n",
                opTimes ? " with every op timed" : "", steps,
                graphs.attentionSeconds,
                static_cast<long long>(graphs.attentionCalls));
  }
}

TEST(CudaBackend, ReleasedTensorsLeaveEveryStepAsItWas) {
  SKIP_WITHOUT_A_GPU();
  const std::string path = miniWeights("released-steps.safetensors", 11);
  // Released buffers go back to the pool mid-step and are the next
  // tensors' (eager), or the capture's later tensors' (graphs): a buffer
  // reused before its last reader ran would change what a step computes.
  const int steps = 8;
  const Decode kept = decodeBatch(path, false, false, steps);
  for (bool graphs : {false, true}) {
    const Decode released = decodeBatch(path, graphs, false, steps, true);
    expectSameSteps(released, kept, steps);
    std::printf("Tensors released after their last use (%s): %d steps give "
                "the tokens and logits of steps that keep them\n",
                graphs ? "CUDA graphs" : "eager", steps);
  }
}

/// A prefill in groups (request 2, then 0 and 1) against the batch's one
/// prefill, on `backend` (with and without CUDA graphs on CUDA).
void expectGroupsDecodeAsOnePrefill(int64_t backend) {
  const std::string path = miniWeights("prefill-groups.safetensors", 13);
  // On CUDA the second group's prefill grows the attention call's cache
  // (its first segments move); the decode plan and a graph come after it.
  const int steps = 6;
  const Decode whole =
      decodeBatch(path, false, false, steps, true, {{0, 1, 2}}, backend);
  const bool cuda = backend == FAIRKV_RT_BACKEND_CUDA;
  for (bool graphs : {false, true}) {
    if (graphs && !cuda)
      continue;
    const Decode grouped =
        decodeBatch(path, graphs, false, steps, true, {{2}, {0, 1}}, backend);
    ASSERT_EQ(grouped.tokens.size(), size_t(steps));
    const size_t vocab = whole.logits[0].size() / 3;
    ASSERT_EQ(grouped.logits[0].size(), whole.logits[0].size());
    for (int t = 0; t < steps; ++t) {
      EXPECT_EQ(grouped.tokens[t], whole.tokens[t]) << "step " << t;
      for (size_t i = 0; i < 3; ++i) {
        // A GEMM of other rows may round otherwise (bf16 on CUDA, BLAS's
        // order on the CPU).
        float scale = 0, diff = 0;
        for (size_t v = i * vocab; v < (i + 1) * vocab; ++v) {
          scale = std::max(scale, std::fabs(whole.logits[t][v]));
          diff = std::max(diff,
                          std::fabs(grouped.logits[t][v] - whole.logits[t][v]));
        }
        EXPECT_LE(diff, (cuda ? 2e-2f : 1e-5f) * scale)
            << "step " << t << " request " << i;
      }
    }
    EXPECT_EQ(grouped.kvTokens, whole.kvTokens);
    std::printf("A prefill in groups (%s) decodes %d steps as the batch's "
                "one prefill\n",
                !cuda    ? "CPU"
                : graphs ? "CUDA graphs"
                         : "eager",
                steps);
  }
}

TEST(CudaBackend, APrefillInGroupsDecodesAsTheBatchsOne) {
  SKIP_WITHOUT_A_GPU();
  expectGroupsDecodeAsOnePrefill(FAIRKV_RT_BACKEND_CUDA);
}

// The same on the CPU backend: the check itself, where no GPU is.
TEST(CudaBackend, APrefillInGroupsDecodesAsTheBatchsOneOnTheCpu) {
  expectGroupsDecodeAsOnePrefill(FAIRKV_RT_BACKEND_CPU);
}

/// Requests that join a continuous batch at different steps, and leave,
/// get the tokens of one offline batch, on `backend`.
void expectContinuousGivesOfflineTokens(int64_t backend) {
  const std::string path = miniWeights("continuous.safetensors", 17);
  const int steps = 6;
  // offline.tokens[t][i]: request i's token t in one batch of all three.
  const Decode offline =
      decodeBatch(path, false, false, steps, true, {{0, 1, 2}}, backend);
  ASSERT_EQ(offline.tokens.size(), size_t(steps));
  fairkv_rt_options o = cudaOptions();
  o.backend = backend;
  o.snapkv_window = 4;
  o.max_new_tokens = steps;
  fairkv_rt_session *session = nullptr;
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
      << fairkv_rt_last_error();
  ASSERT_EQ(fairkv_rt_session_begin_continuous(session), FAIRKV_OK)
      << fairkv_rt_last_error();
  fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, 0);
  std::map<int64_t, size_t> promptOf;
  std::map<int64_t, std::vector<int64_t>> got;
  std::map<int64_t, std::vector<std::vector<float>>> gotLogits;
  auto run = [&](const std::vector<int64_t> &slots, int64_t seq,
                 const std::vector<int64_t> &ids,
                 const std::vector<int64_t> &positions) {
    const int64_t rows = static_cast<int64_t>(slots.size());
    std::vector<int64_t> tokens;
    std::vector<float> logits;
    mini::runStep(ctx, ids, positions, rows, seq, true, tokens, logits);
    ASSERT_EQ(logits.size(), size_t(rows * mini::kVocab));
    for (int64_t i = 0; i < rows; ++i) {
      got[slots[i]].push_back(tokens[i]);
      gotLogits[slots[i]].emplace_back(logits.begin() + i * mini::kVocab,
                                       logits.begin() + (i + 1) * mini::kVocab);
    }
  };
  // Joiners' prefill, left-padded to the longest.
  auto join = [&](const std::vector<int64_t> &slots,
                  const std::vector<size_t> &which) {
    std::vector<int64_t> lengths, ids, positions;
    for (size_t i = 0; i < slots.size(); ++i) {
      promptOf[slots[i]] = which[i];
      lengths.push_back(static_cast<int64_t>(mini::kPrompts[which[i]].size()));
    }
    fairkv_rt_session_join(session, slots.data(), lengths.data(),
                           static_cast<int64_t>(slots.size()));
    run(slots, mini::leftPad(which, ids, positions), ids, positions);
  };
  // A decode step of running `slots`, each fed its last token.
  auto decode = [&](const std::vector<int64_t> &slots) {
    fairkv_rt_session_set_rows(session, slots.data(),
                               static_cast<int64_t>(slots.size()));
    std::vector<int64_t> ids, positions;
    for (int64_t slot : slots) {
      ids.push_back(got[slot].back());
      positions.push_back(static_cast<int64_t>(
          mini::kPrompts[promptOf[slot]].size() + got[slot].size() - 1));
    }
    run(slots, 1, ids, positions);
  };
  // Requests join while others decode and leave when done; the last joiner
  // takes the room of the first to leave.
  join({10}, {0});
  decode({10});
  decode({10});
  join({11, 12}, {1, 2});
  for (int i = 0; i < 3; ++i)
    decode({10, 11, 12});
  fairkv_rt_session_release(session, 10);
  join({13}, {0});
  for (int i = 0; i < 2; ++i)
    decode({11, 12, 13});
  fairkv_rt_session_release(session, 11);
  fairkv_rt_session_release(session, 12);
  for (int i = 0; i < 3; ++i)
    decode({13});
  fairkv_rt_session_destroy(session);
  // Other rows beside a request may round its GEMMs otherwise (bf16 on
  // CUDA, BLAS's order on the CPU).
  const float tolerance = backend == FAIRKV_RT_BACKEND_CUDA ? 2e-2f : 1e-5f;
  for (const auto &[slot, tokens] : got) {
    const size_t request = promptOf[slot];
    std::vector<int64_t> want;
    for (int t = 0; t < steps; ++t)
      want.push_back(offline.tokens[t][request]);
    EXPECT_EQ(tokens, want) << "slot " << slot;
    ASSERT_EQ(gotLogits[slot].size(), size_t(steps));
    for (int t = 0; t < steps; ++t) {
      const float *row = offline.logits[t].data() + request * mini::kVocab;
      float scale = 0, diff = 0;
      for (int64_t v = 0; v < mini::kVocab; ++v) {
        scale = std::max(scale, std::fabs(row[v]));
        diff = std::max(diff, std::fabs(gotLogits[slot][t][v] - row[v]));
      }
      EXPECT_LE(diff, tolerance * scale) << "slot " << slot << " step " << t;
    }
  }
  EXPECT_EQ(got.size(), 4u);
  std::printf("A continuous batch (%s: joins, releases, a reused room) "
              "gives each request its offline batch's %d tokens\n",
              backend == FAIRKV_RT_BACKEND_CUDA ? "CUDA" : "CPU", steps);
}

TEST(CudaBackend, AContinuousBatchGivesEachRequestItsOfflineTokens) {
  SKIP_WITHOUT_A_GPU();
  expectContinuousGivesOfflineTokens(FAIRKV_RT_BACKEND_CUDA);
}

// The same on the CPU backend: the check itself, where no GPU is.
TEST(CudaBackend, AContinuousBatchGivesEachRequestItsOfflineTokensOnTheCpu) {
  expectContinuousGivesOfflineTokens(FAIRKV_RT_BACKEND_CPU);
}

TEST(CudaBackend, GraphsNeedTheCudaBackendAndOneDeviceOrNccl) {
  std::string path = weightFile();
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  o.cuda_graphs = 1;
  fairkv_rt_session *session = nullptr;
  EXPECT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session),
            FAIRKV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(fairkv_rt_last_error()),
            "CUDA graphs need the CUDA backend");
  o = cudaOptions();
  o.cuda_graphs = 1;
  o.devices = 2;
  EXPECT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session),
            FAIRKV_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(fairkv_rt_last_error()).find("need NCCL collectives"),
            std::string::npos)
      << fairkv_rt_last_error();
  EXPECT_EQ(session, nullptr);
  // Solo devices' decode steps meet nobody: graphs are allowed (and run
  // where there is a GPU).
  o.solo_devices = 1;
  o.time_devices = 1;
  if (fairkv_rt_session_create(path.c_str(), &o, &session) == FAIRKV_OK)
    fairkv_rt_session_destroy(session);
  else
    EXPECT_EQ(std::string(fairkv_rt_last_error()).find("NCCL"),
              std::string::npos)
        << fairkv_rt_last_error();
}

TEST(CudaBackend, SoloDevicesStandInForDecodeCollectives) {
  SKIP_WITHOUT_A_GPU();
  fairkv_rt_session *session = nullptr;
  std::string path = weightFile();
  fairkv_rt_options o = cudaOptions();
  o.devices = 3;
  o.solo_devices = 1;
  o.time_devices = 1;
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
      << fairkv_rt_last_error();
  expectSoloStandIns(session, 3);
  fairkv_rt_session_destroy(session);
}

TEST(CudaBackend, UnavailableWithoutAGpuIsAnError) {
  int64_t count = 0;
  if (fairkv_rt_cuda_device_count(&count) == FAIRKV_OK)
    GTEST_SKIP() << "a CUDA device is present";
  std::string path = weightFile();
  fairkv_rt_options o = cudaOptions();
  fairkv_rt_session *session = nullptr;
  EXPECT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session),
            FAIRKV_ERROR_UNAVAILABLE);
  EXPECT_EQ(session, nullptr);
  EXPECT_GT(std::string(fairkv_rt_last_error()).size(), 0u);
}

} // namespace

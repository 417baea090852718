//===- Session.cpp - Sessions, device contexts, tensors -------------------===//

#include "GpuBackend.h"
#include "Runtime.h"
#include "Status.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#define FAIRKV_RT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace fairkv::rt;
using fairkv::rt::fail;
using fairkv::rt::ok;

void fairkv::rt::fatal(const std::string &message) {
  std::fprintf(stderr, "fairkv runtime: error: %s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

int64_t fairkv_rt_tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t fairkv_rt_tensor::rowSize() const {
  int64_t n = 1;
  for (size_t d = 1; d < shape.size(); ++d)
    n *= shape[d];
  return n;
}

std::string fairkv_rt_tensor::shapeString() const {
  std::string s = "[";
  for (size_t d = 0; d < shape.size(); ++d)
    s += (d ? ", " : "") + std::to_string(shape[d]);
  return s + "]";
}

FAIRKV_RT_EXPORT void fairkv_rt_admit(const int64_t *costs, int64_t batch,
                                      const double *shares, int64_t replicas,
                                      int64_t *owner) {
  std::vector<double> load(replicas, 0.0);
  for (int64_t i = 0; i < batch; ++i) {
    int64_t best = 0;
    double bestFill = INFINITY;
    for (int64_t r = 0; r < replicas; ++r) {
      double fill = (load[r] + costs[i]) / shares[r];
      if (fill < bestFill) {
        bestFill = fill;
        best = r;
      }
    }
    owner[i] = best;
    load[best] += costs[i];
  }
}

std::string fairkv::rt::splitKey(const Split &s) {
  std::string key = std::to_string(s.head) + "|" + std::to_string(s.budget);
  for (size_t r = 0; r < s.devices.size(); ++r)
    key += "|" + std::to_string(s.devices[r]) + ":" + std::to_string(s.shares[r]);
  return key;
}

int64_t fairkv::rt::Owners::assign(int64_t slot, int64_t cost,
                                   const std::vector<double> &shares) {
  if (auto it = bySlot.find(slot); it != bySlot.end())
    return it->second.first;
  load.resize(shares.size(), 0.0);
  int64_t best = 0;
  double bestFill = INFINITY;
  for (size_t r = 0; r < shares.size(); ++r) {
    double fill = (load[r] + cost) / shares[r];
    if (fill < bestFill) {
      bestFill = fill;
      best = static_cast<int64_t>(r);
    }
  }
  load[best] += cost;
  bySlot[slot] = {best, cost};
  return best;
}

void fairkv::rt::Owners::release(int64_t slot) {
  auto it = bySlot.find(slot);
  if (it == bySlot.end())
    return;
  load[it->second.first] -= it->second.second;
  bySlot.erase(it);
}

std::vector<std::vector<int64_t>>
fairkv::rt::admit(const fairkv_rt_session &session, const Split &split,
                  int64_t batch) {
  // Before any batch is begun every request counts as equally long.
  return admitRows(session.promptLengths.size() == static_cast<size_t>(batch)
                       ? session.promptLengths
                       : std::vector<int64_t>(batch, 1),
                   session.options.max_new_tokens, split);
}

std::vector<std::vector<int64_t>>
fairkv::rt::admitRows(const std::vector<int64_t> &lengths, int64_t maxNew,
                      const Split &split) {
  const int64_t batch = static_cast<int64_t>(lengths.size());
  std::vector<int64_t> costs(batch), owner(batch);
  for (int64_t i = 0; i < batch; ++i) {
    int64_t length = lengths[i];
    if (split.budget >= 0)
      length = std::min(length, split.budget);
    costs[i] = admissionCost(lengths[i], split.budget, maxNew);
  }
  fairkv_rt_admit(costs.data(), batch, split.shares.data(),
                  static_cast<int64_t>(split.shares.size()), owner.data());
  std::vector<std::vector<int64_t>> rows(split.shares.size());
  for (int64_t i = 0; i < batch; ++i)
    rows[owner[i]].push_back(i);
  return rows;
}

namespace {

template <typename T>
void takeKept(std::multimap<size_t, HostBuffers::Kept<T>> &kept,
              std::vector<T> &into, size_t n) {
  auto it = kept.lower_bound(n);
  // A small tensor does not take a large buffer a large one will want.
  if (n > 0 && it != kept.end() && it->first <= 2 * n) {
    into = std::move(it->second.data);
    kept.erase(it);
  }
  into.assign(n, T(0));
}

template <typename T>
void keepKept(std::multimap<size_t, HostBuffers::Kept<T>> &kept,
              std::vector<T> &from, int64_t step) {
  if (from.capacity() == 0)
    return;
  const size_t capacity = from.capacity();
  kept.emplace(capacity, HostBuffers::Kept<T>{std::move(from), step});
}

template <typename T>
void dropUnused(std::multimap<size_t, HostBuffers::Kept<T>> &kept,
                int64_t step) {
  for (auto it = kept.begin(); it != kept.end();)
    it = it->second.step < step - 1 ? kept.erase(it) : std::next(it);
}

} // namespace

void HostBuffers::take(std::vector<float> &into, size_t n) {
  takeKept(floats, into, n);
}

void HostBuffers::take(std::vector<int64_t> &into, size_t n) {
  takeKept(ints, into, n);
}

void HostBuffers::put(std::vector<float> &from) {
  keepKept(floats, from, step + 1);
  from = {};
}

void HostBuffers::put(std::vector<int64_t> &from) {
  keepKept(ints, from, step + 1);
  from = {};
}

void HostBuffers::keep(std::vector<std::unique_ptr<Tensor>> &arena) {
  ++step;
  for (std::unique_ptr<Tensor> &t : arena) {
    keepKept(floats, t->f, step);
    keepKept(ints, t->i, step);
  }
  arena.clear();
  dropUnused(floats, step);
  dropUnused(ints, step);
}

size_t HostBuffers::bytes() const {
  size_t total = 0;
  for (const auto &[capacity, kept] : floats)
    total += capacity * sizeof(float);
  for (const auto &[capacity, kept] : ints)
    total += capacity * sizeof(int64_t);
  return total;
}

Tensor *fairkv_rt_ctx::make(std::vector<int64_t> shape, bool isInt) {
  auto t = std::make_unique<Tensor>();
  t->shape = std::move(shape);
  t->isInt = isInt;
  if (isInt)
    hostBuffers.take(t->i, t->numel());
  else
    hostBuffers.take(t->f, t->numel());
  // On a GPU only its device buffers count (CUDA backend): a host tensor
  // is a step's input, uploaded there.
  if (!gpu)
    tensorBytes->add(t->hostBytes(), seq > 1);
  arena.push_back(std::move(t));
  return arena.back().get();
}

void fairkv_rt_ctx::addOpTime(const std::string &op, bool prefill,
                              std::chrono::steady_clock::time_point start) {
  opTimes[op].seconds[prefill ? 0 : 1] +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
}

std::string
fairkv_rt_ctx::collectiveKey(const std::string &kind,
                             const std::vector<int64_t> &participants) {
  std::string group = kind + ":";
  for (int64_t p : participants)
    group += std::to_string(p) + ",";
  // Every participant issues the collectives of a group in the same order,
  // so a per-group count names the same collective on every device.
  return group + "#" + std::to_string(collectiveCounts[group]++);
}

FAIRKV_RT_EXPORT void fairkv_rt_default_options(fairkv_rt_options *options) {
  options->devices = 1;
  options->max_new_tokens = 16;
  options->snapkv_window = 8;
  options->snapkv_kernel = 5;
  options->snapkv_pool = FAIRKV_RT_POOL_AVG;
  options->page_tokens = 16;
  options->kv_bytes_per_device = 0;
  options->adakv_alpha = -1;
  options->backend = FAIRKV_RT_BACKEND_CPU;
  options->collectives = FAIRKV_RT_COLLECTIVES_RENDEZVOUS;
  options->storage = FAIRKV_RT_STORAGE_BF16;
  options->mpi_rank = -1;
  options->duo_sink = -1;
  options->sliding_window = 0;
  options->time_devices = 0;
  options->op_times = 0;
  options->cuda_graphs = 0;
  options->solo_devices = 0;
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_session_create(
    const char *weightsPath, const fairkv_rt_options *options,
    fairkv_rt_session **session) {
  if (!weightsPath || !options || !session)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "null argument");
  if (options->devices <= 0 || options->max_new_tokens < 0 ||
      options->snapkv_window <= 0 || options->page_tokens <= 0 ||
      options->kv_bytes_per_device < 0 || !(options->adakv_alpha <= 1))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "devices, snapkv_window and page_tokens must be positive, "
                "max_new_tokens non-negative and adakv_alpha at most 1");
  if (options->devices > FAIRKV_RT_MAX_DEVICES ||
      options->max_new_tokens > FAIRKV_RT_MAX_TOKENS ||
      options->snapkv_window > FAIRKV_RT_MAX_TOKENS ||
      options->snapkv_kernel > FAIRKV_RT_MAX_TOKENS ||
      options->page_tokens > FAIRKV_RT_MAX_TOKENS ||
      options->duo_sink > FAIRKV_RT_MAX_TOKENS ||
      options->sliding_window > FAIRKV_RT_MAX_TOKENS)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "devices may be at most " +
                    std::to_string(FAIRKV_RT_MAX_DEVICES) +
                    "; max_new_tokens, snapkv_window, snapkv_kernel, "
                    "page_tokens, duo_sink and sliding_window at most " +
                    std::to_string(FAIRKV_RT_MAX_TOKENS));
  if (options->snapkv_kernel <= 0 || options->snapkv_kernel % 2 == 0 ||
      (options->snapkv_pool != FAIRKV_RT_POOL_AVG &&
       options->snapkv_pool != FAIRKV_RT_POOL_MAX))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "snapkv_kernel must be odd and positive, snapkv_pool AVG or "
                "MAX");
  if (options->duo_sink >= 0 && options->adakv_alpha >= 0)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "DuoAttention and Ada-KV are two methods: choose one");
  if (options->duo_sink >= 0 && options->backend == FAIRKV_RT_BACKEND_CUDA)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "the CUDA backend does not implement DuoAttention's "
                "streaming heads yet (the CPU backend does)");
  // The CUDA scoring kernel averages; max-pooling is the CPU backend's.
  if (options->backend == FAIRKV_RT_BACKEND_CUDA &&
      options->snapkv_pool != FAIRKV_RT_POOL_AVG)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "the CUDA backend scores with average pooling only (headkv's "
                "max-pooling runs on the CPU backend)");
  if (options->backend != FAIRKV_RT_BACKEND_CPU &&
      options->backend != FAIRKV_RT_BACKEND_CUDA)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "unknown backend " +
                                                   std::to_string(options->backend));
  if (options->collectives != FAIRKV_RT_COLLECTIVES_RENDEZVOUS &&
      (options->collectives != FAIRKV_RT_COLLECTIVES_NCCL ||
       options->backend != FAIRKV_RT_BACKEND_CUDA))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "NCCL collectives need the CUDA backend");
  if (options->storage != FAIRKV_RT_STORAGE_BF16 &&
      (options->storage != FAIRKV_RT_STORAGE_FP16 ||
       options->backend != FAIRKV_RT_BACKEND_CUDA))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "fp16 storage needs the CUDA backend (the CPU computes in "
                "fp32)");
  if (options->cuda_graphs && options->backend != FAIRKV_RT_BACKEND_CUDA)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "CUDA graphs need the CUDA backend");
  if (options->solo_devices && !options->time_devices)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "solo devices are a way of timing devices: they need "
                "time_devices");
  // Solo devices' decode steps meet nobody: their collectives are local.
  if (options->cuda_graphs && options->devices > 1 &&
      options->collectives != FAIRKV_RT_COLLECTIVES_NCCL &&
      !options->solo_devices)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "CUDA graphs of " + std::to_string(options->devices) +
                    " devices need NCCL collectives (or solo devices): the "
                    "rendezvous meets on the host, inside the step a graph "
                    "would replay");
  if (options->mpi_rank >= 0) {
    int64_t rank = 0, size = 0;
    if (std::string error = fairkv::rt::mpi::world(&rank, &size);
        !error.empty())
      return fail(FAIRKV_ERROR_UNAVAILABLE, error);
    if (size != options->devices || rank != options->mpi_rank)
      return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                  "an MPI run needs one rank per device: " +
                      std::to_string(options->devices) + " devices, " +
                      std::to_string(size) + " ranks (this is rank " +
                      std::to_string(rank) + ")");
    if (options->backend == FAIRKV_RT_BACKEND_CUDA &&
        options->collectives != FAIRKV_RT_COLLECTIVES_NCCL)
      return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                  "an MPI run on GPUs needs NCCL collectives");
  }
  if (options->time_devices &&
      (options->mpi_rank >= 0 ||
       options->collectives != FAIRKV_RT_COLLECTIVES_RENDEZVOUS))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                "timing devices one at a time needs devices as threads of "
                "one process with rendezvous collectives (not MPI, not "
                "NCCL)");
  auto s = std::make_unique<fairkv_rt_session>();
  s->options = *options;
  if (options->mpi_rank >= 0)
    s->comm.useMpi();
  std::string error;
  if (!s->weights.open(weightsPath, error))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, error);
  for (int64_t g = 0; g < options->devices; ++g) {
    auto ctx = std::make_unique<fairkv_rt_ctx>();
    ctx->session = s.get();
    ctx->device = g;
    s->devices.push_back(std::move(ctx));
  }
  if (options->time_devices) {
    s->turns = std::make_unique<fairkv::rt::DeviceTurns>(s.get());
    s->comm.useTurns(s->turns.get());
  }
  if (options->backend == FAIRKV_RT_BACKEND_CUDA) {
    fairkv::rt::gpu::Backend *gpu = fairkv::rt::gpu::load(error);
    if (gpu)
      error = gpu->start(*s);
    if (!error.empty())
      return fail(FAIRKV_ERROR_UNAVAILABLE, error);
  }
  *session = s.release();
  return ok();
}

FAIRKV_RT_EXPORT void fairkv_rt_session_destroy(fairkv_rt_session *session) {
  delete session;
}

FAIRKV_RT_EXPORT fairkv_rt_ctx *
fairkv_rt_session_device(fairkv_rt_session *session, int64_t device) {
  if (!session || device < 0 ||
      device >= static_cast<int64_t>(session->devices.size()))
    return nullptr;
  return session->devices[device].get();
}

FAIRKV_RT_EXPORT void fairkv_rt_step_begin(fairkv_rt_ctx *ctx, int64_t batch,
                                           int64_t seq) {
  // Putting the last step's tensors away (and settling its GPU op times) is
  // housekeeping: when devices take turns it runs in the device's turn,
  // off its clock, so that it neither counts nor slows another device's.
  auto housekeeping = [ctx] {
    if (ctx->gpu) {
      // Adds up the last step's op times (its kernels are done by now: its
      // tokens came back) and frees their events for this step.
      fairkv::rt::gpu::backend().settleOpTimes(ctx);
    }
    if (!ctx->gpu)
      for (const auto &t : ctx->arena)
        ctx->tensorBytes->remove(t->hostBytes());
    ctx->hostBuffers.keep(ctx->arena);
  };
  if (ctx->session->turns)
    ctx->session->turns->take(ctx->device, housekeeping);
  else
    housekeeping();
  ctx->batch = batch;
  ctx->seq = seq;
  if (seq == 1)
    ++ctx->decodeSteps;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_run_step(fairkv_rt_ctx *ctx, int64_t device, fairkv_rt_tensor *ids,
                   fairkv_rt_tensor *positions, fairkv_rt_step_fn step) {
  // Continuous batching changes a step's rows between steps, and with them
  // the decode plans a graph would replay.
  if (!ctx->gpu || !ctx->session->options.cuda_graphs || ctx->seq != 1 ||
      ctx->session->continuous)
    return step(ctx, device, ids, positions);
  return fairkv::rt::gpu::backend().graphStep(
      ctx, ids, positions, [&] { return step(ctx, device, ids, positions); });
}

FAIRKV_RT_EXPORT void fairkv_rt_ctx_busy_seconds(const fairkv_rt_ctx *ctx,
                                                 double *prefill,
                                                 double *decode,
                                                 int64_t *decodeSteps,
                                                 double *median) {
  *prefill = *decode = *median = 0;
  *decodeSteps = 0;
  if (ctx->session->turns)
    ctx->session->turns->busy(ctx->device, prefill, decode, decodeSteps,
                              median);
}

FAIRKV_RT_EXPORT void fairkv_rt_ctx_synchronize(fairkv_rt_ctx *ctx) {
  if (ctx->gpu)
    fairkv::rt::gpu::backend().synchronize(ctx);
}

FAIRKV_RT_EXPORT void fairkv_rt_session_begin_batch(fairkv_rt_session *session,
                                                   const int64_t *lengths,
                                                   int64_t batch) {
  session->promptLengths.assign(lengths, lengths + batch);
  session->continuous = false;
  session->rowSlots.clear();
  session->slotLengths.clear();
  for (auto &ctx : session->devices) {
    ctx->owners.clear();
    if (ctx->gpu)
      fairkv::rt::gpu::backend().dropCache(ctx.get());
    ctx->cache.clear();
    ctx->reservedKVBytes = 0;
    ctx->pending.clear();
    ctx->admissions.clear();
    ctx->lastLogits.clear();
    ctx->deviceLogits = {};
  }
}

FAIRKV_RT_EXPORT fairkv_status_t
fairkv_rt_session_begin_continuous(fairkv_rt_session *session) {
  if (!session)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "null session");
  fairkv_rt_session_begin_batch(session, nullptr, 0);
  session->continuous = true;
  return FAIRKV_OK;
}

FAIRKV_RT_EXPORT void fairkv_rt_session_join(fairkv_rt_session *session,
                                             const int64_t *slots,
                                             const int64_t *lengths,
                                             int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (session->slotLengths.count(slots[i]))
      fatal("request slot " + std::to_string(slots[i]) + " joined twice");
    session->slotLengths[slots[i]] = lengths[i];
  }
  fairkv_rt_session_set_rows(session, slots, n);
}

FAIRKV_RT_EXPORT void fairkv_rt_session_set_rows(fairkv_rt_session *session,
                                                 const int64_t *slots,
                                                 int64_t n) {
  const int64_t batch = static_cast<int64_t>(session->promptLengths.size());
  for (int64_t i = 0; i < n; ++i) {
    if (session->continuous && !session->slotLengths.count(slots[i]))
      fatal("request slot " + std::to_string(slots[i]) + " has not joined");
    if (!session->continuous && (slots[i] < 0 || slots[i] >= batch))
      fatal("request " + std::to_string(slots[i]) + " is not in the batch of " +
            std::to_string(batch));
  }
  if (session->continuous &&
      !std::equal(slots, slots + n, session->rowSlots.begin(),
                  session->rowSlots.end()))
    for (auto &ctx : session->devices)
      if (ctx->gpu)
        fairkv::rt::gpu::backend().rowsChanged(ctx.get());
  session->rowSlots.assign(slots, slots + n);
}

FAIRKV_RT_EXPORT void fairkv_rt_session_release(fairkv_rt_session *session,
                                                int64_t slot) {
  session->slotLengths.erase(slot);
  for (auto &ctx : session->devices) {
    if (ctx->gpu)
      fairkv::rt::gpu::backend().releaseRequest(ctx.get(), slot);
    for (auto &[layerHead, cache] : ctx->cache)
      cache.release(slot);
    for (auto &[key, owners] : ctx->owners)
      owners.release(slot);
  }
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_tensor_from_i64(fairkv_rt_ctx *ctx, const int64_t *data,
                          int64_t rows, int64_t cols) {
  Tensor *t = ctx->make({rows, cols}, /*isInt=*/true);
  std::copy(data, data + rows * cols, t->i.begin());
  return t;
}

FAIRKV_RT_EXPORT fairkv_rt_tensor *
fairkv_rt_tensor_from_f32(fairkv_rt_ctx *ctx, const float *data,
                          const int64_t *shape, int64_t rank) {
  Tensor *t = ctx->make(std::vector<int64_t>(shape, shape + rank));
  std::copy(data, data + t->numel(), t->f.begin());
  return t;
}

FAIRKV_RT_EXPORT const float *
fairkv_rt_tensor_f32_data(const fairkv_rt_tensor *t) {
  if (t && !t->hostValid)
    fairkv::rt::gpu::backend().download(t);
  return t && !t->isInt ? t->f.data() : nullptr;
}

FAIRKV_RT_EXPORT int64_t fairkv_rt_tensor_numel(const fairkv_rt_tensor *t) {
  return t ? t->numel() : 0;
}

FAIRKV_RT_EXPORT const int64_t *
fairkv_rt_tensor_i64_data(const fairkv_rt_tensor *t) {
  if (t && !t->hostValid)
    fairkv::rt::gpu::backend().download(t);
  return t && t->isInt ? t->i.data() : nullptr;
}

FAIRKV_RT_EXPORT int64_t
fairkv_rt_session_vocab(const fairkv_rt_session *session) {
  // The embedding: a tied model has no lm_head.weight.
  const WeightFile::Info *table =
      session->weights.find("model.embed_tokens.weight");
  return table && table->shape.size() == 2 ? table->shape[0] : -1;
}

FAIRKV_RT_EXPORT const float *
fairkv_rt_ctx_last_logits(const fairkv_rt_ctx *ctx, int64_t *count) {
  if (ctx->gpu && ctx->deviceLogits.buffer)
    fairkv::rt::gpu::backend().fetchLastLogits(const_cast<fairkv_rt_ctx *>(ctx));
  *count = static_cast<int64_t>(ctx->lastLogits.size());
  return ctx->lastLogits.data();
}

FAIRKV_RT_EXPORT void fairkv_rt_ctx_stats(const fairkv_rt_ctx *ctx,
                                          double *prefillAttentionSeconds,
                                          double *decodeAttentionSeconds,
                                          int64_t *kvTokens,
                                          int64_t *kvPoolBytes) {
  *kvTokens = 0;
  *kvPoolBytes = 0;
  if (ctx->gpu)
    fairkv::rt::gpu::backend().settleOpTimes(const_cast<fairkv_rt_ctx *>(ctx));
  // On a GPU the kernels' time, and Ada-KV's selection at the end of a
  // prefill step, which runs on the host.
  auto attention = ctx->opTimes.find("attention");
  *prefillAttentionSeconds =
      attention == ctx->opTimes.end() ? 0 : attention->second.seconds[0];
  *decodeAttentionSeconds =
      attention == ctx->opTimes.end() ? 0 : attention->second.seconds[1];
  if (ctx->gpu) {
    fairkv::rt::gpu::backend().cacheStats(ctx, kvTokens, kvPoolBytes);
    return;
  }
  for (const auto &[key, cache] : ctx->cache) {
    *kvTokens += cache.usedTokens();
    *kvPoolBytes += cache.bytes();
  }
}

FAIRKV_RT_EXPORT void fairkv_rt_ctx_tensor_bytes(const fairkv_rt_ctx *ctx,
                                                 int64_t *prefillPeak,
                                                 int64_t *decodePeak) {
  *prefillPeak = ctx->tensorBytes->peak(true);
  *decodePeak = ctx->tensorBytes->peak(false);
}

FAIRKV_RT_EXPORT int64_t fairkv_rt_ctx_op_times(fairkv_rt_ctx *ctx,
                                                fairkv_rt_op_time *out,
                                                int64_t capacity,
                                                int64_t *decodeSteps) {
  if (ctx->gpu)
    fairkv::rt::gpu::backend().settleOpTimes(ctx);
  *decodeSteps = ctx->decodeSteps;
  int64_t n = 0;
  for (const auto &[name, t] : ctx->opTimes) {
    if (n < capacity)
      out[n] = {name.c_str(), t.calls[0],     t.calls[1],
                t.seconds[0], t.seconds[1], t.weightBytes[1]};
    ++n;
  }
  return n;
}

FAIRKV_RT_EXPORT int64_t fairkv_rt_ctx_kept(const fairkv_rt_ctx *ctx,
                                            int64_t index, int64_t *layer,
                                            int64_t *head, int64_t *request,
                                            const int64_t **positions) {
  if (ctx->gpu || index < 0)
    return -1;
  for (const auto &[layerHead, cache] : ctx->cache)
    for (int64_t r : cache.requests()) {
      if (index-- > 0)
        continue;
      *layer = layerHead.first;
      *head = layerHead.second;
      *request = r;
      ctx->keptScratch = cache.positions(r);
      *positions = ctx->keptScratch.data();
      return static_cast<int64_t>(ctx->keptScratch.size());
    }
  return -1;
}

FAIRKV_RT_EXPORT void fairkv_rt_fatal(const char *message) {
  fatal(message);
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_write_random_weights(
    const char *path, int64_t layers, int64_t hidden, int64_t heads,
    int64_t kvHeads, int64_t headDim, int64_t ffn, int64_t vocab,
    uint64_t seed, const char *dtype) {
  if (!path || !dtype)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "null argument");
  for (int64_t v : {layers, hidden, heads, kvHeads, headDim, ffn, vocab})
    if (v <= 0)
      return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                  "every model size must be positive");
  std::string error;
  if (!writeRandomWeights(path, layers, hidden, heads, kvHeads, headDim, ffn,
                          vocab, seed, dtype, error))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, error);
  return ok();
}

FAIRKV_RT_EXPORT void fairkv_rt_cache_fill_random(fairkv_rt_ctx *ctx,
                                                  int64_t layer, int64_t head,
                                                  int64_t request,
                                                  int64_t tokens,
                                                  int64_t headDim,
                                                  int64_t requests,
                                                  uint64_t seed) {
  if (ctx->gpu)
    fatal("cache_fill_random fills the CPU backend's cache only");
  HeadCache &cache = ctx->cache[{layer, head}];
  const fairkv_rt_options &o = ctx->session->options;
  if (!cache.reserved()) {
    // Room for `tokens` plus the decode steps, for every request.
    int64_t pages = (tokens + o.max_new_tokens + o.page_tokens - 1) /
                    o.page_tokens * 2;
    cache.reserve(std::max<int64_t>(1, requests * pages), o.page_tokens,
                  headDim);
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> k(headDim), v(headDim);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t e = 0; e < headDim; ++e) {
      k[e] = dist(rng);
      v[e] = dist(rng);
    }
    cache.append(request, k.data(), v.data(), cache.nextPosition(request));
  }
}

FAIRKV_RT_EXPORT fairkv_status_t
fairkv_rt_check_tensors(const char *path, const fairkv_rt_tensor_spec *specs,
                        int64_t count) {
  if (!path || (count > 0 && !specs) || count < 0)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "null argument");
  std::vector<fairkv::model::TensorSpec> wanted;
  for (int64_t i = 0; i < count; ++i) {
    if (!specs[i].name || specs[i].rank < 1 || specs[i].rank > 2)
      return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                  "a tensor spec needs a name and rank 1 or 2");
    wanted.push_back({specs[i].name,
                      {specs[i].shape, specs[i].shape + specs[i].rank}});
  }
  std::string error;
  if (!checkTensors(path, wanted, error))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, error);
  return ok();
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_check_weights(
    const char *path, int64_t layers, int64_t hidden, int64_t heads,
    int64_t kvHeads, int64_t headDim, int64_t ffn, int64_t vocab) {
  if (!path)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "null argument");
  std::string error;
  if (!checkWeights(path, layers, hidden, heads, kvHeads, headDim, ffn, vocab,
                    error))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, error);
  return ok();
}

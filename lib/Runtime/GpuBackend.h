//===- GpuBackend.h - The CUDA backend of the runtime ABI ---------*- C++ -*-===//
//
// With `fairkv_rt_options.backend` = FAIRKV_RT_BACKEND_CUDA every entry point
// of a device whose context has a GPU runs there: device d on GPU d modulo
// the GPUs visible, its own stream and cuBLAS handle. Activations are fp32,
// weights and the KV cache bf16 (or fp16), GEMMs accumulate in fp32.
// Collectives meet at the session's rendezvous, as on the CPU, and copy
// between devices' buffers, or, with NCCL collectives, go through one NCCL
// communicator over the devices (one GPU each).
//
// The backend is a plugin, libFairKVRuntimeCUDA.so beside the runtime
// library, opened only when a session asks for it: a program that runs on
// the CPU loads no CUDA, cuBLAS or NCCL library, and runs on a machine
// without them. The plugin is built from the same tree as the runtime (it
// calls the runtime's internals marked FAIRKV_RT_PLUGIN_API), and refuses a
// runtime of another plugin ABI.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_GPUBACKEND_H
#define FAIRKV_RUNTIME_GPUBACKEND_H

#include "Runtime.h"

#include <functional>
#include <string>
#include <vector>

namespace fairkv::rt::gpu {

/// What a GPU backend does for the runtime; every call but start and the
/// queries is made for a context that start gave a GPU.
class Backend {
public:
  virtual ~Backend() = default;

  /// The GPUs visible, or a one-line reason there are none.
  virtual std::string deviceCount(int64_t *count) = 0;
  virtual std::string deviceName(int64_t device, std::string *name) = 0;
  /// The NCCL the backend runs with (NCCL_VERSION_CODE).
  virtual std::string ncclVersion(int64_t *version) = 0;

  /// Gives every device of `session` a GPU; "" or a one-line reason.
  virtual std::string start(fairkv_rt_session &session) = 0;

  /// Moves a weight the host has read (fp32) to the device in the storage
  /// type (bf16 or fp16).
  virtual void adoptWeight(fairkv_rt_ctx *ctx, Tensor *weight) = 0;
  /// Fills the host copy of a tensor that lives on the device.
  virtual void download(const Tensor *t) = 0;
  /// Copies `ctx->deviceLogits` into `ctx->lastLogits`.
  virtual void fetchLastLogits(fairkv_rt_ctx *ctx) = 0;
  /// KV tokens held and bytes of cache on the device.
  virtual void cacheStats(const fairkv_rt_ctx *ctx, int64_t *tokens,
                          int64_t *bytes) = 0;
  /// Marks, on the device's stream, where a timed op's work begins
  /// (fairkv_rt_ctx::opTimes; ops do not nest here).
  virtual void opBegin(fairkv_rt_ctx *ctx) = 0;
  /// Marks where it ends: the time between the two marks goes to
  /// ctx->opTimes[op] (`op` a string that outlives the session) when
  /// settled. The host does not wait.
  virtual void opEnd(fairkv_rt_ctx *ctx, const char *op, bool prefill) = 0;
  /// Adds the times of the ops marked so far to ctx->opTimes (waits for
  /// their work).
  virtual void settleOpTimes(fairkv_rt_ctx *ctx) = 0;
  /// Waits for the device's streams.
  virtual void synchronize(fairkv_rt_ctx *ctx) = 0;
  /// Drops the device's KV cache (a new batch).
  virtual void dropCache(fairkv_rt_ctx *ctx) = 0;
  /// A continuous batch's request left: its KV room goes back to its
  /// attention calls' caches, for the requests that join later.
  virtual void releaseRequest(fairkv_rt_ctx *ctx, int64_t request) = 0;
  /// A continuous batch's rows changed: the decode plans, and the device
  /// memory of the old rows' tables and index lists, go (a long-running
  /// batch holds only its current rows').
  virtual void rowsChanged(fairkv_rt_ctx *ctx) = 0;
  /// Ada-KV: fills the cache with the tokens chosen for each of
  /// `ctx->pending` (whose scores an attention prefill left there), from
  /// that prefill's keys and values on the device.
  virtual void fillCache(fairkv_rt_ctx *ctx,
                         const std::vector<std::vector<int64_t>> &keep) = 0;

  virtual Tensor *embedding(fairkv_rt_ctx *ctx, Tensor *ids,
                            Tensor *table) = 0;
  virtual Tensor *rmsNorm(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w,
                          double eps) = 0;
  /// `bias` may be null.
  virtual Tensor *projectHeads(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w,
                               Tensor *bias, int64_t heads,
                               int64_t headDim) = 0;
  /// Refuses positions at or past `dynamicMaxPositions` (when positive):
  /// the CUDA kernel does not rescale dynamic rope frequencies.
  virtual Tensor *rotary(fairkv_rt_ctx *ctx, Tensor *x, Tensor *positions,
                         const double *invFreq, double attentionFactor,
                         int64_t dynamicMaxPositions) = 0;
  /// `rows`: the requests the query's batch rows belong to.
  virtual Tensor *attention(fairkv_rt_ctx *ctx, Tensor *q, Tensor *k,
                            Tensor *v, int64_t layer, const int64_t *kvHeads,
                            const int64_t *budgets,
                            const std::vector<int64_t> &rows) = 0;
  virtual Tensor *outProj(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wo) = 0;
  virtual Tensor *mlp(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wg, Tensor *wu,
                      Tensor *wd) = 0;
  /// silu(x @ wg^T) * (x @ wu^T), [B, S, ffn].
  virtual Tensor *gatedAct(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wg,
                           Tensor *wu) = 0;
  virtual Tensor *add(fairkv_rt_ctx *ctx, Tensor *a, Tensor *b) = 0;
  /// [B, S, H] -> [B, 1, H]: each row's last position.
  virtual Tensor *lastPosition(fairkv_rt_ctx *ctx, Tensor *x) = 0;
  virtual Tensor *lmHead(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w) = 0;
  virtual Tensor *greedySample(fairkv_rt_ctx *ctx, Tensor *logits) = 0;
  virtual Tensor *takeRows(fairkv_rt_ctx *ctx, Tensor *x,
                           const std::vector<int64_t> &rows) = 0;
  /// Every replica's rows, placed at `owners[r]`, on every replica (the
  /// replicas live on `devices`; this one is `devices[index]`).
  virtual Tensor *gatherRows(fairkv_rt_ctx *ctx, Tensor *x,
                             const std::string &key,
                             const std::vector<int64_t> &devices,
                             int64_t index,
                             const std::vector<std::vector<int64_t>> &owners) = 0;
  virtual Tensor *addRows(fairkv_rt_ctx *ctx, Tensor *acc, Tensor *rows,
                          const std::vector<int64_t> &at) = 0;
  virtual Tensor *zerosLike(fairkv_rt_ctx *ctx, Tensor *x) = 0;
  virtual Tensor *allReduce(fairkv_rt_ctx *ctx, Tensor *x, int64_t kind,
                            const std::string &key) = 0;
  /// The sum over all devices of x @ w^T + addend (either may be null),
  /// reduced in `blocks` column blocks (fairkv_rt_reduction_blocks); with
  /// NCCL, block c's all_reduce runs on the device's communication stream
  /// while block c + 1's GEMM runs.
  virtual Tensor *linearAllReduce(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w,
                                  Tensor *addend, int64_t blocks) = 0;
  virtual Tensor *allGather(fairkv_rt_ctx *ctx, Tensor *x, int64_t axis,
                            const std::string &key) = 0;
  /// A decode step of an offline batch under fairkv_rt_options.cuda_graphs
  /// (fairkv_rt_run_step): `step` runs the program's step on `ids` and
  /// `positions`, [batch, 1] host tensors, and returns its tokens. The
  /// first decode step after a new plan runs it as it is; the next is
  /// captured as a CUDA graph and launched; later ones launch the graph
  /// without calling `step`. The same tokens, logits and op times.
  virtual Tensor *graphStep(fairkv_rt_ctx *ctx, Tensor *ids, Tensor *positions,
                            const std::function<Tensor *()> &step) = 0;
};

/// Bumped whenever Backend or a structure it sees (Runtime.h) changes.
constexpr int kPluginAbi = 11;

/// The plugin's entry point (see openBackend in PluginLoader.h).
constexpr const char *kPluginEntryName = "fairkv_rt_cuda_backend";
constexpr const char *kPluginFile = "libFairKVRuntimeCUDA.so";

/// Opens the plugin once per process; null and a one-line reason when it
/// cannot (not built, a library it needs missing, another ABI).
Backend *load(std::string &error);
/// The backend load() opened (a context with a GPU implies it).
Backend &backend();

} // namespace fairkv::rt::gpu

#endif // FAIRKV_RUNTIME_GPUBACKEND_H

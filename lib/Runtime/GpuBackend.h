//===- GpuBackend.h - The CUDA backend of the runtime ABI ---------*- C++ -*-===//
//
// With `fairkv_rt_options.backend` = FAIRKV_RT_BACKEND_CUDA every entry point
// of a device whose context has a GPU runs there: device d on GPU d modulo
// the GPUs visible, its own stream and cuBLAS handle. Activations are fp32,
// weights and the KV cache bf16 (or fp16), GEMMs accumulate in fp32. Collectives meet
// at the session's rendezvous, as on the CPU, and copy between devices'
// buffers, or, with NCCL collectives, go through one NCCL communicator
// over the devices (one GPU each). What is not built without CUDA (NoCUDA.cpp) refuses to start.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_GPUBACKEND_H
#define FAIRKV_RUNTIME_GPUBACKEND_H

#include "Runtime.h"

#include <string>
#include <vector>

namespace fairkv::rt::gpu {

/// Gives every device of `session` a GPU; "" or a one-line reason.
std::string start(fairkv_rt_session &session);

/// Moves a weight the host has read (fp32) to the device in the storage
/// type (bf16 or fp16).
void adoptWeight(fairkv_rt_ctx *ctx, Tensor *weight);
/// Fills the host copy of a tensor that lives on the device.
void download(const Tensor *t);
/// KV tokens held and bytes of cache on the device.
void cacheStats(const fairkv_rt_ctx *ctx, int64_t *tokens, int64_t *bytes);
/// Seconds the device spent in attention calls at prefill and at decode
/// (timed by events on the device; waits for the calls still running).
void attentionSeconds(const fairkv_rt_ctx *ctx, double *prefill,
                      double *decode);
/// Waits for the device's streams.
void synchronize(fairkv_rt_ctx *ctx);
/// Drops the device's KV cache (a new batch).
void dropCache(fairkv_rt_ctx *ctx);
/// Ada-KV: fills the cache with the tokens chosen for each of
/// `ctx->pending` (whose scores an attention prefill left there), from that
/// prefill's keys and values on the device.
void fillCache(fairkv_rt_ctx *ctx,
               const std::vector<std::vector<int64_t>> &keep);

Tensor *embedding(fairkv_rt_ctx *ctx, Tensor *ids, Tensor *table);
Tensor *rmsNorm(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w, double eps);
/// `bias` may be null.
Tensor *projectHeads(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w, Tensor *bias,
                     int64_t heads, int64_t headDim);
/// Refuses positions at or past `dynamicMaxPositions` (when positive): the
/// CUDA kernel does not rescale dynamic rope frequencies.
Tensor *rotary(fairkv_rt_ctx *ctx, Tensor *x, Tensor *positions,
               const double *invFreq, double attentionFactor,
               int64_t dynamicMaxPositions);
/// `rows`: the requests the query's batch rows belong to.
Tensor *attention(fairkv_rt_ctx *ctx, Tensor *q, Tensor *k, Tensor *v,
                  int64_t layer, const int64_t *kvHeads,
                  const int64_t *budgets, const std::vector<int64_t> &rows);
Tensor *outProj(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wo);
Tensor *mlp(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wg, Tensor *wu,
            Tensor *wd);
/// silu(x @ wg^T) * (x @ wu^T), [B, S, ffn].
Tensor *gatedAct(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wg, Tensor *wu);
Tensor *add(fairkv_rt_ctx *ctx, Tensor *a, Tensor *b);
Tensor *lmHead(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w);
Tensor *greedySample(fairkv_rt_ctx *ctx, Tensor *logits);
Tensor *takeRows(fairkv_rt_ctx *ctx, Tensor *x,
                 const std::vector<int64_t> &rows);
/// Every replica's rows, placed at `owners[r]`, on every replica (the
/// replicas live on `devices`; this one is `devices[index]`).
Tensor *gatherRows(fairkv_rt_ctx *ctx, Tensor *x, const std::string &key,
                   const std::vector<int64_t> &devices, int64_t index,
                   const std::vector<std::vector<int64_t>> &owners);
Tensor *addRows(fairkv_rt_ctx *ctx, Tensor *acc, Tensor *rows,
                const std::vector<int64_t> &at);
Tensor *zerosLike(fairkv_rt_ctx *ctx, Tensor *x);
Tensor *allReduce(fairkv_rt_ctx *ctx, Tensor *x, int64_t kind,
                  const std::string &key);
/// The sum over all devices of x @ w^T + addend (either may be null),
/// reduced in `blocks` column blocks (fairkv_rt_reduction_blocks); with
/// NCCL, block c's all_reduce runs on the device's communication stream
/// while block c + 1's GEMM runs.
Tensor *linearAllReduce(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w,
                        Tensor *addend, int64_t blocks);
Tensor *allGather(fairkv_rt_ctx *ctx, Tensor *x, int64_t axis,
                  const std::string &key);

} // namespace fairkv::rt::gpu

#endif // FAIRKV_RUNTIME_GPUBACKEND_H

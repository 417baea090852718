//===- Backend.cu - The CUDA backend of the runtime ABI -------------------===//
//
// See GpuBackend.h. Every op runs on the device's stream; temporaries are
// stream-ordered allocations. Weights, the KV cache and GEMM inputs are in
// the session's 16-bit storage type (bf16, or fp16 by option). A device's
// KV cache is one buffer per
// attention call (a layer's KV heads on the device, or one copied head),
// sized at prefill from what each (request, head) keeps plus the tokens
// still to decode, each owning a contiguous segment of it.
// Prefill attention is a plain causal kernel over the left-padded prompts;
// what each head keeps is chosen by PrefillSelect (the CPU runtime's static
// SnapKV rule) or, under Ada-KV, left to the end of the step, where the
// host exchanges every head's scores and allocates as the CPU does. Decode
// is planned once per batch and attention call (planDecode): the chunk
// table over each segment's room, where each segment's next token goes
// and the step number live on the device, so a decode step appends,
// attends and advances with launches only, uploading nothing; index lists
// that stay the same for a batch (replicas' rows) are uploaded once, too.
// That is what lets a decode step be captured as a CUDA graph and replayed
// (graphStep, StepGraph.h): what an op does on the host besides launching
// is repeated by a hook it registers while the step is captured.
//
//===----------------------------------------------------------------------===//

#include "../GpuBackend.h"

#include "DecodeAttention.h"
#include "ModelKernels.h"
#include "PrefillAttention.h"
#include "PrefillSelect.h"
#include "StepGraph.h"

#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <set>

using namespace fairkv::rt;
using namespace fairkv::cuda;
namespace gpu = fairkv::rt::gpu;

struct fairkv::rt::GpuDevice {
  int gpu = 0;
  /// fp16 storage instead of bf16.
  bool fp16 = false;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  void *workspace = nullptr;
  struct Segment {
    int64_t base = 0, length = 0, capacity = 0;
  };
  /// The cache of one attention call (a layer's KV heads on this device,
  /// or one copied head): every (request, head) segment in one buffer, so a
  /// decode step is one append and one attention launch for all of them.
  /// How one attention call decodes a batch, planned at its first decode
  /// step (ChunkTable.h): every table on the device, so a step uploads
  /// nothing; the step number, too, lives on the device, advanced by the
  /// step's last launch.
  struct DecodePlan {
    /// The requests it serves (the query's rows), in order; launch segment
    /// i * heads + j is (rows[i], head j).
    std::vector<int64_t> rows;
    /// The segments it appends to, by launch segment (map nodes are
    /// stable), and their fewest free slots when it was planned.
    std::vector<Segment *> segments;
    int64_t headroom = 0;
    /// Steps run since it was planned (the device's *step, on the host).
    int64_t steps = 0;
    /// The launch's tables, step counter and workspace; queries and out
    /// are set per step.
    DecodeAttentionArgs args;
    int *step = nullptr; ///< args.step, writable
  };
  struct CallCache {
    void *keys = nullptr, *values = nullptr;
    /// Token slots of `keys` and `values`, and the ranges of them no
    /// segment holds (base -> slots; a finished request's, in a continuous
    /// batch), merged with their neighbours.
    int64_t capacity = 0;
    std::map<int64_t, int64_t> freeRanges;
    int headDim = 0;
    std::vector<int64_t> heads;
    /// By (request, index in `heads`). A segment's `length` counts the
    /// tokens up to its plan's first step; tokens of the plan's steps are
    /// added when it is replaced.
    std::map<std::pair<int64_t, int64_t>, Segment> segments;
    DecodePlan plan;
  };
  /// By (layer, the call's first KV head).
  std::map<std::pair<int64_t, int64_t>, CallCache> caches;
  int64_t reservedBytes = 0;
  /// Ada-KV: where the keys and values of each of the context's pending
  /// prefills are (token t of the prompt is row firstRow + t * rowStride of
  /// the prefill's K and V), until the step ends.
  struct PendingSource {
    std::shared_ptr<void> keys, values;
    int64_t firstRow = 0, rowStride = 0;
    int headDim = 0;
    /// The attention call's KV heads (one list shared by the call's
    /// prefills), and this prefill's index among them.
    std::shared_ptr<const std::vector<int64_t>> heads;
    int64_t headIndex = 0;
  };
  std::vector<PendingSource> pendingSources;
  /// This device's rank of the session's NCCL communicator, if any.
  ncclComm_t comm = nullptr;
  /// With NCCL: the stream fused projections reduce their blocks on, so the
  /// next block's GEMM on `stream` runs meanwhile, and the events that
  /// order the two (grown on first use).
  cudaStream_t commStream = nullptr;
  std::vector<cudaEvent_t> events;
  /// Ops timed on the device by a pair of events (opBegin, opEnd), so that
  /// an op does not wait for its kernels; their times go to the context's
  /// opTimes when someone asks (settleTimes), and the events are reused.
  struct TimedCall {
    cudaEvent_t begin, end;
    const char *op;
    bool prefill;
    /// A step graph's events (StepGraph::event), recorded again by each
    /// launch: the graph keeps them.
    bool graphs = false;
  };
  std::vector<TimedCall> timed;
  /// The begin mark of the op being timed.
  cudaEvent_t openBegin = nullptr;
  std::vector<cudaEvent_t> idleTimingEvents;
  /// Rotary frequency tables on the device, by the program's table (a
  /// constant of the compiled program, so its address is its identity).
  std::map<const double *, float *> ropeTables;

  /// CUDA graphs (fairkv_rt_options.cuda_graphs, StepGraph.h): the graph
  /// being captured, the one replayed, whether the batch's decode plans
  /// are made (a decode step ran since the last new plan: the next one can
  /// be captured), and, during the step that made them, the buffers a
  /// capture of that step will want (`sizes`): each it asked for that no
  /// buffer of its own, freed by then, of the same size could serve, as
  /// the capture reuses them (StepGraph::release).
  std::shared_ptr<gpu::StepGraph> capture, stepGraph;
  bool decodePlanned = false;
  struct Sizing {
    std::vector<size_t> sizes;
    std::multiset<size_t> freed;
  };
  Sizing *sizing = nullptr;
  std::vector<size_t> plannedSizes;
  /// Something a captured step cannot do (upload host data, plan): fatal,
  /// naming it, while capturing.
  void notWhileCapturing(const char *what) const {
    if (capture)
      fatal(std::string("CUDA graph of a decode step: ") + what +
            " while capturing (run without --cuda-graphs)");
  }

  cudaEvent_t timingEvent() {
    if (idleTimingEvents.empty()) {
      cudaEvent_t e;
      if (cudaError_t err = cudaEventCreate(&e); err != cudaSuccess)
        fatal(std::string("CUDA: cudaEventCreate: ") + cudaGetErrorString(err));
      return e;
    }
    cudaEvent_t e = idleTimingEvents.back();
    idleTimingEvents.pop_back();
    return e;
  }
  void settleTimes(std::map<std::string, fairkv_rt_ctx::OpTotals> &totals) {
    for (const TimedCall &t : timed) {
      float ms = 0;
      cudaError_t err = cudaEventSynchronize(t.end);
      if (err == cudaSuccess)
        err = cudaEventElapsedTime(&ms, t.begin, t.end);
      if (err != cudaSuccess)
        fatal(std::string("CUDA: timing ") + t.op + ": " +
              cudaGetErrorString(err));
      totals[t.op].seconds[t.prefill ? 0 : 1] += ms * 1e-3;
      if (t.graphs)
        continue;
      idleTimingEvents.push_back(t.begin);
      idleTimingEvents.push_back(t.end);
    }
    timed.clear();
  }

  /// Device copies of index lists that stay the same for a batch (the
  /// rows a replica serves, where gathered rows go), by content, so a step
  /// does not upload them again.
  std::map<std::vector<int64_t>, const int64_t *> indexLists;
  /// Device memory of the batch (decode plans, index lists), freed with
  /// its caches. Raw, not deviceBuffer: that one's owner would keep this
  /// device alive.
  std::vector<void *> batchMemory;

  void *batchBuffer(size_t bytes) {
    notWhileCapturing("batch memory");
    void *p = nullptr;
    if (cudaError_t e = cudaMallocAsync(&p, std::max<size_t>(bytes, 16), stream);
        e != cudaSuccess)
      fatal(std::string("CUDA: cudaMallocAsync: ") + cudaGetErrorString(e));
    batchMemory.push_back(p);
    return p;
  }

  void dropCaches() {
    cudaSetDevice(gpu);
    cudaStreamSynchronize(stream);
    // The graph launches at the caches' addresses: it goes first.
    stepGraph.reset();
    decodePlanned = false;
    for (auto &[key, c] : caches) {
      cudaFree(c.keys);
      cudaFree(c.values);
    }
    caches.clear();
    indexLists.clear();
    for (void *p : batchMemory)
      cudaFreeAsync(p, stream);
    batchMemory.clear();
    reservedBytes = 0;
    pendingSources.clear();
  }
  ~GpuDevice() {
    dropCaches();
    // What the pool keeps (see start) goes back to the driver with the
    // session; memory other sessions on this GPU still use stays.
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, gpu) == cudaSuccess)
      cudaMemPoolTrimTo(pool, 0);
    if (comm)
      ncclCommDestroy(comm);
    for (cudaEvent_t e : events)
      cudaEventDestroy(e);
    for (const TimedCall &t : timed) {
      cudaEventDestroy(t.begin);
      cudaEventDestroy(t.end);
    }
    for (cudaEvent_t e : idleTimingEvents)
      cudaEventDestroy(e);
    if (openBegin)
      cudaEventDestroy(openBegin);
    if (commStream)
      cudaStreamDestroy(commStream);
    if (blas)
      cublasDestroy(blas);
    cudaFree(workspace);
    for (auto &[host, table] : ropeTables)
      cudaFree(table);
    if (stream)
      cudaStreamDestroy(stream);
  }
};

namespace {

void check(cudaError_t e, const char *what) {
  if (e != cudaSuccess)
    fatal(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

void check(cublasStatus_t s, const char *what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fatal(std::string("cuBLAS: ") + what + ": status " + std::to_string(s));
}

void check(ncclResult_t r, const char *what) {
  if (r != ncclSuccess)
    fatal(std::string("NCCL: ") + what + ": " + ncclGetErrorString(r));
}

#define CU(call) check((call), #call)

GpuDevice &dev(fairkv_rt_ctx *ctx) {
  CU(cudaSetDevice(ctx->gpu->gpu));
  return *ctx->gpu;
}

/// cudaMalloc on the current device; when it is short, the stream-ordered
/// pool (which keeps what steps freed) gives its unused memory back first.
cudaError_t deviceMalloc(void **p, size_t bytes) {
  cudaError_t e = cudaMalloc(p, bytes);
  if (e != cudaErrorMemoryAllocation)
    return e;
  cudaGetLastError(); // clears the failed allocation's error
  int device = 0;
  cudaMemPool_t pool;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetDefaultMemPool(&pool, device) != cudaSuccess)
    return e;
  cudaDeviceSynchronize();
  cudaMemPoolTrimTo(pool, 0);
  return cudaMalloc(p, bytes);
}

/// A stream-ordered device allocation freed on the device's stream when
/// the last owner lets go.
std::shared_ptr<void> deviceBuffer(fairkv_rt_ctx *ctx, size_t bytes) {
  std::shared_ptr<GpuDevice> g = ctx->gpu;
  void *p = nullptr;
  bytes = std::max<size_t>(bytes, 16);
  if (std::shared_ptr<gpu::StepGraph> graph = g->capture) {
    // A captured step's buffers are the graph's (StepGraph::allocate).
    CU(graph->allocate(&p, bytes));
    return std::shared_ptr<void>(
        p, [graph, bytes](void *q) { graph->release(q, bytes); });
  }
  const bool sized = g->sizing;
  if (sized) {
    auto reused = g->sizing->freed.find(bytes);
    if (reused != g->sizing->freed.end())
      g->sizing->freed.erase(reused);
    else
      g->sizing->sizes.push_back(bytes);
  }
  CU(cudaMallocAsync(&p, bytes, g->stream));
  std::shared_ptr<TensorBytes> counted = ctx->tensorBytes;
  counted->add(static_cast<int64_t>(bytes), ctx->seq > 1);
  return std::shared_ptr<void>(p, [g, counted, bytes, sized](void *q) {
    // Freed during the step that sizes a capture: a later buffer of that
    // step may have its place (a buffer of an earlier step goes to the
    // pool, not to the graph, so it counts for nothing).
    if (sized && g->sizing)
      g->sizing->freed.insert(bytes);
    cudaSetDevice(g->gpu);
    cudaFreeAsync(q, g->stream);
    counted->remove(static_cast<int64_t>(bytes));
  });
}

/// A device tensor of `shape` in the step's arena (contents undefined).
Tensor *make(fairkv_rt_ctx *ctx, std::vector<int64_t> shape,
             bool isInt = false) {
  auto t = std::make_unique<Tensor>();
  t->shape = std::move(shape);
  t->isInt = isInt;
  t->hostValid = false;
  t->device = deviceBuffer(ctx, t->numel() * (isInt ? 8 : 4));
  ctx->arena.push_back(std::move(t));
  return ctx->arena.back().get();
}

/// The tensor's device data, uploading its host data on first use.
template <typename T> T *data(fairkv_rt_ctx *ctx, Tensor *t) {
  if (!t->device) {
    ctx->gpu->notWhileCapturing("a host tensor's upload");
    t->device = deviceBuffer(ctx, t->numel() * (t->isInt ? 8 : 4));
    if (t->isInt)
      CU(cudaMemcpyAsync(t->device.get(), t->i.data(), t->numel() * 8,
                         cudaMemcpyHostToDevice, ctx->gpu->stream));
    else
      CU(cudaMemcpyAsync(t->device.get(), t->f.data(), t->numel() * 4,
                         cudaMemcpyHostToDevice, ctx->gpu->stream));
  }
  return static_cast<T *>(t->device.get());
}

/// Calls f with a value of the device's storage type (only its type
/// matters), so one body serves bf16 and fp16.
template <typename F> void withStorage(const GpuDevice &g, F &&f) {
  if (g.fp16)
    f(__half());
  else
    f(__nv_bfloat16());
}

const void *weightData(fairkv_rt_ctx *ctx, Tensor *w, const char *op) {
  if (!w->storage16)
    fatal(std::string(op) + ": the weight is not on the device");
  return w->device.get();
}

/// Uploads a small host array for this op (freed with the step's stream).
template <typename T>
T *upload(fairkv_rt_ctx *ctx, const std::vector<T> &host,
          std::vector<std::shared_ptr<void>> &keep) {
  ctx->gpu->notWhileCapturing("an upload");
  keep.push_back(deviceBuffer(ctx, host.size() * sizeof(T)));
  if (!host.empty())
    CU(cudaMemcpyAsync(keep.back().get(), host.data(), host.size() * sizeof(T),
                       cudaMemcpyHostToDevice, ctx->gpu->stream));
  return static_cast<T *>(keep.back().get());
}

/// A host array on the device until the batch ends (GpuDevice::batchMemory).
template <typename T>
T *uploadForBatch(GpuDevice &g, const std::vector<T> &host) {
  auto *p = static_cast<T *>(g.batchBuffer(host.size() * sizeof(T)));
  if (!host.empty())
    CU(cudaMemcpyAsync(p, host.data(), host.size() * sizeof(T),
                       cudaMemcpyHostToDevice, g.stream));
  return p;
}

/// `rows` on the device for the rest of the batch (GpuDevice::indexLists):
/// uploaded once.
const int64_t *indexList(fairkv_rt_ctx *ctx, const std::vector<int64_t> &rows) {
  GpuDevice &g = *ctx->gpu;
  auto [it, added] = g.indexLists.try_emplace(rows, nullptr);
  if (added)
    it->second = uploadForBatch(g, it->first);
  return it->second;
}

/// x in the storage type (a GEMM input), converted by the first GEMM
/// that reads it (Tensor::deviceStorage16).
const void *asStorage(fairkv_rt_ctx *ctx, Tensor *x) {
  if (!x->deviceStorage16) {
    std::shared_ptr<void> out = deviceBuffer(ctx, x->numel() * 2);
    withStorage(*ctx->gpu, [&](auto tag) {
      using T = decltype(tag);
      CU(toStorage(data<float>(ctx, x), static_cast<T *>(out.get()),
                   x->numel(), ctx->gpu->stream));
    });
    x->deviceStorage16 = std::move(out);
  }
  return x->deviceStorage16.get();
}

/// y[m, n] (+)= x[m, k] * w[n, k]^T for storage-type x and w.
void gemmStorage(fairkv_rt_ctx *ctx, const void *x, const void *w, float *y,
                 int64_t m, int64_t n, int64_t k, bool accumulate = false) {
  GpuDevice &g = *ctx->gpu;
  withStorage(g, [&](auto tag) {
    using T = decltype(tag);
    CU(gemm(g.blas, static_cast<const T *>(x), static_cast<const T *>(w), y,
            static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
            accumulate));
  });
}

void linear(fairkv_rt_ctx *ctx, Tensor *x, int64_t rows, int64_t k,
            Tensor *w, int64_t n, float *y) {
  dev(ctx);
  gemmStorage(ctx, asStorage(ctx, x), weightData(ctx, w, "linear"), y,
              rows, n, k);
}

__global__ void addKernel(const float *a, const float *b, float *out,
                          int64_t n, bool isMax) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = isMax ? fmaxf(a[i], b[i]) : a[i] + b[i];
}

void launchAdd(const float *a, const float *b, float *out, int64_t n,
               bool isMax, cudaStream_t stream) {
  if (n > 0)
    addKernel<<<static_cast<int>(std::min<int64_t>(4096, (n + 255) / 256)),
                256, 0, stream>>>(a, b, out, n, isMax);
  CU(cudaGetLastError());
}

/// dst row dstRows[r] (+)= src row srcRows[r], rows of `width` 4- or 8-byte
/// elements.
template <typename T>
__global__ void copyRowsKernel(const T *src, const int64_t *srcRows, T *dst,
                               const int64_t *dstRows, int64_t count,
                               int64_t width, bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
       i < count * width; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / width, e = i % width;
    T v = src[srcRows[r] * width + e];
    T *d = &dst[dstRows[r] * width + e];
    *d = accumulate ? *d + v : v;
  }
}

template <typename T>
void copyRows(fairkv_rt_ctx *ctx, const T *src,
              const std::vector<int64_t> &srcRows, T *dst,
              const std::vector<int64_t> &dstRows, int64_t width,
              bool accumulate) {
  const int64_t count = static_cast<int64_t>(srcRows.size());
  if (count == 0 || width == 0)
    return;
  const int64_t *s = indexList(ctx, srcRows), *d = indexList(ctx, dstRows);
  copyRowsKernel<<<static_cast<int>(std::min<int64_t>(
                       4096, (count * width + 255) / 256)),
                   256, 0, ctx->gpu->stream>>>(src, s, dst, d, count, width,
                                               accumulate);
  CU(cudaGetLastError());
}

__device__ void storeAs(__nv_bfloat16 *p, float v) { *p = __float2bfloat16(v); }
__device__ void storeAs(__half *p, float v) { *p = __float2half(v); }

/// K or V rows (fp32, [b, s, nk, d]) appended to a cache in the storage
/// type.
template <typename T>
__global__ void appendRowsKernel(const float *src, const int64_t *srcRows,
                                 T *dst, const int64_t *dstRows, int64_t count,
                                 int d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
       i < count * d; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / d, e = i % d;
    storeAs(&dst[dstRows[r] * d + e], src[srcRows[r] * d + e]);
  }
}

void appendRows(fairkv_rt_ctx *ctx, const float *src,
                const std::vector<int64_t> &srcRows, void *dst,
                const std::vector<int64_t> &dstRows, int d) {
  const int64_t count = static_cast<int64_t>(srcRows.size());
  if (count == 0)
    return;
  std::vector<std::shared_ptr<void>> keep;
  const int64_t *s = upload(ctx, srcRows, keep), *t = upload(ctx, dstRows, keep);
  const int grid =
      static_cast<int>(std::min<int64_t>(4096, (count * d + 255) / 256));
  withStorage(*ctx->gpu, [&](auto tag) {
    using T = decltype(tag);
    appendRowsKernel<<<grid, 256, 0, ctx->gpu->stream>>>(
        src, s, static_cast<T *>(dst), t, count, d);
  });
  CU(cudaGetLastError());
}

/// Each segment (row i, KV head j) of a prefill, packed for PrefillSelect:
/// its prompt's keys and its group's last `window` queries.
__global__ void packSegmentsKernel(const float *q, const float *k,
                                   const int *lengths, const int64_t *offsets,
                                   int s, int nq, int nk, int d, int window,
                                   float *keys, float *queries) {
  const int seg = blockIdx.x, i = seg / nk, j = seg % nk;
  const int length = lengths[i], pad = s - length, group = nq / nk;
  for (int64_t x = threadIdx.x; x < int64_t(length) * d; x += blockDim.x) {
    const int64_t t = x / d, e = x % d;
    keys[(offsets[seg] + t) * d + e] =
        k[((int64_t(i) * s + pad + t) * nk + j) * d + e];
  }
  for (int x = threadIdx.x; x < window * group * d; x += blockDim.x) {
    const int wi = x / (group * d), g = (x / d) % group, e = x % d;
    const int position = length - window + wi;
    queries[(int64_t(seg) * window + wi) * group * d + g * d + e] =
        position >= 0
            ? q[((int64_t(i) * s + pad + position) * nq + j * group + g) * d + e]
            : 0.0f;
  }
}

/// Runs `fetch` on the device's copy of another device's tensor: the
/// tensor itself when it lives on this GPU, else a peer copy.
const void *local(fairkv_rt_ctx *ctx, const Tensor *part,
                  std::vector<std::shared_ptr<void>> &keep) {
  const size_t bytes = part->numel() * (part->isInt ? 8 : 4);
  int owner = 0;
  cudaPointerAttributes attributes;
  CU(cudaPointerGetAttributes(&attributes, part->device.get()));
  owner = attributes.device;
  if (owner == ctx->gpu->gpu)
    return part->device.get();
  keep.push_back(deviceBuffer(ctx, bytes));
  CU(cudaMemcpyPeerAsync(keep.back().get(), ctx->gpu->gpu, part->device.get(),
                         owner, bytes, ctx->gpu->stream));
  return keep.back().get();
}

/// Devices 0, ..., G - 1.
std::vector<int64_t> everyone(int64_t G) {
  std::vector<int64_t> all(G);
  for (int64_t d = 0; d < G; ++d)
    all[d] = d;
  return all;
}

/// 0, 1, ..., n - 1.
std::vector<int64_t> firstRows(size_t n) {
  std::vector<int64_t> rows(n);
  for (size_t i = 0; i < n; ++i)
    rows[i] = static_cast<int64_t>(i);
  return rows;
}

/// Makes this device's input of a collective readable by the others.
void publish(fairkv_rt_ctx *ctx, Tensor *x) {
  if (x->isInt)
    data<int64_t>(ctx, x);
  else
    data<float>(ctx, x);
  CU(cudaStreamSynchronize(ctx->gpu->stream));
}

/// Ends `c`'s decode plan: its steps' tokens join its segments' lengths,
/// and the step graph, which launches the plan's tables, goes.
void retirePlan(GpuDevice &g, GpuDevice::CallCache &c) {
  g.stepGraph.reset();
  g.decodePlanned = false;
  for (GpuDevice::Segment *segment : c.plan.segments)
    segment->length += c.plan.steps;
  c.plan = {};
}

/// Where a new segment of `slots` token slots goes in `c`: the first free
/// range it fits, else the end of the buffer (`end`, its slots after the
/// new segments so far, grows; a free range at the end is taken with it).
int64_t takeRange(GpuDevice::CallCache &c, int64_t slots, int64_t &end) {
  for (auto it = c.freeRanges.begin(); it != c.freeRanges.end(); ++it) {
    const auto [base, size] = *it;
    if (size < slots && base + size != end)
      continue;
    c.freeRanges.erase(it);
    if (size > slots)
      c.freeRanges[base + slots] = size - slots;
    end = std::max(end, base + slots);
    return base;
  }
  end += slots;
  return end - slots;
}

/// Gives `c` back the slots [base, base + slots), merged with free
/// neighbours.
void giveRange(GpuDevice::CallCache &c, int64_t base, int64_t slots) {
  auto next = c.freeRanges.lower_bound(base);
  if (next != c.freeRanges.end() && base + slots == next->first) {
    slots += next->second;
    next = c.freeRanges.erase(next);
  }
  if (next != c.freeRanges.begin()) {
    auto before = std::prev(next);
    if (before->first + before->second == base) {
      before->second += slots;
      return;
    }
  }
  c.freeRanges[base] = slots;
}

/// What one (request, head) of an attention call keeps: the K/V rows of
/// its prefill, in order.
struct Kept {
  int64_t request = 0, headIndex = 0;
  std::vector<int64_t> rows;
};

/// Gives an attention call (layer, `heads`) its cache: a segment per
/// (request, head) of `kept`, with room for the tokens still to decode,
/// filled from `keys` / `values` (fp32, head_dim d). A call prefilled
/// before in this batch (a prefill in groups of rows, a continuous batch's
/// joiners) puts the new segments in its free ranges or grows: its
/// segments move to a buffer with room for the new ones too.
void fillCall(fairkv_rt_ctx *ctx, int64_t layer,
              const std::vector<int64_t> &heads, const float *keys,
              const float *values, int d, const std::vector<Kept> &kept) {
  GpuDevice &g = *ctx->gpu;
  const fairkv_rt_options &opt = ctx->session->options;
  GpuDevice::CallCache &c = g.caches[{layer, heads.at(0)}];
  if (c.keys && c.heads != heads)
    fatal("prefill: layer " + std::to_string(layer) + " kv head " +
          std::to_string(heads[0]) + " was prefilled by two calls");
  c.heads = heads;
  if (c.keys)
    retirePlan(g, c);
  c.headDim = d;
  std::vector<int64_t> src, dst;
  int64_t capacity = c.capacity, slots = 0;
  for (const Kept &k : kept) {
    auto [it, fresh] = c.segments.try_emplace({k.request, k.headIndex});
    if (!fresh)
      fatal("prefill: request " + std::to_string(k.request) + " of layer " +
            std::to_string(layer) + " kv head " +
            std::to_string(heads[k.headIndex]) +
            " was prefilled twice in one batch");
    GpuDevice::Segment &segment = it->second;
    segment.capacity =
        static_cast<int64_t>(k.rows.size()) + opt.max_new_tokens;
    segment.base = takeRange(c, segment.capacity, capacity);
    for (int64_t row : k.rows) {
      src.push_back(row);
      dst.push_back(segment.base + segment.length++);
    }
    slots += segment.capacity;
  }
  const int64_t bytes = 2 * slots * d * 2;
  if (opt.kv_bytes_per_device > 0 &&
      g.reservedBytes + bytes > opt.kv_bytes_per_device)
    fatal("out of memory for the requested batch: device " +
          std::to_string(ctx->device) + " needs more than " +
          std::to_string(g.reservedBytes + bytes) + " bytes of KV (layer " +
          std::to_string(layer) + ", kv head " + std::to_string(heads[0]) +
          ") but may hold " + std::to_string(opt.kv_bytes_per_device));
  g.reservedBytes += bytes;
  auto grow = [&](void *&buffer) {
    if (buffer && capacity == c.capacity)
      return; // every new segment fits in the free ranges
    void *old = buffer;
    CU(deviceMalloc(&buffer, std::max<int64_t>(16, capacity * d * 2)));
    if (!old)
      return;
    CU(cudaMemcpyAsync(buffer, old, c.capacity * d * 2,
                       cudaMemcpyDeviceToDevice, g.stream));
    // cudaFree waits for the copy (it synchronizes the device).
    CU(cudaFree(old));
  };
  grow(c.keys);
  grow(c.values);
  c.capacity = capacity;
  appendRows(ctx, keys, src, c.keys, dst, d);
  appendRows(ctx, values, src, c.values, dst, d);
}

/// Replaces `c`'s decode plan by one for `rows` (the query's requests)
/// from the segments' current lengths: the chunk table over each
/// segment's room, where its next token goes, a step counter at 0 and the
/// workspace, all on the device until the batch ends.
void planDecode(fairkv_rt_ctx *ctx, GpuDevice::CallCache &c, int64_t layer,
                const std::vector<int64_t> &rows, int group, int d) {
  GpuDevice &g = *ctx->gpu;
  g.notWhileCapturing("a new decode plan");
  retirePlan(g, c);
  GpuDevice::DecodePlan &plan = c.plan;
  const int64_t nk = static_cast<int64_t>(c.heads.size());
  plan.rows = rows;
  plan.headroom = INT64_MAX;
  std::vector<int64_t> base, room, decodeStart;
  for (int64_t request : rows)
    for (int64_t j = 0; j < nk; ++j) {
      auto it = c.segments.find({request, j});
      if (it == c.segments.end())
        fatal("attention: decode of request " + std::to_string(request) +
              " without a prefill (layer " + std::to_string(layer) + ")");
      GpuDevice::Segment &segment = it->second;
      plan.segments.push_back(&segment);
      plan.headroom =
          std::min(plan.headroom, segment.capacity - segment.length);
      base.push_back(segment.base);
      room.push_back(segment.capacity);
      decodeStart.push_back(segment.base + segment.length);
    }
  const ChunkTable table = planChunks(base, room);
  DecodeAttentionArgs &a = plan.args;
  a.keys = c.keys;
  a.values = c.values;
  a.halfKV = g.fp16;
  a.segments = static_cast<int>(plan.segments.size());
  a.group = group;
  a.headDim = d;
  a.chunkSegment = uploadForBatch(g, table.segment);
  a.chunkBegin = uploadForBatch(g, table.begin);
  a.chunkEnd = uploadForBatch(g, table.end);
  a.segmentFirstChunk = uploadForBatch(g, table.firstChunk);
  a.chunks = table.chunks();
  a.decodeStart = uploadForBatch(g, decodeStart);
  auto *step = static_cast<int *>(g.batchBuffer(sizeof(int)));
  CU(cudaMemsetAsync(step, 0, sizeof(int), g.stream));
  a.step = plan.step = step;
  a.partial = static_cast<float *>(
      g.batchBuffer(partialFloats(a.chunks, group, d) * sizeof(float)));
}

/// Decode step *step's keys and values (fp32 [segments, d] each) into
/// their segments' next slots, decodeStart[s] + *step, in the storage type.
template <typename T>
__global__ void appendStepKernel(const float *keys, const float *values,
                                 const int64_t *decodeStart, const int *step,
                                 T *cacheKeys, T *cacheValues, int segments,
                                 int d) {
  const int64_t n = int64_t(segments) * d;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t seg = i / d, e = i % d;
    const int64_t slot = (decodeStart[seg] + *step) * d + e;
    storeAs(&cacheKeys[slot], keys[i]);
    storeAs(&cacheValues[slot], values[i]);
  }
}

void launchAppendStep(fairkv_rt_ctx *ctx, const float *keys,
                      const float *values, const DecodeAttentionArgs &a,
                      void *cacheKeys, void *cacheValues) {
  const int64_t n = int64_t(a.segments) * a.headDim;
  const int grid = static_cast<int>(std::min<int64_t>(4096, (n + 255) / 256));
  withStorage(*ctx->gpu, [&](auto tag) {
    using T = decltype(tag);
    appendStepKernel<<<grid, 256, 0, ctx->gpu->stream>>>(
        keys, values, a.decodeStart, a.step, static_cast<T *>(cacheKeys),
        static_cast<T *>(cacheValues), a.segments, a.headDim);
  });
  CU(cudaGetLastError());
}

/// The step's last launch of an attention call: its next step.
__global__ void advanceStepKernel(int *step) { ++*step; }

/// The plugin's backend: one per process.
class CudaBackend final : public gpu::Backend {
public:
  std::string deviceCount(int64_t *count) override;
  std::string deviceName(int64_t device, std::string *name) override;
  std::string ncclVersion(int64_t *version) override;
  std::string start(fairkv_rt_session &session) override;
  void adoptWeight(fairkv_rt_ctx *ctx, Tensor *weight) override;
  void download(const Tensor *t) override;
  void fetchLastLogits(fairkv_rt_ctx *ctx) override;
  void cacheStats(const fairkv_rt_ctx *ctx, int64_t *tokens,
                  int64_t *bytes) override;
  void opBegin(fairkv_rt_ctx *ctx) override;
  void opEnd(fairkv_rt_ctx *ctx, const char *op, bool prefill) override;
  void settleOpTimes(fairkv_rt_ctx *ctx) override;
  void synchronize(fairkv_rt_ctx *ctx) override;
  void dropCache(fairkv_rt_ctx *ctx) override;
  void releaseRequest(fairkv_rt_ctx *ctx, int64_t request) override;
  void rowsChanged(fairkv_rt_ctx *ctx) override;
  void fillCache(fairkv_rt_ctx *ctx,
                 const std::vector<std::vector<int64_t>> &keep) override;
  Tensor *embedding(fairkv_rt_ctx *ctx, Tensor *ids,
                    Tensor *table) override;
  Tensor *rmsNorm(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w,
                  double eps) override;
  Tensor *projectHeads(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w,
                       Tensor *bias, int64_t heads,
                       int64_t headDim) override;
  Tensor *rotary(fairkv_rt_ctx *ctx, Tensor *x, Tensor *positions,
                 const double *invFreq, double attentionFactor,
                 int64_t dynamicMaxPositions) override;
  Tensor *attention(fairkv_rt_ctx *ctx, Tensor *q, Tensor *k,
                    Tensor *v, int64_t layer, const int64_t *kvHeads,
                    const int64_t *budgets,
                    const std::vector<int64_t> &rows) override;
  Tensor *outProj(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wo) override;
  Tensor *mlp(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wg, Tensor *wu,
              Tensor *wd) override;
  Tensor *gatedAct(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wg,
                   Tensor *wu) override;
  Tensor *add(fairkv_rt_ctx *ctx, Tensor *a, Tensor *b) override;
  Tensor *lastPosition(fairkv_rt_ctx *ctx, Tensor *x) override;
  Tensor *lmHead(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w) override;
  Tensor *greedySample(fairkv_rt_ctx *ctx, Tensor *logits) override;
  Tensor *takeRows(fairkv_rt_ctx *ctx, Tensor *x,
                   const std::vector<int64_t> &rows) override;
  Tensor *gatherRows(fairkv_rt_ctx *ctx, Tensor *x,
                     const std::string &key,
                     const std::vector<int64_t> &devices,
                     int64_t index,
                     const std::vector<std::vector<int64_t>> &owners) override;
  Tensor *addRows(fairkv_rt_ctx *ctx, Tensor *acc, Tensor *rows,
                  const std::vector<int64_t> &at) override;
  Tensor *zerosLike(fairkv_rt_ctx *ctx, Tensor *x) override;
  Tensor *allReduce(fairkv_rt_ctx *ctx, Tensor *x, int64_t kind,
                    const std::string &key) override;
  Tensor *linearAllReduce(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w,
                          Tensor *addend, int64_t blocks) override;
  Tensor *allGather(fairkv_rt_ctx *ctx, Tensor *x, int64_t axis,
                    const std::string &key) override;
  Tensor *graphStep(fairkv_rt_ctx *ctx, Tensor *ids, Tensor *positions,
                    const std::function<Tensor *()> &step) override;

private:
  Tensor *captureStep(fairkv_rt_ctx *ctx, Tensor *ids, Tensor *positions,
                      const std::function<Tensor *()> &step);
  Tensor *replayStep(fairkv_rt_ctx *ctx, Tensor *ids, Tensor *positions);
};

} // namespace

std::string CudaBackend::deviceCount(int64_t *count) {
  // Without a driver (CI, the developer machines) this fails cleanly.
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  *count = err == cudaSuccess ? n : 0;
  if (err != cudaSuccess)
    return std::string("no usable CUDA device: ") + cudaGetErrorString(err);
  return n == 0 ? "no CUDA device" : "";
}

std::string CudaBackend::deviceName(int64_t device, std::string *name) {
  cudaDeviceProp prop;
  cudaError_t err = cudaGetDeviceProperties(&prop, static_cast<int>(device));
  if (err != cudaSuccess)
    return "no CUDA device " + std::to_string(device) + ": " +
           cudaGetErrorString(err);
  *name = prop.name;
  return "";
}

std::string CudaBackend::ncclVersion(int64_t *version) {
  int v = 0;
  if (ncclResult_t res = ncclGetVersion(&v); res != ncclSuccess)
    return std::string("ncclGetVersion failed: ") + ncclGetErrorString(res);
  *version = v;
  return "";
}

std::string CudaBackend::start(fairkv_rt_session &session) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    return std::string("the CUDA backend needs a GPU: ") +
           (e != cudaSuccess ? cudaGetErrorString(e) : "none visible");
  const int64_t mpiRank = session.options.mpi_rank;
  for (auto &ctx : session.devices) {
    // An MPI rank runs only its own device.
    if (mpiRank >= 0 && ctx->device != mpiRank)
      continue;
    auto g = std::make_shared<GpuDevice>();
    g->gpu = static_cast<int>(ctx->device % count);
    g->fp16 = session.options.storage == FAIRKV_RT_STORAGE_FP16;
    if ((e = cudaSetDevice(g->gpu)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking)) !=
            cudaSuccess ||
        (e = cudaMalloc(&g->workspace, size_t(32) << 20)) != cudaSuccess)
      return std::string("CUDA: ") + cudaGetErrorString(e);
    // Every op's result comes from the device's stream-ordered pool. By
    // default the pool hands freed memory back to the driver at each
    // synchronisation, so the next step maps it again (an o_proj +
    // all_reduce of 8192 rows took 0.71 ms that way on an H200, 0.24 ms
    // with the pool kept); keeping it makes a step's allocations reuse the
    // last step's. deviceMalloc gives it back when short.
    cudaMemPool_t pool;
    uint64_t keepAll = UINT64_MAX;
    if ((e = cudaDeviceGetDefaultMemPool(&pool, g->gpu)) != cudaSuccess ||
        (e = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold,
                                     &keepAll)) != cudaSuccess)
      return std::string("CUDA: ") + cudaGetErrorString(e);
    // The handle's stream is the device's, set once: cublasSetStream puts
    // cuBLAS back on its own workspace pool, which grows a workspace for
    // every captured graph (--cuda-graphs); ours serves every GEMM.
    if (cublasCreate(&g->blas) != CUBLAS_STATUS_SUCCESS ||
        cublasSetStream(g->blas, g->stream) != CUBLAS_STATUS_SUCCESS ||
        cublasSetWorkspace(g->blas, g->workspace, size_t(32) << 20) !=
            CUBLAS_STATUS_SUCCESS)
      return "cuBLAS did not start";
    ctx->gpu = g;
  }
  if (session.options.collectives == FAIRKV_RT_COLLECTIVES_NCCL &&
      mpiRank >= 0) {
    // One process per device: rank 0 makes the communicator's id and MPI
    // hands it to the others.
    const int G = static_cast<int>(session.devices.size());
    ncclUniqueId id;
    if (mpiRank == 0)
      if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess)
        return std::string("ncclGetUniqueId: ") + ncclGetErrorString(r);
    mpi::broadcast(&id, sizeof(id), 0);
    GpuDevice &g = *session.devices[mpiRank]->gpu;
    cudaSetDevice(g.gpu);
    if (ncclResult_t r =
            ncclCommInitRank(&g.comm, G, id, static_cast<int>(mpiRank));
        r != ncclSuccess)
      return std::string("ncclCommInitRank: ") + ncclGetErrorString(r);
    return "";
  }
  if (session.options.collectives == FAIRKV_RT_COLLECTIVES_NCCL) {
    const int G = static_cast<int>(session.devices.size());
    if (G > count)
      return "NCCL collectives need one GPU per device: " + std::to_string(G) +
             " devices, " + std::to_string(count) + " GPUs visible";
    // One process drives every device: one communicator, a rank per GPU.
    std::vector<ncclComm_t> comms(G);
    std::vector<int> gpus(G);
    for (int d = 0; d < G; ++d)
      gpus[d] = session.devices[d]->gpu->gpu;
    if (ncclResult_t r = ncclCommInitAll(comms.data(), G, gpus.data());
        r != ncclSuccess)
      return std::string("ncclCommInitAll: ") + ncclGetErrorString(r);
    for (int d = 0; d < G; ++d)
      session.devices[d]->gpu->comm = comms[d];
  }
  return "";
}

void CudaBackend::adoptWeight(fairkv_rt_ctx *ctx, Tensor *w) {
  dev(ctx);
  void *p = nullptr;
  CU(deviceMalloc(&p, std::max<size_t>(16, w->f.size() * 2)));
  withStorage(*ctx->gpu, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> host(w->f.size());
    for (size_t i = 0; i < w->f.size(); ++i)
      host[i] = static_cast<T>(w->f[i]);
    CU(cudaMemcpy(p, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
  });
  int gpuIndex = ctx->gpu->gpu;
  w->device = std::shared_ptr<void>(p, [gpuIndex](void *q) {
    cudaSetDevice(gpuIndex);
    cudaFree(q);
  });
  w->storage16 = true;
  w->hostValid = false;
  std::vector<float>().swap(w->f);
}

void CudaBackend::download(const Tensor *t) {
  if (t->hostValid || !t->device || t->storage16)
    return;
  auto *m = const_cast<Tensor *>(t);
  // Device tensors of a context are only read by its own thread after its
  // stream is done, so a device-wide wait is not needed.
  cudaPointerAttributes attributes;
  CU(cudaPointerGetAttributes(&attributes, m->device.get()));
  CU(cudaSetDevice(attributes.device));
  CU(cudaDeviceSynchronize());
  if (m->isInt) {
    m->i.resize(m->numel());
    CU(cudaMemcpy(m->i.data(), m->device.get(), m->numel() * 8,
                  cudaMemcpyDeviceToHost));
  } else {
    m->f.resize(m->numel());
    CU(cudaMemcpy(m->f.data(), m->device.get(), m->numel() * 4,
                  cudaMemcpyDeviceToHost));
  }
  m->hostValid = true;
}

void CudaBackend::cacheStats(const fairkv_rt_ctx *ctx, int64_t *tokens,
                                 int64_t *bytes) {
  for (const auto &[key, c] : ctx->gpu->caches) {
    for (const auto &[request, seg] : c.segments)
      *tokens += seg.length;
    *tokens += c.plan.steps * static_cast<int64_t>(c.plan.segments.size());
  }
  *bytes += ctx->gpu->reservedBytes;
}

void CudaBackend::opBegin(fairkv_rt_ctx *ctx) {
  GpuDevice &g = dev(ctx);
  if (g.capture) {
    // An event record node: every launch records it again.
    g.openBegin = g.capture->event();
    CU(cudaEventRecordWithFlags(g.openBegin, g.stream,
                                cudaEventRecordExternal));
    return;
  }
  g.openBegin = g.timingEvent();
  CU(cudaEventRecord(g.openBegin, g.stream));
}

void CudaBackend::opEnd(fairkv_rt_ctx *ctx, const char *op, bool prefill) {
  GpuDevice &g = dev(ctx);
  if (g.capture) {
    const cudaEvent_t end = g.capture->event();
    CU(cudaEventRecordWithFlags(end, g.stream, cudaEventRecordExternal));
    const GpuDevice::TimedCall call{g.openBegin, end, op, prefill, true};
    g.timed.push_back(call);
    // A replay's times are read at the next step, as an eager step's.
    GpuDevice *device = &g;
    g.capture->hooks.push_back(
        [device, call](const auto &) { device->timed.push_back(call); });
    g.openBegin = nullptr;
    return;
  }
  const cudaEvent_t end = g.timingEvent();
  CU(cudaEventRecord(end, g.stream));
  g.timed.push_back({g.openBegin, end, op, prefill});
  g.openBegin = nullptr;
}

void CudaBackend::settleOpTimes(fairkv_rt_ctx *ctx) {
  dev(ctx).settleTimes(ctx->opTimes);
}

void CudaBackend::synchronize(fairkv_rt_ctx *ctx) {
  GpuDevice &g = dev(ctx);
  CU(cudaStreamSynchronize(g.stream));
  if (g.commStream)
    CU(cudaStreamSynchronize(g.commStream));
}

void CudaBackend::dropCache(fairkv_rt_ctx *ctx) {
  if (ctx->gpu)
    ctx->gpu->dropCaches();
}

void CudaBackend::releaseRequest(fairkv_rt_ctx *ctx, int64_t request) {
  GpuDevice &g = dev(ctx);
  for (auto &[key, c] : g.caches) {
    auto first = c.segments.lower_bound({request, 0});
    if (first == c.segments.end() || first->first.first != request)
      continue;
    // The plan points at the segments: it goes first.
    retirePlan(g, c);
    for (auto it = c.segments.lower_bound({request, 0});
         it != c.segments.end() && it->first.first == request;
         it = c.segments.erase(it)) {
      giveRange(c, it->second.base, it->second.capacity);
      g.reservedBytes -= 2 * it->second.capacity * c.headDim * 2;
    }
  }
}

void CudaBackend::rowsChanged(fairkv_rt_ctx *ctx) {
  GpuDevice &g = dev(ctx);
  for (auto &[key, c] : g.caches)
    retirePlan(g, c);
  // The old plans' tables and the old rows' index lists: stream-ordered,
  // after the launches that read them.
  for (void *p : g.batchMemory)
    CU(cudaFreeAsync(p, g.stream));
  g.batchMemory.clear();
  g.indexLists.clear();
}

void CudaBackend::fillCache(fairkv_rt_ctx *ctx,
                                const std::vector<std::vector<int64_t>> &keep) {
  GpuDevice &g = dev(ctx);
  if (g.pendingSources.size() != ctx->pending.size())
    fatal("prefill: the device lost track of its pending prefills");
  // Group the entries by attention call: (layer, its first KV head).
  std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> calls;
  for (size_t e = 0; e < ctx->pending.size(); ++e)
    calls[{ctx->pending[e].layer, g.pendingSources[e].heads->at(0)}].push_back(
        e);
  for (const auto &[call, entries] : calls) {
    const GpuDevice::PendingSource &source = g.pendingSources[entries[0]];
    std::vector<Kept> kept;
    for (size_t e : entries) {
      const GpuDevice::PendingSource &from = g.pendingSources[e];
      if (from.keys != source.keys)
        fatal("prefill: kv head " + std::to_string(call.second) +
              " of layer " + std::to_string(call.first) +
              " was prefilled by two calls");
      kept.push_back({ctx->pending[e].request, from.headIndex, {}});
      for (int64_t t : keep[e])
        kept.back().rows.push_back(from.firstRow + t * from.rowStride);
    }
    fillCall(ctx, call.first, *source.heads,
             static_cast<const float *>(source.keys.get()),
             static_cast<const float *>(source.values.get()), source.headDim,
             kept);
  }
  g.pendingSources.clear();
  CU(cudaStreamSynchronize(g.stream));
}

Tensor *CudaBackend::embedding(fairkv_rt_ctx *ctx, Tensor *ids,
                                   Tensor *table) {
  GpuDevice &g = dev(ctx);
  const int64_t vocab = table->dim(0), hidden = table->dim(1);
  auto checkIds = [vocab](const Tensor &t) {
    if (t.hostValid)
      for (int64_t id : t.i)
        if (id < 0 || id >= vocab)
          fatal("embedding: token id " + std::to_string(id) +
                " is outside the vocabulary of " + std::to_string(vocab));
  };
  checkIds(*ids);
  if (g.capture)
    g.capture->hooks.push_back(
        [checkIds](const std::shared_ptr<gpu::StepGraph> &graph) {
          checkIds(*graph->replayIds);
        });
  Tensor *out = make(ctx, {ids->dim(0), ids->dim(1), hidden});
  withStorage(g, [&](auto tag) {
    using T = decltype(tag);
    CU(fairkv::cuda::embedding(
        static_cast<const T *>(weightData(ctx, table, "embedding")),
        data<int64_t>(ctx, ids), static_cast<int>(ids->numel()),
        static_cast<int>(hidden), data<float>(ctx, out), g.stream));
  });
  return out;
}

Tensor *CudaBackend::rmsNorm(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w,
                                 double eps) {
  GpuDevice &g = dev(ctx);
  const int64_t width = x->shape.back();
  if (w->numel() != width)
    fatal("rms_norm: weight does not match the input");
  Tensor *out = make(ctx, x->shape);
  withStorage(g, [&](auto tag) {
    using T = decltype(tag);
    CU(fairkv::cuda::rmsNorm(
        data<float>(ctx, x),
        static_cast<const T *>(weightData(ctx, w, "rms_norm")),
        static_cast<int>(x->numel() / width), static_cast<int>(width),
        static_cast<float>(eps), data<float>(ctx, out), g.stream));
  });
  return out;
}

Tensor *CudaBackend::projectHeads(fairkv_rt_ctx *ctx, Tensor *x,
                                      Tensor *w, Tensor *bias, int64_t heads,
                                      int64_t headDim) {
  const int64_t hidden = x->shape.back(), rows = x->numel() / hidden;
  if (w->dim(0) != heads * headDim || w->dim(1) != hidden)
    fatal("project_heads: weight " + w->shapeString() + " does not match " +
          std::to_string(heads) + " heads of " + std::to_string(headDim));
  Tensor *out = make(ctx, {x->dim(0), x->dim(1), heads, headDim});
  linear(ctx, x, rows, hidden, w, heads * headDim, data<float>(ctx, out));
  if (bias) {
    GpuDevice &g = dev(ctx);
    withStorage(g, [&](auto tag) {
      using T = decltype(tag);
      CU(fairkv::cuda::addBias(
          data<float>(ctx, out),
          static_cast<const T *>(weightData(ctx, bias, "project_heads bias")),
          static_cast<int>(rows), static_cast<int>(heads * headDim),
          g.stream));
    });
  }
  return out;
}

Tensor *CudaBackend::rotary(fairkv_rt_ctx *ctx, Tensor *x, Tensor *pos,
                                const double *invFreq, double attentionFactor,
                                int64_t dynamicMaxPositions) {
  GpuDevice &g = dev(ctx);
  if (!pos->isInt || pos->dim(0) != x->dim(0) || pos->dim(1) != x->dim(1))
    fatal("rotary: positions " + pos->shapeString() + " do not match " +
          x->shapeString());
  if (dynamicMaxPositions > 0) {
    auto checkPositions = [dynamicMaxPositions](const Tensor &t) {
      for (int64_t position : t.i)
        if (position >= dynamicMaxPositions)
          fatal("rotary: position " + std::to_string(position) +
                " reaches max_position_embeddings = " +
                std::to_string(dynamicMaxPositions) +
                ", where rope type 'dynamic' rescales its frequencies; the "
                "CUDA backend does not yet (the CPU backend does)");
    };
    if (!pos->hostValid) {
      g.notWhileCapturing("reading positions back");
      download(pos);
    }
    checkPositions(*pos);
    if (g.capture)
      g.capture->hooks.push_back(
          [checkPositions](const std::shared_ptr<gpu::StepGraph> &graph) {
            checkPositions(*graph->replayPositions);
          });
  }
  if (!invFreq)
    fatal("rotary: no frequency table");
  const int half = static_cast<int>(x->dim(3) / 2);
  float *&table = g.ropeTables[invFreq];
  if (!table) {
    g.notWhileCapturing("a rotary table's upload");
    std::vector<float> host(invFreq, invFreq + half);
    CU(cudaMalloc(&table, half * sizeof(float)));
    CU(cudaMemcpy(table, host.data(), half * sizeof(float),
                  cudaMemcpyHostToDevice));
  }
  Tensor *out = make(ctx, x->shape);
  CU(fairkv::cuda::rotary(data<float>(ctx, x), data<int64_t>(ctx, pos),
                          static_cast<int>(x->dim(0) * x->dim(1)),
                          static_cast<int>(x->dim(2)),
                          static_cast<int>(x->dim(3)), table,
                          static_cast<float>(attentionFactor),
                          data<float>(ctx, out), g.stream));
  return out;
}

Tensor *CudaBackend::attention(fairkv_rt_ctx *ctx, Tensor *q, Tensor *k,
                                   Tensor *v, int64_t layer,
                                   const int64_t *kvHeads,
                                   const int64_t *budgets,
                                   const std::vector<int64_t> &rows) {
  GpuDevice &g = dev(ctx);
  const fairkv_rt_options &opt = ctx->session->options;
  const int b = static_cast<int>(q->dim(0)), s = static_cast<int>(q->dim(1)),
            nq = static_cast<int>(q->dim(2)), d = static_cast<int>(q->dim(3)),
            nk = static_cast<int>(k->dim(2)), group = nq / nk;
  if (d != 64 && d != 128)
    fatal("attention: the CUDA backend supports head_dim 64 and 128, not " +
          std::to_string(d));
  if (group != 1 && group != 2 && group != 4 && group != 8)
    fatal("attention: the CUDA backend supports GQA groups of 1, 2, 4 and 8");
  Tensor *out = make(ctx, q->shape);
  if (b == 0)
    return out; // a replica that serves no request of this batch
  const float *qd = data<float>(ctx, q), *kd = data<float>(ctx, k),
              *vd = data<float>(ctx, v);
  std::vector<std::shared_ptr<void>> keep;
  if (s > 1) {
    std::vector<int> lengths(b);
    for (int i = 0; i < b; ++i) {
      const int64_t length = ctx->session->promptLength(rows[i], s);
      if (length < 1 || length > s)
        fatal("attention: request " + std::to_string(rows[i]) +
              " has a prompt of " + std::to_string(length) +
              " tokens in a prefill of " + std::to_string(s));
      lengths[i] = static_cast<int>(length);
    }
    int *lengthsD = upload(ctx, lengths, keep);
    PrefillAttentionArgs pa;
    pa.queries = qd;
    pa.keys = kd;
    pa.values = vd;
    pa.lengths = lengthsD;
    pa.out = data<float>(ctx, out);
    pa.batch = b;
    pa.seq = s;
    pa.nq = nq;
    pa.nk = nk;
    pa.headDim = d;
    CU(launchPrefillAttention(pa, g.stream));

    // What each (row, head) keeps.
    const int segments = b * nk, window = static_cast<int>(opt.snapkv_window);
    std::vector<int64_t> offsets = {0};
    std::vector<int> segmentBudgets;
    for (int i = 0; i < b; ++i)
      for (int j = 0; j < nk; ++j) {
        offsets.push_back(offsets.back() + lengths[i]);
        segmentBudgets.push_back(
            static_cast<int>(std::min<int64_t>(budgets[j], INT_MAX)));
      }
    const int64_t tokens = offsets.back();
    PrefillSelectArgs a;
    a.segments = segments;
    a.window = window;
    a.kernel = static_cast<int>(opt.snapkv_kernel);
    a.group = group;
    a.headDim = d;
    a.offsets = upload(ctx, offsets, keep);
    a.budgets = upload(ctx, segmentBudgets, keep);
    auto scratch = [&](size_t bytes) {
      keep.push_back(deviceBuffer(ctx, bytes));
      return keep.back().get();
    };
    auto *packedKeys = static_cast<float *>(scratch(tokens * d * 4));
    auto *packedQueries =
        static_cast<float *>(scratch(int64_t(segments) * window * group * d * 4));
    packSegmentsKernel<<<segments, 256, 0, g.stream>>>(
        qd, kd, lengthsD, a.offsets, s, nq, nk, d, window, packedKeys,
        packedQueries);
    CU(cudaGetLastError());
    a.keysF32 = packedKeys;
    a.queries = packedQueries;
    a.logits = static_cast<float *>(scratch(tokens * 4));
    a.scores = static_cast<float *>(scratch(tokens * 4));
    a.pooled = static_cast<float *>(scratch(tokens * 4));
    a.keep = static_cast<uint8_t *>(scratch(tokens));
    a.kept = static_cast<int *>(scratch(segments * 4));
    const bool adaKV = opt.adakv_alpha >= 0;
    a.poolOnly = adaKV;
    CU(launchPrefillSelect(a, g.stream));
    if (adaKV) {
      // The layer's allocation needs every head's scores, from every
      // device: leave them for the end of the step (fairkv_rt_step_end).
      std::vector<float> pooled(tokens);
      CU(cudaMemcpyAsync(pooled.data(), a.pooled, tokens * 4,
                         cudaMemcpyDeviceToHost, g.stream));
      CU(cudaStreamSynchronize(g.stream));
      auto callHeads =
          std::make_shared<const std::vector<int64_t>>(kvHeads, kvHeads + nk);
      for (int i = 0; i < b; ++i)
        for (int j = 0; j < nk; ++j) {
          const int seg = i * nk + j, w = std::min(window, lengths[i]);
          PendingPrefill p;
          p.layer = layer;
          p.head = kvHeads[j];
          p.request = rows[i];
          p.budget = budgets[j];
          p.length = lengths[i];
          p.window = w;
          p.pooled.assign(pooled.begin() + offsets[seg],
                          pooled.begin() + offsets[seg] + lengths[i] - w);
          ctx->pending.push_back(std::move(p));
          g.pendingSources.push_back(
              {k->device, v->device,
               (int64_t(i) * s + (s - lengths[i])) * nk + j, nk, d, callHeads,
               j});
        }
    } else {
      std::vector<uint8_t> mask(tokens);
      CU(cudaMemcpyAsync(mask.data(), a.keep, tokens, cudaMemcpyDeviceToHost,
                         g.stream));
      CU(cudaStreamSynchronize(g.stream));
      std::vector<Kept> kept;
      for (int i = 0; i < b; ++i)
        for (int j = 0; j < nk; ++j) {
          const int seg = i * nk + j, pad = s - lengths[i];
          kept.push_back({rows[i], j, {}});
          for (int t = 0; t < lengths[i]; ++t)
            if (mask[offsets[seg] + t])
              kept.back().rows.push_back((int64_t(i) * s + pad + t) * nk + j);
        }
      fillCall(ctx, layer, std::vector<int64_t>(kvHeads, kvHeads + nk), kd, vd,
               d, kept);
    }
  } else {
    auto found = g.caches.find({layer, kvHeads[0]});
    if (found == g.caches.end() ||
        found->second.heads != std::vector<int64_t>(kvHeads, kvHeads + nk))
      fatal("attention: decode of layer " + std::to_string(layer) +
            " without a prefill of its kv heads");
    GpuDevice::CallCache &c = found->second;
    GpuDevice::DecodePlan &plan = c.plan;
    if (plan.rows != rows)
      planDecode(ctx, c, layer, rows, group, d);
    if (plan.steps == plan.headroom)
      fatal("attention: a request of layer " + std::to_string(layer) +
            " decodes more tokens than the batch was sized for");
    DecodeAttentionArgs a = plan.args;
    launchAppendStep(ctx, kd, vd, a, c.keys, c.values);
    a.queries = qd;
    a.out = data<float>(ctx, out);
    CU(launchDecodeAttention(a, g.stream));
    advanceStepKernel<<<1, 1, 0, g.stream>>>(plan.step);
    CU(cudaGetLastError());
    ++plan.steps;
    if (g.capture) {
      // A replay's step on the host: the same check, the same count.
      GpuDevice::DecodePlan *p = &plan;
      g.capture->hooks.push_back([p, layer](const auto &) {
        if (p->steps == p->headroom)
          fatal("attention: a request of layer " + std::to_string(layer) +
                " decodes more tokens than the batch was sized for");
        ++p->steps;
      });
    }
  }
  return out;
}

Tensor *CudaBackend::outProj(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wo) {
  const int64_t inner = x->dim(2) * x->dim(3), rows = x->dim(0) * x->dim(1);
  if (wo->dim(1) != inner)
    fatal("out_proj: weight " + wo->shapeString() + " does not match " +
          x->shapeString());
  Tensor *out = make(ctx, {x->dim(0), x->dim(1), wo->dim(0)});
  linear(ctx, x, rows, inner, wo, wo->dim(0), data<float>(ctx, out));
  return out;
}

namespace {
/// Moves wu's rows right after wg's, in one buffer, so that the gate and
/// up projections are one GEMM of 2 ffn rows; once per pair (a context's
/// weights are its own, read by its thread only).
void fuseGateAndUp(fairkv_rt_ctx *ctx, Tensor *wg, Tensor *wu, const char *op) {
  GpuDevice &g = *ctx->gpu;
  const size_t half = static_cast<size_t>(wg->numel()) * 2;
  auto *gate = static_cast<char *>(const_cast<void *>(weightData(ctx, wg, op)));
  if (static_cast<const char *>(weightData(ctx, wu, op)) == gate + half)
    return;
  g.notWhileCapturing("fusing weights");
  void *fused = nullptr;
  CU(deviceMalloc(&fused, 2 * half));
  CU(cudaMemcpyAsync(fused, gate, half, cudaMemcpyDeviceToDevice, g.stream));
  CU(cudaMemcpyAsync(static_cast<char *>(fused) + half, wu->device.get(), half,
                     cudaMemcpyDeviceToDevice, g.stream));
  // The old buffers go with the last owner; cudaFree waits for the copies.
  const int gpuIndex = g.gpu;
  std::shared_ptr<void> owner(fused, [gpuIndex](void *p) {
    cudaSetDevice(gpuIndex);
    cudaFree(p);
  });
  wg->device = std::shared_ptr<void>(owner, fused);
  wu->device = std::shared_ptr<void>(owner, static_cast<char *>(fused) + half);
}

/// The gate and up projections of x [rows, hidden] in fp32, one GEMM into
/// [rows, 2 ffn] (a temporary kept alive by `keep`): gate in the first ffn
/// columns of each row, up in the next, for siluMul with row stride 2 ffn.
std::pair<float *, float *>
gateAndUp(fairkv_rt_ctx *ctx, const char *op, Tensor *x, Tensor *wg, Tensor *wu,
          std::vector<std::shared_ptr<void>> &keep) {
  dev(ctx);
  const int64_t hidden = x->shape.back(), rows = x->numel() / hidden,
                ffn = wg->dim(0);
  if (wg->dim(1) != hidden || wu->dim(0) != ffn || wu->dim(1) != hidden)
    fatal(std::string(op) + ": weights " + wg->shapeString() + " and " +
          wu->shapeString() + " do not match " + x->shapeString());
  fuseGateAndUp(ctx, wg, wu, op);
  keep.push_back(deviceBuffer(ctx, rows * 2 * ffn * 4));
  auto *gateUp = static_cast<float *>(keep.back().get());
  gemmStorage(ctx, asStorage(ctx, x), weightData(ctx, wg, op), gateUp, rows,
              2 * ffn, hidden);
  return {gateUp, gateUp + ffn};
}
} // namespace

Tensor *CudaBackend::mlp(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wg,
                             Tensor *wu, Tensor *wd) {
  GpuDevice &g = dev(ctx);
  const int64_t hidden = x->shape.back(), rows = x->numel() / hidden,
                ffn = wg->dim(0);
  std::vector<std::shared_ptr<void>> keep;
  const std::pair<float *, float *> gateUp =
      gateAndUp(ctx, "mlp", x, wg, wu, keep);
  const float *gate = gateUp.first, *up = gateUp.second;
  keep.push_back(deviceBuffer(ctx, rows * ffn * 2));
  void *act = keep.back().get();
  withStorage(g, [&](auto tag) {
    using T = decltype(tag);
    CU(siluMul(gate, up, 2 * ffn, static_cast<int>(rows), static_cast<int>(ffn),
               static_cast<T *>(act), g.stream));
  });
  Tensor *out = make(ctx, x->shape);
  gemmStorage(ctx, act, weightData(ctx, wd, "mlp"), data<float>(ctx, out),
              rows, hidden, ffn);
  return out;
}

Tensor *CudaBackend::gatedAct(fairkv_rt_ctx *ctx, Tensor *x, Tensor *wg,
                                  Tensor *wu) {
  GpuDevice &g = dev(ctx);
  const int64_t rows = x->numel() / x->shape.back(), ffn = wg->dim(0);
  std::vector<std::shared_ptr<void>> keep;
  auto [gate, up] = gateAndUp(ctx, "gated_act", x, wg, wu, keep);
  // An fp32 activation like every op's result; the GEMM that reads it
  // rounds it to the storage type, as mlp does.
  Tensor *out = make(ctx, {x->dim(0), x->dim(1), ffn});
  CU(siluMul(gate, up, 2 * ffn, static_cast<int>(rows), static_cast<int>(ffn),
             data<float>(ctx, out), g.stream));
  return out;
}

Tensor *CudaBackend::add(fairkv_rt_ctx *ctx, Tensor *a, Tensor *b) {
  GpuDevice &g = dev(ctx);
  if (a->shape != b->shape)
    fatal("add: shapes differ");
  Tensor *out = make(ctx, a->shape);
  launchAdd(data<float>(ctx, a), data<float>(ctx, b), data<float>(ctx, out),
            a->numel(), false, g.stream);
  return out;
}

Tensor *CudaBackend::lastPosition(fairkv_rt_ctx *ctx, Tensor *x) {
  GpuDevice &g = dev(ctx);
  const int64_t b = x->dim(0), s = x->dim(1), hidden = x->dim(2);
  Tensor *out = make(ctx, {b, 1, hidden});
  if (b > 0 && hidden > 0)
    CU(cudaMemcpy2DAsync(data<float>(ctx, out), hidden * 4,
                         data<float>(ctx, x) + (s - 1) * hidden,
                         s * hidden * 4, hidden * 4, b,
                         cudaMemcpyDeviceToDevice, g.stream));
  return out;
}

Tensor *CudaBackend::lmHead(fairkv_rt_ctx *ctx, Tensor *x, Tensor *w) {
  const int64_t hidden = x->shape.back(), rows = x->numel() / hidden;
  Tensor *out = make(ctx, {x->dim(0), x->dim(1), w->dim(0)});
  linear(ctx, x, rows, hidden, w, w->dim(0), data<float>(ctx, out));
  return out;
}

Tensor *CudaBackend::greedySample(fairkv_rt_ctx *ctx, Tensor *logits) {
  GpuDevice &g = dev(ctx);
  const int64_t b = logits->dim(0), s = logits->dim(1), vocab = logits->dim(2);
  Tensor *out = make(ctx, {b}, /*isInt=*/true);
  const float *last = data<float>(ctx, logits) + (s - 1) * vocab;
  CU(argmax(last, s * vocab, static_cast<int>(b), static_cast<int>(vocab),
            data<int64_t>(ctx, out), g.stream));
  // The logits stay on the device until asked for (fetchLastLogits): a
  // greedy step neither waits here nor copies b x vocab floats to the host
  // (32 MiB a step at batch 64 and Llama 3's vocabulary).
  ctx->lastLogits.clear();
  ctx->deviceLogits = {logits->device, last, b, vocab, s * vocab};
  if (g.capture)
    // After a replay the logits are in the graph's buffer, which the
    // context's reference keeps.
    g.capture->hooks.push_back(
        [ctx, last, b, vocab, s](const std::shared_ptr<gpu::StepGraph> &graph) {
          ctx->lastLogits.clear();
          ctx->deviceLogits = {
              std::shared_ptr<void>(graph, const_cast<float *>(last)), last,
              b, vocab, s * vocab};
        });
  return out;
}

void CudaBackend::fetchLastLogits(fairkv_rt_ctx *ctx) {
  fairkv_rt_ctx::DeviceLogits &d = ctx->deviceLogits;
  if (!d.buffer)
    return;
  GpuDevice &g = dev(ctx);
  ctx->lastLogits.assign(d.rows * d.vocab, 0.0f);
  CU(cudaMemcpy2DAsync(ctx->lastLogits.data(), d.vocab * 4, d.first,
                       d.stride * 4, d.vocab * 4, d.rows,
                       cudaMemcpyDeviceToHost, g.stream));
  CU(cudaStreamSynchronize(g.stream));
  d = {};
}

Tensor *CudaBackend::takeRows(fairkv_rt_ctx *ctx, Tensor *x,
                                  const std::vector<int64_t> &rows) {
  dev(ctx);
  std::vector<int64_t> shape = x->shape;
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor *out = make(ctx, shape, x->isInt);
  const std::vector<int64_t> to = firstRows(rows.size());
  if (x->isInt)
    copyRows(ctx, data<int64_t>(ctx, x), rows, data<int64_t>(ctx, out), to,
             x->rowSize(), false);
  else
    copyRows(ctx, data<float>(ctx, x), rows, data<float>(ctx, out), to,
             x->rowSize(), false);
  return out;
}

Tensor *CudaBackend::gatherRows(
    fairkv_rt_ctx *ctx, Tensor *x, const std::string &key,
    const std::vector<int64_t> &devices, int64_t index,
    const std::vector<std::vector<int64_t>> &owners) {
  GpuDevice &g = dev(ctx);
  const int64_t participants = static_cast<int64_t>(devices.size());
  if (g.comm) {
    // Every replica sends its rows to every other one (point to point on
    // the session's communicator), then places them.
    std::vector<int64_t> shape = x->shape;
    shape[0] = ctx->batch;
    Tensor *out = make(ctx, shape);
    const int64_t row = x->rowSize();
    std::vector<std::shared_ptr<void>> keep;
    std::vector<float *> received(participants, nullptr);
    CU(ncclGroupStart());
    for (int64_t r = 0; r < participants; ++r) {
      if (r == index)
        continue;
      const size_t count = owners[r].size() * row;
      keep.push_back(deviceBuffer(ctx, count * 4));
      received[r] = static_cast<float *>(keep.back().get());
      CU(ncclSend(data<float>(ctx, x), x->numel(), ncclFloat,
                  static_cast<int>(devices[r]), g.comm, g.stream));
      CU(ncclRecv(received[r], count, ncclFloat, static_cast<int>(devices[r]),
                  g.comm, g.stream));
    }
    CU(ncclGroupEnd());
    for (int64_t r = 0; r < participants; ++r)
      copyRows(ctx, r == index ? data<float>(ctx, x) : received[r],
               firstRows(owners[r].size()), data<float>(ctx, out), owners[r],
               row, false);
    return out;
  }
  if (ctx->standInCollectives()) {
    // Solo devices' stand-in: this copy's rows in place, the others' zero.
    std::vector<int64_t> shape = x->shape;
    shape[0] = ctx->batch;
    Tensor *out = make(ctx, shape);
    CU(cudaMemsetAsync(data<float>(ctx, out), 0, out->numel() * 4, g.stream));
    copyRows(ctx, data<float>(ctx, x), firstRows(owners[index].size()),
             data<float>(ctx, out), owners[index], x->rowSize(), false);
    return out;
  }
  publish(ctx, x);
  std::vector<const Tensor *> parts =
      ctx->session->comm.exchange(key, devices, index, x);
  std::vector<int64_t> shape = x->shape;
  shape[0] = ctx->batch;
  Tensor *out = make(ctx, shape);
  std::vector<std::shared_ptr<void>> keep;
  for (int64_t r = 0; r < participants; ++r) {
    if (parts[r]->dim(0) != static_cast<int64_t>(owners[r].size()))
      fatal("gather_rows: replica rows do not match the admission");
    copyRows(ctx, static_cast<const float *>(local(ctx, parts[r], keep)),
             firstRows(owners[r].size()), data<float>(ctx, out), owners[r],
             x->rowSize(), false);
  }
  CU(cudaStreamSynchronize(g.stream));
  ctx->session->comm.leave(key, ctx->device);
  return out;
}

Tensor *CudaBackend::addRows(fairkv_rt_ctx *ctx, Tensor *acc,
                                 Tensor *rows,
                                 const std::vector<int64_t> &at) {
  GpuDevice &g = dev(ctx);
  if (rows->dim(0) != static_cast<int64_t>(at.size()) ||
      rows->rowSize() != acc->rowSize())
    fatal("add_rows: rows " + rows->shapeString() + " do not fit " +
          acc->shapeString());
  Tensor *out = make(ctx, acc->shape);
  CU(cudaMemcpyAsync(data<float>(ctx, out), data<float>(ctx, acc),
                     acc->numel() * 4, cudaMemcpyDeviceToDevice, g.stream));
  copyRows(ctx, data<float>(ctx, rows), firstRows(at.size()),
           data<float>(ctx, out), at, acc->rowSize(), true);
  return out;
}

Tensor *CudaBackend::zerosLike(fairkv_rt_ctx *ctx, Tensor *x) {
  GpuDevice &g = dev(ctx);
  Tensor *out = make(ctx, x->shape);
  CU(cudaMemsetAsync(data<float>(ctx, out), 0, x->numel() * 4, g.stream));
  return out;
}

Tensor *CudaBackend::allReduce(fairkv_rt_ctx *ctx, Tensor *x,
                                   int64_t kind, const std::string &key) {
  GpuDevice &g = dev(ctx);
  const int64_t G = static_cast<int64_t>(ctx->session->devices.size());
  if (g.comm) {
    Tensor *out = make(ctx, x->shape);
    CU(ncclAllReduce(data<float>(ctx, x), data<float>(ctx, out), x->numel(),
                     ncclFloat, kind == 1 ? ncclMax : ncclSum, g.comm,
                     g.stream));
    return out;
  }
  if (ctx->standInCollectives()) {
    // Solo devices' stand-in: this device's own part.
    Tensor *out = make(ctx, x->shape);
    CU(cudaMemcpyAsync(data<float>(ctx, out), data<float>(ctx, x),
                       x->numel() * 4, cudaMemcpyDeviceToDevice, g.stream));
    return out;
  }
  publish(ctx, x);
  std::vector<const Tensor *> parts =
      ctx->session->comm.exchange(key, everyone(G), ctx->device, x);
  Tensor *out = make(ctx, x->shape);
  float *o = data<float>(ctx, out);
  std::vector<std::shared_ptr<void>> keep;
  // Every device adds in device order: identical results everywhere.
  for (int64_t p = 0; p < G; ++p) {
    if (parts[p]->shape != x->shape)
      fatal("all_reduce: devices contribute different shapes");
    const float *part = static_cast<const float *>(local(ctx, parts[p], keep));
    if (p == 0)
      CU(cudaMemcpyAsync(o, part, x->numel() * 4, cudaMemcpyDeviceToDevice,
                         g.stream));
    else
      launchAdd(o, part, o, x->numel(), kind == 1, g.stream);
  }
  CU(cudaStreamSynchronize(g.stream));
  ctx->session->comm.leave(key, ctx->device);
  return out;
}

Tensor *CudaBackend::linearAllReduce(fairkv_rt_ctx *ctx, Tensor *x,
                                         Tensor *w, Tensor *addend,
                                         int64_t blocks) {
  GpuDevice &g = dev(ctx);
  Tensor *like = x ? x : addend;
  const int64_t rows = like->dim(0) * like->dim(1),
                hidden = w ? w->dim(0) : addend->dim(2), k = w ? w->dim(1) : 0;
  Tensor *out = make(ctx, {like->dim(0), like->dim(1), hidden});
  float *o = data<float>(ctx, out);
  const float *a = addend ? data<float>(ctx, addend) : nullptr;
  std::vector<std::shared_ptr<void>> keep;
  const void *xs = x ? asStorage(ctx, x) : nullptr;
  const auto *weights =
      w ? static_cast<const char *>(weightData(ctx, w, "linear_all_reduce"))
        : nullptr;
  if (!g.comm || blocks == 1) {
    // One GEMM onto the addend, then the plain all_reduce (NCCL or the
    // rendezvous): the rendezvous meets on the host, which would wait for
    // each block in turn (every device of the session takes this path
    // alike), and one block leaves nothing to overlap.
    if (a)
      CU(cudaMemcpyAsync(o, a, rows * hidden * 4, cudaMemcpyDeviceToDevice,
                         g.stream));
    if (x)
      gemmStorage(ctx, xs, weights, o, rows, hidden, k, /*accumulate=*/a);
    const int64_t G = static_cast<int64_t>(ctx->session->devices.size());
    return allReduce(ctx, out, 0,
                     ctx->collectiveKey("all_reduce", everyone(G)));
  }
  if (!g.commStream)
    CU(cudaStreamCreateWithFlags(&g.commStream, cudaStreamNonBlocking));
  while (g.events.size() < size_t(blocks) + 1) {
    cudaEvent_t e;
    CU(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    g.events.push_back(e);
  }
  // Blocks one after another, each [rows, width] and contiguous, as NCCL
  // needs; the communication stream reduces block c in place and copies it
  // into its columns of the result while `stream` computes block c + 1.
  keep.push_back(deviceBuffer(ctx, rows * hidden * 4));
  auto *staged = static_cast<float *>(keep.back().get());
  for (int64_t c = 0; c < blocks; ++c) {
    const int64_t c0 = c * hidden / blocks, c1 = (c + 1) * hidden / blocks,
                  width = c1 - c0;
    float *block = staged + rows * c0;
    if (a)
      CU(cudaMemcpy2DAsync(block, width * 4, a + c0, hidden * 4, width * 4,
                           rows, cudaMemcpyDeviceToDevice, g.stream));
    if (x)
      gemmStorage(ctx, xs, weights + c0 * k * 2, block, rows, width, k,
                  /*accumulate=*/a);
    CU(cudaEventRecord(g.events[c], g.stream));
    CU(cudaStreamWaitEvent(g.commStream, g.events[c], 0));
    CU(ncclAllReduce(block, block, rows * width, ncclFloat, ncclSum, g.comm,
                     g.commStream));
    CU(cudaMemcpy2DAsync(o + c0, hidden * 4, block, width * 4, width * 4, rows,
                         cudaMemcpyDeviceToDevice, g.commStream));
  }
  // Whatever reads the result, and the staging buffer's release, come
  // after the last block.
  CU(cudaEventRecord(g.events[blocks], g.commStream));
  CU(cudaStreamWaitEvent(g.stream, g.events[blocks], 0));
  return out;
}

Tensor *CudaBackend::allGather(fairkv_rt_ctx *ctx, Tensor *x, int64_t axis,
                                   const std::string &key) {
  GpuDevice &g = dev(ctx);
  const int64_t G = static_cast<int64_t>(ctx->session->devices.size());
  // NCCL gathers rank-major ([G] + shape); the copies below move each
  // rank's block to its place along `axis`.
  std::shared_ptr<void> all;
  const float *gathered = nullptr;
  std::vector<const Tensor *> parts;
  // Solo devices' stand-in: this device's part in every device's place.
  const bool standIn = ctx->standInCollectives();
  if (g.comm) {
    all = deviceBuffer(ctx, G * x->numel() * 4);
    CU(ncclAllGather(data<float>(ctx, x), static_cast<float *>(all.get()),
                     x->numel(), ncclFloat, g.comm, g.stream));
    gathered = static_cast<const float *>(all.get());
  } else if (!standIn) {
    publish(ctx, x);
    parts = ctx->session->comm.exchange(key, everyone(G), ctx->device, x);
  }
  std::vector<int64_t> shape = x->shape;
  shape[axis] *= G;
  Tensor *out = make(ctx, shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= x->shape[d];
  for (size_t d = axis; d < x->shape.size(); ++d)
    inner *= x->shape[d];
  std::vector<std::shared_ptr<void>> keep;
  for (int64_t p = 0; p < G && outer > 0 && inner > 0; ++p) {
    const float *part =
        gathered  ? gathered + p * x->numel()
        : standIn ? data<float>(ctx, x)
                  : static_cast<const float *>(local(ctx, parts[p], keep));
    CU(cudaMemcpy2DAsync(data<float>(ctx, out) + p * inner, G * inner * 4,
                         part, inner * 4, inner * 4, outer,
                         cudaMemcpyDeviceToDevice, g.stream));
  }
  // The rendezvous' parts belong to the other devices until everyone has
  // copied them; NCCL's buffer is this device's, freed in stream order.
  if (!gathered && !standIn) {
    CU(cudaStreamSynchronize(g.stream));
    ctx->session->comm.leave(key, ctx->device);
  }
  return out;
}

namespace {

/// Host data of a [batch, 1] input into `to`, a step graph's buffer.
void copyInput(GpuDevice &g, const Tensor *t, int64_t *to, int64_t batch,
               const char *what) {
  if (!t->isInt || !t->hostValid || t->numel() != batch)
    fatal(std::string("CUDA graph of a decode step: ") + what + " " +
          t->shapeString() + " are not the batch's " + std::to_string(batch) +
          " host values");
  CU(cudaMemcpyAsync(to, t->i.data(), batch * sizeof(int64_t),
                     cudaMemcpyHostToDevice, g.stream));
}

/// The context's op counts and collective counters, which a replay
/// advances as the captured step did.
using Counts = std::pair<std::map<std::string, std::pair<int64_t, double>>,
                         std::map<std::string, int64_t>>;
Counts hostCounts(const fairkv_rt_ctx *ctx) {
  Counts c;
  for (const auto &[op, t] : ctx->opTimes)
    c.first[op] = {t.calls[1], t.weightBytes[1]};
  c.second = ctx->collectiveCounts;
  return c;
}

} // namespace

Tensor *CudaBackend::graphStep(fairkv_rt_ctx *ctx, Tensor *ids,
                               Tensor *positions,
                               const std::function<Tensor *()> &step) {
  GpuDevice &g = dev(ctx);
  if (g.stepGraph && g.stepGraph->batch == ctx->batch)
    return replayStep(ctx, ids, positions);
  if (g.decodePlanned)
    return captureStep(ctx, ids, positions, step);
  // This step makes the batch's decode plans (and uploads their tables):
  // it runs as it is, and says what buffers the capture will want.
  GpuDevice::Sizing sizing;
  g.sizing = &sizing;
  Tensor *out = step();
  g.sizing = nullptr;
  g.decodePlanned = true;
  g.plannedSizes = std::move(sizing.sizes);
  return out;
}

Tensor *CudaBackend::captureStep(fairkv_rt_ctx *ctx, Tensor *ids,
                                 Tensor *positions,
                                 const std::function<Tensor *()> &step) {
  GpuDevice &g = *ctx->gpu;
  const int64_t batch = ctx->batch;
  auto graph = std::make_shared<gpu::StepGraph>(g.gpu, g.stream, deviceMalloc);
  graph->batch = batch;
  CU(graph->reserve(g.plannedSizes));
  // The inputs in the graph's buffers, copied there before the capture
  // (and before each launch), so no op uploads them.
  void *idsBuffer = nullptr, *positionsBuffer = nullptr;
  CU(graph->allocate(&idsBuffer, batch * sizeof(int64_t)));
  CU(graph->allocate(&positionsBuffer, batch * sizeof(int64_t)));
  graph->ids = static_cast<int64_t *>(idsBuffer);
  graph->positions = static_cast<int64_t *>(positionsBuffer);
  copyInput(g, ids, graph->ids, batch, "token ids");
  copyInput(g, positions, graph->positions, batch, "positions");
  ids->device = std::shared_ptr<void>(graph, graph->ids);
  positions->device = std::shared_ptr<void>(graph, graph->positions);
  const Counts before = hostCounts(ctx);
  g.capture = graph;
  if (std::string e = graph->beginCapture(); !e.empty())
    fatal("CUDA graph of a decode step: " + e);
  Tensor *out = step();
  std::string ended = graph->endCapture();
  g.capture = nullptr;
  if (!ended.empty())
    fatal("CUDA graph of a decode step: " + ended);
  if (!out || !out->isInt || out->numel() != batch || !out->device)
    fatal("CUDA graph of a decode step: the step returned no tokens on the "
          "device");
  graph->tokens = static_cast<const int64_t *>(out->device.get());
  const Counts after = hostCounts(ctx);
  for (const auto &[op, calls] : after.first) {
    auto was = before.first.find(op);
    const std::pair<int64_t, double> from =
        was == before.first.end() ? std::pair<int64_t, double>{0, 0}
                                  : was->second;
    if (calls != from)
      graph->opCalls[op] = {calls.first - from.first,
                            calls.second - from.second};
  }
  for (const auto &[group, count] : after.second) {
    auto was = before.second.find(group);
    const int64_t from = was == before.second.end() ? 0 : was->second;
    if (count != from)
      graph->collectiveCounts[group] = count - from;
  }
  // The captured step's work, done by the graph's first launch.
  CU(graph->launch());
  g.stepGraph = graph;
  return out;
}

Tensor *CudaBackend::replayStep(fairkv_rt_ctx *ctx, Tensor *ids,
                                Tensor *positions) {
  GpuDevice &g = *ctx->gpu;
  const std::shared_ptr<gpu::StepGraph> graph = g.stepGraph;
  const int64_t batch = graph->batch;
  graph->replayIds = ids;
  graph->replayPositions = positions;
  // The ops' host work for this step (a check that fails ends the run
  // before anything is launched), then the inputs and the launch.
  for (const gpu::StepGraph::Hook &hook : graph->hooks)
    hook(graph);
  copyInput(g, ids, graph->ids, batch, "token ids");
  copyInput(g, positions, graph->positions, batch, "positions");
  CU(graph->launch());
  for (const auto &[op, calls] : graph->opCalls) {
    ctx->opTimes[op].calls[1] += calls.first;
    ctx->opTimes[op].weightBytes[1] += calls.second;
  }
  for (const auto &[group, count] : graph->collectiveCounts)
    ctx->collectiveCounts[group] += count;
  auto out = std::make_unique<Tensor>();
  out->shape = {batch};
  out->isInt = true;
  out->hostValid = false;
  out->device = std::shared_ptr<void>(
      graph, const_cast<int64_t *>(graph->tokens));
  ctx->arena.push_back(std::move(out));
  return ctx->arena.back().get();
}

extern "C" __attribute__((visibility("default"))) gpu::Backend *
fairkv_rt_cuda_backend(int abi, char *error) {
  if (abi != gpu::kPluginAbi) {
    std::snprintf(error, 256,
                  "the CUDA plugin is of ABI %d, the runtime of %d",
                  gpu::kPluginAbi, abi);
    return nullptr;
  }
  static CudaBackend backend;
  return &backend;
}

//===- NoCUDA.cpp - CUDA queries when the CUDA backend is not built -------===//

#include "../Status.h"

#define FAIRKV_RT_EXPORT extern "C" __attribute__((visibility("default")))

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_cuda_device_count(int64_t *count) {
  if (!count)
    return fairkv::rt::fail(FAIRKV_ERROR_INVALID_ARGUMENT, "count is null");
  *count = 0;
  return fairkv::rt::fail(FAIRKV_ERROR_UNAVAILABLE,
                          "FairKV was built without the CUDA backend");
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_nccl_version(int64_t *version) {
  if (!version)
    return fairkv::rt::fail(FAIRKV_ERROR_INVALID_ARGUMENT, "version is null");
  return fairkv::rt::fail(FAIRKV_ERROR_UNAVAILABLE,
                          "FairKV was built without the CUDA backend");
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_cuda_device_name(int64_t, char *,
                                                            int64_t) {
  return fairkv::rt::fail(FAIRKV_ERROR_UNAVAILABLE,
                          "FairKV was built without the CUDA backend");
}

// The CUDA backend's entry points (GpuBackend.h): a session cannot start
// on GPUs, so no device context has one and none of the others is reached.

#include "../GpuBackend.h"

namespace gpu = fairkv::rt::gpu;
using fairkv::rt::Tensor;

namespace {
[[noreturn]] void unreachable() {
  fairkv::rt::fatal("FairKV was built without the CUDA backend");
}
} // namespace

std::string gpu::start(fairkv_rt_session &) {
  return "FairKV was built without the CUDA backend";
}
void gpu::adoptWeight(fairkv_rt_ctx *, Tensor *) { unreachable(); }
void gpu::download(const Tensor *) { unreachable(); }
void gpu::cacheStats(const fairkv_rt_ctx *, int64_t *, int64_t *) {
  unreachable();
}
void gpu::attentionSeconds(const fairkv_rt_ctx *, double *, double *) {
  unreachable();
}
void gpu::dropCache(fairkv_rt_ctx *) {}
void gpu::synchronize(fairkv_rt_ctx *) { unreachable(); }
void gpu::fillCache(fairkv_rt_ctx *, const std::vector<std::vector<int64_t>> &) {
  unreachable();
}
Tensor *gpu::embedding(fairkv_rt_ctx *, Tensor *, Tensor *) { unreachable(); }
Tensor *gpu::rmsNorm(fairkv_rt_ctx *, Tensor *, Tensor *, double) {
  unreachable();
}
Tensor *gpu::projectHeads(fairkv_rt_ctx *, Tensor *, Tensor *, Tensor *,
                          int64_t, int64_t) {
  unreachable();
}
Tensor *gpu::rotary(fairkv_rt_ctx *, Tensor *, Tensor *, const double *,
                    double, int64_t) {
  unreachable();
}
Tensor *gpu::attention(fairkv_rt_ctx *, Tensor *, Tensor *, Tensor *, int64_t,
                       const int64_t *, const int64_t *,
                       const std::vector<int64_t> &) {
  unreachable();
}
Tensor *gpu::outProj(fairkv_rt_ctx *, Tensor *, Tensor *) { unreachable(); }
Tensor *gpu::mlp(fairkv_rt_ctx *, Tensor *, Tensor *, Tensor *, Tensor *) {
  unreachable();
}
Tensor *gpu::gatedAct(fairkv_rt_ctx *, Tensor *, Tensor *, Tensor *) {
  unreachable();
}
Tensor *gpu::add(fairkv_rt_ctx *, Tensor *, Tensor *) { unreachable(); }
Tensor *gpu::lmHead(fairkv_rt_ctx *, Tensor *, Tensor *) { unreachable(); }
Tensor *gpu::greedySample(fairkv_rt_ctx *, Tensor *) { unreachable(); }
Tensor *gpu::takeRows(fairkv_rt_ctx *, Tensor *,
                      const std::vector<int64_t> &) {
  unreachable();
}
Tensor *gpu::gatherRows(fairkv_rt_ctx *, Tensor *, const std::string &,
                        const std::vector<int64_t> &, int64_t,
                        const std::vector<std::vector<int64_t>> &) {
  unreachable();
}
Tensor *gpu::addRows(fairkv_rt_ctx *, Tensor *, Tensor *,
                     const std::vector<int64_t> &) {
  unreachable();
}
Tensor *gpu::zerosLike(fairkv_rt_ctx *, Tensor *) { unreachable(); }
Tensor *gpu::allReduce(fairkv_rt_ctx *, Tensor *, int64_t,
                       const std::string &) {
  unreachable();
}
Tensor *gpu::linearAllReduce(fairkv_rt_ctx *, Tensor *, Tensor *, Tensor *,
                             int64_t) {
  unreachable();
}
Tensor *gpu::allGather(fairkv_rt_ctx *, Tensor *, int64_t,
                       const std::string &) {
  unreachable();
}

//===- GpuPlugin.cpp - Opening the CUDA backend, and the CUDA queries -----===//
//
// See GpuBackend.h. The queries of the ABI (fairkv_rt_cuda_device_count and
// the rest) open the plugin too: without it, or without a driver, they say
// FAIRKV_ERROR_UNAVAILABLE, so GPU tests can skip.
//
//===----------------------------------------------------------------------===//

#include "GpuBackend.h"
#include "PluginLoader.h"
#include "Status.h"

#include <cstdio>
#include <mutex>

#define FAIRKV_RT_EXPORT extern "C" __attribute__((visibility("default")))

namespace gpu = fairkv::rt::gpu;
using fairkv::rt::fail;
using fairkv::rt::ok;

namespace {
gpu::Backend *loaded = nullptr;
} // namespace

gpu::Backend *gpu::load(std::string &error) {
  static std::once_flag once;
  static std::string loadError;
  std::call_once(once, [] {
#ifndef FAIRKV_RT_HAS_CUDA
    loadError = "FairKV was built without the CUDA backend";
#else
    loaded = fairkv::rt::openBackend<Backend>(kPluginFile, kPluginEntryName,
                                              kPluginAbi, /*global=*/false,
                                              "the CUDA backend", loadError);
#endif
  });
  error = loadError;
  return loaded;
}

gpu::Backend &gpu::backend() {
  if (!loaded)
    fairkv::rt::fatal("the CUDA backend is not loaded");
  return *loaded;
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_cuda_device_count(int64_t *count) {
  if (!count)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "count is null");
  *count = 0;
  std::string error;
  gpu::Backend *b = gpu::load(error);
  if (b)
    error = b->deviceCount(count);
  if (!error.empty())
    return fail(FAIRKV_ERROR_UNAVAILABLE, error);
  return ok();
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_nccl_version(int64_t *version) {
  if (!version)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "version is null");
  std::string error;
  gpu::Backend *b = gpu::load(error);
  if (!b)
    return fail(FAIRKV_ERROR_UNAVAILABLE, error);
  if (error = b->ncclVersion(version); !error.empty())
    return fail(FAIRKV_ERROR_INTERNAL, error);
  return ok();
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_cuda_device_name(int64_t device,
                                                            char *name,
                                                            int64_t size) {
  if (!name || size < 1)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "no room for the name");
  std::string error, text;
  gpu::Backend *b = gpu::load(error);
  if (b)
    error = b->deviceName(device, &text);
  if (!error.empty())
    return fail(FAIRKV_ERROR_UNAVAILABLE, error);
  std::snprintf(name, static_cast<size_t>(size), "%s", text.c_str());
  return ok();
}

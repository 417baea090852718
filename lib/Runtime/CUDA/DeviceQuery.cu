//===- DeviceQuery.cu - CUDA and NCCL availability queries ----------------===//
//
// The CUDA backend's device and library queries. Without a driver (CI, the
// developer machines) cudaGetDeviceCount fails cleanly, which the runtime
// reports as FAIRKV_ERROR_UNAVAILABLE so GPU tests can skip.
//
//===----------------------------------------------------------------------===//

#include "Status.h"

#include <cstdio>
#include <cuda_runtime.h>
#include <nccl.h>
#include <string>

#define FAIRKV_RT_EXPORT extern "C" __attribute__((visibility("default")))

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_cuda_device_count(int64_t *count) {
  if (!count)
    return fairkv::rt::fail(FAIRKV_ERROR_INVALID_ARGUMENT, "count is null");
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    *count = 0;
    return fairkv::rt::fail(FAIRKV_ERROR_UNAVAILABLE,
                            std::string("no usable CUDA device: ") +
                                cudaGetErrorString(err));
  }
  *count = n;
  if (n == 0)
    return fairkv::rt::fail(FAIRKV_ERROR_UNAVAILABLE, "no CUDA device");
  return fairkv::rt::ok();
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_nccl_version(int64_t *version) {
  if (!version)
    return fairkv::rt::fail(FAIRKV_ERROR_INVALID_ARGUMENT, "version is null");
  int v = 0;
  ncclResult_t res = ncclGetVersion(&v);
  if (res != ncclSuccess)
    return fairkv::rt::fail(FAIRKV_ERROR_INTERNAL,
                            std::string("ncclGetVersion failed: ") +
                                ncclGetErrorString(res));
  *version = v;
  return fairkv::rt::ok();
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_cuda_device_name(int64_t device,
                                                            char *name,
                                                            int64_t size) {
  if (!name || size < 1)
    return fairkv::rt::fail(FAIRKV_ERROR_INVALID_ARGUMENT,
                            "no room for the name");
  cudaDeviceProp prop;
  cudaError_t err = cudaGetDeviceProperties(&prop, static_cast<int>(device));
  if (err != cudaSuccess)
    return fairkv::rt::fail(FAIRKV_ERROR_UNAVAILABLE,
                            std::string("no CUDA device ") +
                                std::to_string(device) + ": " +
                                cudaGetErrorString(err));
  std::snprintf(name, static_cast<size_t>(size), "%s", prop.name);
  return fairkv::rt::ok();
}

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

/*===- FairKVRuntime.h - FairKV runtime C ABI ---------------------*- C -*-===//
 *
 * The C ABI of the FairKV runtime (`fairkv_rt_*`). It has no MLIR, CUDA or
 * NCCL dependency. Every function is thread-safe unless it says otherwise;
 * errors are status codes, and fairkv_rt_last_error() gives the reason
 * (per thread).
 *
 *===----------------------------------------------------------------------===*/

#ifndef FAIRKV_RUNTIME_FAIRKVRUNTIME_H
#define FAIRKV_RUNTIME_FAIRKVRUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fairkv_status {
  FAIRKV_OK = 0,
  FAIRKV_ERROR_INVALID_ARGUMENT = 1,
  /// The backend was not built, or has no usable device.
  FAIRKV_ERROR_UNAVAILABLE = 2,
  FAIRKV_ERROR_INTERNAL = 3,
} fairkv_status_t;

/// The runtime's version string, e.g. "0.1.0". Static storage.
const char *fairkv_rt_version(void);

/// The reason for the last non-OK status returned on this thread, or "".
const char *fairkv_rt_last_error(void);

/// 1 when the CUDA backend was compiled in, 0 otherwise.
int32_t fairkv_rt_cuda_built(void);

/// Writes the number of usable CUDA devices to `*count`. Returns
/// FAIRKV_ERROR_UNAVAILABLE (with a reason) when the backend is not built or
/// no driver/device is present.
fairkv_status_t fairkv_rt_cuda_device_count(int64_t *count);

/// Writes NCCL's version code (e.g. 22809 for 2.28.9) to `*version`.
/// FAIRKV_ERROR_UNAVAILABLE when the CUDA backend is not built.
fairkv_status_t fairkv_rt_nccl_version(int64_t *version);

#ifdef __cplusplus
}
#endif

#endif /* FAIRKV_RUNTIME_FAIRKVRUNTIME_H */

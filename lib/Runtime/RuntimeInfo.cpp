//===- RuntimeInfo.cpp - FairKV runtime version and backend queries -------===//

#include "fairkv/Runtime/FairKVRuntime.h"
#include "fairkv/Version.h"

#define FAIRKV_RT_EXPORT extern "C" __attribute__((visibility("default")))

FAIRKV_RT_EXPORT const char *fairkv_rt_version(void) { return FAIRKV_VERSION; }

FAIRKV_RT_EXPORT int32_t fairkv_rt_cuda_built(void) {
#ifdef FAIRKV_RT_HAS_CUDA
  return 1;
#else
  return 0;
#endif
}

//===- Status.cpp - FairKV runtime error reporting ------------------------===//

#include "Status.h"

namespace {
thread_local std::string lastError;
} // namespace

fairkv_status_t fairkv::rt::fail(fairkv_status_t status, std::string message) {
  lastError = std::move(message);
  return status;
}

fairkv_status_t fairkv::rt::ok() {
  lastError.clear();
  return FAIRKV_OK;
}

extern "C" __attribute__((visibility("default"))) const char *
fairkv_rt_last_error(void) {
  return lastError.c_str();
}

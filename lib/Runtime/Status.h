//===- Status.h - FairKV runtime error reporting ----------------*- C++ -*-===//
//
// Per-thread last-error storage behind fairkv_rt_last_error().
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_STATUS_H
#define FAIRKV_RUNTIME_STATUS_H

#include "fairkv/Runtime/FairKVRuntime.h"

#include <string>

namespace fairkv::rt {

/// Records `message` as this thread's last error and returns `status`.
fairkv_status_t fail(fairkv_status_t status, std::string message);

/// Clears this thread's last error and returns FAIRKV_OK.
fairkv_status_t ok();

} // namespace fairkv::rt

#endif // FAIRKV_RUNTIME_STATUS_H

//===- PluginLoader.h - Opening the runtime's plugins ------------*- C++ -*-===//
//
// The CUDA backend and MPI are shared libraries beside the runtime library
// (libFairKVRuntime.so), opened when a program first asks for them and kept
// open until it exits. Looking beside the runtime, not on the library
// path, keeps a build tree's or an installed prefix's runtime with its own
// plugins, wherever either is moved.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_PLUGINLOADER_H
#define FAIRKV_RUNTIME_PLUGINLOADER_H

#include <string>

namespace fairkv::rt {

/// Opens `file` from the runtime library's directory and returns its symbol
/// `entry`, or null with a one-line `error` naming `what` (e.g. "the CUDA
/// backend"). `global` makes the plugin's libraries available to the
/// libraries they open in turn (OpenMPI's components need libmpi's).
void *openPlugin(const char *file, const char *entry, bool global,
                 const std::string &what, std::string &error);

/// Opens the plugin and asks its entry point, `Backend *entry(int abi,
/// char error[256])`, for its backend for a runtime of plugin ABI `abi`.
template <typename Backend>
Backend *openBackend(const char *file, const char *entry, int abi, bool global,
                     const std::string &what, std::string &error) {
  using Entry = Backend *(*)(int, char *);
  auto fn = reinterpret_cast<Entry>(openPlugin(file, entry, global, what, error));
  if (!fn)
    return nullptr;
  char reason[256] = "";
  Backend *backend = fn(abi, reason);
  if (!backend)
    error = "cannot load " + what + ": " + reason;
  return backend;
}

} // namespace fairkv::rt

#endif // FAIRKV_RUNTIME_PLUGINLOADER_H

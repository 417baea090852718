//===- PluginLoader.cpp - Opening the runtime's plugins -------------------===//

#include "PluginLoader.h"

#include <cstdlib>

#include <dlfcn.h>
#include <unistd.h>

namespace {

/// The directory of the library this function is in.
std::string runtimeDirectory() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void *>(&runtimeDirectory), &info) ||
      !info.dli_fname)
    return "";
  // Resolved, so that messages name the directory plainly (the loader
  // reports "prefix/bin/../lib" for a program's $ORIGIN/../lib).
  char *resolved = realpath(info.dli_fname, nullptr);
  std::string path = resolved ? resolved : info.dli_fname;
  free(resolved);
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

} // namespace

void *fairkv::rt::openPlugin(const char *file, const char *entry, bool global,
                             const std::string &what, std::string &error) {
  std::string dir = runtimeDirectory();
  if (dir.empty()) {
    error = "cannot load " + what + ": the runtime library's directory is "
            "unknown";
    return nullptr;
  }
  std::string path = dir + "/" + file;
  if (access(path.c_str(), F_OK) != 0) {
    error = what + " is not installed (no " + path + ")";
    return nullptr;
  }
  void *handle =
      dlopen(path.c_str(), RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
  if (!handle) {
    const char *reason = dlerror();
    error = "cannot load " + what + ": " + (reason ? reason : path);
    return nullptr;
  }
  // Never closed: sessions, and objects the plugin made, live until exit.
  void *symbol = dlsym(handle, entry);
  if (!symbol)
    error = "cannot load " + what + ": " + path + " has no " + entry;
  return symbol;
}

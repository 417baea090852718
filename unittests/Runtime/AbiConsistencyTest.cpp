//===- AbiConsistencyTest.cpp - Compiler and runtime agree on the ABI -----===//
//
// convert-fairkv-to-runtime declares the runtime functions from
// RuntimeAPI.def; the runtime declares (and, being extern "C", can only
// define) them from the same file. This checks the two views entry by entry
// and that the built runtime library exports every symbol.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Conversion/Passes.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <type_traits>

namespace {

struct CEntry {
  const char *symbol;
  std::vector<std::string> kinds; // result first
};

template <typename T>
std::string kindOf() {
  if (std::is_same_v<T, fairkv_rt_ctx *>)
    return "ctx";
  if (std::is_same_v<T, fairkv_rt_tensor *>)
    return "tensor";
  if (std::is_same_v<T, int64_t>)
    return "i64";
  if (std::is_same_v<T, double>)
    return "f64";
  if (std::is_same_v<T, const char *>)
    return "str";
  if (std::is_same_v<T, const int64_t *>)
    return "iarr";
  if (std::is_same_v<T, const double *>)
    return "farr";
  if (std::is_same_v<T, void>)
    return "void";
  return "?";
}

template <typename R, typename... Args>
std::vector<std::string> kindsOf(R (*)(Args...)) {
  return {kindOf<R>(), kindOf<Args>()...};
}

// The C side, read from the declared prototypes of the runtime header.
std::vector<CEntry> cEntries() {
  std::vector<CEntry> entries;
#define FAIRKV_RT_FN(name, result, args)                                       \
  entries.push_back({"fairkv_rt_" #name, kindsOf(&fairkv_rt_##name)});
#include "fairkv/Runtime/RuntimeAPI.def"
  return entries;
}

TEST(Abi, CompilerAndRuntimeAgree) {
  std::vector<CEntry> c = cEntries();
  const auto &compiler = mlir::fairkv::getRuntimeFunctions();
  ASSERT_EQ(c.size(), compiler.size());
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(c[i].symbol, compiler[i].symbol);
    std::vector<std::string> mlirKinds = {compiler[i].result};
    mlirKinds.insert(mlirKinds.end(), compiler[i].arguments.begin(),
                     compiler[i].arguments.end());
    EXPECT_EQ(c[i].kinds, mlirKinds) << c[i].symbol;
  }
}

TEST(Abi, RuntimeLibraryExportsEveryEntryPoint) {
  void *library = dlopen(FAIRKV_RUNTIME_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(library, nullptr) << dlerror();
  for (const auto &fn : mlir::fairkv::getRuntimeFunctions())
    EXPECT_NE(dlsym(library, fn.symbol.c_str()), nullptr) << fn.symbol;
  // The driver's entry points too.
  for (const char *symbol :
       {"fairkv_rt_session_create", "fairkv_rt_session_begin_batch",
        "fairkv_rt_step_begin", "fairkv_rt_step_end", "fairkv_rt_admit",
        "fairkv_rt_fatal", "fairkv_rt_write_random_weights"})
    EXPECT_NE(dlsym(library, symbol), nullptr) << symbol;
  dlclose(library);
}

} // namespace

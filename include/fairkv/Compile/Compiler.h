//===- Compiler.h - Model to executable, in process -------------*- C++ -*-===//
//
// The ahead-of-time path behind `fairkv compile`: an unsharded fairkv module
// goes through fairkv-shard-pipeline and fairkv-lower-to-llvm-pipeline, LLVM
// emits an object file for the host, and the system linker links it with
// the FairKV runtime and its program driver.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_COMPILE_COMPILER_H
#define FAIRKV_COMPILE_COMPILER_H

#include <cstdint>
#include <string>

namespace fairkv::compile {

struct CompileOptions {
  // Planning (fairkv-shard-pipeline options).
  std::string strategy = "fairkv";
  int64_t devices = 1;
  int64_t copyBudget = -1;
  double copyBudgetBytes = -1;
  double copyBudgetFraction = -1;
  bool evenShares = false;
  bool equalHeads = false;
  double timeLimit = 20;
  /// Tokens each request will decode (planned for: budget + these).
  int64_t decodeTokens = 0;
  /// The requests' prompt length (0: unknown; planned for: at most this much
  /// of each budget).
  int64_t promptTokens = 0;
  /// Balance this measured load (a --dump-kept file or fairkv-budgets/v1)
  /// instead of the budgets ("" for the budgets).
  std::string loadProfile;
  /// A distribution of prompt lengths instead of promptTokens ("" for none;
  /// parsePromptLengths' syntax).
  std::string promptLengths;
  std::string hardware = "h100-sxm";
  /// fairkv-overlap-collectives: most blocks per fused all_reduce (0: no
  /// fusion), and the fewest result bytes per block (-1: where a block pays
  /// on `hardware`).
  int64_t overlapChunks = 0;
  int64_t overlapMinChunkBytes = -1;
  /// Where to write the JSON plan report ("" for none).
  std::string report;
  /// The executable to write.
  std::string output;
  /// Directory holding libFairKVRuntime.so and libFairKVRuntimeMain.a.
  std::string runtimeLibDir;
  /// Also keep the lowered LLVM IR beside the executable (<output>.ll).
  bool keepIR = false;
};

/// Compiles `moduleText` to an executable; returns "" or a one-line error.
std::string compileToExecutable(const std::string &moduleText,
                                const CompileOptions &options);

/// The directory of the runtime libraries next to a tool installed in
/// `<prefix>/bin`: `<prefix>/lib`.
std::string defaultRuntimeLibDir(const char *argv0, void *mainAddress);

} // namespace fairkv::compile

#endif // FAIRKV_COMPILE_COMPILER_H

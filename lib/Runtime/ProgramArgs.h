//===- ProgramArgs.h - A compiled program's command line -------*- C++ -*-===//
//
// The options of a program `fairkv compile` links, parsed and checked
// before anything runs (a fuzz target drives the same parser): every
// number has a limit, and a bad combination is one line.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_PROGRAMARGS_H
#define FAIRKV_RUNTIME_PROGRAMARGS_H

#include "fairkv/Serve/Sampler.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fairkv::rt {

struct ProgramArgs {
  std::string weights, promptsFile, dumpLogits, referenceLogits, forceTokens;
  std::string backend = "cpu", collectives = "rendezvous", storage = "bf16";
  double tolerance = 1e-5, minMargin = 0;
  int64_t randomPrompts = 0, promptLen = 16, maxNew = 8, window = 8;
  int64_t kvBytes = 0, batchSize = 0, minPromptLen = 0, prefillTokens = 0;
  /// -1 until resolved: the method's default (0.2 for adakv).
  double adakvAlpha = -1;
  uint64_t seed = 1;
  bool quiet = false, useMpi = false, timeDevices = false, opTimes = false,
       cudaGraphs = false, soloDevices = false;
  /// error | warn | info (the default) | debug: what goes to stderr.
  std::string logLevel = "info";
  bool logs(const char *level) const {
    auto rank = [](const std::string &l) {
      return l == "error" ? 0 : l == "warn" ? 1 : l == "info" ? 2 : 3;
    };
    return rank(level) <= rank(logLevel);
  }
  /// Defaults from the program (its profile's method and DuoAttention
  /// sink); resolved by the method after parsing.
  std::string kvMethod = "snapkv", snapkvPool, dumpKept;
  int64_t snapkvKernel = 0, duoSink = -1;
  /// Text in, text out: the model's tokenizer, prompts as text, sampling
  /// (greedy by default), stop strings and end-of-sequence ids.
  std::string tokenizer, textPromptsFile;
  /// Serve HOST:PORT instead of running prompts; the model's name there.
  std::string serve, modelName = "fairkv";
  bool jsonLines = false;
  std::vector<std::string> textPrompts, stops;
  std::vector<int64_t> eosIds;
  bool ignoreEos = false;
  fairkv::serve::SamplingParams sampling;
};

/// Parses and checks a program's arguments into `args` (whose kvMethod and
/// duoSink hold the program's defaults). Returns the exit code when the
/// program should stop (0 after --help, 1 after a one-line error on
/// stderr), or nothing when it should run.
std::optional<int> parseProgramArgs(int argc, const char *const *argv,
                                    int64_t devices, ProgramArgs &args);

} // namespace fairkv::rt

#endif // FAIRKV_RUNTIME_PROGRAMARGS_H

//===- ProgramArgsFuzzer.cpp - A compiled program's command line ----------===//
//
// Input lines are the arguments of a compiled program. The parser accepts
// or refuses them in one line; what it accepts stays inside the limits
// every later allocation relies on. (scripts/fuzz.sh closes the targets'
// stdout and stderr: --help and the one-line errors; libFuzzer keeps its
// own report.)
//
//===----------------------------------------------------------------------===//

#include "ProgramArgs.h"

#include "fairkv/Runtime/FairKVRuntime.h"

#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::vector<std::string> words = {"program"};
  std::string word;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') {
      words.push_back(word);
      word.clear();
    } else {
      word.push_back(static_cast<char>(data[i]));
    }
  }
  words.push_back(word);
  std::vector<const char *> argv;
  for (const std::string &w : words)
    argv.push_back(w.c_str());
  argv.push_back(nullptr);
  fairkv::rt::ProgramArgs args;
  if (fairkv::rt::parseProgramArgs(static_cast<int>(words.size()),
                                   argv.data(), 2, args))
    return 0;
  const bool inside =
      args.maxNew >= 1 && args.maxNew <= FAIRKV_RT_MAX_TOKENS &&
      args.promptLen >= 2 && args.promptLen <= FAIRKV_RT_MAX_TOKENS &&
      args.window >= 1 && args.window <= FAIRKV_RT_MAX_TOKENS &&
      args.randomPrompts >= 0 &&
      args.randomPrompts * args.promptLen <= FAIRKV_RT_MAX_TOKENS * 16 &&
      args.batchSize >= 0 && args.kvBytes >= 0 && args.snapkvKernel >= 1 &&
      args.snapkvKernel % 2 == 1 && args.tolerance >= 0 &&
      (args.kvMethod != "adakv" ||
       (args.adakvAlpha >= 0 && args.adakvAlpha <= 1));
  if (!inside)
    __builtin_trap(); // accepted options outside the limits
  return 0;
}

//===- PromptLengthsBench.cpp - KV spread of tp and fairkv by prompt length -===//
//
// A head holds min(budget, prompt) + decoded tokens, so a plan made for the
// budgets alone misjudges short prompts. On the demo model (synthetic
// skewed budgets, mean 48, as `fairkv demo`), compiled for G devices, this
// decodes prompts of 32 to 4096 tokens with tp, with fairkv planned for
// that length (--prompt-tokens) and with one fairkv plan for the whole
// range (--prompt-lengths), and writes every device's KV after decoding.
//
//===----------------------------------------------------------------------===//

#include "Programs.h"
#include "ResultsFile.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <vector>

#include <unistd.h>

using namespace fairkv::bench;

namespace {

double maxOverMean(const std::vector<int64_t> &kv) {
  double total = 0, most = 0;
  for (int64_t t : kv) {
    total += t;
    most = std::max<double>(most, t);
  }
  return total > 0 ? most / (total / kv.size()) : 0;
}

std::string perDevice(const std::vector<int64_t> &kv) {
  std::string s;
  for (int64_t t : kv)
    s += (s.empty() ? "" : " ") + std::to_string(t);
  return s;
}

} // namespace

int main(int argc, char **argv) {
  BenchArgs args;
  if (int exit = parseBenchArgs(argc, argv, "fairkv-bench-prompt-lengths",
                                FAIRKV_SOURCE_DIR,
                                {{"devices", "4"},
                                 {"prompts", "8"},
                                 {"new-tokens", "8"}},
                                args);
      exit >= 0)
    return exit;
  const int G = std::atoi(args.values["devices"].c_str());
  const int64_t prompts = std::atoll(args.values["prompts"].c_str());
  const int64_t newTokens = std::atoll(args.values["new-tokens"].c_str());
  if (G <= 0 || prompts <= 0 || newTokens <= 0) {
    std::cerr << "fairkv-bench-prompt-lengths: error: --devices, --prompts "
                 "and --new-tokens must be positive\n";
    return 1;
  }
  const std::vector<int64_t> lengths = {32, 64, 128, 256, 512, 1024, 2048, 4096};
  std::string all;
  for (int64_t p : lengths)
    all += (all.empty() ? "" : ",") + std::to_string(p);

  const fairkv::bench::TempDir work("fairkv-bench-prompt-lengths");
  if (work.path().empty()) {
    std::cerr << "fairkv-bench-prompt-lengths: error: no temporary directory\n";
    return 1;
  }
  const std::string &dir = work.path(), fairkv = binDir() + "/fairkv";
  const std::string weights = dir + "/demo.safetensors";
  const std::string common = " --model demo --profile synthetic --seed 1 "
                             "--mean-tokens 48 --devices " +
                             std::to_string(G) + " --decode-tokens " +
                             std::to_string(newTokens);
  auto fail = [&](const std::string &message) {
    std::cerr << "fairkv-bench-prompt-lengths: error: " << message << "\n";
    return 1;
  };
  bool ok = false;
  std::string log = run(fairkv + " weights --model demo --seed 1 -o " +
                            weights + " 2>&1",
                        ok);
  if (!ok)
    return fail(log);
  auto compile = [&](const std::string &name, const std::string &flags) {
    bool done = false;
    std::string out = run(fairkv + " compile" + common + " " + flags + " -o " +
                              dir + "/" + name + " 2>&1",
                          done);
    return done ? std::string() : out;
  };
  // One plan for the whole range, equal weights.
  if (std::string e = compile("fairkv-range",
                              "--strategy fairkv --prompt-lengths " + all);
      !e.empty())
    return fail(e);
  if (std::string e = compile("tp", "--strategy tp"); !e.empty())
    return fail(e);
  std::ostringstream md;
  md << "## KV spread by prompt length (`bench/prompt-lengths`)\n\n"
     << "Machine: " << machineDescription() << ". Run: " << utcNow() << ".\n"
     << "The demo model (4 layers x 8 KV heads, random weights), synthetic "
        "skewed budgets (seed 1, mean 48 tokens per KV head), G = "
     << G << ", " << prompts << " random prompts of each length, "
     << newTokens
     << " new tokens, CPU backend. Per-device KV tokens after decoding "
        "(exact, not timed). fairkv (P) is planned for prompts of P tokens "
        "(`--prompt-tokens P`); fairkv (range) is one plan for the whole "
        "range of lengths, equal weights (`--prompt-lengths "
     << all << "`).\n\n"
     << "| prompt | tp | fairkv (P) | fairkv (range) | tp max/mean | fairkv "
        "(P) max/mean | fairkv (range) max/mean |\n"
     << "|---|---|---|---|---|---|---|\n";
  for (int64_t p : lengths) {
    std::cerr << "prompt length " << p << "..." << std::endl;
    const std::string name = "fairkv-" + std::to_string(p);
    if (std::string e = compile(name, "--strategy fairkv --prompt-tokens " +
                                          std::to_string(p));
        !e.empty())
      return fail(e);
    std::vector<int64_t> tp, planned, range;
    for (auto [program, kv] :
         {std::pair{std::string("tp"), &tp}, {name, &planned},
          {std::string("fairkv-range"), &range}})
      if (std::string e = kvAfterDecode(dir + "/" + program, weights, "", G,
                                        prompts, p, newTokens, *kv);
          !e.empty())
        return fail(e);
    md << "| " << p << " | " << perDevice(tp) << " | " << perDevice(planned)
       << " | " << perDevice(range) << " | "
       << formatNumber("%.3f", maxOverMean(tp)) << " | "
       << formatNumber("%.3f", maxOverMean(planned)) << " | "
       << formatNumber("%.3f", maxOverMean(range)) << " |\n";
  }
  md << "\n";
  if (!writeSection(args.results, "prompt-lengths", md.str())) {
    std::cerr << "fairkv-bench-prompt-lengths: error: cannot write "
              << args.results << "\n";
    return 1;
  }
  std::cout << "fairkv-bench-prompt-lengths: wrote " << args.results << "\n";
  return 0;
}

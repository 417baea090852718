//===- DemoCommand.cpp - `fairkv demo`: the whole path on a tiny model ----===//
//
// With no arguments and no download: a random-weight model with 8 KV heads
// and a seeded, skewed per-head budget profile is planned for 4 devices with
// tp and with fairkv, compiled twice, and both programs decode the same
// prompts on the CPU backend. It shows that the tokens agree and how KV and
// attention time spread over the devices under each plan.
//
//===----------------------------------------------------------------------===//

#include "Commands.h"

#include "fairkv/Compile/Compiler.h"
#include "fairkv/Import/ModelWriter.h"
#include "fairkv/Placement/Report.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <CLI/CLI.hpp>
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

using namespace fairkv::placement;

namespace {

struct DemoArgs {
  int64_t devices = 4;
  int64_t prompts = 32;
  int64_t promptLen = 320;
  int64_t maxNew = 8;
  bool keep = false;
};

struct RunResult {
  std::vector<std::string> tokens;
  std::vector<double> attentionSeconds;
  std::vector<int64_t> kvTokens;
};

int fail(const std::string &message) {
  std::cerr << "fairkv demo: error: " << message << "\n";
  return 1;
}

std::string fmt(const char *format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

/// Runs a compiled program and reads its tokens and per-device figures.
std::string run(const std::string &program, const std::vector<std::string> &args,
                const std::string &outPath, RunResult &result) {
  llvm::SmallVector<llvm::StringRef> argv = {program};
  for (const std::string &a : args)
    argv.push_back(a);
  std::optional<llvm::StringRef> redirects[] = {std::nullopt,
                                                llvm::StringRef(outPath),
                                                std::nullopt};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(program, argv, std::nullopt, redirects, 0,
                                     0, &message);
  if (rc != 0)
    return program + " failed (exit " + std::to_string(rc) + ")" +
           (message.empty() ? "" : ": " + message);
  std::ifstream in(outPath);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("request ", 0) == 0) {
      result.tokens.push_back(line.substr(line.find(':') + 1));
    } else if (line.rfind("device ", 0) == 0) {
      double seconds = 0, prefill = 0;
      long long g = 0, tokens = 0, bytes = 0;
      if (std::sscanf(line.c_str(),
                      "device %lld: decode attention %lf s, prefill attention "
                      "%lf s, KV tokens held %lld, KV pool bytes %lld",
                      &g, &seconds, &prefill, &tokens, &bytes) == 5) {
        result.attentionSeconds.push_back(seconds);
        result.kvTokens.push_back(tokens);
      }
    }
  }
  return "";
}

double maxOverMean(const std::vector<double> &v) {
  double mx = 0, sum = 0;
  for (double x : v) {
    mx = std::max(mx, x);
    sum += x;
  }
  return sum > 0 ? mx / (sum / v.size()) : 1.0;
}

int runDemo(const DemoArgs &a, const std::string &libDir) {
  llvm::SmallString<128> dir;
  if (llvm::sys::fs::createUniqueDirectory("fairkv-demo", dir))
    return fail("cannot create a temporary directory");
  const std::string tmp(dir);
  ModelConfig model = *modelPreset("demo");
  BudgetProfile profile = syntheticProfile(model.layers, model.kvHeads,
                                           /*seed=*/1, /*skew=*/1.0,
                                           /*meanTokens=*/48);
  Hardware hw = *hardwarePreset("h100-sxm");
  std::cout << "FairKV demo: model '" << model.name << "' (" << model.layers
            << " layers, " << model.heads << " query / " << model.kvHeads
            << " KV heads, random weights), synthetic skewed budgets (mean "
               "48 tokens per KV head), "
            << a.devices << " devices, CPU backend\n"
            << "work directory: " << tmp << "\n\n";
  std::string weights = tmp + "/demo.safetensors";
  if (fairkv_rt_write_random_weights(
          weights.c_str(), model.layers, model.hidden, model.heads,
          model.kvHeads, model.headDim, model.ffn, model.vocab, 1,
          "f32") != FAIRKV_OK)
    return fail(fairkv_rt_last_error());
  const std::string text = fairkv::import::writeModelModule(model, profile);

  std::vector<std::string> strategies = {"tp", "fairkv"};
  std::vector<RunResult> runs;
  for (const std::string &s : strategies) {
    PlanOptions po;
    po.strategy = *parseStrategy(s);
    po.devices = static_cast<int>(a.devices);
    // Every head will also hold the decoded tokens: plan for them.
    po.decodeTokens = a.maxNew;
    po.promptTokens = a.promptLen;
    Result<PlanReport> plan = planAndEvaluate(profile, model, hw, po, 32);
    if (!plan)
      return fail(plan.error());
    std::cout << "[" << s << "] plan: attention imbalance "
              << fmt("%.3f", plan->metrics.attentionImbalance)
              << ", extra replicas " << plan->metrics.extraReplicas
              << "; compiling..." << std::endl;
    fairkv::compile::CompileOptions co;
    co.strategy = s;
    co.devices = a.devices;
    co.decodeTokens = a.maxNew;
    co.promptTokens = a.promptLen;
    co.output = tmp + "/program-" + s;
    co.runtimeLibDir = libDir;
    if (std::string error = fairkv::compile::compileToExecutable(text, co);
        !error.empty())
      return fail(error);
    RunResult r;
    if (std::string error =
            run(co.output,
                {"--weights", weights, "--random-prompts",
                 std::to_string(a.prompts), "--prompt-len",
                 std::to_string(a.promptLen), "--max-new-tokens",
                 std::to_string(a.maxNew), "--seed", "1"},
                tmp + "/out-" + s + ".txt", r);
        !error.empty())
      return fail(error);
    if (r.attentionSeconds.size() != static_cast<size_t>(a.devices) ||
        r.tokens.size() != static_cast<size_t>(a.prompts))
      return fail("unexpected output from " + co.output);
    runs.push_back(std::move(r));
  }

  const bool agree = runs[0].tokens == runs[1].tokens;
  std::cout << "\ngenerated tokens (" << a.prompts << " prompts of "
            << a.promptLen << " tokens, " << a.maxNew
            << " new tokens each), first requests:\n";
  for (int64_t i = 0; i < std::min<int64_t>(3, a.prompts); ++i)
    std::cout << "  request " << i << ":" << runs[0].tokens[i] << "\n";
  std::cout << "tokens agree between tp and fairkv: "
            << (agree ? "yes" : "NO") << "\n\n";
  std::cout << "per device: KV tokens held after decoding, and time in "
               "decode attention\n"
            << "device   KV tokens tp   KV tokens fairkv   attention ms tp   "
               "attention ms fairkv\n";
  for (int64_t g = 0; g < a.devices; ++g) {
    char line[128];
    std::snprintf(line, sizeof(line), "%6lld %14lld %18lld %17.2f %21.2f\n",
                  static_cast<long long>(g),
                  static_cast<long long>(runs[0].kvTokens[g]),
                  static_cast<long long>(runs[1].kvTokens[g]),
                  runs[0].attentionSeconds[g] * 1e3,
                  runs[1].attentionSeconds[g] * 1e3);
    std::cout << line;
  }
  std::vector<double> kv0(runs[0].kvTokens.begin(), runs[0].kvTokens.end()),
      kv1(runs[1].kvTokens.begin(), runs[1].kvTokens.end());
  std::cout << "max/mean   " << fmt("%12.3f", maxOverMean(kv0))
            << fmt("%19.3f", maxOverMean(kv1))
            << fmt("%18.3f", maxOverMean(runs[0].attentionSeconds))
            << fmt("%22.3f", maxOverMean(runs[1].attentionSeconds)) << "\n"
            << "(attention times come from CPU threads sharing this "
               "machine's cores: noisy; the KV spread is exact)\n";

  // The same programs under the other compression methods (--kv-method):
  // Ada-KV shares each layer's budget per request by the heads' scores, so
  // what a device holds moves with the prompts; DuoAttention's streaming
  // heads stay at their budget while decoding.
  struct MethodRuns {
    std::string name;
    std::vector<std::string> extra;
    std::vector<RunResult> runs;
  };
  std::vector<MethodRuns> methods = {{"snapkv", {}, {}},
                                     {"headkv", {"--kv-method", "headkv"}, {}},
                                     {"adakv", {"--kv-method", "adakv"}, {}},
                                     {"duo",
                                      {"--kv-method", "duo", "--duo-sink", "4"},
                                      {}}};
  methods[0].runs = runs;
  bool methodsAgree = true;
  for (MethodRuns &m : methods) {
    if (!m.runs.empty())
      continue;
    for (const std::string &s : strategies) {
      std::vector<std::string> programArgs = {
          "--weights",     weights,
          "--random-prompts", std::to_string(a.prompts),
          "--prompt-len",  std::to_string(a.promptLen),
          "--max-new-tokens", std::to_string(a.maxNew),
          "--seed",        "1"};
      programArgs.insert(programArgs.end(), m.extra.begin(), m.extra.end());
      RunResult r;
      if (std::string error = run(tmp + "/program-" + s, programArgs,
                                  tmp + "/out-" + m.name + "-" + s + ".txt", r);
          !error.empty())
        return fail(error);
      if (r.kvTokens.size() != static_cast<size_t>(a.devices))
        return fail("unexpected output from the " + m.name + " run of " + s);
      m.runs.push_back(std::move(r));
    }
    methodsAgree = methodsAgree && m.runs[0].tokens == m.runs[1].tokens;
  }
  std::cout << "\nper device: KV tokens held after decoding, by method "
               "(--kv-method), tp / fairkv\n  device";
  char cell[64];
  for (const MethodRuns &m : methods) {
    std::snprintf(cell, sizeof(cell), "%18s", m.name.c_str());
    std::cout << cell;
  }
  std::cout << "\n";
  for (int64_t g = 0; g <= a.devices; ++g) {
    std::snprintf(cell, sizeof(cell), g < a.devices ? "%8lld" : "max/mean",
                  static_cast<long long>(g));
    std::cout << cell;
    for (const MethodRuns &m : methods) {
      if (g < a.devices) {
        std::snprintf(cell, sizeof(cell), "%10lld /%6lld",
                      static_cast<long long>(m.runs[0].kvTokens[g]),
                      static_cast<long long>(m.runs[1].kvTokens[g]));
      } else {
        std::vector<double> tp(m.runs[0].kvTokens.begin(),
                               m.runs[0].kvTokens.end()),
            fk(m.runs[1].kvTokens.begin(), m.runs[1].kvTokens.end());
        std::snprintf(cell, sizeof(cell), "%10.3f /%6.3f", maxOverMean(tp),
                      maxOverMean(fk));
      }
      std::cout << cell;
    }
    std::cout << "\n";
  }
  std::cout << "tokens agree between tp and fairkv under every method: "
            << (methodsAgree ? "yes" : "NO") << "\n";

  // Ada-KV moves budget between a layer's heads per request, so the static
  // budgets mis-predict the load. Calibrate: run the fairkv program under
  // adakv on other prompts, and plan from what each head kept there.
  const std::string kept = tmp + "/calibration.kept";
  std::vector<std::string> adakvArgs = {
      "--weights",        weights,
      "--random-prompts", std::to_string(a.prompts),
      "--prompt-len",     std::to_string(a.promptLen),
      "--max-new-tokens", std::to_string(a.maxNew),
      "--kv-method",      "adakv"};
  std::vector<std::string> calibrationArgs = adakvArgs;
  calibrationArgs.insert(calibrationArgs.end(),
                         {"--seed", "2", "--dump-kept", kept});
  RunResult calibration, calibrated;
  fairkv::compile::CompileOptions co;
  co.strategy = "fairkv";
  co.devices = a.devices;
  co.decodeTokens = a.maxNew;
  co.promptTokens = a.promptLen;
  co.loadProfile = kept;
  co.output = tmp + "/program-fairkv-adakv";
  co.runtimeLibDir = libDir;
  adakvArgs.insert(adakvArgs.end(), {"--seed", "1"});
  if (std::string error = run(tmp + "/program-fairkv", calibrationArgs,
                              tmp + "/out-calibration.txt", calibration);
      !error.empty())
    return fail(error);
  std::cout << "\n[fairkv] planning from the heads' mean kept tokens of an "
               "adakv run on other prompts (--load-profile); compiling..."
            << std::endl;
  if (std::string error = fairkv::compile::compileToExecutable(text, co);
      !error.empty())
    return fail(error);
  if (std::string error = run(co.output, adakvArgs,
                              tmp + "/out-adakv-calibrated.txt", calibrated);
      !error.empty())
    return fail(error);
  if (calibrated.kvTokens.size() != static_cast<size_t>(a.devices))
    return fail("unexpected output from " + co.output);
  const MethodRuns &adakv = methods[2];
  const bool calibratedAgree = calibrated.tokens == adakv.runs[0].tokens;
  std::cout << "adakv, per device KV tokens: tp / fairkv (budgets) / fairkv "
               "(calibrated)\n";
  for (int64_t g = 0; g < a.devices; ++g) {
    std::snprintf(cell, sizeof(cell), "%8lld %10lld /%6lld /%6lld\n",
                  static_cast<long long>(g),
                  static_cast<long long>(adakv.runs[0].kvTokens[g]),
                  static_cast<long long>(adakv.runs[1].kvTokens[g]),
                  static_cast<long long>(calibrated.kvTokens[g]));
    std::cout << cell;
  }
  auto spread = [](const RunResult &r) {
    return maxOverMean(std::vector<double>(r.kvTokens.begin(),
                                           r.kvTokens.end()));
  };
  std::snprintf(cell, sizeof(cell), "max/mean %10.3f /%6.3f /%6.3f\n",
                spread(adakv.runs[0]), spread(adakv.runs[1]),
                spread(calibrated));
  std::cout << cell << "tokens agree with tp: "
            << (calibratedAgree ? "yes" : "NO") << "\n";
  if (!a.keep)
    llvm::sys::fs::remove_directories(tmp);
  return agree && methodsAgree && calibratedAgree ? 0 : 1;
}

} // namespace

std::function<int()> fairkv::tool::addDemoCommand(CLI::App &app,
                                                  std::string libDir) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App *c = app.add_subcommand(
      "demo", "Plan, compile and run a tiny random-weight model with tp and "
              "with fairkv on the CPU backend, and compare (no download, no "
              "GPU)");
  c->add_option("--devices", args->devices, "devices (2, 4 or 8)")
      ->check(CLI::IsMember({2, 4, 8}))
      ->capture_default_str();
  c->add_option("--prompts", args->prompts, "prompts in the batch")
      ->capture_default_str();
  c->add_option("--prompt-len", args->promptLen, "tokens per prompt")
      ->capture_default_str();
  c->add_option("--max-new-tokens", args->maxNew, "tokens to generate")
      ->capture_default_str();
  c->add_flag("--keep", args->keep, "keep the work directory");
  return [args, libDir] { return runDemo(*args, libDir); };
}

//===- DeviceTimesBench.cpp - Compiled step time of every device of a plan -===//
//
// For G-device tp and fairkv plans of the HeadKV profile, compiles the
// programs users run (`fairkv compile`) and runs each with --solo-devices,
// which runs each device's decode steps alone (collectives stood in for
// locally): each device's busy time per decode step is what its share
// takes on a machine (a GPU, or these cores) to itself. From them, the predicted G-machine step: the
// slowest device plus the step's collectives from the cost model on the
// hardware preset's links; their tp/fairkv ratio is held against the
// planner's prediction (its error). The unsharded program of the same
// model, too: its decode step's time against the bytes a step reads
// (every weight but the embedding table, and the KV held), as a bandwidth
// and a share of the copy bandwidth (--copy-gbps, read + write; on the
// CPU measured here with memcpy when not given), with every op timed
// (--op-times: where the step goes) and, on a GPU, again with its decode
// steps replayed from a CUDA graph (--cuda-graphs). Writes its section of
// bench/RESULTS.md.
//
// On the CPU the model is the llama-3-8b attention (32 query / 8 KV heads
// of 128) with a small hidden size, MLP and vocabulary and the budgets
// scaled to a mean of half the prompt, so that KV is a real part of a step
// on 2 cores; on a GPU (--backend cuda) the llama-3-8b shape itself.
//
// Usage: fairkv-bench-device-times [--profiles DIR] [--results FILE]
//   [--backend cpu|cuda] [--devices G] [--batches LIST] [--layers N]
//   [--hidden N] [--ffn N] [--vocab N] [--prompt-len N] [--new-tokens N]
//   [--mean-budget N (0: the profile's own)] [--hw PRESET] [--repeats N]
//   [--copy-gbps X] [--work DIR (programs and weights; kept)]
//   [--compile-only 1] [--prefill-tokens N (the programs' option)]
// "auto" defaults, cpu / cuda: batches 16 / 64,256; layers 4 / 8; hidden
// 1024 / 4096; ffn 1024 / 14336; vocab 4096 / 128256; prompt-len 256 / 640;
// mean-budget 128 / 0; repeats 3 / 1; prefill-tokens 0 / 16384 (on one GPU
// the G devices' prefill activations of 256 prompts of 640 tokens would
// not fit beside the weights and KV; the decode steps are the same).
//
//===----------------------------------------------------------------------===//

#include "Profiles.h"
#include "Programs.h"
#include "ResultsFile.h"
#include "fairkv/Placement/Plan.h"
#include "fairkv/Placement/Report.h"
#include "fairkv/Placement/Strategies.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

using namespace fairkv::placement;
using fairkv::bench::binDir;
using fairkv::bench::formatNumber;
using fairkv::bench::run;

namespace {

constexpr const char *kTool = "fairkv-bench-device-times";

int fail(const std::string &message) {
  std::cerr << kTool << ": error: " << message << "\n";
  return 1;
}

/// What a program's report says of each device: its median decode step
/// alone ("device g alone: X s per decode step"), the KV tokens it held
/// at the end ("device g: ... KV tokens held N") and the most bytes of step
/// tensors it held at once in the prefill ("device g: step tensors at most
/// B bytes at once in prefill").
struct DeviceReport {
  std::vector<double> seconds;
  std::vector<int64_t> tokensHeld, prefillTensorBytes;
};

std::string readDeviceReport(const std::string &log, int G,
                             DeviceReport &report) {
  report.seconds.assign(G, -1);
  report.tokensHeld.assign(G, -1);
  report.prefillTensorBytes.assign(G, -1);
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    int g = -1;
    double s = 0;
    if (std::sscanf(line.c_str(), "device %d alone: %lf s per decode step",
                    &g, &s) == 2 &&
        g >= 0 && g < G)
      report.seconds[g] = s;
    const size_t held = line.find("KV tokens held ");
    if (std::sscanf(line.c_str(), "device %d: decode attention", &g) == 1 &&
        g >= 0 && g < G && held != std::string::npos)
      report.tokensHeld[g] = std::atoll(line.c_str() + held + 15);
    long long bytes = 0;
    if (std::sscanf(line.c_str(), "device %d: step tensors at most %lld", &g,
                    &bytes) == 2 &&
        g >= 0 && g < G)
      report.prefillTensorBytes[g] = bytes;
  }
  for (int g = 0; g < G; ++g)
    if (!(report.seconds[g] > 0) || report.tokensHeld[g] < 0 ||
        report.prefillTensorBytes[g] < 0)
      return "no decode-step time, KV tokens or step tensor bytes for "
             "device " +
             std::to_string(g) + " in the program's report:\n" + log;
  return "";
}

/// Bytes of the weights a decode step reads, `element` bytes each: every
/// layer's, the final norm's and the lm_head's (the embedding table is
/// only gathered from).
double weightBytesPerStep(const ModelConfig &m, double element) {
  const double attention = double(m.hidden) * m.headDim * (m.heads + 2 * m.kvHeads) +
                           double(m.heads) * m.headDim * m.hidden;
  const double layer = attention + 3.0 * m.hidden * m.ffn + 2.0 * m.hidden;
  return element * (m.layers * layer + m.hidden + double(m.vocab) * m.hidden);
}

/// This host's memcpy bandwidth (read + write, the convention of the GPU
/// bench's copy), the best of a few copies of 256 MiB.
double hostCopyBytesPerSecond() {
  const size_t bytes = size_t(256) << 20;
  std::vector<char> from(bytes, 1), to(bytes, 0);
  double best = 0;
  for (int r = 0; r < 4; ++r) {
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(to.data(), from.data(), bytes);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    best = std::max(best, 2.0 * bytes / s);
    from[r] = to[bytes - 1 - r]; // each copy depends on the last
  }
  return best;
}

/// Runs `program` once with --time-devices (and `extra` options) on
/// `batch` random prompts; each device's median decode step and KV tokens
/// in `report`, or the one-line failure; the whole output in `log`.
std::string runAlone(const std::string &program, const std::string &weights,
                     const std::string &backend, int G, int64_t batch,
                     int64_t promptLen, int64_t newTokens,
                     DeviceReport &report, std::string *whole = nullptr,
                     const std::string &extra = "") {
  bool ok = false;
  std::string log =
      run(program + " --weights " + weights + " --random-prompts " +
              std::to_string(batch) + " --batch-size " +
              std::to_string(batch) + " --prompt-len " +
              std::to_string(promptLen) + " --max-new-tokens " +
              std::to_string(newTokens) + " --backend " + backend +
              " --time-devices" + extra + " 2>&1",
          ok);
  if (whole)
    *whole = log;
  if (!ok) {
    // Its last line is the program's one-line error.
    std::string last = log.substr(0, log.find_last_not_of('\n') + 1);
    return program.substr(program.rfind("prog-") + 5) + " failed: " +
           last.substr(last.find_last_of('\n') + 1);
  }
  return readDeviceReport(log, G, report);
}

/// The op table --op-times printed for device 0 (from its title to the
/// decode step's wall time), or "".
std::string opTable(const std::string &log) {
  const size_t begin = log.find("op times, device 0 ");
  const size_t wall = log.find("decode step, wall", begin);
  if (begin == std::string::npos || wall == std::string::npos)
    return "";
  return log.substr(begin, log.find('\n', wall) - begin + 1);
}

std::vector<int64_t> parseList(const std::string &text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty())
      out.push_back(std::atoll(item.c_str()));
  return out;
}

} // namespace

int main(int argc, char **argv) {
  fairkv::bench::BenchArgs args;
  if (int exit = fairkv::bench::parseBenchArgs(
          argc, argv, kTool, FAIRKV_SOURCE_DIR,
          {{"backend", "cpu"},
           {"devices", "8"},
           {"batches", "auto"},
           {"layers", "auto"},
           {"hidden", "auto"},
           {"ffn", "auto"},
           {"vocab", "auto"},
           {"prompt-len", "auto"},
           {"new-tokens", "9"},
           {"mean-budget", "auto"},
           {"hw", "h100-sxm"},
           {"repeats", "auto"},
           {"copy-gbps", "auto"},
           {"work", ""},
           {"compile-only", "0"},
           {"prefill-tokens", "auto"}},
          args);
      exit >= 0)
    return exit;
  auto value = [&](const std::string &name, const std::string &cpu,
                   const std::string &gpu) {
    const std::string &v = args.values[name];
    // "auto": the backend's default (the header comment's).
    return v != "auto" ? v : args.values["backend"] == "cuda" ? gpu : cpu;
  };
  const std::string backend = args.values["backend"];
  if (backend != "cpu" && backend != "cuda")
    return fail("--backend must be cpu or cuda");
  const bool cuda = backend == "cuda";
  const int G = std::atoi(args.values["devices"].c_str());
  const std::vector<int64_t> batches =
      parseList(value("batches", "16", "64,256"));
  const int64_t promptLen = std::atoll(value("prompt-len", "256", "640").c_str()),
                newTokens = std::atoll(args.values["new-tokens"].c_str()),
                meanBudget = std::atoll(value("mean-budget", "128", "0").c_str());
  const int64_t repeats = std::atoll(value("repeats", "3", "1").c_str());
  const int64_t prefillTokens =
      std::atoll(value("prefill-tokens", "0", "16384").c_str());
  if (G < 2 || batches.empty() || promptLen < 2 || newTokens < 2 ||
      repeats < 1 || prefillTokens < 0)
    return fail("--devices must be at least 2, --batches non-empty, "
                "--prompt-len and --new-tokens at least 2, --repeats at "
                "least 1, --prefill-tokens non-negative");
  // Every run's prefill, in groups of requests of at most this many tokens.
  const std::string prefillOption =
      prefillTokens > 0 ? " --prefill-tokens " + std::to_string(prefillTokens)
                        : std::string();
  if (args.values["compile-only"] == "1" && args.values["work"].empty())
    return fail("--compile-only needs --work DIR (where the programs stay)");
  Result<Hardware> hw = hardwarePreset(args.values["hw"]);
  if (!hw)
    return fail(hw.error());

  ModelConfig full = *modelPreset("llama-3-8b");
  Result<BudgetProfile> headkv =
      fairkv::bench::loadLlama3HeadKV(args.profiles, full);
  if (!headkv)
    return fail(headkv.error());
  ModelConfig model = full;
  model.layers = std::atoll(value("layers", "4", "8").c_str());
  model.hidden = std::atoll(value("hidden", "1024", "4096").c_str());
  model.ffn = std::atoll(value("ffn", "1024", "14336").c_str());
  model.vocab = std::atoll(value("vocab", "4096", "128256").c_str());
  if (model.layers < 1 || model.layers > full.layers || model.hidden < 1 ||
      model.ffn < 1 || model.vocab < 1)
    return fail("--layers must be in [1, " + std::to_string(full.layers) +
                "], --hidden, --ffn and --vocab positive");
  BudgetProfile profile = *headkv;
  profile.tokens.resize(model.layers);
  profile.source += ",layers=0.." + std::to_string(model.layers - 1);
  if (meanBudget > 0)
    profile = fairkv::bench::scaledToMean(profile, meanBudget);

  // A directory of this run's own goes when the run ends; --work stays.
  std::optional<fairkv::bench::TempDir> own;
  if (args.values["work"].empty() &&
      own.emplace("fairkv-bench-device-times").path().empty())
    return fail("cannot make a temporary directory");
  const std::filesystem::path work =
      std::filesystem::path(own ? own->path() : args.values["work"]);
  std::filesystem::create_directories(work);
  const std::string config = (work / "config.json").string(),
                    profileFile = (work / "profile.json").string(),
                    weights = (work / "weights.safetensors").string();
  std::ofstream(config) << fairkv::bench::llamaConfigJson(model);
  std::ofstream(profileFile) << writeCanonicalProfile(profile);

  // The programs: compiled here unless a run elsewhere left them (a GPU
  // machine has no MLIR to compile with).
  PlanOptions planOptions;
  planOptions.devices = G;
  planOptions.decodeTokens = newTokens;
  planOptions.promptTokens = promptLen;
  const std::vector<std::string> strategies = {"tp", "fairkv"};
  // prog-tp and prog-fairkv for G devices, prog-unsharded for one.
  for (const std::string &s : {"tp", "fairkv", "unsharded"}) {
    const std::string program = (work / ("prog-" + std::string(s))).string();
    if (std::filesystem::exists(program))
      continue;
    const bool one = std::string(s) == "unsharded";
    std::cerr << kTool << ": compiling " << s << " for " << (one ? 1 : G)
              << " device(s)" << std::endl;
    bool ok = false;
    std::string log = run(
        binDir() + "/fairkv compile --model " + config + " --profile " +
            profileFile + " --devices " + std::to_string(one ? 1 : G) +
            " --strategy " + (one ? "tp" : s) + " --hw " + args.values["hw"] +
            " --decode-tokens " + std::to_string(newTokens) +
            " --prompt-tokens " + std::to_string(promptLen) + " --report " +
            program + ".json -o " + program + " 2>&1",
        ok);
    if (!ok)
      return fail("fairkv compile failed: " + log);
  }
  if (args.values["compile-only"] == "1") {
    std::cerr << kTool << ": programs in " << work.string() << "\n";
    return 0;
  }
  // A GPU first: the weights take a while to write.
  std::string machine = fairkv::bench::machineDescription();
  if (cuda) {
    char name[256] = "";
    if (fairkv_rt_cuda_device_name(0, name, sizeof(name)) != FAIRKV_OK)
      return fail(fairkv_rt_last_error());
    machine = std::string(name) + " (all " + std::to_string(G) +
              " devices on it, one at a time), host " + machine;
  }
  // The copy bandwidth a step's reads are held against.
  double copyBytesPerSecond = 0;
  std::string copySource;
  if (args.values["copy-gbps"] != "auto") {
    copyBytesPerSecond = std::atof(args.values["copy-gbps"].c_str()) * 1e9;
    if (!(copyBytesPerSecond > 0))
      return fail("--copy-gbps must be positive");
    copySource = "given";
  } else if (!cuda) {
    copyBytesPerSecond = hostCopyBytesPerSecond();
    copySource = "memcpy of 256 MiB on this host";
  }
  if (!std::filesystem::exists(weights)) {
    std::cerr << kTool << ": writing bf16 random weights ("
              << model.layers << " layers)" << std::endl;
    if (fairkv_rt_write_random_weights(
            weights.c_str(), model.layers, model.hidden, model.heads,
            model.kvHeads, model.headDim, model.ffn, model.vocab, 1,
            "bf16") != FAIRKV_OK)
      return fail(fairkv_rt_last_error());
  }

  std::ostringstream md;
  md << "## Every device's compiled decode step (`bench/device-times`, "
     << backend << ")\n\n"
     << "Machine: " << machine << ". Run: " << fairkv::bench::utcNow() << ".\n"
     << "Programs from `fairkv compile` for G = " << G
     << ", run with `--solo-devices` (each device's decode steps alone, "
        "their collectives local stand-ins: each one's busy time per decode "
        "step is its own work, without the in-process rendezvous' "
        "reductions and waits; the prefill is the model's, the decode "
        "tokens are not). Model: llama-3-8b attention (32 query / 8 KV "
        "heads of 128), "
     << model.layers << " layers, hidden " << model.hidden << ", ffn "
     << model.ffn << ", vocab " << model.vocab
     << "; budgets: HeadKV (base 512, beta 1.2, group sum), layers 0-"
     << model.layers - 1
     << (meanBudget > 0 ? ", scaled to a mean of " + std::to_string(meanBudget)
                        : std::string())
     << "; prompts of " << promptLen << " tokens, " << newTokens
     << " tokens decoded; each device's median decode step, the fastest of "
     << repeats << (repeats == 1 ? " run" : " runs alternating tp and fairkv")
     << (prefillTokens > 0 ? ", prefilled in groups of requests of at most " +
                                 std::to_string(prefillTokens) +
                                 " prompt tokens a step (`--prefill-tokens`)"
                           : std::string())
     << ". Predicted G-machine step: the slowest device plus "
        "the step's collectives from the cost model ("
     << args.values["hw"]
     << " links). The planner's prediction is its cost model on "
     << args.values["hw"] << " for the same plans."
     << " Prefill tensors: the most bytes of step tensors (activations "
        "and, on a GPU, the ops' temporaries) a device held at once in the "
        "prefill, on the device that held most, and summed over the devices "
        "(what one GPU holding all of them needs beside weights and KV).\n\n"
     << "| batch | strategy | per-device decode step ms | slowest ms | "
        "max/mean | + collectives ms | measured tp/fairkv | planner "
        "tp/fairkv | planner error | prefill tensors MB, max / sum |\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n";
  int failures = 0;
  std::ostringstream unsharded, unshardedOps;
  for (int64_t batch : batches) {
    std::vector<double> measuredStep, predictedStep;
    // Per strategy, each device's fastest median step over the repeats,
    // which alternate between the strategies (a shared machine's noise
    // only ever adds time).
    std::vector<std::vector<double>> perDevice(
        strategies.size(), std::vector<double>(G, INFINITY));
    std::vector<std::vector<int64_t>> prefillTensors(strategies.size());
    std::string failure;
    for (int64_t r = 0; r < repeats && failure.empty(); ++r)
      for (size_t i = 0; i < strategies.size() && failure.empty(); ++i) {
        std::cerr << kTool << ": " << strategies[i] << ", batch " << batch
                  << ", every device alone (run " << r + 1 << " of "
                  << repeats << ")..." << std::endl;
        DeviceReport report;
        // Solo devices: a device's step is its own work, collectives
        // stood in for locally (the cost model prices the real ones).
        failure = runAlone((work / ("prog-" + strategies[i])).string(), weights,
                           backend, G, batch, promptLen, newTokens, report,
                           nullptr, " --solo-devices" + prefillOption);
        for (int g = 0; failure.empty() && g < G; ++g)
          perDevice[i][g] = std::min(perDevice[i][g], report.seconds[g]);
        if (failure.empty())
          prefillTensors[i] = report.prefillTensorBytes;
      }
    // The unsharded program, `repeats` runs with `extra` options: the
    // fastest run's report and output, or the first failure.
    auto fastestUnsharded = [&](const std::string &extra, const char *what,
                                DeviceReport &best, std::string &bestLog) {
      best.seconds.assign(1, INFINITY);
      best.tokensHeld.assign(1, 0);
      best.prefillTensorBytes.assign(1, 0);
      for (int64_t r = 0; r < repeats; ++r) {
        std::cerr << kTool << ": unsharded" << what << ", batch " << batch
                  << " (run " << r + 1 << " of " << repeats << ")..."
                  << std::endl;
        DeviceReport report;
        std::string log;
        if (std::string failure = runAlone(
                (work / "prog-unsharded").string(), weights, backend, 1, batch,
                promptLen, newTokens, report, &log, extra + prefillOption);
            !failure.empty())
          return failure;
        if (report.seconds[0] < best.seconds[0]) {
          best = report;
          bestLog = log;
        }
      }
      return std::string();
    };
    // Its step's bytes against its time, with its ops timed (--op-times):
    // the fastest run's table says where the step goes.
    DeviceReport fastest;
    std::string fastestLog;
    const std::string unshardedFailure =
        fastestUnsharded(" --op-times", "", fastest, fastestLog);
    const double unshardedStep = fastest.seconds[0];
    const int64_t unshardedTokens = fastest.tokensHeld[0];
    const std::string fastestOps = opTable(fastestLog);
    if (!fastestOps.empty())
      unshardedOps << "\nBatch " << batch << ", the fastest run's ops:\n\n```\n"
                   << fastestOps << "```\n";
    // On a GPU, the same program with its decode steps replayed from a
    // CUDA graph (--cuda-graphs), untimed per op.
    DeviceReport graphed;
    std::string graphedLog;
    const std::string graphFailure =
        cuda && unshardedFailure.empty()
            ? fastestUnsharded(" --cuda-graphs", " with CUDA graphs", graphed,
                               graphedLog)
            : std::string();
    const double graphStep =
        graphed.seconds.empty() ? INFINITY : graphed.seconds[0];
    if (!graphFailure.empty()) {
      std::cerr << kTool << ": batch " << batch << ", unsharded with CUDA "
                << "graphs: " << graphFailure << "\n";
      ++failures;
    }
    if (!unshardedFailure.empty()) {
      std::cerr << kTool << ": batch " << batch << ", unsharded: "
                << unshardedFailure << "\n";
      unsharded << "| " << batch << " | "
                << unshardedFailure.substr(0, unshardedFailure.find('\n'))
                << " | | | | | |" << (cuda ? " | | |" : "") << "\n";
      ++failures;
    } else {
      // Weights and KV in the storage type (bf16) on the GPU, fp32 on the
      // CPU. A decode step reads the KV held before its token plus that
      // token: over the steps, the tokens held at the end less half the
      // steps after the first, per (request, layer, KV head) segment.
      const double element = cuda ? 2 : 4;
      const double segments = double(batch) * model.layers * model.kvHeads;
      const double meanTokens =
          unshardedTokens - segments * (newTokens - 2) / 2.0;
      const double kvBytes = meanTokens * 2 * model.headDim * element;
      const double weightBytes = weightBytesPerStep(model, element);
      // A step time's read rate and share of the copy bandwidth, as cells.
      auto rate = [&](double step) {
        const double perSecond = (kvBytes + weightBytes) / step;
        return formatNumber("%.0f", perSecond / 1e9) + " | " +
               (copyBytesPerSecond > 0
                    ? formatNumber("%.0f%%",
                                   100 * perSecond / copyBytesPerSecond)
                    : std::string("copy bandwidth not given"));
      };
      unsharded << "| " << batch << " | "
                << formatNumber("%.2f", unshardedStep * 1e3) << " | "
                << formatNumber("%.3f", weightBytes / 1e9) << " | "
                << formatNumber("%.3f", kvBytes / 1e9) << " | "
                << rate(unshardedStep) << " | "
                << formatNumber("%.2f", fastest.prefillTensorBytes[0] / 1e6)
                << " |";
      if (cuda)
        unsharded << " "
                  << (graphFailure.empty()
                          ? formatNumber("%.2f", graphStep * 1e3) + " | " +
                                rate(graphStep)
                          : graphFailure.substr(0, graphFailure.find('\n')) +
                                " | |")
                  << " |";
      unsharded << "\n";
      std::cerr << kTool << ": batch " << batch << ": unsharded step reads "
                << (kvBytes + weightBytes) / unshardedStep / 1e9 << " GB/s"
                << (cuda && graphFailure.empty()
                        ? ", " +
                              formatNumber("%.0f", (kvBytes + weightBytes) /
                                                       graphStep / 1e9) +
                              " GB/s with CUDA graphs"
                        : std::string())
                << std::endl;
    }
    for (size_t i = 0; i < strategies.size() && failure.empty(); ++i) {
      const std::string program = (work / ("prog-" + strategies[i])).string();
      const double slowest =
          *std::max_element(perDevice[i].begin(), perDevice[i].end());
      measuredStep.push_back(
          slowest + collectiveStepSeconds(model, *hw, G, model.layers, batch));
      // The planner's step for the plan compiled.
      Result<std::string> report = readFile(program + ".json");
      if (!report)
        return fail(report.error());
      Result<Plan> plan = readPlanJson(*report, profile);
      if (!plan)
        return fail(plan.error());
      predictedStep.push_back(predictStepSeconds(
          *plan, withWorkload(profile, planOptions), model, *hw, batch));
    }
    if (!failure.empty()) {
      // A batch that does not fit (or fails) is a row, not the end of the
      // run: the other batches' numbers still count.
      std::cerr << kTool << ": batch " << batch << ": " << failure << "\n";
      md << "| " << batch << " | " << failure.substr(0, failure.find('\n'))
         << " | | | | | | | | |\n";
      ++failures;
      continue;
    }
    const double measuredRatio = measuredStep[0] / measuredStep[1];
    const double predictedRatio = predictedStep[0] / predictedStep[1];
    for (size_t i = 0; i < strategies.size(); ++i) {
      const std::vector<double> &t = perDevice[i];
      double sum = 0;
      std::string cells;
      for (double x : t) {
        sum += x;
        cells += (cells.empty() ? "" : " ") + formatNumber("%.2f", x * 1e3);
      }
      const double slowest = *std::max_element(t.begin(), t.end());
      const std::vector<int64_t> &bytes = prefillTensors[i];
      int64_t mostBytes = 0, allBytes = 0;
      for (int64_t b : bytes) {
        mostBytes = std::max(mostBytes, b);
        allBytes += b;
      }
      md << "| " << batch << " | " << strategies[i] << " | " << cells << " | "
         << formatNumber("%.2f", slowest * 1e3) << " | "
         << formatNumber("%.3f", slowest * G / sum) << " | "
         << formatNumber("%.2f", measuredStep[i] * 1e3) << " | "
         << (i == 1 ? formatNumber("%.3f", measuredRatio) : "") << " | "
         << (i == 1 ? formatNumber("%.3f", predictedRatio) : "") << " | "
         << (i == 1 ? formatNumber("%+.1f%%",
                                   100 * (predictedRatio / measuredRatio - 1))
                    : "")
         << " | " << formatNumber("%.2f", mostBytes / 1e6) << " / "
         << formatNumber("%.2f", allBytes / 1e6) << " |\n";
    }
    std::cerr << kTool << ": batch " << batch << ": measured tp/fairkv "
              << measuredRatio << ", planner " << predictedRatio << "\n";
  }
  md << "\nThe unsharded program of the same model (one device), run the "
        "same way: its median decode step against the bytes a step reads, "
        "every weight but the embedding table and the KV held (mean over "
        "the steps), in "
     << (cuda ? "bf16" : "fp32") << "; copy bandwidth "
     << (copyBytesPerSecond > 0
             ? formatNumber("%.0f", copyBytesPerSecond / 1e9) +
                   " GB/s, read + write (" + copySource + ")"
             : std::string("not given (--copy-gbps)"))
     << ".\n\n"
     << (cuda ? "Every op timed (`--op-times`, events around each op), "
                "then, in separate runs, untimed with each decode step after "
                "the second replayed from a CUDA graph (`--cuda-graphs`).\n\n"
              : "")
     << "| batch | decode step ms | weights GB | KV GB | read GB/s | of copy "
        "| prefill tensors MB |"
     << (cuda ? " CUDA graph step ms | read GB/s | of copy |" : "")
     << "\n|---|---|---|---|---|---|---|" << (cuda ? "---|---|---|" : "")
     << "\n"
     << unsharded.str() << unshardedOps.str() << "\n";
  const std::string section = "device-times-" + backend;
  if (!fairkv::bench::writeSection(args.results, section, md.str()))
    return fail("cannot write " + args.results);
  std::cout << md.str();
  return failures ? 1 : 0;
}

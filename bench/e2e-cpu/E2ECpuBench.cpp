//===- E2ECpuBench.cpp - Per-device decode attention, tp against fairkv ---===//
//
// The llama-3-8b attention shape (32 query / 8 KV heads of 128) truncated to
// 4 layers, batch 16, budgets from the shared HeadKV profile (base 512, beta
// 1.2, group sum; its first 4 layers). For G = 4 and 8, plans tp and fairkv,
// fills every device's paged cache with its requests' kept tokens (what a
// prefill would have kept) and times each device's decode attention alone
// on the CPU runtime, so the maximum is the step time a real multi-device
// run would see. Reports the measured tp/fairkv ratio next to the planner's
// predicted one, and the same for a uniform-budget profile with the same
// total KV (the balanced yardstick). Then the whole decode: a random-weight
// llama-3-8b-shaped model truncated to 4 layers (full MLP and vocabulary),
// compiled with `fairkv compile` for tp and fairkv at G = 4, decodes batch 16
// and reports tokens/s. Writes its section of bench/RESULTS.md.
//
// Usage: fairkv-bench-e2e-cpu [--profiles DIR] [--results FILE] [--steps N]
//                             [--whole-decode 0|1] [--prompt-len N]
//                             [--new-tokens N]
//
//===----------------------------------------------------------------------===//

#include "Profiles.h"
#include "Programs.h"
#include "ResultsFile.h"
#include "fairkv/Placement/Report.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <unistd.h>

using namespace fairkv::placement;

using fairkv::bench::binDir;
using fairkv::bench::kvAfterDecode;
using fairkv::bench::run;

namespace {

constexpr int64_t kBatch = 16, kLayers = 4;

struct Measured {
  std::vector<double> seconds; // per device, decode attention
  double predictedImbalance = 0;
};

/// Times every device's decode attention for `plan`, one device at a time.
std::string measure(const Plan &plan, const BudgetProfile &profile,
                    const ModelConfig &model, const std::string &weights,
                    int64_t steps, Measured &out) {
  const int G = plan.devices;
  const int64_t d = model.headDim, group = model.queryGroup();
  fairkv_rt_options options;
  fairkv_rt_default_options(&options);
  options.devices = G;
  options.max_new_tokens = steps;
  fairkv_rt_session *session = nullptr;
  if (fairkv_rt_session_create(weights.c_str(), &options, &session) !=
      FAIRKV_OK)
    return fairkv_rt_last_error();
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> dist(-1, 1);
  auto randomTensor = [&](fairkv_rt_ctx *ctx, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t s : shape)
      n *= s;
    std::vector<float> data(n);
    for (float &x : data)
      x = dist(rng);
    return fairkv_rt_tensor_from_f32(ctx, data.data(), shape.data(),
                                     shape.size());
  };
  // Prompts longer than any budget: each head keeps exactly its budget, so
  // a request costs budget + steps tokens of KV at admission.
  const int64_t longPrompt = int64_t(1) << 20;
  std::vector<int64_t> lengths(kBatch, longPrompt);
  fairkv_rt_session_begin_batch(session, lengths.data(), kBatch);
  // The requests replica r of a copied head serves, by the runtime's rule.
  auto requestsOf = [&](int64_t budget, const std::vector<Replica> &reps,
                        size_t r) {
    std::vector<int64_t> costs(kBatch, budget + steps), owner(kBatch);
    std::vector<double> shares;
    for (const Replica &rep : reps)
      shares.push_back(rep.share);
    fairkv_rt_admit(costs.data(), kBatch, shares.data(),
                    static_cast<int64_t>(reps.size()), owner.data());
    std::vector<int64_t> mine;
    for (int64_t q = 0; q < kBatch; ++q)
      if (owner[q] == static_cast<int64_t>(r) || reps.size() == 1)
        mine.push_back(q);
    return mine;
  };
  out.seconds.assign(G, 0.0);
  for (int g = 0; g < G; ++g) {
    fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, g);
    // What this device holds, layer by layer.
    struct Work {
      std::vector<int64_t> whole;
      std::vector<std::pair<int64_t, size_t>> split; // head, replica index
    };
    std::vector<Work> work(kLayers);
    for (int64_t l = 0; l < kLayers; ++l)
      for (size_t h = 0; h < plan.layers[l].size(); ++h) {
        const auto &reps = plan.layers[l][h];
        for (size_t r = 0; r < reps.size(); ++r) {
          if (reps[r].device != g)
            continue;
          if (reps.size() == 1)
            work[l].whole.push_back(static_cast<int64_t>(h));
          else
            work[l].split.push_back({static_cast<int64_t>(h), r});
          std::vector<int64_t> mine = requestsOf(profile.tokens[l][h], reps, r);
          for (int64_t q : mine)
            fairkv_rt_cache_fill_random(ctx, l, h, q, profile.tokens[l][h], d,
                                        static_cast<int64_t>(mine.size()),
                                        1000 * l + 10 * h + q);
        }
      }
    for (int64_t step = 0; step < steps; ++step) {
      fairkv_rt_step_begin(ctx, kBatch, 1);
      for (int64_t l = 0; l < kLayers; ++l) {
        const Work &w = work[l];
        if (!w.whole.empty()) {
          int64_t n = static_cast<int64_t>(w.whole.size());
          std::vector<int64_t> budgets;
          for (int64_t h : w.whole)
            budgets.push_back(profile.tokens[l][h]);
          fairkv_rt_attention(
              ctx, randomTensor(ctx, {kBatch, 1, n * group, d}),
              randomTensor(ctx, {kBatch, 1, n, d}),
              randomTensor(ctx, {kBatch, 1, n, d}), l, n, w.whole.data(),
              budgets.data(), -1, -1, 0, nullptr, nullptr);
        }
        for (auto [h, r] : w.split) {
          const auto &reps = plan.layers[l][h];
          int64_t budget = profile.tokens[l][h];
          int64_t rows =
              static_cast<int64_t>(requestsOf(budget, reps, r).size());
          std::vector<int64_t> devices;
          std::vector<double> shares;
          for (const Replica &rep : reps) {
            devices.push_back(rep.device);
            shares.push_back(rep.share);
          }
          fairkv_rt_attention(
              ctx, randomTensor(ctx, {rows, 1, group, d}),
              randomTensor(ctx, {rows, 1, 1, d}),
              randomTensor(ctx, {rows, 1, 1, d}), l, 1, &h, &budget, h, budget,
              static_cast<int64_t>(reps.size()), devices.data(),
              shares.data());
        }
      }
    }
    double prefill = 0, decode = 0;
    int64_t tokens = 0, bytes = 0;
    fairkv_rt_ctx_stats(ctx, &prefill, &decode, &tokens, &bytes);
    out.seconds[g] = decode;
  }
  fairkv_rt_session_destroy(session);
  return "";
}

struct WholeDecode {
  std::string strategy;
  double prefillSeconds = 0, decodeSeconds = 0, decodeTokensPerSecond = 0;
};

/// Compiles the 4-layer llama-3-8b-shaped model for `strategy` on G devices
/// and decodes `batch` random prompts; parses the program's timing line.
std::string wholeDecode(const std::string &dir, const std::string &config,
                        const std::string &profileFile,
                        const std::string &weights, const std::string &strategy,
                        int G, int64_t batch, int64_t promptLen,
                        int64_t newTokens, WholeDecode &out) {
  std::string program = dir + "/prog-" + strategy;
  bool ok = false;
  std::string log = run(binDir() + "/fairkv compile --model " + config +
                            " --profile " + profileFile + " --devices " +
                            std::to_string(G) + " --strategy " + strategy +
                            " --decode-tokens " + std::to_string(newTokens) +
                            " -o " + program + " 2>&1",
                        ok);
  if (!ok)
    return "fairkv compile failed: " + log;
  log = run(program + " --weights " + weights + " --random-prompts " +
                std::to_string(batch) + " --prompt-len " +
                std::to_string(promptLen) + " --max-new-tokens " +
                std::to_string(newTokens) + " 2>&1",
            ok);
  if (!ok)
    return "the " + strategy + " program failed: " + log;
  size_t at = log.find("prefill ");
  long long requests = 0, steps = 0;
  if (at == std::string::npos ||
      std::sscanf(log.c_str() + at,
                  "prefill %lf s; decode %lf s for %lld x %lld tokens (%lf",
                  &out.prefillSeconds, &out.decodeSeconds, &requests, &steps,
                  &out.decodeTokensPerSecond) != 5)
    return "cannot read the " + strategy + " program's timings: " + log;
  out.strategy = strategy;
  return "";
}

using fairkv::bench::formatNumber;

} // namespace

int main(int argc, char **argv) {
  fairkv::bench::BenchArgs args;
  if (int exit = fairkv::bench::parseBenchArgs(
          argc, argv, "fairkv-bench-e2e-cpu", FAIRKV_SOURCE_DIR,
          {{"steps", "4"},
           {"whole-decode", "1"},
           {"prompt-len", "64"},
           {"new-tokens", "8"}},
          args);
      exit >= 0)
    return exit;
  const std::string &dir = args.profiles, &results = args.results;
  const int64_t steps = std::atoll(args.values["steps"].c_str());
  ModelConfig full = *modelPreset("llama-3-8b");
  Result<BudgetProfile> whole = fairkv::bench::loadLlama3HeadKV(dir, full);
  if (!whole) {
    std::cerr << "fairkv-bench-e2e-cpu: error: " << whole.error() << "\n";
    return 1;
  }
  // llama-3-8b attention, 4 layers; MLP and vocabulary do not touch
  // attention, so they stay out of the bench.
  ModelConfig model = full;
  model.layers = kLayers;
  BudgetProfile profile = *whole;
  profile.tokens.resize(kLayers);
  profile.source += ",layers=0..3";
  BudgetProfile uniform = uniformProfile(profile);
  // The session only needs some weights to open: attention reads none.
  // A name of this run's own: two runs at once must not share the file.
  std::string weights =
      (std::filesystem::temp_directory_path() /
       ("fairkv-bench-e2e-" + std::to_string(getpid()) + ".safetensors"))
          .string();
  if (fairkv_rt_write_random_weights(weights.c_str(), 1, 16, 2, 1, 8, 16, 32,
                                     1, "f32") != FAIRKV_OK) {
    std::cerr << "fairkv-bench-e2e-cpu: error: " << fairkv_rt_last_error()
              << "\n";
    return 1;
  }
  Hardware hw = *hardwarePreset("h100-sxm");

  std::ostringstream md;
  md << "## End to end on the CPU runtime (`bench/e2e-cpu`)\n\n"
     << "Machine: " << fairkv::bench::machineDescription()
     << ". Run: " << fairkv::bench::utcNow() << ".\n"
     << "llama-3-8b attention (32 query / 8 KV heads of 128) truncated to 4 "
        "layers, batch "
     << kBatch << ", HeadKV budgets (base 512, beta 1.2, group sum; layers "
        "0-3). Every device's paged cache holds its requests' kept tokens; "
        "each device's decode attention is timed alone ("
     << steps
     << " decode steps), so the maximum is the step time a multi-device run "
        "would see. fairkv with no copy limit. The uniform row gives every "
        "head of a layer the layer's mean budget (same total KV) under tp: "
        "the balanced yardstick.\n\n"
     << "| G | profile | strategy | per-device decode attention ms | max ms | "
        "max/mean | measured tp/fairkv | predicted tp/fairkv |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (int G : {4, 8}) {
    std::vector<std::pair<std::string, Measured>> rows;
    for (auto [name, strategy, prof] :
         {std::tuple<std::string, Strategy, const BudgetProfile *>{
              "tp", Strategy::TP, &profile},
          {"fairkv", Strategy::FairKV, &profile},
          {"tp", Strategy::TP, &uniform}}) {
      PlanOptions o;
      o.strategy = strategy;
      o.devices = G;
      Result<PlanReport> r = planAndEvaluate(*prof, model, hw, o, kBatch);
      if (!r) {
        std::cerr << "fairkv-bench-e2e-cpu: error: " << r.error() << "\n";
        return 1;
      }
      Measured m;
      m.predictedImbalance = r->metrics.attentionImbalance;
      std::cerr << "G=" << G << " " << name << " (" << prof->source
                << "): filling caches and timing..." << std::endl;
      if (std::string error =
              measure(r->result.plan, *prof, model, weights, steps, m);
          !error.empty()) {
        std::cerr << "fairkv-bench-e2e-cpu: error: " << error << "\n";
        return 1;
      }
      rows.push_back({name, m});
    }
    auto maxOf = [](const Measured &m) {
      return *std::max_element(m.seconds.begin(), m.seconds.end());
    };
    auto meanOf = [](const Measured &m) {
      double s = 0;
      for (double x : m.seconds)
        s += x;
      return s / m.seconds.size();
    };
    double measuredRatio = maxOf(rows[0].second) / maxOf(rows[1].second);
    double predictedRatio =
        rows[0].second.predictedImbalance / rows[1].second.predictedImbalance;
    for (size_t i = 0; i < rows.size(); ++i) {
      const Measured &m = rows[i].second;
      std::string perDevice;
      for (double s : m.seconds)
        perDevice +=
            (perDevice.empty() ? "" : " ") + formatNumber("%.1f", s * 1e3);
      md << "| " << G << " | " << (i == 2 ? "uniform" : "HeadKV") << " | "
         << rows[i].first << " | " << perDevice << " | "
         << formatNumber("%.1f", maxOf(m) * 1e3) << " | "
         << formatNumber("%.3f", maxOf(m) / meanOf(m)) << " | "
         << (i == 1 ? formatNumber("%.3f", measuredRatio) : "") << " | "
         << (i == 1 ? formatNumber("%.3f", predictedRatio) : "") << " |\n";
    }
    std::cerr << "G=" << G << ": measured tp/fairkv " << measuredRatio
              << ", predicted " << predictedRatio << ", fairkv max / uniform max "
              << maxOf(rows[1].second) / maxOf(rows[2].second) << "\n";
    md << "| " << G << " | | fairkv max / uniform max | | "
       << formatNumber("%.3f", maxOf(rows[1].second) / maxOf(rows[2].second))
       << " | | | |\n";
  }
  md << "\nAttention-bound decode throughput follows from the max column: "
        "batch / (max ms per step).\n\n";

  if (args.values["whole-decode"] != "0") {
    const int G = 4;
    const int64_t promptLen = std::atoll(args.values["prompt-len"].c_str()),
                  newTokens = std::atoll(args.values["new-tokens"].c_str());
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() /
        ("fairkv-bench-whole-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::string config = (dir / "config.json").string(),
                profileFile = (dir / "profile.json").string(),
                wholeWeights = (dir / "weights.safetensors").string();
    ModelConfig truncated = full;
    truncated.layers = kLayers;
    std::ofstream(config) << fairkv::bench::llamaConfigJson(truncated);
    std::ofstream(profileFile) << writeCanonicalProfile(profile);
    std::cerr << "whole decode: writing bf16 random weights of the 4-layer "
                 "model..."
              << std::endl;
    if (fairkv_rt_write_random_weights(
            wholeWeights.c_str(), kLayers, full.hidden, full.heads,
            full.kvHeads, full.headDim, full.ffn, full.vocab, 1,
            "bf16") != FAIRKV_OK) {
      std::cerr << "fairkv-bench-e2e-cpu: error: " << fairkv_rt_last_error()
                << "\n";
      return 1;
    }
    std::vector<WholeDecode> decodes;
    for (const char *strategy : {"tp", "fairkv"}) {
      std::cerr << "whole decode: " << strategy << " on " << G
                << " devices..." << std::endl;
      WholeDecode w;
      if (std::string error =
              wholeDecode(dir.string(), config, profileFile, wholeWeights,
                          strategy, G, kBatch, promptLen, newTokens, w);
          !error.empty()) {
        std::cerr << "fairkv-bench-e2e-cpu: error: " << error << "\n";
        return 1;
      }
      decodes.push_back(w);
    }
    // What every device holds at the end of decoding under each
    // compression method, for the same plans: the HeadKV budgets scaled to
    // a mean of half the prompt (so every method compresses), compiled for
    // tp and fairkv.
    BudgetProfile scaled =
        fairkv::bench::scaledToMean(profile, promptLen / 2.0);
    const std::string scaledFile = (dir / "scaled.json").string();
    std::ofstream(scaledFile) << writeCanonicalProfile(scaled);
    const std::vector<std::pair<std::string, std::string>> methods = {
        {"snapkv", "--kv-method snapkv"},
        {"headkv", "--kv-method headkv"},
        {"adakv", "--kv-method adakv"},
        {"duo", "--kv-method duo --duo-sink 4"}};
    std::map<std::string, std::vector<std::vector<int64_t>>> kvByMethod;
    for (const char *strategy : {"tp", "fairkv"}) {
      const std::string program = (dir / ("kv-" + std::string(strategy))).string();
      bool ok = false;
      std::string log = run(binDir() + "/fairkv compile --model " + config +
                                " --profile " + scaledFile + " --devices " +
                                std::to_string(G) + " --strategy " + strategy +
                                " --decode-tokens " +
                                std::to_string(newTokens) +
                                " --prompt-tokens " +
                                std::to_string(promptLen) + " -o " + program +
                                " 2>&1",
                            ok);
      if (!ok) {
        std::cerr << "fairkv-bench-e2e-cpu: error: " << log << "\n";
        return 1;
      }
      for (const auto &[name, flags] : methods) {
        std::cerr << "KV by method: " << name << " under " << strategy << "..."
                  << std::endl;
        std::vector<int64_t> kv;
        if (std::string error = kvAfterDecode(program, wholeWeights, flags, G,
                                              kBatch, promptLen, newTokens, kv);
            !error.empty()) {
          std::cerr << "fairkv-bench-e2e-cpu: error: " << error << "\n";
          return 1;
        }
        kvByMethod[name].push_back(kv);
      }
    }
    // Ada-KV's reallocation, calibrated: the fairkv program's adakv run on
    // other prompts (seed 2) says what each head keeps; a plan balancing
    // that (--load-profile) runs the evaluation prompts.
    const std::string kept = (dir / "calibration.kept").string();
    const std::string calibrated = (dir / "kv-fairkv-calibrated").string();
    std::vector<int64_t> calibratedKV;
    {
      std::cerr << "KV by method: adakv calibration..." << std::endl;
      std::vector<int64_t> unused;
      std::string error = kvAfterDecode(
          (dir / "kv-fairkv").string(), wholeWeights,
          "--kv-method adakv --seed 2 --dump-kept " + kept, G, kBatch,
          promptLen, newTokens, unused);
      bool ok = error.empty();
      std::string log =
          ok ? run(binDir() + "/fairkv compile --model " + config +
                       " --profile " + scaledFile + " --devices " +
                       std::to_string(G) + " --strategy fairkv" +
                       " --decode-tokens " + std::to_string(newTokens) +
                       " --prompt-tokens " + std::to_string(promptLen) +
                       " --load-profile " + kept + " -o " + calibrated +
                       " 2>&1",
                   ok)
             : error;
      if (ok)
        error = kvAfterDecode(calibrated, wholeWeights, "--kv-method adakv", G,
                              kBatch, promptLen, newTokens, calibratedKV);
      if (!ok || !error.empty()) {
        std::cerr << "fairkv-bench-e2e-cpu: error: "
                  << (ok ? error : log) << "\n";
        return 1;
      }
    }
    std::filesystem::remove_all(dir);
    md << "KV every device holds after decoding, by compression method "
          "(`--kv-method`), for the same model and batch with the HeadKV "
          "budgets scaled to a mean of "
       << promptLen / 2 << " tokens per head (so every method compresses "
       << promptLen << "-token prompts), G = " << G
       << ". The plans follow the profile's static budgets; Ada-KV "
          "reallocates them per request, so its last row is planned from "
          "what each head kept in an adakv run of the fairkv program on "
          "other prompts (`--load-profile`).\n\n"
       << "| method | strategy | per-device KV tokens | max/mean |\n"
       << "|---|---|---|---|\n";
    auto row = [&md](const std::string &method, const std::string &plan,
                     const std::vector<int64_t> &kv) {
      std::string perDevice;
      double total = 0, most = 0;
      for (int64_t t : kv) {
        perDevice += (perDevice.empty() ? "" : " ") + std::to_string(t);
        total += t;
        most = std::max<double>(most, t);
      }
      md << "| " << method << " | " << plan << " | " << perDevice << " | "
         << formatNumber("%.3f", most / (total / kv.size())) << " |\n";
    };
    for (const auto &[name, flags] : methods)
      for (int s = 0; s < 2; ++s)
        row(name, s == 0 ? "tp" : "fairkv", kvByMethod[name][s]);
    row("adakv", "fairkv, calibrated", calibratedKV);
    md << "\n";
    md << "Whole decode on the CPU runtime: the llama-3-8b shape truncated to "
       << kLayers << " layers with its full MLP and 128256-token vocabulary, "
       << "random bf16 weights computed in fp32, batch " << kBatch
       << ", prompts of " << promptLen << " tokens, " << newTokens
       << " new tokens, G = " << G
       << " device threads on this machine's cores. The HeadKV budgets "
          "exceed these prompts, so every head keeps its whole prompt: on a "
          "CPU the weight GEMMs dominate, not attention, and the two plans "
          "should be close.\n\n"
       << "| strategy | prefill s | decode s | decode tokens/s |\n"
       << "|---|---|---|---|\n";
    for (const WholeDecode &w : decodes)
      md << "| " << w.strategy << " | "
         << formatNumber("%.2f", w.prefillSeconds) << " | "
         << formatNumber("%.2f", w.decodeSeconds) << " | "
         << formatNumber("%.2f", w.decodeTokensPerSecond) << " |\n";
    md << "\n";
  }
  std::filesystem::remove(weights);
  if (!fairkv::bench::writeSection(results, "e2e-cpu", md.str())) {
    std::cerr << "fairkv-bench-e2e-cpu: error: cannot write " << results
              << "\n";
    return 1;
  }
  std::cout << "fairkv-bench-e2e-cpu: wrote " << results << "\n";
  return 0;
}

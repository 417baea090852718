//===- CompileCommand.cpp - `fairkv compile` and `fairkv weights` ---------===//
//
// compile: model (+ profile) -> plan -> per-device programs -> LLVM -> an
// executable linked with the runtime. weights: a seeded random-weight model.
//
//===----------------------------------------------------------------------===//

#include "Commands.h"
#include "ProfileArgs.h"

#include "fairkv/Compile/Compiler.h"
#include "fairkv/Import/ModelWriter.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <limits>
#include <memory>

using namespace fairkv::placement;
using namespace fairkv::tool;

namespace {

struct CompileArgs : ProfileArgs {
  std::string input;
  fairkv::compile::CompileOptions options;
};

int fail(const char *command, const std::string &message) {
  std::cerr << "fairkv " << command << ": error: " << message << "\n";
  return 1;
}

int runCompile(CompileArgs &a, const std::string &defaultLibDir) {
  std::string text;
  if (!a.input.empty()) {
    if (!a.model.empty() || !a.profile.empty())
      return fail("compile", "give --input or --model/--profile, not both");
    Result<std::string> read = readFile(a.input);
    if (!read)
      return fail("compile", read.error());
    text = *read;
  } else {
    if (a.model.empty() || a.profile.empty())
      return fail("compile", "give --model and --profile (or --input)");
    Result<ModelConfig> model = loadModel(a);
    if (!model)
      return fail("compile", model.error());
    Result<BudgetProfile> profile = loadProfile(a, *model);
    if (!profile)
      return fail("compile", profile.error());
    text = fairkv::import::writeModelModule(*model, *profile);
  }
  if (a.options.devices <= 0)
    return fail("compile", "--devices must be positive");
  if (a.options.runtimeLibDir.empty())
    a.options.runtimeLibDir = defaultLibDir;
  std::cerr << "fairkv compile: planning, sharding and compiling for "
            << a.options.devices << " devices (" << a.options.strategy
            << ")..." << std::endl;
  std::string error = fairkv::compile::compileToExecutable(text, a.options);
  if (!error.empty())
    return fail("compile", error);
  std::cerr << "fairkv compile: wrote " << a.options.output << "\n";
  return 0;
}

struct WeightsArgs {
  std::string model;
  uint64_t seed = 1;
  std::string dtype = "f32";
  std::string output;
};

int runWeights(const WeightsArgs &a) {
  Result<ModelConfig> m = resolveModel(a.model);
  if (!m)
    return fail("weights", m.error());
  if (fairkv_rt_write_random_weights(a.output.c_str(), m->layers, m->hidden,
                                     m->heads, m->kvHeads, m->headDim, m->ffn,
                                     m->vocab, a.seed,
                                     a.dtype.c_str()) != FAIRKV_OK)
    return fail("weights", fairkv_rt_last_error());
  return 0;
}

} // namespace

std::function<int()> fairkv::tool::addCompileCommand(CLI::App &app,
                                                     std::string libDir) {
  auto args = std::make_shared<CompileArgs>();
  CompileArgs &a = *args;
  CLI::App *c = app.add_subcommand(
      "compile", "Plan, shard and compile a model into an executable that "
                 "decodes with the FairKV runtime (CPU backend, or CUDA "
                 "with --backend cuda)");
  addProfileOptions(*c, a);
  // Here the model may come from --input instead.
  c->get_option("--model")->required(false);
  c->get_option("--profile")->required(false);
  c->add_option("--input", a.input,
                "an unsharded fairkv module instead of --model/--profile");
  c->add_option("--devices,-g", a.options.devices, "number of devices")
      ->capture_default_str();
  c->add_option("--strategy", a.options.strategy, "tp|greedy|fairkv|optimal")
      ->capture_default_str();
  c->add_option("--copy-budget", a.options.copyBudget,
                "extra replicas allowed per layer");
  c->add_option("--copy-budget-bytes", a.options.copyBudgetBytes,
                "extra weight bytes allowed on any device");
  c->add_option("--copy-budget-fraction", a.options.copyBudgetFraction,
                "extra weight bytes per device, as a fraction of its tp "
                "weights");
  c->add_flag("--even-shares", a.options.evenShares,
              "fairkv: equal batch shares among copies");
  c->add_flag("--equal-heads", a.options.equalHeads,
              "greedy: the same number of heads on every device");
  c->add_option("--time-limit", a.options.timeLimit,
                "optimal: seconds for the exact solver")
      ->capture_default_str();
  c->add_option("--hw", a.options.hardware, "hardware preset of the plan")
      ->capture_default_str();
  c->add_option("--decode-tokens", a.options.decodeTokens,
                "tokens each request will decode: plan for budget + these")
      ->capture_default_str();
  c->add_option("--prompt-tokens", a.options.promptTokens,
                "the requests' prompt length (0: unknown): a head holds at "
                "most this much of its budget, and the plan counts that")
      ->capture_default_str();
  c->add_option("--prompt-lengths", a.options.promptLengths,
                "the requests' prompt lengths instead of one: 32,64,128, "
                "32:10,64:5 (length:weight) or a file of 'length weight' "
                "lines; the plan balances each head's mean over them");
  c->add_option("--load-profile", a.options.loadProfile,
                "balance what each head holds as a run measured it (a "
                "program's --dump-kept file, e.g. under adakv, or "
                "fairkv-budgets/v1 JSON) instead of its budget; the program "
                "still runs with the --profile budgets");
  c->add_option("--overlap-chunks", a.options.overlapChunks,
                "fuse each row-parallel projection with its all_reduce and "
                "reduce it in up to this many blocks, each overlapping the "
                "next block's GEMM (0: off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->add_option("--overlap-min-chunk-bytes", a.options.overlapMinChunkBytes,
                "fewest fp32 result bytes per overlapped block (-1: where a "
                "block's transfer outlasts the collective's fixed cost on "
                "--hw, so decode steps' small reductions stay whole)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(-1), std::numeric_limits<int64_t>::max()));
  c->add_option("--report", a.options.report,
                "also write the JSON plan report here");
  c->add_flag("--keep-ir", a.options.keepIR,
              "also keep the LLVM IR as <output>.ll");
  c->add_option("--runtime-lib-dir", a.options.runtimeLibDir,
                "directory of libFairKVRuntime (default: ../lib beside fairkv)");
  c->add_option("--output,-o", a.options.output, "the executable to write")
      ->required();
  return [args, libDir] { return runCompile(*args, libDir); };
}

std::function<int()> fairkv::tool::addWeightsCommand(CLI::App &app) {
  auto args = std::make_shared<WeightsArgs>();
  CLI::App *c = app.add_subcommand(
      "weights", "Write a seeded random-weight model (safetensors, Hugging "
                 "Face names) of a preset or config.json shape");
  c->add_option("--model", args->model, "model preset or config.json")
      ->required();
  c->add_option("--seed", args->seed, "random seed")->capture_default_str();
  c->add_option("--dtype", args->dtype, "storage type: f32|f16|bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  c->add_option("--output,-o", args->output, "the safetensors file to write")
      ->required();
  return [args] { return runWeights(*args); };
}

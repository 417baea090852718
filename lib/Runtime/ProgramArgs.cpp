//===- ProgramArgs.cpp - A compiled program's command line ----------------===//

#include "ProgramArgs.h"

#include "fairkv/Serve/Server.h"
#include "fairkv/Version.h"

#include "fairkv/Runtime/FairKVRuntime.h"

#include <CLI/CLI.hpp>

#include <iostream>

using namespace fairkv::rt;

namespace {

void addOptions(CLI::App &app, ProgramArgs &a) {
  app.add_option("--weights", a.weights, "model weights (safetensors)")
      ->required();
  app.add_option("--prompts", a.promptsFile,
                 "prompts: one per line, token ids separated by spaces (at "
                 "least 2 per prompt; lengths may differ)");
  app.add_option("--random-prompts", a.randomPrompts,
                 "instead, this many seeded random prompts");
  app.add_option("--prompt-len", a.promptLen, "length of the random prompts")
      ->capture_default_str();
  app.add_option("--min-prompt-len", a.minPromptLen,
                 "if given, random prompts get seeded lengths between this "
                 "and --prompt-len");
  app.add_option("--max-new-tokens", a.maxNew, "tokens to generate")
      ->capture_default_str();
  app.add_option("--batch-size", a.batchSize,
                 "requests per batch; the prompts run as consecutive batches "
                 "(0: all in one)")
      ->capture_default_str();
  app.add_option("--prefill-tokens", a.prefillTokens,
                 "prompt tokens per prefill step at most (rows x their "
                 "longest prompt; at least one row a step; 0: a batch's, "
                 "or a server step's joiners', in one): a batch prefills in "
                 "groups of requests, then decodes together; a step's "
                 "activations grow with its tokens, so this bounds a "
                 "prefill's memory; the tokens are the same")
      ->capture_default_str();
  app.add_option("--kv-method", a.kvMethod,
                 "how a head chooses the prompt tokens it keeps: snapkv "
                 "(kvpress's SnapKVPress: window queries' mean attention, "
                 "average-pooled, mean over the query group), headkv (the "
                 "same scores max-pooled over 7 tokens), adakv (kvpress's "
                 "AdaKVPress over SnapKV scores: each layer's budget shared "
                 "across its heads, with the --adakv-alpha safeguard) or duo "
                 "(DuoAttention: a head whose budget is below the prompt "
                 "streams, keeping --duo-sink first and its recent tokens, "
                 "constant while decoding); the default follows the "
                 "program's profile")
      ->check(CLI::IsMember({"snapkv", "headkv", "adakv", "duo"}))
      ->capture_default_str();
  app.add_option("--duo-sink", a.duoSink,
                 "duo: the first tokens a streaming head keeps (default: "
                 "the profile's, else 128)");
  app.add_option("--snapkv-kernel", a.snapkvKernel,
                 "tokens the scores are pooled over (odd; default 5, headkv "
                 "7)");
  app.add_option("--snapkv-pool", a.snapkvPool,
                 "avg or max pooling of the scores (default avg, headkv max)")
      ->check(CLI::IsMember({"avg", "max"}));
  app.add_option("--adakv-alpha", a.adakvAlpha,
                 "adakv: the fraction of its own budget every head keeps at "
                 "least, in [0, 1] (default 0.2, kvpress's)");
  app.add_option("--dump-kept", a.dumpKept,
                 "CPU backend: write the prompt positions every (request, "
                 "layer, KV head) keeps after its prefill to this file");
  app.add_option("--seed", a.seed, "seed of the random prompts")
      ->capture_default_str();
  app.add_option("--snapkv-window", a.window,
                 "prompt queries that score the tokens kept at prefill")
      ->capture_default_str();
  app.add_option("--kv-memory", a.kvBytes,
                 "bytes of KV pages each device may hold (0: no limit); a "
                 "batch that needs more is refused")
      ->capture_default_str();
  app.add_option("--dump-logits", a.dumpLogits,
                 "write each step's last-position logits to this file");
  app.add_option("--reference-logits", a.referenceLogits,
                 "compare each step's logits with this --dump-logits file of "
                 "another run (e.g. unsharded) and fail beyond --tolerance");
  app.add_option("--tolerance", a.tolerance,
                 "largest |difference| / largest |logit| allowed per step")
      ->capture_default_str();
  app.add_option("--min-margin", a.minMargin,
                 "fail if a step's top two logits are closer than this "
                 "(relative to the largest |logit|): a near-tie would make "
                 "greedy tokens depend on rounding")
      ->capture_default_str();
  app.add_option("--force-tokens", a.forceTokens,
                 "feed these tokens (another run's --quiet output) instead "
                 "of the sampled ones, so logits can be compared step by step "
                 "across backends even where a near-tie flips a token");
  app.add_option("--backend", a.backend,
                 "cpu (the fp32 reference) or cuda (device d on GPU d modulo "
                 "the GPUs visible; bf16 weights and KV)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--storage", a.storage,
                 "cuda backend: the 16-bit type of weights, KV cache and GEMM "
                 "inputs (bf16 or fp16; fp32 accumulation either way)")
      ->check(CLI::IsMember({"bf16", "fp16"}))
      ->capture_default_str();
  app.add_option("--collectives", a.collectives,
                 "cuda backend: rendezvous (devices meet in the process and "
                 "copy; any number per GPU) or nccl (one NCCL communicator, "
                 "ncclCommInitAll; one GPU per device)")
      ->check(CLI::IsMember({"rendezvous", "nccl"}))
      ->capture_default_str();
  app.add_flag("--mpi", a.useMpi,
               "run as one rank of an MPI job with one rank per device "
               "(mpirun -np <devices>): this process runs device <rank>; rank "
               "0 prints");
  app.add_flag("--time-devices", a.timeDevices,
               "run the devices one at a time between collectives and report "
               "each one's busy time per decode step: what its share of the "
               "plan takes with the machine (a GPU, the cores) to itself; the "
               "tokens are the same, the run slower (rendezvous collectives, "
               "not --mpi)");
  app.add_flag("--solo-devices", a.soloDevices,
               "--time-devices with every device's decode steps run alone: "
               "their collectives are local stand-ins (a device's own part), "
               "so a step is the device's own work only, as on a machine of "
               "its own, and with --cuda-graphs one graph even where devices "
               "share a GPU; the prefill is the model's, the decode steps' "
               "tokens are not and are not printed (the same from run to "
               "run: --dump-logits compares solo runs); end-of-sequence ids "
               "and stop strings are ignored");
  app.add_flag("--op-times", a.opTimes,
               "time every op of every step and report, per device, what each "
               "kind of op takes per decode step, its share, the weights it "
               "reads and at what rate (on a GPU: the device's time between "
               "the op's start and end); the tokens are the same");
  app.add_flag("--cuda-graphs", a.cudaGraphs,
               "cuda backend: capture each device's decode step once per "
               "batch as a CUDA graph and replay it, one launch a step "
               "instead of every op's kernels; the tokens are the same (one "
               "device, --collectives nccl or --solo-devices; not --serve)");
  app.add_flag("--quiet", a.quiet,
               "print only the generated tokens (and --log-level error)");
  app.add_option("--log-level", a.logLevel,
                 "what goes to stderr: error, warn, info (progress of long "
                 "work, batches) or debug (every served request too)")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}))
      ->capture_default_str();
  app.add_option("--tokenizer", a.tokenizer,
                 "the model's tokenizer.json, or its folder: prompts and "
                 "outputs are text");
  app.add_option("--prompt", a.textPrompts,
                 "a prompt as text (repeatable; needs --tokenizer)");
  app.add_option("--text-prompts", a.textPromptsFile,
                 "a file of text prompts, one per line (needs --tokenizer)");
  app.add_flag("--json-lines", a.jsonLines,
               "with --tokenizer: print each request as a JSON line (request, "
               "text, tokens, finish_reason)");
  app.add_option("--serve", a.serve,
                 "serve OpenAI-compatible completions and chat completions "
                 "on HOST:PORT (port 0: any free one) until SIGINT or SIGTERM; "
                 "needs --tokenizer");
  app.add_option("--model-name", a.modelName,
                 "the model's name the server answers to")
      ->capture_default_str();
  app.add_option("--temperature", a.sampling.temperature,
                 "sampling temperature (0: greedy, the default)")
      ->capture_default_str();
  app.add_option("--top-k", a.sampling.topK, "keep the k likeliest tokens (0: off)")
      ->capture_default_str();
  app.add_option("--top-p", a.sampling.topP,
                 "keep the likeliest tokens holding this probability (1: off)")
      ->capture_default_str();
  app.add_option("--min-p", a.sampling.minP,
                 "drop tokens below this fraction of the likeliest's "
                 "probability (0: off)")
      ->capture_default_str();
  app.add_option("--stop", a.stops,
                 "a stop string: the output ends before it (repeatable; needs "
                 "--tokenizer)");
  app.add_option("--eos-id", a.eosIds,
                 "an end-of-sequence id (repeatable; default: the tokenizer "
                 "folder's generation_config.json or config.json)");
  app.add_flag("--ignore-eos", a.ignoreEos,
               "decode --max-new-tokens tokens whatever comes");
}

/// Resolves the method's defaults and checks every limit: "" or the error.
std::string check(ProgramArgs &a, bool duoSinkGiven) {
  if (a.maxNew <= 0 || a.promptLen < 2 || a.window <= 0 || a.kvBytes < 0 ||
      a.batchSize < 0 || a.prefillTokens < 0)
    return std::string("--max-new-tokens and --snapkv-window must be positive, "
                       "--prompt-len at least 2, --kv-memory, --batch-size and "
                       "--prefill-tokens non-negative");
  // Limits before anything is allocated (FAIRKV_RT_MAX_TOKENS per request).
  constexpr int64_t kMaxRequests = int64_t(1) << 20;
  if (a.promptLen > FAIRKV_RT_MAX_TOKENS || a.maxNew > FAIRKV_RT_MAX_TOKENS ||
      a.window > FAIRKV_RT_MAX_TOKENS)
    return std::string("--prompt-len, --max-new-tokens and --snapkv-window may be "
                "at most " + std::to_string(FAIRKV_RT_MAX_TOKENS));
  if (a.randomPrompts < 0 || a.randomPrompts > kMaxRequests ||
      a.batchSize > kMaxRequests)
    return std::string("--random-prompts and --batch-size must be between 0 and " +
                std::to_string(kMaxRequests));
  if (a.randomPrompts * a.promptLen > FAIRKV_RT_MAX_TOKENS * 16)
    return std::string("--random-prompts x --prompt-len may be at most " +
                std::to_string(FAIRKV_RT_MAX_TOKENS * 16) + " tokens");
  if (!(a.tolerance >= 0) || !(a.minMargin >= 0))
    return std::string("--tolerance and --min-margin must be non-negative");
  if (a.minPromptLen == 0)
    a.minPromptLen = a.promptLen;
  if (a.minPromptLen < 2 || a.minPromptLen > a.promptLen)
    return std::string("--min-prompt-len must be between 2 and --prompt-len");
  if (a.kvMethod == "adakv") {
    if (a.adakvAlpha < 0)
      a.adakvAlpha = 0.2;
    if (!(a.adakvAlpha <= 1))
      return std::string("--adakv-alpha must be in [0, 1]");
  } else if (a.adakvAlpha >= 0) {
    return std::string("--adakv-alpha needs --kv-method adakv");
  }
  if (a.kvMethod == "duo") {
    if (a.duoSink < 0)
      a.duoSink = 128;
  } else if (duoSinkGiven) {
    return std::string("--duo-sink needs --kv-method duo");
  } else {
    a.duoSink = -1;
  }
  if (a.snapkvKernel == 0)
    a.snapkvKernel = a.kvMethod == "headkv" ? 7 : 5;
  if (a.snapkvPool.empty())
    a.snapkvPool = a.kvMethod == "headkv" ? "max" : "avg";
  if (a.snapkvKernel < 1 || a.snapkvKernel % 2 == 0)
    return std::string("--snapkv-kernel must be odd and positive");
  if (fairkv::placement::Status s = a.sampling.validate(); !s)
    return "--" + s.error();
  if (a.tokenizer.empty() && (!a.textPrompts.empty() || !a.stops.empty() ||
                              !a.textPromptsFile.empty() || a.jsonLines))
    return std::string(
        "--prompt, --text-prompts, --stop and --json-lines need --tokenizer");
  a.sampling.seed = a.seed;
  if (a.soloDevices) {
    if (!a.serve.empty())
      return std::string("--solo-devices times offline runs, not --serve");
    if (a.useMpi || a.collectives != "rendezvous")
      return std::string("--solo-devices runs the devices as threads of one "
                         "process: not with --mpi or --collectives nccl");
    if (a.jsonLines)
      return std::string("--json-lines prints the requests' text, which "
                         "--solo-devices does not compute");
    a.timeDevices = true;
  }
  if (!a.serve.empty()) {
    if (a.tokenizer.empty())
      return std::string("--serve needs --tokenizer");
    if (a.useMpi)
      return std::string("--serve runs its devices as threads: not with --mpi");
    if (a.timeDevices)
      return std::string("--time-devices times offline runs, not --serve");
    if (a.opTimes)
      return std::string("--op-times times offline runs, not --serve");
    if (a.cudaGraphs)
      return std::string("--cuda-graphs replays offline batches' steps, not "
                         "--serve's (its batch changes every step)");
    if (!a.promptsFile.empty() || a.randomPrompts > 0 ||
        !a.textPrompts.empty() || !a.textPromptsFile.empty())
      return std::string("--serve takes its prompts from requests, not "
                         "--prompts, --random-prompts, --prompt or "
                         "--text-prompts");
    std::string host;
    int port = 0;
    if (!fairkv::serve::parseHostPort(a.serve, host, port))
      return "--serve needs HOST:PORT, got '" + a.serve + "'";
  }
  return "";
}

} // namespace

std::optional<int> fairkv::rt::parseProgramArgs(int argc,
                                                const char *const *argv,
                                                int64_t devices,
                                                ProgramArgs &a) {
  CLI::App app{"A FairKV program compiled for " + std::to_string(devices) +
               " devices: prefills the prompts, then decodes (greedily unless "
               "--temperature)"};
  addOptions(app, a);
  app.set_version_flag("--version", "FairKV program " FAIRKV_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e);
  }
  if (a.quiet && app.count("--log-level") == 0)
    a.logLevel = "error";
  if (std::string message = check(a, app.count("--duo-sink") > 0);
      !message.empty()) {
    std::cerr << "error: " << message << "\n";
    return 1;
  }
  return std::nullopt;
}

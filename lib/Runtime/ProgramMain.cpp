//===- ProgramMain.cpp - main() of a compiled FairKV program --------------===//
//
// `fairkv compile` links a program's object file with this driver: it opens
// the weights, runs one thread per device of the plan, prefills the prompts
// and decodes greedily, calling the compiled per-device step function.
//
//===----------------------------------------------------------------------===//

#include "BatchRunner.h"
#include "ProgramArgs.h"

#include "fairkv/Serve/ModelFolder.h"
#include "fairkv/Serve/Generation.h"
#include "fairkv/Serve/Server.h"
#include "fairkv/Tokenizer/Tokenizer.h"

#include "fairkv/Runtime/FairKVRuntime.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

#include <unistd.h>

/// Emitted by convert-fairkv-to-runtime: the plan's device count and the
/// dispatcher to the per-device programs.
extern "C" const int64_t fairkv_program_num_devices;
/// On the CUDA backend, positions from this one on are not computed as
/// transformers does (0: no limit), for the reason given.
extern "C" const int64_t fairkv_program_cuda_position_limit;
extern "C" const char fairkv_program_cuda_position_limit_reason[];
/// The model's sliding window (0: none).
extern "C" const int64_t fairkv_program_sliding_window;
/// The compression method the program's budgets were made for, and for
/// DuoAttention the sink its profile used (else -1).
extern "C" const char fairkv_program_kv_method[];
extern "C" const int64_t fairkv_program_duo_sink;

using fairkv::rt::ProgramArgs;
using fairkv::rt::parseProgramArgs;

namespace {

int fail(const std::string &message) {
  std::cerr << "error: " << message << "\n";
  return 1;
}

/// An output file written under a temporary name and renamed into place
/// when closed, on success and on a later refusal alike: a reader never
/// sees a line cut short, and what finished batches wrote is kept.
class OutputFile {
public:
  bool open(const std::string &path) {
    target = path;
    temporary = path + ".partial." + std::to_string(::getpid());
    out.open(temporary);
    return static_cast<bool>(out);
  }
  bool isOpen() const { return out.is_open(); }
  std::ofstream &stream() { return out; }
  /// Closes and renames; false (and the temporary removed) on a write error.
  bool close() {
    if (!out.is_open())
      return true;
    out.close();
    if (!out || std::rename(temporary.c_str(), target.c_str()) != 0) {
      std::remove(temporary.c_str());
      return false;
    }
    return true;
  }
  ~OutputFile() { close(); }

private:
  std::string target, temporary;
  std::ofstream out;
};

/// Reads `path`'s lines of token ids separated by spaces (empty lines
/// skipped), every id inside the vocabulary; "" or a one-line error naming
/// the ids as `what`.
std::string readTokenLines(const std::string &path, const std::string &what,
                           int64_t vocab,
                           std::vector<std::vector<int64_t>> &lines) {
  std::ifstream in(path);
  if (!in)
    return "cannot open " + what + "s '" + path + "'";
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<int64_t> ids;
    int64_t id;
    while (fields >> id) {
      if (id < 0 || id >= vocab)
        return what + " token " + std::to_string(id) +
               " is outside the vocabulary of " + std::to_string(vocab);
      ids.push_back(id);
    }
    if (!fields.eof())
      return what + "s must be token ids separated by spaces";
    if (!ids.empty())
      lines.push_back(std::move(ids));
  }
  return "";
}

/// --time-devices: each device's busy time per decode step (the median
/// step), alone, and the
/// slowest against the mean (what the plan's balance comes to on this
/// machine; a step of the plan on G machines of this kind would take the
/// slowest device's time plus its collectives).
void reportDeviceTimes(std::ostream &report, fairkv_rt_session *session,
                       int64_t G) {
  double slowest = 0, sum = 0;
  int64_t slowestDevice = 0;
  for (int64_t g = 0; g < G; ++g) {
    double prefill = 0, decode = 0, perStep = 0;
    int64_t steps = 0;
    fairkv_rt_ctx_busy_seconds(fairkv_rt_session_device(session, g), &prefill,
                               &decode, &steps, &perStep);
    report << "device " << g << " alone: " << perStep
           << " s per decode step (median of " << steps << ", mean "
           << (steps > 0 ? decode / steps : 0) << "), prefill " << prefill
           << " s\n";
    sum += perStep;
    if (perStep > slowest) {
      slowest = perStep;
      slowestDevice = g;
    }
  }
  report << "devices alone: slowest decode step " << slowest << " s (device "
         << slowestDevice << "), mean " << sum / G << " s, max/mean "
         << (sum > 0 ? slowest * G / sum : 0) << "\n";
}

/// --op-times: per device, what each kind of op took per decode step (on a
/// GPU the device's time between the op's start and end, so an op the host
/// is late to start counts that wait too), its share of all ops, the
/// weights it read per step and at what rate, and its prefill time; then
/// the decode step's wall time, whose difference from all ops is what no op
/// covers.
void reportOpTimes(std::ostream &report, fairkv_rt_session *session,
                   int64_t devices, double decodeWallSeconds) {
  char line[160];
  for (int64_t g = 0; g < devices; ++g) {
    fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, g);
    int64_t steps = 0;
    std::vector<fairkv_rt_op_time> ops(
        fairkv_rt_ctx_op_times(ctx, nullptr, 0, &steps));
    fairkv_rt_ctx_op_times(ctx, ops.data(), static_cast<int64_t>(ops.size()),
                           &steps);
    std::sort(ops.begin(), ops.end(), [](const auto &x, const auto &y) {
      return x.decode_seconds != y.decode_seconds
                 ? x.decode_seconds > y.decode_seconds
                 : std::strcmp(x.name, y.name) < 0;
    });
    const double perStep = steps > 0 ? 1.0 / steps : 0;
    fairkv_rt_op_time all = {"all ops", 0, 0, 0, 0, 0};
    for (const fairkv_rt_op_time &op : ops) {
      all.prefill_calls += op.prefill_calls;
      all.decode_calls += op.decode_calls;
      all.prefill_seconds += op.prefill_seconds;
      all.decode_seconds += op.decode_seconds;
      all.decode_weight_bytes += op.decode_weight_bytes;
    }
    report << "op times, device " << g << " (" << steps
           << " decode steps; per decode step):\n";
    std::snprintf(line, sizeof(line), "  %-18s %8s %10s %7s %11s %8s %11s\n",
                  "op", "calls", "decode ms", "share", "weights MB", "GB/s",
                  "prefill ms");
    report << line;
    ops.push_back(all);
    for (const fairkv_rt_op_time &op : ops) {
      const double ms = op.decode_seconds * perStep * 1e3;
      const double mb = op.decode_weight_bytes * perStep / 1e6;
      std::snprintf(line, sizeof(line), "  %-18s %8.1f %10.3f %6.1f%% ",
                    op.name, op.decode_calls * perStep, ms,
                    all.decode_seconds > 0
                        ? 100 * op.decode_seconds / all.decode_seconds
                        : 0.0);
      report << line;
      if (mb > 0 && op.decode_seconds > 0)
        std::snprintf(line, sizeof(line), "%11.2f %8.1f ", mb,
                      op.decode_weight_bytes / op.decode_seconds / 1e9);
      else
        std::snprintf(line, sizeof(line), "%11s %8s ", "", "");
      report << line;
      std::snprintf(line, sizeof(line), "%11.3f\n", op.prefill_seconds * 1e3);
      report << line;
    }
    std::snprintf(line, sizeof(line), "  %-18s %8s %10.3f\n",
                  "decode step, wall", "", decodeWallSeconds * perStep * 1e3);
    report << line;
  }
}

} // namespace

static int runProgram(int argc, char **argv) {
  ProgramArgs a;
  a.kvMethod = fairkv_program_kv_method;
  a.duoSink = fairkv_program_duo_sink;
  if (std::optional<int> exit =
          parseProgramArgs(argc, argv, fairkv_program_num_devices, a))
    return *exit;
  int64_t rank = -1, ranks = 0;
  if (a.useMpi) {
    if (fairkv_rt_mpi_init(&argc, &argv, &rank, &ranks) != FAIRKV_OK)
      return fail(fairkv_rt_last_error());
    std::atexit(fairkv_rt_mpi_finalize);
  }
  // Rank 0 (or the one process) reads references and writes every output.
  const bool leader = rank <= 0;

  fairkv_rt_options options;
  fairkv_rt_default_options(&options);
  options.devices = fairkv_program_num_devices;
  options.sliding_window = fairkv_program_sliding_window;
  options.max_new_tokens = a.maxNew;
  options.snapkv_window = a.window;
  options.kv_bytes_per_device = a.kvBytes;
  options.adakv_alpha = a.adakvAlpha;
  options.snapkv_kernel = a.snapkvKernel;
  options.duo_sink = a.duoSink;
  options.snapkv_pool =
      a.snapkvPool == "max" ? FAIRKV_RT_POOL_MAX : FAIRKV_RT_POOL_AVG;
  options.backend =
      a.backend == "cuda" ? FAIRKV_RT_BACKEND_CUDA : FAIRKV_RT_BACKEND_CPU;
  options.mpi_rank = rank;
  options.time_devices = a.timeDevices;
  options.op_times = a.opTimes;
  options.cuda_graphs = a.cudaGraphs;
  options.solo_devices = a.soloDevices;
  options.storage = a.storage == "fp16" ? FAIRKV_RT_STORAGE_FP16
                                      : FAIRKV_RT_STORAGE_BF16;
  options.collectives = a.collectives == "nccl"
                            ? FAIRKV_RT_COLLECTIVES_NCCL
                            : FAIRKV_RT_COLLECTIVES_RENDEZVOUS;
  fairkv_rt_session *session = nullptr;
  const auto loadStart = std::chrono::steady_clock::now();
  if (a.logs("info"))
    std::cerr << "loading weights '" << a.weights << "' for "
              << fairkv_program_num_devices << " devices..." << std::endl;
  if (fairkv_rt_session_create(a.weights.c_str(), &options, &session) !=
      FAIRKV_OK)
    return fail(fairkv_rt_last_error());
  if (a.logs("info"))
    std::cerr << "weights ready in "
              << std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - loadStart)
                     .count()
              << " s" << std::endl;
  std::unique_ptr<fairkv_rt_session, void (*)(fairkv_rt_session *)> owner(
      session, fairkv_rt_session_destroy);

  const int64_t vocab = fairkv_rt_session_vocab(session);
  if (vocab <= 0)
    return fail("the weights have no 2-D 'model.embed_tokens.weight'");

  // Text in, text out: the prompts as text through the model's tokenizer,
  // each request's tokens sampled (greedy by default) and streamed to text
  // until an end-of-sequence id, a stop string or --max-new-tokens.
  std::optional<fairkv::tokenizer::Tokenizer> tokenizer;
  std::vector<int64_t> eos = a.eosIds;
  if (!a.tokenizer.empty()) {
    auto t = fairkv::tokenizer::Tokenizer::fromFile(a.tokenizer);
    if (!t)
      return fail(t.error());
    tokenizer.emplace(std::move(*t));
    if (eos.empty() && !a.ignoreEos) {
      auto ids = fairkv::serve::readEosIds(a.tokenizer);
      if (!ids)
        return fail(ids.error());
      eos = *ids;
    }
  }
  // Solo devices decode --max-new-tokens steps: their tokens are not the
  // model's, so nothing in them may end a request.
  if (a.ignoreEos || a.soloDevices)
    eos.clear();
  if (a.soloDevices)
    a.stops.clear();
  const bool text = tokenizer.has_value();
  if (!a.serve.empty()) {
    fairkv::serve::ServerOptions so;
    fairkv::serve::parseHostPort(a.serve, so.host, so.port);
    so.modelName = a.modelName;
    so.maxBatch = a.batchSize > 0 ? a.batchSize : 32;
    so.prefillTokens = a.prefillTokens;
    so.maxTokens = a.maxNew;
    so.eosIds = eos;
    so.logRequests = a.logs("debug");
    auto chat = fairkv::serve::readChatConfig(a.tokenizer);
    if (!chat)
      return fail(chat.error());
    so.chatTemplate = chat->chatTemplate;
    so.bosToken = chat->bosToken;
    so.eosToken = chat->eosToken;
    so.onListening = [&](int port) {
      std::cout << "serving " << a.modelName << " on http://" << so.host << ":"
                << port << " (" << fairkv_program_num_devices
                << " devices, continuous batching of up to " << so.maxBatch
                << " requests, up to " << so.maxTokens << " tokens each)"
                << std::endl;
    };
    fairkv::rt::ContinuousRunner runner(session, fairkv_program_num_devices);
    fairkv::serve::ServerHooks hooks;
    hooks.begin = [&] { return runner.begin(); };
    hooks.fitting = [&](const std::vector<int64_t> &lengths) {
      return runner.fitting(lengths);
    };
    hooks.prefill = [&](const std::vector<int64_t> &slots,
                        const std::vector<std::vector<int64_t>> &prompts,
                        fairkv::serve::StepRows &out) {
      return runner.prefill(slots, prompts, out);
    };
    hooks.decode = [&](const std::vector<int64_t> &slots,
                       const std::vector<int64_t> &ids,
                       const std::vector<int64_t> &positions,
                       fairkv::serve::StepRows &out) {
      return runner.decode(slots, ids, positions, out);
    };
    hooks.release = [&](int64_t slot) { runner.release(slot); };
    hooks.kvBytes = [&] { return runner.kvBytes(); };
    return fairkv::serve::serve(*tokenizer, so, hooks);
  }
  std::vector<std::vector<int64_t>> prompts;
  if (!a.textPromptsFile.empty()) {
    std::ifstream in(a.textPromptsFile);
    if (!in)
      return fail("cannot open text prompts '" + a.textPromptsFile + "'");
    for (std::string line; std::getline(in, line);)
      if (!line.empty())
        a.textPrompts.push_back(line);
    if (a.textPrompts.empty())
      return fail("'" + a.textPromptsFile + "' holds no prompt");
  }
  const int sources = !a.promptsFile.empty() + (a.randomPrompts > 0) +
                      !a.textPrompts.empty();
  if (sources != 1)
    return fail("give exactly one of --prompts, --random-prompts, --prompt "
                "and --text-prompts");
  if (!a.textPrompts.empty()) {
    for (size_t p = 0; p < a.textPrompts.size(); ++p) {
      prompts.push_back(tokenizer->encode(a.textPrompts[p], true));
      for (int64_t id : prompts.back())
        if (id >= vocab)
          return fail("the tokenizer's id " + std::to_string(id) +
                      " is outside the model's vocabulary of " +
                      std::to_string(vocab));
      if (prompts.back().size() < 2)
        return fail("prompt " + std::to_string(p) + " is " +
                    std::to_string(prompts.back().size()) +
                    " token(s): a prefill needs at least 2");
    }
  } else if (!a.promptsFile.empty()) {
    if (std::string error =
            readTokenLines(a.promptsFile, "prompt", vocab, prompts);
        !error.empty())
      return fail(error);
    for (size_t p = 0; p < prompts.size(); ++p)
      if (prompts[p].size() == 1)
        return fail("prompt " + std::to_string(p) +
                    " has a single token: a prefill needs at least 2");
    if (prompts.empty())
      return fail("'" + a.promptsFile + "' holds no prompt");
  } else {
    std::mt19937_64 rng(a.seed);
    std::uniform_int_distribution<int64_t> token(0, vocab - 1);
    std::uniform_int_distribution<int64_t> lengthOf(a.minPromptLen, a.promptLen);
    prompts.assign(a.randomPrompts, std::vector<int64_t>(a.promptLen));
    for (auto &p : prompts) {
      if (a.minPromptLen < a.promptLen)
        p.resize(lengthOf(rng));
      for (int64_t &t : p)
        t = token(rng);
    }
  }
  const int64_t total = static_cast<int64_t>(prompts.size());
  // Refused before any work: on the CUDA a.backend, a request whose last fed
  // position would reach what its kernels do not compute (a prompt of n
  // tokens and m new ones feeds positions 0 .. n + m - 2).
  if (fairkv_program_cuda_position_limit > 0 && a.backend == "cuda")
    for (size_t i = 0; i < prompts.size(); ++i)
      if (a.maxNew - 1 > fairkv_program_cuda_position_limit -
                           static_cast<int64_t>(prompts[i].size()))
        return fail("request " + std::to_string(i) + " needs positions up to " +
                    std::to_string(static_cast<int64_t>(prompts[i].size()) +
                                   a.maxNew - 2) +
                    ", but " + fairkv_program_cuda_position_limit_reason);
  if (a.batchSize == 0)
    a.batchSize = total;
  const int64_t G = fairkv_program_num_devices;

  // The reference run's logits, by (step, request).
  std::map<std::pair<int64_t, int64_t>, std::vector<float>> reference;
  if (!leader) {
    a.referenceLogits.clear();
    a.dumpLogits.clear();
  }
  if (!a.referenceLogits.empty()) {
    std::ifstream in(a.referenceLogits);
    if (!in)
      return fail("cannot open '" + a.referenceLogits + "'");
    std::string line;
    while (std::getline(in, line)) {
      int64_t step = -1, request = -1;
      if (std::sscanf(line.c_str(), "step %ld request %ld:", &step,
                      &request) != 2)
        return fail("'" + a.referenceLogits + "' is not a --dump-logits file");
      std::istringstream values(line.substr(line.find(':') + 1));
      std::vector<float> row;
      float v;
      while (values >> v)
        row.push_back(v);
      reference[{step, request}] = std::move(row);
    }
  }
  // Tokens to feed instead of the sampled ones, per request.
  std::vector<std::vector<int64_t>> forced;
  if (!a.forceTokens.empty()) {
    if (std::string error =
            readTokenLines(a.forceTokens, "forced", vocab, forced);
        !error.empty())
      return fail(error);
    if (forced.size() != prompts.size())
      return fail("--force-tokens has " + std::to_string(forced.size()) +
                  " lines for " + std::to_string(prompts.size()) + " prompts");
    for (const auto &tokens : forced)
      if (static_cast<int64_t>(tokens.size()) < a.maxNew)
        return fail("--force-tokens has fewer than --max-new-tokens tokens "
                    "for a request");
  }
  double worstError = 0, worstMargin = INFINITY;
  OutputFile logitsFile, keptFile;
  if (!a.dumpLogits.empty() && !logitsFile.open(a.dumpLogits))
    return fail("cannot write '" + a.dumpLogits + "'");
  std::ofstream &logits = logitsFile.stream();
  std::vector<std::vector<int64_t>> generated(total);
  const bool needLogits = a.minMargin > 0 || !a.referenceLogits.empty() ||
                          logitsFile.isOpen() || !a.sampling.greedy();
  // --dump-kept: by (request, layer, KV head), from every device.
  const std::string dumpKeptFile = leader ? a.dumpKept : std::string();
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::string> keptLines;
  if (!dumpKeptFile.empty() && a.backend != "cpu")
    return fail("--dump-kept needs the CPU backend");
  if (!dumpKeptFile.empty() && !keptFile.open(dumpKeptFile))
    return fail("cannot write '" + dumpKeptFile + "'");
  fairkv::rt::BatchRunner runner(session, G, a.useMpi ? rank : -1);
  runner.soloDevices = a.soloDevices;
  runner.prefillTokens = a.prefillTokens;
  runner.needLogits = needLogits;
  auto start = std::chrono::steady_clock::now();
  for (int64_t first = 0; first < total; first += a.batchSize) {
    const int64_t batch = std::min(a.batchSize, total - first);
    std::vector<std::vector<int64_t>> batchPrompts(
        prompts.begin() + first, prompts.begin() + first + batch);
    std::vector<fairkv::serve::Generation> gens;
    for (int64_t i = 0; i < batch; ++i)
      gens.emplace_back(a.sampling, static_cast<uint64_t>(first + i),
                        text ? &*tokenizer : nullptr, a.stops, eos, a.maxNew);
    std::string failure;
    // One request's logits at one step: the margin, the reference, the dump.
    auto checkRow = [&](int64_t step, int64_t request, const float *row) {
      float top = -INFINITY, second = -INFINITY, scale = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        scale = std::max(scale, std::fabs(row[v]));
        if (row[v] > top) {
          second = top;
          top = row[v];
        } else if (row[v] > second) {
          second = row[v];
        }
      }
      worstMargin = std::min<double>(worstMargin, (top - second) / scale);
      if (!a.referenceLogits.empty()) {
        auto it = reference.find({step, request});
        if (it == reference.end() ||
            it->second.size() != static_cast<size_t>(vocab)) {
          failure = "the reference logits do not cover step " +
                    std::to_string(step) + " of request " +
                    std::to_string(request) + " with " +
                    std::to_string(vocab) + " logits";
          return false;
        }
        double err = 0;
        for (int64_t v = 0; v < vocab; ++v)
          err = std::max<double>(err, std::fabs(row[v] - it->second[v]));
        worstError = std::max(worstError, err / scale);
      }
      if (logitsFile.isOpen()) {
        logits << "step " << step << " request " << request << ":";
        char buf[32];
        for (int64_t v = 0; v < vocab; ++v) {
          std::snprintf(buf, sizeof(buf), " %.9g", row[v]);
          logits << buf;
        }
        logits << "\n";
      }
      return true;
    };
    auto onStep = [&](const fairkv::rt::StepView &view,
                      std::vector<int64_t> &next) {
      const int64_t step = view.step;
      int64_t running = 0;
      const float *all = needLogits ? view.logits() : nullptr;
      for (int64_t i = 0; i < batch; ++i) {
        // Greedy decoding with nothing to check or dump reads no logits
        // (a GPU keeps them).
        const float *row = all ? all + i * vocab : nullptr;
        if (row && !checkRow(step, first + i, row))
          return false;
        // A finished request's row still steps with the batch; what it is
        // fed no longer matters.
        std::string delta;
        const int64_t token =
            gens[i].done() ? (*view.argmax)[i]
                           : gens[i].next(row, vocab, (*view.argmax)[i], &delta);
        next[i] = forced.empty() ? token : forced[first + i][step];
        running += !gens[i].done();
      }
      return running > 0;
    };
    auto afterPrefill = [&] {
      if (dumpKeptFile.empty() || a.useMpi)
        return;
      for (int64_t g = 0; g < G; ++g) {
        fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, g);
        int64_t layer, head, request;
        const int64_t *kept;
        for (int64_t e = 0, n; (n = fairkv_rt_ctx_kept(ctx, e, &layer, &head,
                                                       &request, &kept)) >= 0;
             ++e) {
          std::string line = "request " + std::to_string(first + request) +
                             " layer " + std::to_string(layer) + " head " +
                             std::to_string(head) + ":";
          for (int64_t i = 0; i < n; ++i)
            line += " " + std::to_string(kept[i]);
          keptLines[{first + request, layer, head}] = line;
        }
      }
    };
    int64_t promptTokens = 0;
    for (const auto &p : batchPrompts)
      promptTokens += static_cast<int64_t>(p.size());
    // A long prefill says what it is doing before it starts, and step by
    // step when in groups.
    const bool longPrefill = a.logs("info") && leader && promptTokens >= 8192;
    if (longPrefill)
      std::cerr << "prefilling requests " << first << ".." << first + batch - 1
                << ": " << promptTokens << " prompt tokens..." << std::endl;
    int64_t prefillStep = 0;
    runner.onPrefillStep = [&](int64_t from, int64_t to, size_t steps) {
      if (longPrefill)
        std::cerr << "  prefill step " << ++prefillStep << " of " << steps
                  << ": requests " << first + from << ".." << first + to - 1
                  << std::endl;
    };
    // Refused before any of its work, with what it needs and what fits;
    // the batches before it are printed and written already.
    if (std::string error = runner.admit(batchPrompts); !error.empty())
      return fail("requests " + std::to_string(first) + ".." +
                  std::to_string(first + batch - 1) + ": " + error);
    if (std::string error =
            runner.run(batchPrompts, a.maxNew, onStep, afterPrefill);
        !error.empty())
      return fail(error);
    if (!failure.empty())
      return fail(failure);
    for (int64_t i = 0; i < batch; ++i)
      generated[first + i] = gens[i].tokens();
    // A finished batch's tokens and kept sets are out before the next
    // batch starts (the kept lines' order is by request, then layer, head).
    if (leader && !a.soloDevices) {
      for (int64_t i = first; i < first + batch; ++i) {
        if (!a.quiet && !a.jsonLines)
          std::cout << "request " << i << ":";
        if (text) {
          const fairkv::serve::Generation &gen = gens[i - first];
          const std::string out = gen.text();
          if (a.jsonLines) {
            nlohmann::json line = {{"request", i},
                                   {"text", out},
                                   {"tokens", generated[i]},
                                   {"finish_reason", gen.reason()}};
            std::cout << line.dump(-1, ' ', false,
                                   nlohmann::json::error_handler_t::replace)
                      << "\n";
          } else {
            std::cout << (a.quiet ? "" : " ") << out << "\n";
          }
          continue;
        }
        for (int64_t t : generated[i])
          std::cout << " " << t;
        std::cout << "\n";
      }
      std::cout.flush();
    }
    for (const auto &[key, line] : keptLines)
      keptFile.stream() << line << "\n";
    keptLines.clear();
    if (a.logs("info") && leader && total > batch)
      std::cerr << "batch of requests " << first << ".." << first + batch - 1
                << " done\n";
  }
  if (!keptFile.close())
    return fail("cannot write '" + dumpKeptFile + "'");
  if (!logitsFile.close())
    return fail("cannot write '" + a.dumpLogits + "'");
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  if (!reference.empty()) {
    std::cerr << "logits: largest difference from the reference "
              << worstError << " of the largest |logit| (tolerance "
              << a.tolerance << ")\n";
    if (!(worstError <= a.tolerance))
      return fail("logits differ from the reference by " +
                  std::to_string(worstError) + " > " +
                  std::to_string(a.tolerance));
  }
  if (worstMargin < a.minMargin)
    return fail("a step's top two logits are only " +
                std::to_string(worstMargin) +
                " apart (relative): choose another seed");
  if (!leader)
    return 0;
  if (!a.quiet) {
    // JSON lines keep stdout to the requests.
    std::ostream &report = a.jsonLines ? std::cerr : std::cout;
    int64_t decodedTokens = 0;
    for (const auto &g : generated)
      decodedTokens += static_cast<int64_t>(g.size());
    // Requests that stopped early (an end-of-sequence id, a stop string)
    // decode fewer than --max-new-tokens.
    if (decodedTokens == total * a.maxNew)
      report << "decoded " << total << " x " << a.maxNew << " tokens on ";
    else
      report << "decoded " << decodedTokens << " tokens (" << total
                << " requests, at most " << a.maxNew << " each) on ";
    report << G << (a.useMpi ? " devices (MPI ranks)" : " devices")
              << " in " << seconds << " s (" << decodedTokens / seconds
              << " tokens/s)\n";
    // The prefill yields each request's first token; the decode steps the
    // rest.
    const int64_t decodeTokens = decodedTokens - total;
    report << "prefill " << runner.prefillSeconds << " s; decode "
           << runner.decodeSeconds << " s for ";
    if (decodedTokens == total * a.maxNew)
      report << total << " x " << a.maxNew - 1 << " tokens (";
    else
      report << decodeTokens << " tokens (";
    report << (runner.decodeSeconds > 0 ? decodeTokens / runner.decodeSeconds
                                        : 0)
           << " decode tokens/s)\n";
    // Each MPI rank holds only its own device's figures: rank 0 prints its.
    for (int64_t g = 0; g < (a.useMpi ? 1 : G); ++g) {
      double prefill = 0, decode = 0;
      int64_t tokens = 0, bytes = 0;
      fairkv_rt_ctx_stats(fairkv_rt_session_device(session, g), &prefill,
                          &decode, &tokens, &bytes);
      int64_t prefillTensors = 0, decodeTensors = 0;
      fairkv_rt_ctx_tensor_bytes(fairkv_rt_session_device(session, g),
                                 &prefillTensors, &decodeTensors);
      report << "device " << g << ": decode attention " << decode
             << " s, prefill attention " << prefill << " s, KV tokens held "
             << tokens << ", KV pool bytes " << bytes << " (admitted "
             << runner.admitted[a.useMpi ? rank : g] << ")\n";
      report << "device " << g << ": step tensors at most " << prefillTensors
             << " bytes at once in prefill, " << decodeTensors
             << " in decode\n";
    }
    if (a.soloDevices)
      report << "solo devices: each decode step's collectives were local "
                "stand-ins, so its tokens are not the model's and none is "
                "printed\n";
    if (a.timeDevices)
      reportDeviceTimes(report, session, G);
    if (a.opTimes)
      reportOpTimes(report, session, a.useMpi ? 1 : G, runner.decodeSeconds);
  }
  return 0;
}

int main(int argc, char **argv) {
  // Every error is a one-line message; an exception reaching here is a bug,
  // still reported in one line rather than an abort.
  try {
    return runProgram(argc, argv);
  } catch (const std::exception &e) {
    return fail(e.what());
  }
}

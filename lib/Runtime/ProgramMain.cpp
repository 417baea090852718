//===- ProgramMain.cpp - main() of a compiled FairKV program --------------===//
//
// `fairkv compile` links a program's object file with this driver: it opens
// the weights, runs one thread per device of the plan, prefills the prompts
// and decodes greedily, calling the compiled per-device step function.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Runtime/FairKVRuntime.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>

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
/// The plan's KV layout (fairkv_rt_session_admit_batch), for refusing a
/// batch that does not fit before any of its work.
extern "C" const int64_t fairkv_program_kv_layout[];
extern "C" const double fairkv_program_kv_shares[];
extern "C" fairkv_rt_tensor *fairkv_program_step(fairkv_rt_ctx *ctx,
                                                 int64_t device,
                                                 fairkv_rt_tensor *ids,
                                                 fairkv_rt_tensor *positions);

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

} // namespace

static int runProgram(int argc, char **argv) {
  CLI::App app{"A FairKV program compiled for " +
               std::to_string(fairkv_program_num_devices) +
               " devices: prefills the prompts, then decodes greedily"};
  std::string weights, promptsFile, dumpLogits, referenceLogits, forceTokens,
      backend = "cpu";
  double tolerance = 1e-5, minMargin = 0;
  int64_t randomPrompts = 0, promptLen = 16, maxNew = 8, window = 8,
          kvBytes = 0, batchSize = 0, minPromptLen = 0;
  double adakvAlpha = -1;
  uint64_t seed = 1;
  bool quiet = false;
  app.add_option("--weights", weights, "model weights (safetensors)")
      ->required();
  app.add_option("--prompts", promptsFile,
                 "prompts: one per line, token ids separated by spaces (at "
                 "least 2 per prompt; lengths may differ)");
  app.add_option("--random-prompts", randomPrompts,
                 "instead, this many seeded random prompts");
  app.add_option("--prompt-len", promptLen, "length of the random prompts")
      ->capture_default_str();
  app.add_option("--min-prompt-len", minPromptLen,
                 "if given, random prompts get seeded lengths between this "
                 "and --prompt-len");
  app.add_option("--max-new-tokens", maxNew, "tokens to generate")
      ->capture_default_str();
  app.add_option("--batch-size", batchSize,
                 "requests per batch; the prompts run as consecutive batches "
                 "(0: all in one)")
      ->capture_default_str();
  std::string kvMethod = fairkv_program_kv_method, snapkvPool, dumpKept;
  int64_t snapkvKernel = 0, duoSink = fairkv_program_duo_sink;
  app.add_option("--kv-method", kvMethod,
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
  app.add_option("--duo-sink", duoSink,
                 "duo: the first tokens a streaming head keeps (default: "
                 "the profile's, else 128)");
  app.add_option("--snapkv-kernel", snapkvKernel,
                 "tokens the scores are pooled over (odd; default 5, headkv "
                 "7)");
  app.add_option("--snapkv-pool", snapkvPool,
                 "avg or max pooling of the scores (default avg, headkv max)")
      ->check(CLI::IsMember({"avg", "max"}));
  app.add_option("--adakv-alpha", adakvAlpha,
                 "adakv: the fraction of its own budget every head keeps at "
                 "least, in [0, 1] (default 0.2, kvpress's)");
  app.add_option("--dump-kept", dumpKept,
                 "CPU backend: write the prompt positions every (request, "
                 "layer, KV head) keeps after its prefill to this file");
  app.add_option("--seed", seed, "seed of the random prompts")
      ->capture_default_str();
  app.add_option("--snapkv-window", window,
                 "prompt queries that score the tokens kept at prefill")
      ->capture_default_str();
  app.add_option("--kv-memory", kvBytes,
                 "bytes of KV pages each device may hold (0: no limit); a "
                 "batch that needs more is refused")
      ->capture_default_str();
  app.add_option("--dump-logits", dumpLogits,
                 "write each step's last-position logits to this file");
  app.add_option("--reference-logits", referenceLogits,
                 "compare each step's logits with this --dump-logits file of "
                 "another run (e.g. unsharded) and fail beyond --tolerance");
  app.add_option("--tolerance", tolerance,
                 "largest |difference| / largest |logit| allowed per step")
      ->capture_default_str();
  app.add_option("--min-margin", minMargin,
                 "fail if a step's top two logits are closer than this "
                 "(relative to the largest |logit|): a near-tie would make "
                 "greedy tokens depend on rounding")
      ->capture_default_str();
  app.add_option("--force-tokens", forceTokens,
                 "feed these tokens (another run's --quiet output) instead "
                 "of the sampled ones, so logits can be compared step by step "
                 "across backends even where a near-tie flips a token");
  app.add_option("--backend", backend,
                 "cpu (the fp32 reference) or cuda (device d on GPU d modulo "
                 "the GPUs visible; bf16 weights and KV)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  std::string collectives = "rendezvous", storage = "bf16";
  app.add_option("--storage", storage,
                 "cuda backend: the 16-bit type of weights, KV cache and GEMM "
                 "inputs (bf16 or fp16; fp32 accumulation either way)")
      ->check(CLI::IsMember({"bf16", "fp16"}))
      ->capture_default_str();
  app.add_option("--collectives", collectives,
                 "cuda backend: rendezvous (devices meet in the process and "
                 "copy; any number per GPU) or nccl (one NCCL communicator, "
                 "ncclCommInitAll; one GPU per device)")
      ->check(CLI::IsMember({"rendezvous", "nccl"}))
      ->capture_default_str();
  bool useMpi = false;
  app.add_flag("--mpi", useMpi,
               "run as one rank of an MPI job with one rank per device "
               "(mpirun -np <devices>): this process runs device <rank>; rank "
               "0 prints");
  app.add_flag("--quiet", quiet, "print only the generated tokens");
  CLI11_PARSE(app, argc, argv);
  int64_t rank = -1, ranks = 0;
  if (useMpi) {
    if (fairkv_rt_mpi_init(&argc, &argv, &rank, &ranks) != FAIRKV_OK)
      return fail(fairkv_rt_last_error());
    std::atexit(fairkv_rt_mpi_finalize);
  }
  // Rank 0 (or the one process) reads references and writes every output.
  const bool leader = rank <= 0;

  if (maxNew <= 0 || promptLen < 2 || window <= 0 || kvBytes < 0 ||
      batchSize < 0)
    return fail("--max-new-tokens and --snapkv-window must be positive, "
                "--prompt-len at least 2, --kv-memory and --batch-size "
                "non-negative");
  // Limits before anything is allocated (FAIRKV_RT_MAX_TOKENS per request).
  constexpr int64_t kMaxRequests = int64_t(1) << 20;
  if (promptLen > FAIRKV_RT_MAX_TOKENS || maxNew > FAIRKV_RT_MAX_TOKENS ||
      window > FAIRKV_RT_MAX_TOKENS)
    return fail("--prompt-len, --max-new-tokens and --snapkv-window may be "
                "at most " + std::to_string(FAIRKV_RT_MAX_TOKENS));
  if (randomPrompts < 0 || randomPrompts > kMaxRequests ||
      batchSize > kMaxRequests)
    return fail("--random-prompts and --batch-size must be between 0 and " +
                std::to_string(kMaxRequests));
  if (randomPrompts * promptLen > FAIRKV_RT_MAX_TOKENS * 16)
    return fail("--random-prompts x --prompt-len may be at most " +
                std::to_string(FAIRKV_RT_MAX_TOKENS * 16) + " tokens");
  if (!(tolerance >= 0) || !(minMargin >= 0))
    return fail("--tolerance and --min-margin must be non-negative");
  if (minPromptLen == 0)
    minPromptLen = promptLen;
  if (minPromptLen < 2 || minPromptLen > promptLen)
    return fail("--min-prompt-len must be between 2 and --prompt-len");
  if (kvMethod == "adakv") {
    if (adakvAlpha < 0)
      adakvAlpha = 0.2;
    if (!(adakvAlpha <= 1))
      return fail("--adakv-alpha must be in [0, 1]");
  } else if (adakvAlpha >= 0) {
    return fail("--adakv-alpha needs --kv-method adakv");
  }
  if (kvMethod == "duo") {
    if (duoSink < 0)
      duoSink = 128;
  } else if (app.count("--duo-sink")) {
    return fail("--duo-sink needs --kv-method duo");
  } else {
    duoSink = -1;
  }
  if (snapkvKernel == 0)
    snapkvKernel = kvMethod == "headkv" ? 7 : 5;
  if (snapkvPool.empty())
    snapkvPool = kvMethod == "headkv" ? "max" : "avg";
  if (snapkvKernel < 1 || snapkvKernel % 2 == 0)
    return fail("--snapkv-kernel must be odd and positive");
  fairkv_rt_options options;
  fairkv_rt_default_options(&options);
  options.devices = fairkv_program_num_devices;
  options.sliding_window = fairkv_program_sliding_window;
  options.max_new_tokens = maxNew;
  options.snapkv_window = window;
  options.kv_bytes_per_device = kvBytes;
  options.adakv_alpha = adakvAlpha;
  options.snapkv_kernel = snapkvKernel;
  options.duo_sink = duoSink;
  options.snapkv_pool =
      snapkvPool == "max" ? FAIRKV_RT_POOL_MAX : FAIRKV_RT_POOL_AVG;
  options.backend =
      backend == "cuda" ? FAIRKV_RT_BACKEND_CUDA : FAIRKV_RT_BACKEND_CPU;
  options.mpi_rank = rank;
  options.storage = storage == "fp16" ? FAIRKV_RT_STORAGE_FP16
                                      : FAIRKV_RT_STORAGE_BF16;
  options.collectives = collectives == "nccl"
                            ? FAIRKV_RT_COLLECTIVES_NCCL
                            : FAIRKV_RT_COLLECTIVES_RENDEZVOUS;
  fairkv_rt_session *session = nullptr;
  if (fairkv_rt_session_create(weights.c_str(), &options, &session) !=
      FAIRKV_OK)
    return fail(fairkv_rt_last_error());
  std::unique_ptr<fairkv_rt_session, void (*)(fairkv_rt_session *)> owner(
      session, fairkv_rt_session_destroy);

  const int64_t vocab = fairkv_rt_session_vocab(session);
  if (vocab <= 0)
    return fail("the weights have no 2-D 'model.embed_tokens.weight'");

  std::vector<std::vector<int64_t>> prompts;
  if (!promptsFile.empty() == (randomPrompts > 0))
    return fail("give exactly one of --prompts and --random-prompts");
  if (!promptsFile.empty()) {
    if (std::string error =
            readTokenLines(promptsFile, "prompt", vocab, prompts);
        !error.empty())
      return fail(error);
    for (size_t p = 0; p < prompts.size(); ++p)
      if (prompts[p].size() == 1)
        return fail("prompt " + std::to_string(p) +
                    " has a single token: a prefill needs at least 2");
    if (prompts.empty())
      return fail("'" + promptsFile + "' holds no prompt");
  } else {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> token(0, vocab - 1);
    std::uniform_int_distribution<int64_t> lengthOf(minPromptLen, promptLen);
    prompts.assign(randomPrompts, std::vector<int64_t>(promptLen));
    for (auto &p : prompts) {
      if (minPromptLen < promptLen)
        p.resize(lengthOf(rng));
      for (int64_t &t : p)
        t = token(rng);
    }
  }
  const int64_t total = static_cast<int64_t>(prompts.size());
  // Refused before any work: on the CUDA backend, a request whose last fed
  // position would reach what its kernels do not compute (a prompt of n
  // tokens and m new ones feeds positions 0 .. n + m - 2).
  if (fairkv_program_cuda_position_limit > 0 && backend == "cuda")
    for (size_t i = 0; i < prompts.size(); ++i)
      if (maxNew - 1 > fairkv_program_cuda_position_limit -
                           static_cast<int64_t>(prompts[i].size()))
        return fail("request " + std::to_string(i) + " needs positions up to " +
                    std::to_string(static_cast<int64_t>(prompts[i].size()) +
                                   maxNew - 2) +
                    ", but " + fairkv_program_cuda_position_limit_reason);
  if (batchSize == 0)
    batchSize = total;
  const int64_t G = fairkv_program_num_devices;

  // The reference run's logits, by (step, request).
  std::map<std::pair<int64_t, int64_t>, std::vector<float>> reference;
  if (!leader) {
    referenceLogits.clear();
    dumpLogits.clear();
  }
  if (!referenceLogits.empty()) {
    std::ifstream in(referenceLogits);
    if (!in)
      return fail("cannot open '" + referenceLogits + "'");
    std::string line;
    while (std::getline(in, line)) {
      int64_t step = -1, request = -1;
      if (std::sscanf(line.c_str(), "step %ld request %ld:", &step,
                      &request) != 2)
        return fail("'" + referenceLogits + "' is not a --dump-logits file");
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
  if (!forceTokens.empty()) {
    if (std::string error =
            readTokenLines(forceTokens, "forced", vocab, forced);
        !error.empty())
      return fail(error);
    if (forced.size() != prompts.size())
      return fail("--force-tokens has " + std::to_string(forced.size()) +
                  " lines for " + std::to_string(prompts.size()) + " prompts");
    for (const auto &tokens : forced)
      if (static_cast<int64_t>(tokens.size()) < maxNew)
        return fail("--force-tokens has fewer than --max-new-tokens tokens "
                    "for a request");
  }
  double worstError = 0, worstMargin = INFINITY;
  OutputFile logitsFile, keptFile;
  if (!dumpLogits.empty() && !logitsFile.open(dumpLogits))
    return fail("cannot write '" + dumpLogits + "'");
  std::ofstream &logits = logitsFile.stream();
  std::vector<std::vector<int64_t>> generated(total);
  // --dump-kept: by (request, layer, KV head), from every device.
  const std::string dumpKeptFile = leader ? dumpKept : std::string();
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::string> keptLines;
  if (!dumpKeptFile.empty() && backend != "cpu")
    return fail("--dump-kept needs the CPU backend");
  if (!dumpKeptFile.empty() && !keptFile.open(dumpKeptFile))
    return fail("cannot write '" + dumpKeptFile + "'");
  double prefillSeconds = 0, decodeSeconds = 0;
  // What admission computed for the last batch, per device.
  std::vector<int64_t> admitted(G, 0);
  auto start = std::chrono::steady_clock::now();
  for (int64_t first = 0; first < total; first += batchSize) {
    const int64_t batch = std::min(batchSize, total - first);
    std::vector<int64_t> lengths;
    int64_t length = 0;
    for (int64_t i = 0; i < batch; ++i) {
      lengths.push_back(static_cast<int64_t>(prompts[first + i].size()));
      length = std::max(length, lengths.back());
    }
    // Refused before any of its work, with what it needs and what fits;
    // the batches before it are printed and written already.
    if (fairkv_rt_session_admit_batch(session, fairkv_program_kv_layout,
                                      fairkv_program_kv_shares, lengths.data(),
                                      batch, admitted.data(),
                                      nullptr) != FAIRKV_OK)
      return fail("requests " + std::to_string(first) + ".." +
                  std::to_string(first + batch - 1) + ": " +
                  fairkv_rt_last_error());
    fairkv_rt_session_begin_batch(session, lengths.data(), batch);
    // Left padding: every prompt ends at the last column, so the last
    // position's logits are every request's next token.
    std::vector<int64_t> ids(batch * length, 0), positions(batch * length, 0);
    for (int64_t i = 0; i < batch; ++i) {
      int64_t pad = length - lengths[i];
      for (int64_t t = 0; t < lengths[i]; ++t) {
        ids[i * length + pad + t] = prompts[first + i][t];
        positions[i * length + pad + t] = t;
      }
    }
    for (int64_t step = 0; step < maxNew; ++step) {
      const int64_t seq = step == 0 ? length : 1;
      auto stepStart = std::chrono::steady_clock::now();
      std::vector<std::vector<int64_t>> results(G);
      auto runDevice = [&](int64_t g) {
          fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, g);
          fairkv_rt_step_begin(ctx, batch, seq);
          fairkv_rt_tensor *idsT =
              fairkv_rt_tensor_from_i64(ctx, ids.data(), batch, seq);
          fairkv_rt_tensor *posT =
              fairkv_rt_tensor_from_i64(ctx, positions.data(), batch, seq);
          fairkv_rt_tensor *out = fairkv_program_step(ctx, g, idsT, posT);
          const int64_t *data = fairkv_rt_tensor_i64_data(out);
          if (!data || fairkv_rt_tensor_numel(out) != batch)
            fairkv_rt_fatal("the program returned no tokens");
          results[g].assign(data, data + batch);
          fairkv_rt_step_end(ctx);
      };
      if (useMpi) {
        // One device per process, on this thread (MPI's FUNNELED level).
        runDevice(rank);
      } else {
        std::vector<std::thread> threads;
        for (int64_t g = 0; g < G; ++g)
          threads.emplace_back(runDevice, g);
        for (std::thread &t : threads)
          t.join();
      }
      (step == 0 ? prefillSeconds : decodeSeconds) +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                        stepStart)
              .count();
      const int64_t here = useMpi ? rank : 0;
      if (step == 0 && !dumpKeptFile.empty())
        for (int64_t g = 0; g < G && !useMpi; ++g) {
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
      for (int64_t g = 1; g < G && !useMpi; ++g)
        if (results[g] != results[0])
          return fail("devices disagree on the tokens of step " +
                      std::to_string(step));
      int64_t count = 0;
      const float *l = fairkv_rt_ctx_last_logits(
          fairkv_rt_session_device(session, here), &count);
      for (int64_t i = 0; i < batch; ++i) {
        const float *row = l + i * vocab;
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
        if (!referenceLogits.empty()) {
          auto it = reference.find({step, first + i});
          if (it == reference.end() ||
              it->second.size() != static_cast<size_t>(vocab))
            return fail("the reference logits do not cover step " +
                        std::to_string(step) + " of request " +
                        std::to_string(first + i) + " with " +
                        std::to_string(vocab) + " logits");
          double err = 0;
          for (int64_t v = 0; v < vocab; ++v)
            err = std::max<double>(err, std::fabs(row[v] - it->second[v]));
          worstError = std::max(worstError, err / scale);
        }
        if (logitsFile.isOpen()) {
          logits << "step " << step << " request " << first + i << ":";
          char buf[32];
          for (int64_t v = 0; v < vocab; ++v) {
            std::snprintf(buf, sizeof(buf), " %.9g", row[v]);
            logits << buf;
          }
          logits << "\n";
        }
      }
      ids.assign(results[here].begin(), results[here].end());
      positions.clear();
      for (int64_t i = 0; i < batch; ++i) {
        generated[first + i].push_back(results[here][i]);
        positions.push_back(lengths[i] + step);
        if (!forced.empty())
          ids[i] = forced[first + i][step];
      }
    }
    // A finished batch's tokens and kept sets are out before the next
    // batch starts (the kept lines' order is by request, then layer, head).
    if (leader) {
      for (int64_t i = first; i < first + batch; ++i) {
        if (!quiet)
          std::cout << "request " << i << ":";
        for (int64_t t : generated[i])
          std::cout << " " << t;
        std::cout << "\n";
      }
      std::cout.flush();
    }
    for (const auto &[key, line] : keptLines)
      keptFile.stream() << line << "\n";
    keptLines.clear();
    if (!quiet && leader && total > batch)
      std::cerr << "batch of requests " << first << ".." << first + batch - 1
                << " done\n";
  }
  if (!keptFile.close())
    return fail("cannot write '" + dumpKeptFile + "'");
  if (!logitsFile.close())
    return fail("cannot write '" + dumpLogits + "'");
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  if (!reference.empty()) {
    std::cerr << "logits: largest difference from the reference "
              << worstError << " of the largest |logit| (tolerance "
              << tolerance << ")\n";
    if (!(worstError <= tolerance))
      return fail("logits differ from the reference by " +
                  std::to_string(worstError) + " > " +
                  std::to_string(tolerance));
  }
  if (worstMargin < minMargin)
    return fail("a step's top two logits are only " +
                std::to_string(worstMargin) +
                " apart (relative): choose another seed");
  if (!leader)
    return 0;
  if (!quiet) {
    std::cout << "decoded " << total << " x " << maxNew << " tokens on " << G
              << (useMpi ? " devices (MPI ranks)" : " devices") << " in "
              << seconds << " s ("
              << total * maxNew / seconds << " tokens/s)\n";
    // The prefill yields each request's first token; the decode steps the
    // rest.
    std::cout << "prefill " << prefillSeconds << " s; decode " << decodeSeconds
              << " s for " << total << " x " << maxNew - 1 << " tokens ("
              << (decodeSeconds > 0 ? total * (maxNew - 1) / decodeSeconds : 0)
              << " decode tokens/s)\n";
    // Each MPI rank holds only its own device's figures: rank 0 prints its.
    for (int64_t g = 0; g < (useMpi ? 1 : G); ++g) {
      double prefill = 0, decode = 0;
      int64_t tokens = 0, bytes = 0;
      fairkv_rt_ctx_stats(fairkv_rt_session_device(session, g), &prefill,
                          &decode, &tokens, &bytes);
      std::cout << "device " << g << ": decode attention " << decode
                << " s, prefill attention " << prefill
                << " s, KV tokens held " << tokens << ", KV pool bytes "
                << bytes << " (admitted " << admitted[useMpi ? rank : g]
                << ")\n";
    }
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

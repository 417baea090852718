//===- Runtime.h - FairKV runtime internals ---------------------*- C++ -*-===//
//
// The CPU reference backend behind the fairkv_rt_* ABI: fp32 tensors,
// devices as threads of one process sharing an in-process communicator, a
// paged per-(layer, KV head) cache per device, and safetensors weights.
// Shared by the ABI entry points, the program driver and the unit tests.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_RUNTIME_H
#define FAIRKV_RUNTIME_RUNTIME_H

#include "fairkv/Model/ModelConfig.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

/// The runtime's internals its plugins (the CUDA backend, MPI) call: they
/// are built from the same tree, so these are an ABI within one build, not
/// a public one (that is FairKVRuntime.h).
#define FAIRKV_RT_PLUGIN_API __attribute__((visibility("default")))

/// Row-major tensor: fp32 data, or int64 data for token ids and positions.
struct FAIRKV_RT_PLUGIN_API fairkv_rt_tensor {
  std::vector<int64_t> shape;
  std::vector<float> f;
  std::vector<int64_t> i;
  bool isInt = false;
  /// CUDA backend: the tensor's device buffer (fp32 or int64; the 16-bit
  /// storage type, bf16 or fp16, for weights), and whether `f`/`i` hold
  /// its data too.
  std::shared_ptr<void> device;
  /// CUDA backend: an fp32 activation's copy in the storage type, made by
  /// the first GEMM that reads it, for the others (q, k and v read one
  /// normed x). Tensors are never written once made.
  std::shared_ptr<void> deviceStorage16;
  bool storage16 = false;
  bool hostValid = true;

  int64_t numel() const;
  /// Bytes of its host storage.
  int64_t hostBytes() const {
    return static_cast<int64_t>(f.size() * sizeof(float) +
                                i.size() * sizeof(int64_t));
  }
  int64_t dim(size_t d) const { return shape.at(d); }
  /// Elements per batch row (product of all dims but the first).
  int64_t rowSize() const;
  std::string shapeString() const;
};

namespace fairkv::rt {

using Tensor = fairkv_rt_tensor;
/// A device's GPU state (CUDA backend, GpuBackend.h).
struct GpuDevice;

/// Prints "fairkv runtime: error: <message>" and exits: a compiled program
/// cannot recover in the middle of a decode step.
[[noreturn]] FAIRKV_RT_PLUGIN_API void fatal(const std::string &message);

/// A split of a copied head over replicas (n = 0: the whole batch).
/// `budget` is the head's KV budget in tokens (-1: unknown), which prices a
/// request at admission.
struct Split {
  int64_t head = -1, budget = -1;
  std::vector<int64_t> devices;
  std::vector<double> shares;
  bool whole() const { return devices.empty(); }
};

/// The requests (batch rows, ascending) each replica of `split` serves in
/// the current batch: requests are admitted in order, each to the replica
/// with the least KV of that head relative to its share, a request's KV
/// being min(prompt length, budget) + the tokens still to decode.
std::vector<std::vector<int64_t>> admit(const fairkv_rt_session &session,
                                        const Split &split, int64_t batch);
/// Ada-KV's safeguard: the tokens a head of `budget` keeps at least,
/// max(1, alpha * budget) (kvpress's AdaKVPress), its window counting first.
inline int64_t adaKVSafeguard(int64_t budget, double alpha) {
  int64_t safe = static_cast<int64_t>(budget * alpha);
  return alpha > 0 && budget > 0 ? std::max<int64_t>(1, safe) : safe;
}

/// Whether a head of `budget` streams a prompt of `length` tokens under
/// DuoAttention (keeping its sink and recent tokens, constant while
/// decoding).
inline bool duoStreams(const fairkv_rt_options &opt, int64_t length,
                       int64_t budget) {
  return opt.duo_sink >= 0 && length > budget;
}

/// A split's identity (its head, budget, replicas and shares), the key of
/// what is admitted to it.
std::string splitKey(const Split &split);

/// A request's price at admission to a copied head: the KV it will hold,
/// min(prompt length, budget) + the tokens it may decode.
inline int64_t admissionCost(int64_t length, int64_t budget, int64_t maxNew) {
  return (budget >= 0 ? std::min(length, budget) : length) + maxNew;
}

/// Continuous batching: which replica of a copied head serves each request
/// that joined, and the KV each replica's requests will hold.
struct Owners {
  std::map<int64_t, std::pair<int64_t, int64_t>> bySlot; // slot -> (replica, cost)
  std::vector<double> load;
  /// The replica a joining request goes to (the least KV relative to its
  /// share, ties to the lower), recorded.
  int64_t assign(int64_t slot, int64_t cost, const std::vector<double> &shares);
  void release(int64_t slot);
};

/// The same for requests of these prompt lengths, each decoding `maxNew`.
std::vector<std::vector<int64_t>>
admitRows(const std::vector<int64_t> &lengths, int64_t maxNew,
          const Split &split);

/// A prompt's prefill left for the end of the step: its keys and values
/// and the SnapKV scores of its candidate tokens. What a head keeps is
/// chosen only when the step ends, because Ada-KV's allocation needs every
/// head of the layer, and those live on other devices and in other calls.
struct PendingPrefill {
  int64_t layer = 0, head = 0, request = 0, budget = 0;
  /// Prompt tokens, and how many of the last ones form the window.
  int64_t length = 0, window = 0;
  /// SnapKV scores of the length - window candidate tokens (poolScores).
  std::vector<float> pooled;
  /// length x head_dim keys and values.
  std::vector<float> keys, values;
};

/// One KV head's cache on one device: a pool of fixed-size pages, each
/// request owning a list of pages (so variable budgets never fragment).
class HeadCache {
public:
  void reserve(int64_t pages, int64_t pageTokens, int64_t headDim);
  /// Commits `pages` pages to `request` (what it will hold at most), growing
  /// the pool when the free pages do not cover every commitment: requests
  /// that join a running batch get room without moving anyone's pages.
  void commit(int64_t request, int64_t pages, int64_t pageTokens,
              int64_t headDim);
  /// Gives a finished request's pages and commitment back.
  void release(int64_t request);
  int64_t poolPages() const { return totalPages; }
  int64_t committedPages() const { return committed; }
  /// Drops every request and the pool.
  void clear() { *this = HeadCache(); }
  bool reserved() const { return !pool.empty(); }
  bool has(int64_t request) const { return segments.count(request); }
  /// Appends a token of the request at sequence position `position` (tokens
  /// come in increasing positions).
  void append(int64_t request, const float *k, const float *v,
              int64_t position);
  /// The position after the request's last token (0 for none).
  int64_t nextPosition(int64_t request) const;
  /// The request's live tokens; token 0 is the oldest not dropped.
  int64_t length(int64_t request) const;
  const float *key(int64_t request, int64_t token) const;
  const float *value(int64_t request, int64_t token) const;
  /// Drops the request's tokens at positions before `position` (a sliding
  /// window's keys no query can see again), giving back whole pages.
  void dropBefore(int64_t request, int64_t position);
  /// Drops the request's live token `token` (the later ones move up one).
  void erase(int64_t request, int64_t token);
  /// A DuoAttention streaming head: the request keeps at most `size`
  /// tokens, its first `sink` staying (0: no limit).
  void setStreaming(int64_t request, int64_t size, int64_t sink);
  int64_t bytes() const;
  int64_t usedTokens() const;
  /// The requests holding tokens, and the positions of a request's live
  /// tokens (oldest first).
  std::vector<int64_t> requests() const;
  std::vector<int64_t> positions(int64_t request) const;

private:
  struct Segment {
    std::vector<int64_t> pages;
    /// Tokens written into `pages` (the first `start` of them dropped), and
    /// the position of each.
    int64_t length = 0, start = 0;
    std::vector<int64_t> positions;
    /// DuoAttention streaming: at most `streamSize` live tokens (0: any).
    int64_t streamSize = 0, streamSink = 0;
  };
  float *slot(int64_t page, int64_t offset);
  const float *slot(int64_t page, int64_t offset) const;
  std::vector<float> pool;
  std::vector<int64_t> freePages;
  std::map<int64_t, Segment> segments;
  std::map<int64_t, int64_t> commitments;
  int64_t pageTokens = 0, headDim = 0, totalPages = 0, committed = 0;
};

/// Timing mode (fairkv_rt_options.time_devices): the devices of a session
/// take turns, one working at a time, and each one's work between
/// collectives is timed, so a device's busy time is what its share of the
/// plan takes with the machine (a GPU, the cores) to itself. Collectives
/// themselves are not timed (their cost on real links is the cost model's);
/// the numbers computed are those of a normal run.
class FAIRKV_RT_PLUGIN_API DeviceTurns {
public:
  explicit DeviceTurns(fairkv_rt_session *session);
  /// The device starts or resumes work: waits for its turn, runs `untimed`
  /// (housekeeping that is not the step's work, kept off the cores while
  /// another device's clock runs), starts its clock.
  void take(int64_t device, const std::function<void()> &untimed = {});
  /// The device stops (at a collective, or the step's end): waits for what
  /// it queued on its GPU, adds the time to its step, passes the turn on.
  void give(int64_t device);
  /// Seconds device `device` worked in prefill steps and in decode steps,
  /// the decode steps counted, and the median decode step (robust to a
  /// machine shared with others).
  void busy(int64_t device, double *prefill, double *decode,
            int64_t *decodeSteps, double *medianDecodeStep) const;
  /// A step of `device` ended (a decode step's time is kept).
  void endStep(int64_t device);

private:
  fairkv_rt_session *session;
  std::mutex turn;
  struct Clock {
    std::chrono::steady_clock::time_point start;
    double prefill = 0, step = 0;
    std::vector<double> decodeSteps;
  };
  std::vector<Clock> clocks;
};

/// Meeting point of the devices for collectives. Devices as threads of one
/// process: every participant deposits its input under a key, waits for the
/// others, reads, and leaves; the entry disappears when the last one has
/// left. Devices as processes (MPI, one device per rank): every participant
/// receives a copy of every other's input, kept until it leaves.
class FAIRKV_RT_PLUGIN_API Rendezvous {
public:
  /// Returns every participant's input, indexed by participant; the
  /// participants are `devices`, this one is devices[index].
  std::vector<const Tensor *> exchange(const std::string &key,
                                       const std::vector<int64_t> &devices,
                                       int64_t index, const Tensor *input);
  /// Signals this participant (`device`) is done reading; waits for the
  /// others so inputs stay alive until nobody reads them.
  void leave(const std::string &key, int64_t device);
  /// From now on, exchange across MPI ranks (device d is rank d).
  void useMpi() { mpi = true; }
  /// Devices taking turns (timing mode): a participant gives its turn up
  /// while it waits for the others.
  void useTurns(DeviceTurns *t) { turns = t; }

private:
  struct Entry {
    std::vector<const Tensor *> inputs;
    int64_t deposited = 0, left = 0, participants = 0;
  };
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, Entry> entries;
  bool mpi = false;
  DeviceTurns *turns = nullptr;
  std::map<std::string, std::vector<std::unique_ptr<Tensor>>> received;
};

/// MPI collectives, through the MPI plugin (MpiBackend.h).
namespace mpi {
/// Every rank of `ranks` gets every one's `mine` (this rank is one of
/// them), in the order of `ranks`.
std::vector<std::unique_ptr<Tensor>> allgather(const std::vector<int64_t> &ranks,
                                               const Tensor &mine);
/// `bytes` at `data` from rank `root` to every rank.
FAIRKV_RT_PLUGIN_API void broadcast(void *data, size_t bytes, int root);
/// This process's rank and the number of ranks, or an error when MPI is
/// not initialized (fairkv_rt_mpi_init).
std::string world(int64_t *rank, int64_t *size);
} // namespace mpi

/// Safetensors weights, memory-mapped: one file, or the shards listed by a
/// Hugging Face `model.safetensors.index.json`.
class WeightFile {
public:
  ~WeightFile();
  /// Opens and indexes `path` (a .safetensors file or an .index.json);
  /// errors are one line.
  bool open(const std::string &path, std::string &error);
  struct Info {
    std::string dtype;
    std::vector<int64_t> shape;
    const uint8_t *data = nullptr;
  };
  const Info *find(const std::string &name) const;

  /// Every tensor's name, in order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto &[name, info] : tensors)
      out.push_back(name);
    return out;
  }

private:
  bool openShard(const std::string &path, std::string &error);
  std::map<std::string, Info> tensors;
  std::vector<std::pair<void *, size_t>> mappings;
};

/// Writes a seeded random-weight model of the given shape with Hugging Face
/// tensor names ("f32", "f16" or "bf16" storage).
bool writeRandomWeights(const std::string &path, int64_t layers,
                        int64_t hidden, int64_t heads, int64_t kvHeads,
                        int64_t headDim, int64_t ffn, int64_t vocab,
                        uint64_t seed, const std::string &dtype,
                        std::string &error);

/// Checks that `path` holds every tensor of a model of this shape, with the
/// right shape and a supported dtype; otherwise sets a one-line `error`.
bool checkWeights(const std::string &path, int64_t layers, int64_t hidden,
                  int64_t heads, int64_t kvHeads, int64_t headDim,
                  int64_t ffn, int64_t vocab, std::string &error);

/// Checks that `path` holds exactly these tensors: each with its shape and
/// a supported dtype, and none the model would not read; otherwise sets a
/// one-line `error`.
bool checkTensors(const std::string &path,
                  const std::vector<model::TensorSpec> &specs,
                  std::string &error);

} // namespace fairkv::rt


namespace fairkv::rt {

/// The host storage of a device's past tensors, for its next steps' to
/// reuse. A fresh allocation of a prefill's activations is memory the
/// kernel faults in page by page: 94% of a CPU run's page faults were in
/// making tensors, and its system time was most of its time.
class FAIRKV_RT_PLUGIN_API HostBuffers {
public:
  /// Sets `into` to `n` zeros, in a kept buffer of at most twice that
  /// capacity where there is one.
  void take(std::vector<float> &into, size_t n);
  void take(std::vector<int64_t> &into, size_t n);
  /// Keeps a released tensor's storage for the rest of the step.
  void put(std::vector<float> &from);
  void put(std::vector<int64_t> &from);
  /// Keeps the storage of a step's tensors and clears `arena`; drops what
  /// was kept but not reused by the step just ended.
  void keep(std::vector<std::unique_ptr<Tensor>> &arena);
  /// Bytes kept (for tests).
  size_t bytes() const;

  template <typename T> struct Kept {
    std::vector<T> data;
    /// The keep() that returned it.
    int64_t step = 0;
  };

private:
  std::multimap<size_t, Kept<float>> floats;
  std::multimap<size_t, Kept<int64_t>> ints;
  int64_t step = 0;
};

/// The bytes of a device's step tensors live at once (op results; on a GPU
/// the ops' temporaries too), and the most there were in a prefill and in
/// a decode step (fairkv_rt_ctx_tensor_bytes): what a step's activations
/// ask of the device's memory beside its weights and KV cache. The CUDA
/// backend's buffers let go of their bytes when freed, which may be after
/// the context is gone: they share this.
class FAIRKV_RT_PLUGIN_API TensorBytes {
public:
  void add(int64_t bytes, bool prefill) {
    const int64_t now = live.fetch_add(bytes) + bytes;
    std::atomic<int64_t> &peak = peaks[prefill ? 0 : 1];
    for (int64_t was = peak.load(); now > was;)
      if (peak.compare_exchange_weak(was, now))
        break;
  }
  void remove(int64_t bytes) { live.fetch_sub(bytes); }
  int64_t peak(bool prefill) const { return peaks[prefill ? 0 : 1].load(); }

private:
  std::atomic<int64_t> live{0};
  std::atomic<int64_t> peaks[2] = {0, 0};
};

} // namespace fairkv::rt

/// One device's state: its weights, KV cache and the tensors of the step.
struct fairkv_rt_ctx {
  fairkv_rt_session *session = nullptr;
  int64_t device = 0;
  /// Set when the device runs on a GPU (the CUDA backend).
  std::shared_ptr<fairkv::rt::GpuDevice> gpu;
  int64_t batch = 0, seq = 0;
  std::vector<std::unique_ptr<fairkv::rt::Tensor>> arena;
  /// Weights this device has asked for (whole ones shared with the
  /// session's other devices).
  std::map<std::string, std::shared_ptr<fairkv::rt::Tensor>> weights;
  std::map<std::pair<int64_t, int64_t>, fairkv::rt::HeadCache> cache;
  /// What fairkv_rt_ctx_kept last returned.
  mutable std::vector<int64_t> keptScratch;
  /// Bytes of KV page pools reserved on this device so far.
  int64_t reservedKVBytes = 0;
  std::map<std::string, int64_t> collectiveCounts;
  /// Prefills whose selection waits for the end of the step.
  std::vector<fairkv::rt::PendingPrefill> pending;
  /// admit()'s answers for this batch, by split.
  std::map<std::string, std::vector<std::vector<int64_t>>> admissions;
  /// Continuous batching: the owners of each copied head's requests, by
  /// split (every replica computes the same).
  std::map<std::string, fairkv::rt::Owners> owners;
  /// The logits greedy_sample saw in the last step (whole vocabulary).
  std::vector<float> lastLogits;
  /// CUDA backend: those logits while they are still only on the device
  /// (`rows` rows of `vocab` at `first`, `stride` floats apart, in
  /// `buffer`); fairkv_rt_ctx_last_logits fetches them.
  struct DeviceLogits {
    std::shared_ptr<void> buffer;
    const float *first = nullptr;
    int64_t rows = 0, vocab = 0, stride = 0;
  } deviceLogits;
  /// What each kind of op took (fairkv_rt_ctx_op_times): calls and
  /// seconds at prefill ([0]) and at decode ([1]), and weight bytes read.
  /// Attention always; every op under fairkv_rt_options.op_times. The CUDA
  /// backend adds the seconds when its events are settled.
  struct OpTotals {
    int64_t calls[2] = {0, 0};
    double seconds[2] = {0, 0};
    double weightBytes[2] = {0, 0};
  };
  std::map<std::string, OpTotals> opTimes;
  /// Decode steps (steps of one token per row) this device began.
  int64_t decodeSteps = 0;
  /// Runtime ops running (one, or two where an op runs another): only the
  /// outermost is timed.
  int opDepth = 0;
  /// Adds the time since `start` to op `op` (without a call: the call was
  /// counted when it began).
  void addOpTime(const std::string &op, bool prefill,
                 std::chrono::steady_clock::time_point start);

  /// The storage of past steps' tensors, which make() reuses.
  fairkv::rt::HostBuffers hostBuffers;
  std::shared_ptr<fairkv::rt::TensorBytes> tensorBytes =
      std::make_shared<fairkv::rt::TensorBytes>();
  /// A zero tensor of `shape` in the step's arena.
  fairkv::rt::Tensor *make(std::vector<int64_t> shape, bool isInt = false);
  /// A decode step of solo devices (fairkv_rt_options.solo_devices): its
  /// collectives are local stand-ins.
  bool standInCollectives() const;
  /// The next key for a collective among `participants`.
  FAIRKV_RT_PLUGIN_API std::string collectiveKey(const std::string &kind,
                            const std::vector<int64_t> &participants);
};

struct fairkv_rt_session {
  fairkv_rt_options options;
  fairkv::rt::WeightFile weights;
  fairkv::rt::Rendezvous comm;
  /// Timing mode: the devices' turns (null otherwise).
  std::unique_ptr<fairkv::rt::DeviceTurns> turns;
  /// Whole (unsliced) weights, which every device reads (embeddings, norms):
  /// loaded once per session, not once per device.
  std::mutex sharedWeightsMutex;
  std::map<std::string, std::shared_ptr<fairkv::rt::Tensor>> sharedWeights;
  /// Prompt length of each request of the current batch (empty: all as
  /// long as the prefill's sequence).
  std::vector<int64_t> promptLengths;
  /// Continuous batching: requests (slots) join and leave between steps;
  /// `rowSlots` says which slot each row of the next steps is, and
  /// `slotLengths` each joined slot's prompt length. In a batch of
  /// `promptLengths` (not continuous), `rowSlots` is empty (row i is
  /// request i) or says which requests a step's rows are: a prefill in
  /// groups of rows.
  bool continuous = false;
  std::vector<int64_t> rowSlots;
  std::map<int64_t, int64_t> slotLengths;
  std::vector<std::unique_ptr<fairkv_rt_ctx>> devices;

  /// The prompt length of `request` in a prefill of `seq` tokens.
  int64_t promptLength(int64_t request, int64_t seq) const {
    if (continuous)
      return slotLengths.at(request);
    return promptLengths.empty()
               ? seq
               : promptLengths.at(static_cast<size_t>(request));
  }
};

inline bool fairkv_rt_ctx::standInCollectives() const {
  return seq == 1 && session->options.solo_devices;
}

#endif // FAIRKV_RUNTIME_RUNTIME_H

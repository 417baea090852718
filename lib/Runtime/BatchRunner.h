//===- BatchRunner.h - One batch of requests through a program --*- C++ -*-===//
//
// The one loop that runs a compiled program: admission before any work,
// the left-padded prefill, then decode steps, on one thread per device (or
// this process's device under MPI). After each step the caller sees the
// devices' greedy tokens, and the logits if it asks, and chooses what to
// feed next, so the offline driver and the server share it.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_BATCHRUNNER_H
#define FAIRKV_RUNTIME_BATCHRUNNER_H

#include "DeviceThreads.h"
#include "fairkv/Runtime/FairKVRuntime.h"
#include "fairkv/Serve/Server.h"

#include <functional>
#include <string>
#include <vector>

namespace fairkv::rt {

struct StepView {
  /// 0: the prefill.
  int64_t step = 0;
  int64_t batch = 0, vocab = 0;
  /// batch x vocab last-position logits (every device computes the same),
  /// copied from a GPU only when asked for.
  const float *logits() const;
  fairkv_rt_ctx *device = nullptr;
  /// A prefill in groups of rows: the groups' logits, gathered (when the
  /// runner was asked for them).
  const std::vector<float> *gathered = nullptr;
  /// The devices' greedy token per request.
  const std::vector<int64_t> *argmax = nullptr;
};

class BatchRunner {
public:
  /// `rank` is this process's device under MPI, or -1.
  BatchRunner(fairkv_rt_session *session, int64_t devices, int64_t rank);

  /// After a step: fill `next` (preset to the argmax) with the tokens to feed
  /// and return whether to decode another step.
  using StepFn = std::function<bool(const StepView &, std::vector<int64_t> &next)>;

  /// Admission before any work: "" or the one-line refusal (what the batch
  /// needs, what fits); sets `admitted`.
  std::string admit(const std::vector<std::vector<int64_t>> &prompts);
  /// Runs admitted `prompts` (each at least 2 tokens) for at most
  /// `maxSteps` steps: "" or a one-line error. `afterPrefill` runs with no
  /// device busy once the prefill is done.
  std::string run(const std::vector<std::vector<int64_t>> &prompts,
                  int64_t maxSteps, const StepFn &onStep,
                  const std::function<void()> &afterPrefill = {});

  double prefillSeconds = 0, decodeSeconds = 0;
  /// Solo devices (fairkv_rt_options.solo_devices): their decode steps'
  /// tokens differ from device to device, and device 0's are fed.
  bool soloDevices = false;
  /// At most this many prompt tokens (rows x their longest prompt, padding
  /// included) per prefill step, at least one row (0: the whole batch in
  /// one): a batch is prefilled in groups of consecutive rows, one step
  /// each, then decoded together. A step's activations grow with its
  /// tokens, so this bounds a prefill's memory; the tokens are the same.
  int64_t prefillTokens = 0;
  /// Whether the step callback reads StepView::logits (a grouped prefill
  /// then gathers every group's).
  bool needLogits = false;
  /// Called before each prefill step of a batch prefilled in groups, with
  /// the step's requests [first, end) and the number of steps (progress).
  std::function<void(int64_t first, int64_t end, size_t steps)> onPrefillStep;
  /// What admission computed for the last batch, per device.
  std::vector<int64_t> admitted;

private:
  fairkv_rt_session *session_;
  int64_t devices_, rank_;
  /// The devices' threads (none under MPI).
  DeviceThreads threads_;
};

/// What one step of a continuous batch gives back, row by row (what the
/// server reads).
using StepOut = fairkv::serve::StepRows;

/// A continuous batch (the server's): requests join between steps (their
/// own prefill step) and leave when done, their KV pages going to the next
/// ones; every step is the same compiled program over the rows given.
class ContinuousRunner {
public:
  ContinuousRunner(fairkv_rt_session *session, int64_t devices);
  /// "" or a one-line error.
  std::string begin();
  /// How many of these joining prompts' first ones fit with the requests
  /// running (admission; all without --kv-memory).
  int64_t fitting(const std::vector<int64_t> &lengths) const;
  /// The prefill of joining `slots` (fresh ids), then each row's next-token
  /// logits in `out`.
  std::string prefill(const std::vector<int64_t> &slots,
                      const std::vector<std::vector<int64_t>> &prompts,
                      StepOut &out);
  /// One decode step of running `slots`, fed `ids` at `positions`.
  std::string decode(const std::vector<int64_t> &slots,
                     const std::vector<int64_t> &ids,
                     const std::vector<int64_t> &positions, StepOut &out);
  void release(int64_t slot);
  /// KV pool bytes on each device.
  std::vector<int64_t> kvBytes() const;

private:
  std::string step(int64_t batch, int64_t seq, const std::vector<int64_t> &ids,
                   const std::vector<int64_t> &positions, StepOut &out);
  fairkv_rt_session *session_;
  int64_t devices_;
  DeviceThreads threads_;
};

/// Runs one step of the program on every device (on `threads`, or on this
/// thread for this process's device under MPI when `rank` >= 0): each
/// device's tokens in `results` (this process's only, under MPI). "" or the
/// error when devices disagree (unless not `mustAgree`).
std::string runProgramStep(fairkv_rt_session *session, DeviceThreads &threads,
                           int64_t rank, int64_t batch, int64_t seq,
                           const std::vector<int64_t> &ids,
                           const std::vector<int64_t> &positions,
                           std::vector<std::vector<int64_t>> &results,
                           bool mustAgree = true);

} // namespace fairkv::rt

#endif // FAIRKV_RUNTIME_BATCHRUNNER_H

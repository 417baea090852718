//===- BatchRunner.cpp - One batch of requests through a program ----------===//

#include "BatchRunner.h"

#include <algorithm>
#include <chrono>

extern "C" const int64_t fairkv_program_kv_layout[];
extern "C" const double fairkv_program_kv_shares[];
extern "C" fairkv_rt_tensor *fairkv_program_step(fairkv_rt_ctx *ctx,
                                                 int64_t device,
                                                 fairkv_rt_tensor *ids,
                                                 fairkv_rt_tensor *positions);

using namespace fairkv::rt;

namespace {

/// Left-pads `prompts` into batch x length `ids` and `positions` (every
/// prompt ends at the last column, so the last position's logits are every
/// request's next token); returns the length, the longest prompt.
int64_t leftPad(const std::vector<std::vector<int64_t>> &prompts,
                std::vector<int64_t> &ids, std::vector<int64_t> &positions) {
  int64_t length = 0;
  for (const auto &p : prompts)
    length = std::max(length, static_cast<int64_t>(p.size()));
  const int64_t batch = static_cast<int64_t>(prompts.size());
  ids.assign(batch * length, 0);
  positions.assign(batch * length, 0);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t n = static_cast<int64_t>(prompts[i].size());
    for (int64_t t = 0; t < n; ++t) {
      ids[i * length + length - n + t] = prompts[i][t];
      positions[i * length + length - n + t] = t;
    }
  }
  return length;
}

/// Consecutive rows [first, end) of a batch of prompts of `lengths`
/// tokens per prefill step (fairkv::serve::promptsPerPrefillStep).
std::vector<std::pair<int64_t, int64_t>>
prefillGroups(const std::vector<int64_t> &lengths, int64_t tokens) {
  std::vector<std::pair<int64_t, int64_t>> groups;
  for (size_t first = 0; first < lengths.size();) {
    const size_t n = fairkv::serve::promptsPerPrefillStep(
        lengths.data() + first, lengths.size() - first, tokens);
    groups.push_back({first, first + n});
    first += n;
  }
  return groups;
}

} // namespace

std::string fairkv::rt::runProgramStep(
    fairkv_rt_session *session, DeviceThreads &threads, int64_t rank,
    int64_t batch, int64_t seq, const std::vector<int64_t> &ids,
    const std::vector<int64_t> &positions,
    std::vector<std::vector<int64_t>> &results, bool mustAgree) {
  const int64_t devices = threads.size();
  results.assign(rank >= 0 ? 1 : devices, {});
  auto runDevice = [&](int64_t g) {
    fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, g);
    fairkv_rt_step_begin(ctx, batch, seq);
    fairkv_rt_tensor *idsT =
        fairkv_rt_tensor_from_i64(ctx, ids.data(), batch, seq);
    fairkv_rt_tensor *posT =
        fairkv_rt_tensor_from_i64(ctx, positions.data(), batch, seq);
    fairkv_rt_tensor *out =
        fairkv_rt_run_step(ctx, g, idsT, posT, fairkv_program_step);
    const int64_t *data = fairkv_rt_tensor_i64_data(out);
    if (!data || fairkv_rt_tensor_numel(out) != batch)
      fairkv_rt_fatal("the program returned no tokens");
    results[rank >= 0 ? 0 : g].assign(data, data + batch);
    fairkv_rt_step_end(ctx);
  };
  if (rank >= 0) {
    // One device per process, on this thread (MPI's FUNNELED level).
    runDevice(rank);
    return "";
  }
  threads.run(runDevice);
  for (int64_t g = 1; g < devices && mustAgree; ++g)
    if (results[g] != results[0])
      return "devices disagree on a step's tokens";
  return "";
}

const float *StepView::logits() const {
  if (gathered) {
    if (static_cast<int64_t>(gathered->size()) != batch * vocab)
      fairkv_rt_fatal("the program returned no logits");
    return gathered->data();
  }
  int64_t count = 0;
  const float *all = fairkv_rt_ctx_last_logits(device, &count);
  if (count != batch * vocab)
    fairkv_rt_fatal("the program returned no logits");
  return all;
}

BatchRunner::BatchRunner(fairkv_rt_session *session, int64_t devices,
                         int64_t rank)
    : admitted(devices, 0), session_(session), devices_(devices), rank_(rank),
      threads_(rank >= 0 ? 0 : devices) {}

std::string
BatchRunner::admit(const std::vector<std::vector<int64_t>> &prompts) {
  std::vector<int64_t> lengths;
  for (const auto &p : prompts)
    lengths.push_back(static_cast<int64_t>(p.size()));
  if (fairkv_rt_session_admit_batch(
          session_, fairkv_program_kv_layout, fairkv_program_kv_shares,
          lengths.data(), static_cast<int64_t>(lengths.size()),
          admitted.data(), nullptr) != FAIRKV_OK)
    return fairkv_rt_last_error();
  return "";
}

std::string BatchRunner::run(const std::vector<std::vector<int64_t>> &prompts,
                             int64_t maxSteps, const StepFn &onStep,
                             const std::function<void()> &afterPrefill) {
  const int64_t batch = static_cast<int64_t>(prompts.size());
  const int64_t vocab = fairkv_rt_session_vocab(session_);
  std::vector<int64_t> lengths;
  for (const auto &p : prompts)
    lengths.push_back(static_cast<int64_t>(p.size()));
  fairkv_rt_session_begin_batch(session_, lengths.data(), batch);
  const int64_t here = rank_ >= 0 ? rank_ : 0;
  std::vector<int64_t> ids, positions;
  std::vector<int64_t> next(batch);
  // The prefill, one step per group of rows; each group's rows are
  // requests of the whole batch, which copied heads split as admitted.
  const auto groups = prefillGroups(lengths, prefillTokens);
  std::vector<float> gathered;
  for (const auto &[first, end] : groups) {
    const int64_t rows = end - first;
    std::vector<int64_t> requests;
    if (groups.size() > 1)
      for (int64_t r = first; r < end; ++r)
        requests.push_back(r);
    fairkv_rt_session_set_rows(session_, requests.data(),
                               static_cast<int64_t>(requests.size()));
    if (groups.size() > 1 && onPrefillStep)
      onPrefillStep(first, end, groups.size());
    const int64_t length = leftPad(
        {prompts.begin() + first, prompts.begin() + end}, ids, positions);
    std::vector<std::vector<int64_t>> results;
    auto stepStart = std::chrono::steady_clock::now();
    std::string error = runProgramStep(session_, threads_, rank_, rows, length,
                                       ids, positions, results);
    prefillSeconds += std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - stepStart)
                          .count();
    if (!error.empty())
      return error + " (step 0" +
             (groups.size() > 1 ? ", requests " + std::to_string(first) + ".." +
                                      std::to_string(end - 1)
                                : std::string()) +
             ")";
    std::copy(results[0].begin(), results[0].end(), next.begin() + first);
    if (groups.size() > 1 && needLogits) {
      StepView group;
      group.batch = rows;
      group.vocab = vocab;
      group.device = fairkv_rt_session_device(session_, here);
      const float *logits = group.logits();
      gathered.insert(gathered.end(), logits, logits + rows * vocab);
    }
  }
  fairkv_rt_session_set_rows(session_, nullptr, 0);
  if (afterPrefill)
    afterPrefill();
  for (int64_t step = 0; step < maxSteps; ++step) {
    if (step > 0) {
      auto stepStart = std::chrono::steady_clock::now();
      std::vector<std::vector<int64_t>> results;
      std::string error = runProgramStep(session_, threads_, rank_, batch, 1,
                                         ids, positions, results,
                                         /*mustAgree=*/!soloDevices);
      decodeSeconds += std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - stepStart)
                           .count();
      if (!error.empty())
        return error + " (step " + std::to_string(step) + ")";
      next = results[0];
    }
    StepView view;
    view.step = step;
    view.batch = batch;
    view.vocab = vocab;
    view.device = fairkv_rt_session_device(session_, here);
    view.gathered = step == 0 && groups.size() > 1 ? &gathered : nullptr;
    const std::vector<int64_t> argmax = next;
    view.argmax = &argmax;
    const bool more = onStep(view, next);
    if (!more || step + 1 == maxSteps)
      break;
    ids = next;
    positions.clear();
    for (int64_t i = 0; i < batch; ++i)
      positions.push_back(lengths[i] + step);
  }
  return "";
}

ContinuousRunner::ContinuousRunner(fairkv_rt_session *session, int64_t devices)
    : session_(session), devices_(devices), threads_(devices) {}

std::string ContinuousRunner::begin() {
  if (fairkv_rt_session_begin_continuous(session_) != FAIRKV_OK)
    return fairkv_rt_last_error();
  return "";
}

int64_t ContinuousRunner::fitting(const std::vector<int64_t> &lengths) const {
  int64_t fit = 0;
  (void)fairkv_rt_session_admit_join(
      session_, fairkv_program_kv_layout, fairkv_program_kv_shares,
      lengths.data(), static_cast<int64_t>(lengths.size()), nullptr, &fit);
  return fit;
}

std::string ContinuousRunner::step(int64_t batch, int64_t seq,
                                   const std::vector<int64_t> &ids,
                                   const std::vector<int64_t> &positions,
                                   StepOut &out) {
  std::vector<std::vector<int64_t>> results;
  if (std::string error = runProgramStep(session_, threads_, -1, batch, seq,
                                         ids, positions, results);
      !error.empty())
    return error;
  int64_t count = 0;
  out.logits =
      fairkv_rt_ctx_last_logits(fairkv_rt_session_device(session_, 0), &count);
  out.vocab = fairkv_rt_session_vocab(session_);
  out.argmax = results[0];
  return "";
}

std::string
ContinuousRunner::prefill(const std::vector<int64_t> &slots,
                          const std::vector<std::vector<int64_t>> &prompts,
                          StepOut &out) {
  const int64_t batch = static_cast<int64_t>(slots.size());
  std::vector<int64_t> lengths;
  for (const auto &p : prompts)
    lengths.push_back(static_cast<int64_t>(p.size()));
  fairkv_rt_session_join(session_, slots.data(), lengths.data(), batch);
  std::vector<int64_t> ids, positions;
  const int64_t length = leftPad(prompts, ids, positions);
  return step(batch, length, ids, positions, out);
}

std::string ContinuousRunner::decode(const std::vector<int64_t> &slots,
                                     const std::vector<int64_t> &ids,
                                     const std::vector<int64_t> &positions,
                                     StepOut &out) {
  fairkv_rt_session_set_rows(session_, slots.data(),
                             static_cast<int64_t>(slots.size()));
  return step(static_cast<int64_t>(slots.size()), 1, ids, positions, out);
}

void ContinuousRunner::release(int64_t slot) {
  fairkv_rt_session_release(session_, slot);
}

std::vector<int64_t> ContinuousRunner::kvBytes() const {
  std::vector<int64_t> bytes;
  for (int64_t g = 0; g < devices_; ++g) {
    double prefill = 0, decode = 0;
    int64_t tokens = 0, b = 0;
    fairkv_rt_ctx_stats(fairkv_rt_session_device(session_, g), &prefill,
                        &decode, &tokens, &b);
    bytes.push_back(b);
  }
  return bytes;
}

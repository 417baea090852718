//===- DeviceTurns.cpp - Devices one at a time, each one timed ------------===//
//
// See Runtime.h. One mutex is the turn: a device holds it from the start of
// its step (or the end of a collective) until its next collective (or the
// step's end), so at most one device computes at a time and its clock
// measures only its own work. Waiting in a collective gives the turn up,
// so the others can reach it.
//
//===----------------------------------------------------------------------===//

#include "GpuBackend.h"
#include "Runtime.h"

#include <algorithm>
#include <numeric>

using namespace fairkv::rt;

DeviceTurns::DeviceTurns(fairkv_rt_session *session)
    : session(session), clocks(session->devices.size()) {}

void DeviceTurns::take(int64_t device, const std::function<void()> &untimed) {
  turn.lock();
  if (untimed)
    untimed();
  clocks.at(device).start = std::chrono::steady_clock::now();
}

void DeviceTurns::give(int64_t device) {
  fairkv_rt_ctx *ctx = session->devices.at(device).get();
  // What the device queued on its GPU is part of its turn.
  if (ctx->gpu)
    gpu::backend().synchronize(ctx);
  Clock &c = clocks[device];
  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - c.start)
                             .count();
  (ctx->seq > 1 ? c.prefill : c.step) += seconds;
  turn.unlock();
}

void DeviceTurns::endStep(int64_t device) {
  Clock &c = clocks.at(device);
  if (session->devices[device]->seq == 1)
    c.decodeSteps.push_back(c.step);
  c.step = 0;
}

void DeviceTurns::busy(int64_t device, double *prefill, double *decode,
                       int64_t *decodeSteps, double *medianDecodeStep) const {
  const Clock &c = clocks.at(device);
  *prefill = c.prefill;
  *decode = std::accumulate(c.decodeSteps.begin(), c.decodeSteps.end(), 0.0);
  *decodeSteps = static_cast<int64_t>(c.decodeSteps.size());
  std::vector<double> sorted = c.decodeSteps;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  *medianDecodeStep = n == 0 ? 0
                      : n % 2 ? sorted[n / 2]
                              : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

//===- DeviceThreads.h - A kept host thread per device ----------*- C++ -*-===//
//
// A program's devices run on threads of one process, one each, started once
// and kept for the run. With a thread made per step, the device that took
// the first turn of a step under --time-devices measured 20-50% slower
// than the same device later in a step (on a 2-core host with threaded
// OpenBLAS: the others' threads were starting while its clock ran), and
// every step paid for the threads' creation.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_DEVICETHREADS_H
#define FAIRKV_RUNTIME_DEVICETHREADS_H

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fairkv::rt {

class DeviceThreads {
public:
  explicit DeviceThreads(int64_t devices);
  /// Waits for the threads to finish (no work is running between calls).
  ~DeviceThreads();
  DeviceThreads(const DeviceThreads &) = delete;
  DeviceThreads &operator=(const DeviceThreads &) = delete;

  /// Runs `work(g)` on device g's thread for every device, all at once,
  /// and returns when every one has returned.
  void run(const std::function<void(int64_t)> &work);
  int64_t size() const { return static_cast<int64_t>(threads.size()); }

private:
  void loop(int64_t device);

  std::mutex mutex;
  std::condition_variable started, finished;
  const std::function<void(int64_t)> *work = nullptr;
  /// Counts calls of run(): a thread runs each call's work once.
  uint64_t generation = 0;
  int64_t running = 0;
  bool stopping = false;
  std::vector<std::thread> threads;
};

} // namespace fairkv::rt

#endif // FAIRKV_RUNTIME_DEVICETHREADS_H

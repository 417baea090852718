//===- DeviceThreads.cpp - A kept host thread per device ------------------===//

#include "DeviceThreads.h"

using namespace fairkv::rt;

DeviceThreads::DeviceThreads(int64_t devices) {
  for (int64_t g = 0; g < devices; ++g)
    threads.emplace_back([this, g] { loop(g); });
}

DeviceThreads::~DeviceThreads() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
  }
  started.notify_all();
  for (std::thread &t : threads)
    t.join();
}

void DeviceThreads::run(const std::function<void(int64_t)> &w) {
  std::unique_lock<std::mutex> lock(mutex);
  work = &w;
  running = static_cast<int64_t>(threads.size());
  ++generation;
  started.notify_all();
  finished.wait(lock, [this] { return running == 0; });
  work = nullptr;
}

void DeviceThreads::loop(int64_t device) {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex);
  while (true) {
    started.wait(lock, [&] { return stopping || generation != seen; });
    if (stopping)
      return;
    seen = generation;
    const std::function<void(int64_t)> *w = work;
    lock.unlock();
    (*w)(device);
    lock.lock();
    if (--running == 0)
      finished.notify_one();
  }
}

//===- DeviceThreadsTest.cpp - A kept host thread per device --------------===//

#include "DeviceThreads.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

using fairkv::rt::DeviceThreads;

namespace {

TEST(DeviceThreads, EveryDeviceRunsAtOnceOnItsOwnKeptThread) {
  const int64_t devices = 4;
  DeviceThreads threads(devices);
  EXPECT_EQ(threads.size(), devices);
  std::vector<std::thread::id> first;
  for (int call = 0; call < 3; ++call) {
    std::mutex mutex;
    std::condition_variable arrived;
    int64_t here = 0;
    std::vector<std::thread::id> ids(devices);
    std::vector<bool> met(devices, false);
    threads.run([&](int64_t g) {
      // A collective: no device returns before all have arrived, so run()
      // must start them all at once.
      std::unique_lock<std::mutex> lock(mutex);
      ids[g] = std::this_thread::get_id();
      ++here;
      arrived.notify_all();
      met[g] = arrived.wait_for(lock, std::chrono::seconds(30),
                                [&] { return here == devices; });
    });
    // run() returned only after every device's work.
    EXPECT_EQ(here, devices);
    for (int64_t g = 0; g < devices; ++g) {
      EXPECT_TRUE(met[g]) << "device " << g << " ran alone";
      EXPECT_NE(ids[g], std::this_thread::get_id());
      for (int64_t h = 0; h < g; ++h)
        EXPECT_NE(ids[g], ids[h]) << "devices " << h << " and " << g;
    }
    if (call == 0)
      first = ids;
    else
      EXPECT_EQ(ids, first) << "call " << call << " ran on other threads";
  }
}

TEST(DeviceThreads, NoDevicesIsNoWork) {
  DeviceThreads threads(0);
  bool ran = false;
  threads.run([&](int64_t) { ran = true; });
  EXPECT_FALSE(ran);
}

} // namespace

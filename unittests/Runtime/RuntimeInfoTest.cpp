//===- RuntimeInfoTest.cpp - Runtime version and backend queries ----------===//

#include "fairkv/Runtime/FairKVRuntime.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

TEST(RuntimeInfo, VersionIsSemantic) {
  const char *version = fairkv_rt_version();
  ASSERT_NE(version, nullptr);
  int major = -1, minor = -1, patch = -1;
  EXPECT_EQ(std::sscanf(version, "%d.%d.%d", &major, &minor, &patch), 3)
      << version;
}

TEST(RuntimeInfo, NullArgumentsAreRejected) {
  EXPECT_EQ(fairkv_rt_cuda_device_count(nullptr),
            FAIRKV_ERROR_INVALID_ARGUMENT);
  EXPECT_STRNE(fairkv_rt_last_error(), "");
  EXPECT_EQ(fairkv_rt_nccl_version(nullptr), FAIRKV_ERROR_INVALID_ARGUMENT);
}

// Without a GPU (or without the CUDA backend) the query must fail cleanly
// with a reason; with one it must report at least one device.
// FAIRKV_EXPECT_GPU=1 (scripts/gpu-check.sh) makes a missing GPU a failure.
TEST(RuntimeInfo, CudaDeviceCountIsConsistent) {
  int64_t count = -1;
  fairkv_status_t status = fairkv_rt_cuda_device_count(&count);
  if (const char *expect = std::getenv("FAIRKV_EXPECT_GPU");
      expect && std::string(expect) == "1") {
    ASSERT_EQ(status, FAIRKV_OK) << fairkv_rt_last_error();
    ASSERT_EQ(fairkv_rt_cuda_built(), 1);
    std::printf("CUDA devices visible: %lld\n", static_cast<long long>(count));
  }
  if (status == FAIRKV_OK) {
    EXPECT_EQ(fairkv_rt_cuda_built(), 1);
    EXPECT_GT(count, 0);
    EXPECT_STREQ(fairkv_rt_last_error(), "");
  } else {
    EXPECT_EQ(status, FAIRKV_ERROR_UNAVAILABLE);
    EXPECT_EQ(count, 0);
    EXPECT_GT(std::strlen(fairkv_rt_last_error()), 0u);
  }
}

// Device 0's name where there is one; otherwise a clean failure with a
// reason, and never a write past the buffer.
TEST(RuntimeInfo, CudaDeviceNameFollowsTheCount) {
  int64_t count = 0;
  const bool gpu = fairkv_rt_cuda_device_count(&count) == FAIRKV_OK;
  char name[8] = "xxxxxxx";
  fairkv_status_t status = fairkv_rt_cuda_device_name(0, name, sizeof(name));
  if (gpu) {
    ASSERT_EQ(status, FAIRKV_OK) << fairkv_rt_last_error();
    EXPECT_GT(std::strlen(name), 0u);
    EXPECT_LT(std::strlen(name), sizeof(name));
    EXPECT_NE(fairkv_rt_cuda_device_name(count, name, sizeof(name)), FAIRKV_OK);
  } else {
    EXPECT_NE(status, FAIRKV_OK);
    EXPECT_GT(std::strlen(fairkv_rt_last_error()), 0u);
  }
  EXPECT_NE(fairkv_rt_cuda_device_name(0, nullptr, 8), FAIRKV_OK);
}

TEST(RuntimeInfo, NcclVersionWhenBuiltWithCuda) {
  int64_t version = 0;
  fairkv_status_t status = fairkv_rt_nccl_version(&version);
  // scripts/without-gpu-libs.sh hides NCCL and CUDA: the plugin cannot load,
  // and says which library it misses.
  if (const char *hidden = std::getenv("FAIRKV_NO_GPU_LIBS");
      hidden && std::string(hidden) == "1" && fairkv_rt_cuda_built()) {
    EXPECT_EQ(status, FAIRKV_ERROR_UNAVAILABLE);
    EXPECT_NE(std::string(fairkv_rt_last_error()).find(
                  "cannot load the CUDA backend: "),
              std::string::npos)
        << fairkv_rt_last_error();
  } else if (fairkv_rt_cuda_built()) {
    ASSERT_EQ(status, FAIRKV_OK) << fairkv_rt_last_error();
    // NCCL encodes 2.28.9 as 22809; anything older than 2.18 is unsupported.
    EXPECT_GE(version, 21800);
  } else {
    EXPECT_EQ(status, FAIRKV_ERROR_UNAVAILABLE);
  }
}

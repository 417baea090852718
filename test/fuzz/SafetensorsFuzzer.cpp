//===- SafetensorsFuzzer.cpp - The safetensors header reader --------------===//
//
// Any bytes as a safetensors file: the reader accepts it or refuses it in
// one line, never crashes, never reads outside the file.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Runtime/FairKVRuntime.h"

#include <cstdint>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // A file that is never on disk: the reader maps it like any other.
  int fd = memfd_create("fairkv-fuzz-safetensors", 0);
  if (fd < 0)
    return 0;
  for (size_t done = 0; done < size;) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0)
      break;
    done += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  fairkv_rt_tensor_spec specs[] = {{"model.embed_tokens.weight", 2, {4, 4}},
                                   {"model.norm.weight", 1, {4, 0}}};
  fairkv_rt_check_tensors(path.c_str(), specs, 2);
  close(fd);
  return 0;
}

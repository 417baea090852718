//===- Programs.h - Compiled programs run by the benchmarks -----*- C++ -*-===//

#ifndef FAIRKV_BENCH_COMMON_PROGRAMS_H
#define FAIRKV_BENCH_COMMON_PROGRAMS_H

#include <cstdint>
#include <string>
#include <vector>

namespace fairkv::bench {

/// A directory of this run's own, <temporary directory>/<prefix>-XXXXXX,
/// removed with everything in it when this goes (so two runs at once never
/// share a file, and an early error leaves nothing behind).
class TempDir {
public:
  explicit TempDir(const std::string &prefix);
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  /// Empty when the directory could not be made.
  const std::string &path() const { return path_; }

private:
  std::string path_;
};

/// Runs a shell command; returns its standard output, or "" and `ok` false.
std::string run(const std::string &command, bool &ok);

/// The directory of this executable (`fairkv` is built beside it).
std::string binDir();

/// Decodes `batch` random prompts of `promptLen` tokens with `program` (G
/// devices) under `method` (extra program arguments) and reads every
/// device's KV tokens at the end; "" or the error.
std::string kvAfterDecode(const std::string &program,
                          const std::string &weights,
                          const std::string &method, int G, int64_t batch,
                          int64_t promptLen, int64_t newTokens,
                          std::vector<int64_t> &kvTokens);

} // namespace fairkv::bench

#endif // FAIRKV_BENCH_COMMON_PROGRAMS_H

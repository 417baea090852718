//===- Programs.cpp - Compiled programs run by the benchmarks -------------===//

#include "Programs.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <unistd.h>

fairkv::bench::TempDir::TempDir(const std::string &prefix) {
  std::error_code ec;
  std::string pattern =
      (std::filesystem::temp_directory_path(ec) / (prefix + "-XXXXXX"))
          .string();
  if (!ec && mkdtemp(pattern.data()))
    path_ = pattern;
}

fairkv::bench::TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty())
    std::filesystem::remove_all(path_, ignored);
}

/// Runs a shell command; returns its standard output, or "" and `ok` false.
std::string fairkv::bench::run(const std::string &command, bool &ok) {
  std::string output;
  FILE *pipe = popen(command.c_str(), "r");
  ok = pipe != nullptr;
  if (!pipe)
    return output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe))
    output.append(buffer, n);
  ok = pclose(pipe) == 0;
  return output;
}

/// The directory of this executable (`fairkv` is built beside it).
std::string fairkv::bench::binDir() {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0)
    return ".";
  path[n] = 0;
  return std::filesystem::path(path).parent_path().string();
}

/// Decodes `batch` random prompts with the program compiled for `strategy`
/// under `method` (extra program arguments) and reads every device's KV
/// tokens at the end.
std::string fairkv::bench::kvAfterDecode(const std::string &program,
                          const std::string &weights,
    const std::string &method, int G, int64_t batch, int64_t promptLen,
    int64_t newTokens, std::vector<int64_t> &kvTokens) {
  bool ok = false;
  std::string log = run(program + " --weights " + weights +
                            " --random-prompts " + std::to_string(batch) +
                            " --prompt-len " + std::to_string(promptLen) +
                            " --max-new-tokens " + std::to_string(newTokens) +
                            " " + method + " 2>&1",
                        ok);
  if (!ok)
    return program + " " + method + " failed: " + log;
  kvTokens.assign(G, -1);
  for (int g = 0; g < G; ++g) {
    std::string key = "device " + std::to_string(g) + ":";
    size_t at = log.find(key);
    size_t held = at == std::string::npos ? at : log.find("KV tokens held ", at);
    long long tokens = -1;
    if (held == std::string::npos ||
        std::sscanf(log.c_str() + held, "KV tokens held %lld", &tokens) != 1)
      return "cannot read device " + std::to_string(g) + "'s KV from " +
             program + ": " + log;
    kvTokens[g] = tokens;
  }
  return "";
}


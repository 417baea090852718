//===- ResultsFile.h - Sections of bench/RESULTS.md -------------*- C++ -*-===//

#ifndef FAIRKV_BENCH_COMMON_RESULTSFILE_H
#define FAIRKV_BENCH_COMMON_RESULTSFILE_H

#include <map>
#include <string>

namespace fairkv::bench {

/// `value` printed with the printf `format` (e.g. "%.3f").
std::string formatNumber(const char *format, double value);

/// "CPU model, N hardware threads": the machine a result comes from.
std::string machineDescription();
/// The current time, "YYYY-MM-DD HH:MM UTC".
std::string utcNow();
/// Replaces the `name` section of the results file at `path` (between
/// `<!-- name:begin -->` and `<!-- name:end -->`), or appends it.
bool writeSection(const std::string &path, const std::string &name,
                  const std::string &section);

/// The command line every benchmark shares: --profiles DIR (default
/// <source>/../shared/profiles), --results FILE (default
/// <source>/bench/RESULTS.md), and its own `extra` options, each taking one
/// value (given under their names in `values`, defaults kept otherwise).
struct BenchArgs {
  std::string profiles, results;
  std::map<std::string, std::string> values;
};

/// Parses argv into `args`. Returns -1 to go on, or the exit code after
/// printing the usage (0 for --help, 1 for anything unknown).
int parseBenchArgs(int argc, char **argv, const std::string &tool,
                   const std::string &sourceDir,
                   const std::map<std::string, std::string> &extra,
                   BenchArgs &args);

} // namespace fairkv::bench

#endif // FAIRKV_BENCH_COMMON_RESULTSFILE_H

//===- ResultsFile.h - Sections of bench/RESULTS.md -------------*- C++ -*-===//

#ifndef FAIRKV_BENCH_COMMON_RESULTSFILE_H
#define FAIRKV_BENCH_COMMON_RESULTSFILE_H

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

} // namespace fairkv::bench

#endif // FAIRKV_BENCH_COMMON_RESULTSFILE_H

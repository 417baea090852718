//===- ResultsFile.cpp - Sections of bench/RESULTS.md ---------------------===//

#include "ResultsFile.h"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

std::string fairkv::bench::formatNumber(const char *format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, value);
  return buf;
}

std::string fairkv::bench::machineDescription() {
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpu, line))
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  std::ostringstream s;
  s << model << ", " << std::thread::hardware_concurrency()
    << " hardware threads";
  return s.str();
}

std::string fairkv::bench::utcNow() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

bool fairkv::bench::writeSection(const std::string &path,
                                 const std::string &name,
                                 const std::string &section) {
  const std::string begin = "<!-- " + name + ":begin -->",
                    end = "<!-- " + name + ":end -->";
  std::string old;
  {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    old = text.str();
  }
  if (old.empty())
    old = "# Benchmark results\n\nEach section is written by its benchmark "
          "under bench/; numbers are from the machine named in it.\n\n";
  size_t b = old.find(begin), e = old.find(end);
  std::string body = begin + "\n" + section + end;
  if (b != std::string::npos && e != std::string::npos)
    old.replace(b, e + end.size() - b, body);
  else
    old += "\n" + body + "\n";
  std::ofstream out(path);
  out << old;
  return static_cast<bool>(out);
}

int fairkv::bench::parseBenchArgs(
    int argc, char **argv, const std::string &tool,
    const std::string &sourceDir,
    const std::map<std::string, std::string> &extra, BenchArgs &args) {
  args.profiles = sourceDir + "/../shared/profiles";
  args.results = sourceDir + "/bench/RESULTS.md";
  args.values = extra;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 < argc && a == "--profiles") {
      args.profiles = argv[++i];
    } else if (i + 1 < argc && a == "--results") {
      args.results = argv[++i];
    } else if (i + 1 < argc && a.rfind("--", 0) == 0 &&
               extra.count(a.substr(2))) {
      args.values[a.substr(2)] = argv[++i];
    } else {
      std::cerr << "usage: " << tool << " [--profiles DIR] [--results FILE]";
      for (const auto &[name, value] : extra)
        std::cerr << " [--" << name << " VALUE (default " << value << ")]";
      std::cerr << "\n";
      return a == "--help" || a == "-h" ? 0 : 1;
    }
  }
  return -1;
}

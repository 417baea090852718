//===- ResultsFile.cpp - Sections of bench/RESULTS.md ---------------------===//

#include "ResultsFile.h"

#include <cstdio>
#include <ctime>
#include <fstream>
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

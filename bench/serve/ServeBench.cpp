//===- ServeBench.cpp - The server under load, tp against fairkv ----------===//
//
// A bounded loopback load test of `PROGRAM --serve`: the demo model's shape
// (random weights, synthetic skewed budgets of mean 48, as `fairkv demo`)
// with the gpt2-bytelevel fixture tokenizer, compiled for G devices with tp
// and with fairkv; for 1, 8 and 32 concurrent clients, each sends its share
// of the requests (prompts of about 200 to 400 tokens, greedy, --max-tokens
// each) one after another and waits for the whole completion. Reports
// completion tokens/s over the wall time and the p50 and p99 request
// latency, side by side in one run, in its section of bench/RESULTS.md.
//
//===----------------------------------------------------------------------===//

#include "Programs.h"
#include "ResultsFile.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

using namespace fairkv::bench;
using Clock = std::chrono::steady_clock;

namespace {

/// A server process: its pid and port (read from its first line).
struct Server {
  pid_t pid = -1;
  int port = 0;
};

std::string startServer(const std::vector<std::string> &argv, Server &server) {
  int fds[2];
  if (pipe(fds) != 0)
    return "cannot make a pipe";
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char *> args;
    for (const std::string &a : argv)
      args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::string line;
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n')
    line += c;
  close(fds[0]);
  size_t at = line.find("http://127.0.0.1:");
  if (at == std::string::npos) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return "the server did not start: '" + line + "'";
  }
  server.pid = pid;
  server.port = std::atoi(line.c_str() + at + 17);
  return "";
}

std::string stopServer(Server &server) {
  kill(server.pid, SIGTERM);
  int status = 0;
  waitpid(server.pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0
             ? ""
             : "the server did not stop cleanly";
}

struct Level {
  int clients = 0;
  int64_t requests = 0, tokens = 0;
  double wall = 0, p50 = 0, p99 = 0;
};

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(q * v.size())) - 1;
  return v[std::min(i, v.size() - 1)];
}

std::string load(int port, const std::vector<std::string> &prompts,
                 int clients, int64_t total, int64_t maxTokens, Level &out) {
  std::vector<double> latencies;
  std::mutex m;
  std::string error;
  int64_t tokens = 0;
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(600, 0);
      for (int64_t k = c; k < total; k += clients) {
        nlohmann::json body = {{"model", "demo"},
                               {"prompt", prompts[k % prompts.size()]},
                               {"max_tokens", maxTokens},
                               {"temperature", 0}};
        const Clock::time_point t0 = Clock::now();
        auto res = client.Post("/v1/completions", body.dump(),
                               "application/json");
        const double seconds =
            std::chrono::duration<double>(Clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(m);
        if (!res || res->status != 200) {
          error = "a request failed: " +
                  (res ? res->body : httplib::to_string(res.error()));
          return;
        }
        latencies.push_back(seconds);
        tokens += nlohmann::json::parse(res->body)["usage"]["completion_tokens"]
                      .get<int64_t>();
      }
    });
  for (auto &t : threads)
    t.join();
  if (!error.empty())
    return error;
  out.clients = clients;
  out.requests = total;
  out.tokens = tokens;
  out.wall = std::chrono::duration<double>(Clock::now() - start).count();
  out.p50 = percentile(latencies, 0.5);
  out.p99 = percentile(latencies, 0.99);
  return "";
}

} // namespace

int main(int argc, char **argv) {
  BenchArgs args;
  if (int exit = parseBenchArgs(argc, argv, "fairkv-bench-serve",
                                FAIRKV_SOURCE_DIR,
                                {{"devices", "4"},
                                 {"requests", "64"},
                                 {"max-tokens", "32"}},
                                args);
      exit >= 0)
    return exit;
  const int G = std::atoi(args.values["devices"].c_str());
  const int64_t total = std::atoll(args.values["requests"].c_str());
  const int64_t maxTokens = std::atoll(args.values["max-tokens"].c_str());
  if (G <= 0 || total <= 0 || maxTokens <= 0) {
    std::cerr << "fairkv-bench-serve: error: --devices, --requests and "
                 "--max-tokens must be positive\n";
    return 1;
  }
  const std::string bin = binDir(), fairkv = bin + "/fairkv";
  const fairkv::bench::TempDir work("fairkv-bench-serve");
  if (work.path().empty()) {
    std::cerr << "fairkv-bench-serve: error: cannot make a temporary folder\n";
    return 1;
  }
  const std::string &dir = work.path();
  const std::string tokenizer =
      std::string(FAIRKV_SOURCE_DIR) + "/test/Fixtures/tokenizers/gpt2-bytelevel";
  bool ok = false;
  std::string log = run(fairkv + " weights --model demo --seed 1 -o " + dir +
                            "/demo.safetensors 2>&1",
                        ok);
  if (!ok) {
    std::cerr << "fairkv-bench-serve: error: " << log;
    return 1;
  }
  // Prompts of a few hundred tokens from the fixture corpus' sentences.
  std::vector<std::string> sentences = {
      "The quick brown fox jumps over the lazy dog. ",
      "Tensor parallelism splits every attention head's KV cache over GPUs. ",
      "Per-head KV compression gives every head its own budget of tokens. ",
      "Numbers: 0 1 2 3 12 123 1234 12345 3.14159 2026-12-02 10,000,000. ",
      "We'll see: they're here, you've won, I'm done, he'd go, she'll stay. "};
  std::vector<std::string> prompts;
  for (int p = 0; p < 16; ++p) {
    std::string text;
    for (int s = 0; s < 12 + (p * 7) % 12; ++s)
      text += sentences[(p + s) % sentences.size()];
    prompts.push_back(text);
  }

  struct Strategy {
    std::string name;
    std::vector<Level> levels;
  };
  std::vector<Strategy> results = {{"tp", {}}, {"fairkv", {}}};
  for (Strategy &s : results) {
    const std::string program = dir + "/" + s.name;
    log = run(fairkv + " compile --model demo --profile synthetic --seed 1 "
                       "--mean-tokens 48 --devices " +
                  std::to_string(G) + " --strategy " + s.name + " -o " +
                  program + " 2>&1",
              ok);
    if (!ok) {
      std::cerr << "fairkv-bench-serve: error: " << log;
      return 1;
    }
    for (int clients : {1, 8, 32}) {
      Server server;
      if (std::string e = startServer(
              {program, "--weights", dir + "/demo.safetensors", "--tokenizer",
               tokenizer, "--serve", "127.0.0.1:0", "--max-new-tokens",
               std::to_string(maxTokens), "--batch-size", "32",
               "--ignore-eos"},
              server);
          !e.empty()) {
        std::cerr << "fairkv-bench-serve: error: " << e << "\n";
        return 1;
      }
      Level level;
      std::string e = load(server.port, prompts, clients, total, maxTokens, level);
      std::string stopped = stopServer(server);
      if (!e.empty() || !stopped.empty()) {
        std::cerr << "fairkv-bench-serve: error: " << e << stopped << "\n";
        return 1;
      }
      std::cerr << s.name << ", " << clients << " clients: "
                << level.tokens / level.wall << " tokens/s\n";
      s.levels.push_back(level);
    }
  }

  std::ostringstream md;
  md << "## Serving under load (`bench/serve`)\n\n"
     << "Machine: " << machineDescription() << ". Run: " << utcNow()
     << ".\n\nThe demo model's shape (random weights; synthetic skewed "
        "budgets of mean 48, as `fairkv demo`) with the gpt2-bytelevel "
        "fixture tokenizer, compiled for "
     << G
     << " devices (CPU backend, threads), served with continuous batching "
        "(at most 32 running) over loopback HTTP. "
     << total << " greedy completions of " << maxTokens
     << " tokens each (end-of-sequence ignored), prompts of about 200 to 400 "
        "tokens; each client sends its share one after another. Latency is "
        "a whole request's; tokens/s is completion tokens over the wall "
        "time. On a CPU the devices are threads sharing its cores, so a step "
        "costs the work of every device, not the slowest one's: fairkv's "
        "balance cannot pay here (its copies add work), and these numbers "
        "measure the server (scheduling, HTTP, streaming), not the plans. "
        "The GPU checks (`scripts/gpu-check.sh`) measure the plans.\n\n"
     << "| strategy | clients | tokens/s | p50 latency s | p99 latency s | "
        "fairkv / tp tokens/s |\n|---|---|---|---|---|---|\n";
  for (size_t l = 0; l < results[0].levels.size(); ++l)
    for (const Strategy &s : results) {
      const Level &v = s.levels[l];
      const Level &tp = results[0].levels[l];
      md << "| " << s.name << " | " << v.clients << " | "
         << formatNumber("%.0f", v.tokens / v.wall) << " | "
         << formatNumber("%.3f", v.p50) << " | " << formatNumber("%.3f", v.p99)
         << " | "
         << (s.name == "tp" ? std::string("")
                            : formatNumber("%.3f", (v.tokens / v.wall) /
                                                       (tp.tokens / tp.wall)))
         << " |\n";
    }
  md << "\n";
  if (!writeSection(args.results, "serve", md.str())) {
    std::cerr << "fairkv-bench-serve: error: cannot write " << args.results
              << "\n";
    return 1;
  }
  std::cout << "fairkv-bench-serve: wrote " << args.results << "\n";
  return 0;
}

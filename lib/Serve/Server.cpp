//===- Server.cpp - OpenAI-compatible completions over HTTP ---------------===//
//
// HTTP threads (cpp-httplib) parse and tokenise requests and queue them; one
// scheduler thread forms batches from the queue and runs them; each
// request's text reaches its HTTP thread through its own queue of deltas, so
// a streamed response sends each piece as the step that made it ends.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Serve/Server.h"

#include "fairkv/Serve/ChatTemplate.h"
#include "fairkv/Serve/Generation.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <sys/socket.h>

using namespace fairkv::serve;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> gStop{false};

extern "C" void onSignal(int) { gStop = true; }

/// One request, shared by its HTTP thread and the scheduler.
struct Request {
  uint64_t id = 0;
  bool chat = false, stream = false;
  std::vector<int64_t> prompt;
  SamplingParams sampling;
  int64_t maxTokens = 16;
  std::vector<std::string> stops;
  Clock::time_point arrived;

  std::mutex m;
  std::condition_variable cv;
  std::deque<std::string> deltas;
  bool done = false;
  std::string finishReason, error;
  int errorStatus = 0;
  int64_t completionTokens = 0;
  std::atomic<bool> cancelled{false};

  void push(std::string delta) {
    if (delta.empty())
      return;
    std::lock_guard<std::mutex> lock(m);
    deltas.push_back(std::move(delta));
    cv.notify_all();
  }
  void finish(std::string reason) {
    std::lock_guard<std::mutex> lock(m);
    done = true;
    finishReason = std::move(reason);
    cv.notify_all();
  }
  void fail(int status, std::string message) {
    std::lock_guard<std::mutex> lock(m);
    done = true;
    errorStatus = status;
    error = std::move(message);
    cv.notify_all();
  }
};

/// Fixed-bucket histogram in Prometheus' text format.
struct Histogram {
  std::vector<double> bounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                0.5,   1,     2.5,  5,     10,   30};
  std::vector<uint64_t> counts = std::vector<uint64_t>(bounds.size(), 0);
  uint64_t count = 0;
  double sum = 0;
  void observe(double v) {
    for (size_t i = 0; i < bounds.size(); ++i)
      if (v <= bounds[i])
        ++counts[i];
    ++count;
    sum += v;
  }
  void render(std::ostream &out, const std::string &name,
              const std::string &help) const {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name
        << " histogram\n";
    for (size_t i = 0; i < bounds.size(); ++i)
      out << name << "_bucket{le=\"" << bounds[i] << "\"} " << counts[i]
          << "\n";
    out << name << "_bucket{le=\"+Inf\"} " << count << "\n"
        << name << "_sum " << sum << "\n"
        << name << "_count " << count << "\n";
  }
};

class Scheduler {
public:
  Scheduler(const fairkv::tokenizer::Tokenizer &tokenizer,
            const ServerOptions &options, const ServerHooks &hooks)
      : tokenizer_(tokenizer), options_(options), hooks_(hooks),
        kvBytes_(hooks.kvBytes ? hooks.kvBytes() : std::vector<int64_t>()) {}

  /// Queues `r`; false when the server is shutting down.
  bool submit(const std::shared_ptr<Request> &r) {
    std::lock_guard<std::mutex> lock(m_);
    if (stopping_)
      return false;
    queue_.push_back(r);
    promptTokens_ += static_cast<uint64_t>(r->prompt.size());
    cv_.notify_all();
    return true;
  }

  void stop() {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
    cv_.notify_all();
  }

  void loop();
  std::string metrics();

private:
  /// A request in the running batch.
  struct Active {
    std::shared_ptr<Request> request;
    int64_t slot = 0, position = 0, last = 0;
    Generation generation;
    Clock::time_point lastToken;
  };
  /// Samples each row's token from `out`; finished requests leave.
  void advance(std::vector<Active> &rows, const StepRows &out);
  /// Reports a finished request and gives its KV back.
  void leave(Active &a);

  const fairkv::tokenizer::Tokenizer &tokenizer_;
  const ServerOptions &options_;
  const ServerHooks &hooks_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> queue_;
  bool stopping_ = false;
  int64_t nextSlot_ = 0;
  // Metrics, under m_.
  int64_t running_ = 0;
  uint64_t promptTokens_ = 0, generationTokens_ = 0, finished_ = 0,
           refused_ = 0, steps_ = 0, joins_ = 0;
  double tokensPerSecond_ = 0;
  /// The devices' KV pool bytes after the last step, read by this thread
  /// between steps: the devices' caches change during one, so metrics()
  /// (an HTTP thread) must not read them itself.
  std::vector<int64_t> kvBytes_;
  Histogram ttft_, itl_, e2e_;
};

void Scheduler::leave(Active &a) {
  const std::string &reason = a.generation.reason();
  a.request->finish(reason);
  hooks_.release(a.slot);
  const double seconds =
      std::chrono::duration<double>(Clock::now() - a.request->arrived).count();
  if (options_.logRequests)
    std::cerr << "request " << a.request->id << ": "
              << a.request->prompt.size() << " prompt tokens, "
              << a.request->completionTokens << " completion tokens, "
              << reason << ", " << seconds << " s" << std::endl;
  std::lock_guard<std::mutex> lock(m_);
  ++finished_;
  e2e_.observe(seconds);
}

void Scheduler::advance(std::vector<Active> &rows, const StepRows &out) {
  const Clock::time_point now = Clock::now();
  std::vector<Active> kept;
  for (size_t i = 0; i < rows.size(); ++i) {
    Active &a = rows[i];
    Request &r = *a.request;
    std::string delta;
    a.last = a.generation.next(out.logits + i * out.vocab, out.vocab,
                               out.argmax[i], &delta);
    {
      std::lock_guard<std::mutex> lock(m_);
      ++generationTokens_;
      if (r.completionTokens == 0)
        ttft_.observe(std::chrono::duration<double>(now - r.arrived).count());
      else
        itl_.observe(std::chrono::duration<double>(now - a.lastToken).count());
    }
    a.lastToken = now;
    r.completionTokens = static_cast<int64_t>(a.generation.tokens().size());
    if (r.cancelled && !a.generation.done())
      delta += a.generation.end("cancelled");
    r.push(std::move(delta));
    if (a.generation.done()) {
      leave(a);
      continue;
    }
    kept.push_back(std::move(a));
  }
  rows = std::move(kept);
}

void Scheduler::loop() {
  std::vector<Active> running;
  for (;;) {
    std::vector<std::shared_ptr<Request>> joining;
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] {
        return stopping_ || !queue_.empty() || !running.empty();
      });
      if (stopping_) {
        for (auto &r : queue_)
          r->fail(503, "the server is shutting down");
        queue_.clear();
        if (running.empty())
          return;
      }
      while (!queue_.empty() && queue_.front()->cancelled)
        queue_.pop_front();
      // At the step boundary: the oldest queued requests that fit with the
      // running ones join, as many as one prefill step may take.
      std::vector<int64_t> lengths;
      for (size_t i = 0;
           i < queue_.size() &&
           static_cast<int64_t>(running.size() + i) < options_.maxBatch;
           ++i)
        lengths.push_back(static_cast<int64_t>(queue_[i]->prompt.size()));
      lengths.resize(promptsPerPrefillStep(lengths.data(), lengths.size(),
                                           options_.prefillTokens));
      int64_t fit = lengths.empty() ? 0 : hooks_.fitting(lengths);
      if (fit == 0 && running.empty() && !lengths.empty()) {
        std::shared_ptr<Request> r = queue_.front();
        queue_.pop_front();
        ++refused_;
        r->fail(400, "the request's KV does not fit the devices' memory even "
                     "alone (" +
                         std::to_string(r->prompt.size()) +
                         " prompt tokens): shorten the prompt or max_tokens");
        continue;
      }
      for (int64_t i = 0; i < fit; ++i) {
        joining.push_back(queue_.front());
        queue_.pop_front();
      }
      running_ = static_cast<int64_t>(running.size() + joining.size());
      if (!joining.empty())
        ++joins_;
    }
    const Clock::time_point start = Clock::now();
    size_t tokens = 0;
    if (!joining.empty()) {
      std::vector<Active> joined;
      std::vector<int64_t> slots;
      std::vector<std::vector<int64_t>> prompts;
      for (auto &r : joining) {
        Active a{r, nextSlot_++, static_cast<int64_t>(r->prompt.size()), 0,
                 Generation(r->sampling, r->id, &tokenizer_, r->stops,
                            options_.eosIds, r->maxTokens),
                 Clock::now()};
        slots.push_back(a.slot);
        prompts.push_back(r->prompt);
        joined.push_back(std::move(a));
      }
      StepRows out;
      if (std::string error = hooks_.prefill(slots, prompts, out);
          !error.empty()) {
        for (Active &a : joined) {
          hooks_.release(a.slot);
          a.request->fail(500, error);
        }
      } else {
        tokens += joined.size();
        advance(joined, out);
        for (Active &a : joined)
          running.push_back(std::move(a));
      }
    }
    if (!running.empty()) {
      std::vector<int64_t> slots, ids, positions;
      for (Active &a : running) {
        slots.push_back(a.slot);
        ids.push_back(a.last);
        positions.push_back(a.position++);
      }
      StepRows out;
      if (std::string error = hooks_.decode(slots, ids, positions, out);
          !error.empty()) {
        for (Active &a : running) {
          hooks_.release(a.slot);
          a.request->fail(500, error);
        }
        running.clear();
      } else {
        tokens += running.size();
        advance(running, out);
      }
    }
    const double seconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<int64_t> kv =
        hooks_.kvBytes ? hooks_.kvBytes() : std::vector<int64_t>();
    std::lock_guard<std::mutex> lock(m_);
    kvBytes_ = std::move(kv);
    ++steps_;
    running_ = static_cast<int64_t>(running.size());
    if (seconds > 0)
      tokensPerSecond_ = static_cast<double>(tokens) / seconds;
  }
}

std::string Scheduler::metrics() {
  std::lock_guard<std::mutex> lock(m_);
  const std::vector<int64_t> &kv = kvBytes_;
  std::ostringstream out;
  auto gauge = [&](const char *name, const char *help, double value,
                   const char *type = "gauge") {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " "
        << type << "\n"
        << name << " " << value << "\n";
  };
  gauge("fairkv_requests_running", "Requests in the running batch",
        static_cast<double>(running_));
  gauge("fairkv_requests_waiting", "Requests queued for a batch",
        static_cast<double>(queue_.size()));
  gauge("fairkv_requests_finished_total", "Requests finished",
        static_cast<double>(finished_), "counter");
  gauge("fairkv_requests_refused_total",
        "Requests refused because their KV does not fit",
        static_cast<double>(refused_), "counter");
  gauge("fairkv_steps_total", "Steps run (a joining prefill and a decode)",
        static_cast<double>(steps_), "counter");
  gauge("fairkv_joins_total", "Step boundaries at which requests joined",
        static_cast<double>(joins_), "counter");
  gauge("fairkv_prompt_tokens_total", "Prompt tokens received",
        static_cast<double>(promptTokens_), "counter");
  gauge("fairkv_generation_tokens_total", "Tokens generated",
        static_cast<double>(generationTokens_), "counter");
  gauge("fairkv_generation_tokens_per_second",
        "Tokens generated per second by the last step", tokensPerSecond_);
  out << "# HELP fairkv_kv_bytes KV page pool bytes on each device\n"
         "# TYPE fairkv_kv_bytes gauge\n";
  for (size_t g = 0; g < kv.size(); ++g)
    out << "fairkv_kv_bytes{device=\"" << g << "\"} " << kv[g] << "\n";
  ttft_.render(out, "fairkv_time_to_first_token_seconds",
               "Seconds from a request's arrival to its first token");
  itl_.render(out, "fairkv_inter_token_latency_seconds",
              "Seconds between a request's successive tokens");
  e2e_.render(out, "fairkv_request_latency_seconds",
              "Seconds from a request's arrival to its last token");
  return out.str();
}

Json errorBody(const std::string &message, const std::string &type) {
  return {{"error",
           {{"message", message}, {"type", type}, {"param", nullptr},
            {"code", nullptr}}}};
}

void sendError(httplib::Response &res, int status, const std::string &message) {
  res.status = status;
  res.set_content(errorBody(message, status >= 500 ? "server_error"
                                                   : "invalid_request_error")
                      .dump(-1, ' ', false, Json::error_handler_t::replace),
                  "application/json");
}

std::string dumped(const Json &j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

/// A bound of an integer field as the error names it (2^31 and 2^53 as
/// such).
std::string formatBound(double v) {
  if (std::fabs(v) == 2147483648.0)
    return v < 0 ? "-2^31" : "2^31";
  if (std::fabs(v) == 9007199254740992.0)
    return v < 0 ? "-2^53" : "2^53";
  return std::to_string(static_cast<int64_t>(v));
}

/// Reads the sampling and limit fields common to both endpoints into `r`:
/// "" or a one-line error.
std::string readParams(const Json &body, const ServerOptions &options,
                       Request &r) {
  auto number = [&](const char *key, double fallback) {
    auto it = body.find(key);
    return it == body.end() || it->is_null() ? fallback : it->get<double>();
  };
  for (const char *key : {"frequency_penalty", "presence_penalty"})
    if (number(key, 0) != 0)
      return std::string(key) + " is not supported";
  if (body.contains("n") && !body["n"].is_null() && body["n"] != 1)
    return "n must be 1";
  for (const char *key : {"logprobs", "top_logprobs", "best_of", "echo",
                          "suffix", "logit_bias", "tools", "functions"})
    if (body.contains(key) && !body[key].is_null() && body[key] != false)
      return std::string(key) + " is not supported";
  // An integer field in [lo, hi] (a JSON integer, or a number with an
  // integral value), or `fallback` when absent: checked before it is
  // converted, since a double outside the target's range does not convert.
  std::string bad;
  auto integer = [&](const char *key, double fallback, double lo, double hi) {
    const double v = number(key, fallback);
    if (!(v >= lo && v <= hi && v == std::floor(v))) {
      if (bad.empty())
        bad = std::string(key) + " must be an integer from " +
              formatBound(lo) + " to " + formatBound(hi);
      return lo;
    }
    return v;
  };
  r.sampling.temperature = number("temperature", 1.0);
  r.sampling.topP = number("top_p", 1.0);
  // vLLM's -1 (and 0) mean no top-k; beyond 2^31 is no limit either.
  r.sampling.topK = static_cast<int64_t>(integer("top_k", 0, -1, 2147483648.0));
  if (r.sampling.topK < 0)
    r.sampling.topK = 0;
  r.sampling.minP = number("min_p", 0.0);
  // Seeds up to 2^53: the integers a double (and JavaScript) holds exactly.
  r.sampling.seed =
      static_cast<uint64_t>(integer("seed", 0, 0, 9007199254740992.0));
  if (!bad.empty())
    return bad;
  if (fairkv::placement::Status st = r.sampling.validate(); !st)
    return st.error();
  const char *limitKey =
      body.contains("max_completion_tokens") ? "max_completion_tokens"
                                             : "max_tokens";
  const double limit = number(
      limitKey,
      static_cast<double>(std::min<int64_t>(r.chat ? options.maxTokens : 16,
                                            options.maxTokens)));
  if (limit != std::floor(limit))
    return std::string(limitKey) + " must be an integer";
  if (limit < 1)
    return std::string(limitKey) + " must be at least 1";
  if (limit > static_cast<double>(options.maxTokens))
    return std::string(limitKey) + " " + dumped(body.value(limitKey, Json())) +
           " exceeds the program's limit of " +
           std::to_string(options.maxTokens) + " (its --max-new-tokens)";
  r.maxTokens = static_cast<int64_t>(limit);
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string())
      r.stops.push_back(it->get<std::string>());
    else if (it->is_array())
      for (const Json &s : *it) {
        if (!s.is_string())
          return "stop must be a string or a list of strings";
        r.stops.push_back(s.get<std::string>());
      }
    else
      return "stop must be a string or a list of strings";
  }
  r.stream = body.value("stream", false);
  return "";
}

} // namespace

bool fairkv::serve::parseHostPort(const std::string &text, std::string &host,
                                  int &port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return false;
  host = text.substr(0, colon);
  const std::string p = text.substr(colon + 1);
  if (p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5)
    return false;
  port = std::stoi(p);
  return port <= 65535;
}

size_t fairkv::serve::promptsPerPrefillStep(const int64_t *lengths, size_t n,
                                            int64_t tokens) {
  if (tokens <= 0 || n == 0)
    return n;
  size_t taken = 1;
  for (int64_t longest = lengths[0]; taken < n; ++taken) {
    longest = std::max(longest, lengths[taken]);
    if (static_cast<int64_t>(taken + 1) * longest > tokens)
      break;
  }
  return taken;
}

int fairkv::serve::serve(const tokenizer::Tokenizer &tokenizer,
                         const ServerOptions &options,
                         const ServerHooks &hooks) {
  Scheduler scheduler(tokenizer, options, hooks);
  httplib::Server server;
  // One HTTP thread per connection a client keeps open (streams included).
  server.new_task_queue = [] { return new httplib::ThreadPool(128); };
  // The library listens with a backlog of 5: a burst of clients overflows
  // it and the kernel resets connections. Its socket hook gives the
  // listening socket, whose backlog is raised once it listens.
  int listener = -1;
  server.set_socket_options([&listener](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listener = sock;
  });
  server.set_keep_alive_timeout(2);
  server.set_payload_max_length(64 << 20);
  std::atomic<uint64_t> nextId{1};
  const int64_t vocab = tokenizer.vocabSize();

  server.Get("/health", [](const httplib::Request &, httplib::Response &res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  server.Get("/v1/models", [&](const httplib::Request &,
                               httplib::Response &res) {
    Json model = {{"id", options.modelName},
                  {"object", "model"},
                  {"created", 0},
                  {"owned_by", "fairkv"}};
    res.set_content(dumped({{"object", "list"}, {"data", {model}}}),
                    "application/json");
  });
  server.Get("/metrics", [&](const httplib::Request &,
                             httplib::Response &res) {
    res.set_content(scheduler.metrics(), "text/plain; version=0.0.4");
  });

  auto handle = [&](bool chat) {
    return [&, chat](const httplib::Request &req, httplib::Response &res) {
      Json body = Json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object())
        return sendError(res, 400, "the body is not a JSON object");
      auto r = std::make_shared<Request>();
      r->chat = chat;
      r->id = nextId++;
      r->arrived = Clock::now();
      std::string error;
      try {
        error = readParams(body, options, *r);
        if (error.empty() && chat) {
          if (options.chatTemplate.empty())
            error = "the model has no chat template (tokenizer_config.json)";
          else if (!body.contains("messages") || !body["messages"].is_array())
            error = "messages must be a list";
          else {
            Result<std::string> text = renderChatTemplate(
                options.chatTemplate, dumped(body["messages"]), options.bosToken,
                options.eosToken, /*addGenerationPrompt=*/true);
            if (!text)
              error = "chat template: " + text.error();
            else
              r->prompt = tokenizer.encode(*text, /*addSpecialTokens=*/false);
          }
        } else if (error.empty()) {
          Json prompt = body.value("prompt", Json());
          if (prompt.is_array() && prompt.size() == 1 &&
              (prompt[0].is_string() || prompt[0].is_array()))
            prompt = prompt[0];
          if (prompt.is_string()) {
            r->prompt = tokenizer.encode(prompt.get<std::string>(), true);
          } else if (prompt.is_array()) {
            for (const Json &id : prompt) {
              if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
                  id.get<int64_t>() >= vocab) {
                error = "prompt ids must be integers in the vocabulary";
                break;
              }
              r->prompt.push_back(id.get<int64_t>());
            }
          } else {
            error = "prompt must be a string, token ids, or a list of one";
          }
        }
      } catch (const std::exception &e) {
        error = std::string("malformed request: ") + e.what();
      }
      if (error.empty() && r->prompt.size() < 2)
        error = "the prompt is " + std::to_string(r->prompt.size()) +
                " token(s): a prefill needs at least 2";
      if (!error.empty())
        return sendError(res, 400, error);
      if (!scheduler.submit(r))
        return sendError(res, 503, "the server is shutting down");

      const std::string id = (chat ? "chatcmpl-" : "cmpl-") +
                             std::to_string(r->id);
      const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now()
                                      .time_since_epoch())
                                  .count();
      const std::string object =
          chat ? "chat.completion.chunk" : "text_completion";
      // Runs after this handler returns (streams): holds copies only.
      auto chunk = [id, object, created, model = options.modelName,
                    chat](const std::string &delta, const Json &finish,
                          bool first) {
        Json choice = {{"index", 0}, {"finish_reason", finish}};
        if (chat) {
          Json d = Json::object();
          if (first)
            d["role"] = "assistant";
          if (!delta.empty() || first)
            d["content"] = delta;
          choice["delta"] = d;
        } else {
          choice["text"] = delta;
          choice["logprobs"] = nullptr;
        }
        return "data: " +
               dumped({{"id", id},
                       {"object", object},
                       {"created", created},
                       {"model", model},
                       {"choices", {choice}}}) +
               "\n\n";
      };
      if (r->stream) {
        res.set_header("Cache-Control", "no-cache");
        auto first = std::make_shared<bool>(true);
        res.set_chunked_content_provider(
            "text/event-stream",
            [r, chunk, first](size_t, httplib::DataSink &sink) {
              std::unique_lock<std::mutex> lock(r->m);
              r->cv.wait_for(lock, std::chrono::milliseconds(200), [&] {
                return r->done || !r->deltas.empty();
              });
              std::string out;
              if (*first) {
                out += chunk("", nullptr, true);
                *first = false;
              }
              while (!r->deltas.empty()) {
                out += chunk(r->deltas.front(), nullptr, false);
                r->deltas.pop_front();
              }
              const bool done = r->done;
              const std::string reason = r->finishReason, error = r->error;
              lock.unlock();
              if (done) {
                if (!error.empty())
                  out += "data: " + dumped(errorBody(error, "server_error")) +
                         "\n\n";
                else
                  out += chunk("", reason, false);
                out += "data: [DONE]\n\n";
              }
              if (!out.empty() && !sink.write(out.data(), out.size())) {
                r->cancelled = true; // the client went away
                return false;
              }
              if (done)
                sink.done();
              return true;
            },
            [r](bool success) {
              if (!success)
                r->cancelled = true;
            });
        return;
      }
      std::unique_lock<std::mutex> lock(r->m);
      r->cv.wait(lock, [&] { return r->done; });
      if (!r->error.empty())
        return sendError(res, r->errorStatus, r->error);
      std::string text;
      for (const std::string &d : r->deltas)
        text += d;
      Json choice = {{"index", 0}, {"finish_reason", r->finishReason}};
      if (chat)
        choice["message"] = {{"role", "assistant"}, {"content", text}};
      else {
        choice["text"] = text;
        choice["logprobs"] = nullptr;
      }
      Json response = {
          {"id", id},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", options.modelName},
          {"choices", {choice}},
          {"usage",
           {{"prompt_tokens", r->prompt.size()},
            {"completion_tokens", r->completionTokens},
            {"total_tokens",
             static_cast<int64_t>(r->prompt.size()) + r->completionTokens}}}};
      res.set_content(dumped(response), "application/json");
    };
  };
  server.Post("/v1/completions", handle(false));
  server.Post("/v1/chat/completions", handle(true));

  int port = options.port;
  if (port == 0)
    port = server.bind_to_any_port(options.host);
  else if (!server.bind_to_port(options.host, port))
    port = -1;
  if (port <= 0) {
    std::cerr << "error: cannot listen on " << options.host << ":"
              << options.port << "\n";
    return 1;
  }
  if (listener >= 0)
    ::listen(listener, SOMAXCONN);
  if (std::string error = hooks.begin(); !error.empty()) {
    std::cerr << "error: " << error << "\n";
    return 1;
  }
  // One server at a time: a later serve() in the same process starts
  // afresh, and the handlers it replaced come back when it ends.
  gStop = false;
  void (*previousInt)(int) = std::signal(SIGINT, onSignal);
  void (*previousTerm)(int) = std::signal(SIGTERM, onSignal);
  std::thread scheduling([&] { scheduler.loop(); });
  // On a signal: no new requests, the queued ones refused, the running ones
  // finished (their streams end cleanly), then the listener closes.
  std::thread watcher([&] {
    while (!gStop)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    scheduler.stop();
    scheduling.join();
    server.stop();
  });
  if (options.onListening)
    options.onListening(port);
  server.listen_after_bind();
  gStop = true;
  watcher.join();
  std::signal(SIGINT, previousInt == SIG_ERR ? SIG_DFL : previousInt);
  std::signal(SIGTERM, previousTerm == SIG_ERR ? SIG_DFL : previousTerm);
  return 0;
}

//===- Cache.cpp - Paged per-(layer, KV head) cache and the rendezvous ----===//

#include "Runtime.h"

using namespace fairkv::rt;

void HeadCache::reserve(int64_t pages, int64_t tokensPerPage, int64_t dim) {
  pageTokens = tokensPerPage;
  headDim = dim;
  totalPages = pages;
  pool.assign(static_cast<size_t>(pages * pageTokens * 2 * headDim), 0.0f);
  freePages.clear();
  for (int64_t p = pages; p-- > 0;)
    freePages.push_back(p);
}

void HeadCache::commit(int64_t request, int64_t pages, int64_t tokensPerPage,
                       int64_t dim) {
  if (totalPages == 0) {
    pageTokens = tokensPerPage;
    headDim = dim;
  }
  commitments[request] += pages;
  committed += pages;
  if (committed <= totalPages)
    return;
  // Pages are addressed by index, so growing the pool moves no one.
  const int64_t grown = committed;
  pool.resize(static_cast<size_t>(grown * pageTokens * 2 * headDim), 0.0f);
  for (int64_t p = grown; p-- > totalPages;)
    freePages.push_back(p);
  totalPages = grown;
}

void HeadCache::release(int64_t request) {
  if (auto it = segments.find(request); it != segments.end()) {
    for (int64_t page : it->second.pages)
      freePages.push_back(page);
    segments.erase(it);
  }
  if (auto it = commitments.find(request); it != commitments.end()) {
    committed -= it->second;
    commitments.erase(it);
  }
}

float *HeadCache::slot(int64_t page, int64_t offset) {
  return pool.data() + (page * pageTokens + offset) * 2 * headDim;
}

const float *HeadCache::slot(int64_t page, int64_t offset) const {
  return pool.data() + (page * pageTokens + offset) * 2 * headDim;
}

void HeadCache::append(int64_t request, const float *k, const float *v,
                       int64_t position) {
  Segment &s = segments[request];
  if (s.length == static_cast<int64_t>(s.pages.size()) * pageTokens) {
    if (freePages.empty())
      fatal("KV page pool exhausted (" + std::to_string(totalPages) +
            " pages of " + std::to_string(pageTokens) +
            " tokens): more tokens than the plan sized it for");
    s.pages.push_back(freePages.back());
    freePages.pop_back();
  }
  float *dst = slot(s.pages[s.length / pageTokens], s.length % pageTokens);
  std::copy(k, k + headDim, dst);
  std::copy(v, v + headDim, dst + headDim);
  s.positions.push_back(position);
  ++s.length;
  // A streaming head's oldest recent token leaves for the new one.
  if (s.streamSize > 0 && s.length - s.start > s.streamSize)
    erase(request, s.streamSink);
}

void HeadCache::erase(int64_t request, int64_t token) {
  Segment &s = segments.at(request);
  for (int64_t at = s.start + token; at + 1 < s.length; ++at) {
    float *dst = slot(s.pages[at / pageTokens], at % pageTokens);
    const float *src =
        slot(s.pages[(at + 1) / pageTokens], (at + 1) % pageTokens);
    std::copy(src, src + 2 * headDim, dst);
  }
  s.positions.erase(s.positions.begin() + s.start + token);
  --s.length;
  // A page no token uses any more goes back to the pool.
  if (s.length % pageTokens == 0 &&
      static_cast<int64_t>(s.pages.size()) > s.length / pageTokens) {
    freePages.push_back(s.pages.back());
    s.pages.pop_back();
  }
}

void HeadCache::setStreaming(int64_t request, int64_t size, int64_t sink) {
  Segment &s = segments[request];
  s.streamSize = size;
  s.streamSink = sink;
}

int64_t HeadCache::nextPosition(int64_t request) const {
  auto it = segments.find(request);
  return it == segments.end() || it->second.positions.empty()
             ? 0
             : it->second.positions.back() + 1;
}

int64_t HeadCache::length(int64_t request) const {
  auto it = segments.find(request);
  return it == segments.end() ? 0 : it->second.length - it->second.start;
}

const float *HeadCache::key(int64_t request, int64_t token) const {
  const Segment &s = segments.at(request);
  const int64_t at = s.start + token;
  return slot(s.pages[at / pageTokens], at % pageTokens);
}

const float *HeadCache::value(int64_t request, int64_t token) const {
  return key(request, token) + headDim;
}

void HeadCache::dropBefore(int64_t request, int64_t position) {
  auto it = segments.find(request);
  if (it == segments.end())
    return;
  Segment &s = it->second;
  while (s.start < s.length && s.positions[s.start] < position)
    ++s.start;
  // Whole pages of dropped tokens go back to the pool.
  while (s.start >= pageTokens) {
    freePages.push_back(s.pages.front());
    s.pages.erase(s.pages.begin());
    s.positions.erase(s.positions.begin(), s.positions.begin() + pageTokens);
    s.start -= pageTokens;
    s.length -= pageTokens;
  }
}

std::vector<int64_t> HeadCache::requests() const {
  std::vector<int64_t> out;
  for (const auto &[request, s] : segments)
    out.push_back(request);
  return out;
}

std::vector<int64_t> HeadCache::positions(int64_t request) const {
  auto it = segments.find(request);
  if (it == segments.end())
    return {};
  const Segment &s = it->second;
  return std::vector<int64_t>(s.positions.begin() + s.start, s.positions.end());
}

int64_t HeadCache::bytes() const {
  return static_cast<int64_t>(pool.size() * sizeof(float));
}

int64_t HeadCache::usedTokens() const {
  int64_t n = 0;
  for (const auto &[request, s] : segments)
    n += s.length - s.start;
  return n;
}

std::vector<const Tensor *> Rendezvous::exchange(
    const std::string &key, const std::vector<int64_t> &devices, int64_t index,
    const Tensor *input) {
  const int64_t participants = static_cast<int64_t>(devices.size());
  if (mpi) {
    std::vector<std::unique_ptr<Tensor>> &all = received[key];
    all = mpi::allgather(devices, *input);
    std::vector<const Tensor *> inputs;
    for (const auto &t : all)
      inputs.push_back(t.get());
    return inputs;
  }
  if (turns)
    turns->give(devices[index]);
  std::unique_lock<std::mutex> lock(mutex);
  Entry &e = entries[key];
  if (e.inputs.empty()) {
    e.inputs.assign(participants, nullptr);
    e.participants = participants;
  }
  e.inputs[index] = input;
  ++e.deposited;
  changed.notify_all();
  changed.wait(lock, [&] { return e.deposited == e.participants; });
  std::vector<const Tensor *> inputs = e.inputs;
  lock.unlock();
  if (turns)
    turns->take(devices[index]);
  return inputs;
}

void Rendezvous::leave(const std::string &key, int64_t device) {
  if (mpi) {
    // The copies were this process's own: nobody else reads them.
    received.erase(key);
    return;
  }
  if (turns)
    turns->give(device);
  {
    std::unique_lock<std::mutex> lock(mutex);
    Entry &e = entries[key];
    ++e.left;
    changed.notify_all();
    changed.wait(lock, [&] { return e.left >= e.participants; });
    // The last one out removes the entry; the others only wait for it.
    if (++e.left == 2 * e.participants)
      entries.erase(key);
  }
  if (turns)
    turns->take(device);
}

//===- Admission.cpp - What a batch needs of every device, before work ----===//
//
// A batch is refused before its prefill, never in the middle of it: from the
// program's KV layout (every (layer, KV head)'s budget and replicas) and the
// prompts' lengths, the bytes each device's cache will reserve are known
// ahead, with the same admission of requests to copies and the same page
// rounding the caches use. Ada-KV moves budget between a layer's heads per
// request; for it the bound is the most its allocation can place on a
// device, which the reservation after the prefill never exceeds.
//
//===----------------------------------------------------------------------===//

#include "GpuBackend.h"
#include "Runtime.h"
#include "Status.h"

#define FAIRKV_RT_EXPORT extern "C" __attribute__((visibility("default")))

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace fairkv::rt;

namespace {

struct LayoutEntry {
  int64_t layer = 0;
  Split split;
};

/// Parses `fairkv_program_kv_layout` (head_dim, count, then per entry
/// layer, head, budget, n, n devices) and its shares.
bool parseLayout(const int64_t *layout, const double *shares,
                 int64_t devices, int64_t &headDim,
                 std::vector<LayoutEntry> &entries, std::string &error) {
  headDim = layout[0];
  const int64_t count = layout[1];
  if (headDim <= 0 || count < 0 || count > (int64_t(1) << 24)) {
    error = "the program's KV layout is malformed";
    return false;
  }
  const int64_t *at = layout + 2;
  for (int64_t e = 0; e < count; ++e) {
    LayoutEntry entry;
    entry.layer = at[0];
    entry.split.head = at[1];
    entry.split.budget = at[2];
    const int64_t n = at[3];
    if (n <= 0 || n > devices) {
      error = "the program's KV layout is malformed";
      return false;
    }
    for (int64_t r = 0; r < n; ++r) {
      if (at[4 + r] < 0 || at[4 + r] >= devices) {
        error = "the program's KV layout names device " +
                std::to_string(at[4 + r]) + " of " + std::to_string(devices);
        return false;
      }
      entry.split.devices.push_back(at[4 + r]);
      entry.split.shares.push_back(*shares++);
    }
    at += 4 + n;
    entries.push_back(std::move(entry));
  }
  return true;
}

/// Pages of `tokens` tokens.
int64_t pagesOf(int64_t tokens, int64_t pageTokens) {
  return (tokens + pageTokens - 1) / pageTokens;
}

/// The tokens a head of `budget` commits pages for, for a prompt of
/// `length` (as the prefill's end counts them): everything when a sliding
/// window fits in the budget, a streaming head's budget, else at most the
/// budget; then the decode steps (one for a streaming head).
int64_t committedTokens(const fairkv_rt_options &opt, int64_t length,
                        int64_t budget) {
  const bool streaming = duoStreams(opt, length, budget);
  int64_t kept = std::min(length, budget);
  if (opt.sliding_window > 0 && budget >= opt.sliding_window)
    kept = length;
  return kept + (streaming ? 1 : opt.max_new_tokens);
}

/// Bytes every device reserves for requests of these prompt lengths.
std::vector<int64_t> bytesNeeded(const fairkv_rt_options &opt, int64_t headDim,
                                 const std::vector<LayoutEntry> &entries,
                                 const std::vector<int64_t> &lengths) {
  const int64_t G = opt.devices;
  const bool gpu = opt.backend == FAIRKV_RT_BACKEND_CUDA;
  const bool adakv = opt.adakv_alpha >= 0;
  // The CPU caches hold fp32 pages of page_tokens tokens; the CUDA caches
  // hold exactly the tokens, in 16 bits.
  const int64_t tokenBytes = 2 * headDim * (gpu ? 2 : 4);
  std::vector<int64_t> bytes(G, 0);
  // Ada-KV: per (layer, request), every head's window, candidates, slots
  // and safeguard; which device serves the head for the request.
  struct AdaHead {
    int64_t window, candidates, slots, forced, device;
  };
  std::map<std::pair<int64_t, int64_t>, std::vector<AdaHead>> ada;
  for (const LayoutEntry &e : entries) {
    const Split &s = e.split;
    // A whole head's one replica serves every request.
    const std::vector<std::vector<int64_t>> rows =
        admitRows(lengths, opt.max_new_tokens, s);
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t device = s.devices[r];
      int64_t tokens = 0, pages = 0;
      for (int64_t i : rows[r]) {
        const int64_t length = lengths[i];
        if (adakv) {
          const int64_t w = std::min(opt.snapkv_window, length);
          const int64_t candidates = std::max<int64_t>(0, length - w);
          const int64_t safe = adaKVSafeguard(s.budget, opt.adakv_alpha);
          ada[{e.layer, i}].push_back(
              {w, candidates,
               std::min(std::max<int64_t>(0, s.budget - w), candidates),
               std::min(candidates, std::max<int64_t>(0, safe - w)), device});
          continue;
        }
        const int64_t total = committedTokens(opt, length, s.budget);
        tokens += total;
        pages += pagesOf(total, opt.page_tokens);
      }
      bytes[device] += (gpu ? tokens : pages * opt.page_tokens) * tokenBytes;
    }
  }
  // Ada-KV: a device's heads of a layer keep, for a request, their windows
  // and at most the layer's slots less what the other heads are sure to
  // keep (their safeguards), and no more than their candidates; each head's
  // pages round up once.
  for (const auto &[layerRequest, heads] : ada) {
    int64_t slots = 0;
    for (const AdaHead &h : heads)
      slots += h.slots;
    for (int64_t g = 0; g < G; ++g) {
      int64_t windows = 0, candidates = 0, othersForced = 0, count = 0;
      for (const AdaHead &h : heads) {
        if (h.device == g) {
          windows += h.window;
          candidates += h.candidates;
          ++count;
        } else {
          othersForced += h.forced;
        }
      }
      if (count == 0)
        continue;
      const int64_t tokens =
          windows + std::min(candidates, std::max<int64_t>(0, slots - othersForced)) +
          count * opt.max_new_tokens;
      bytes[g] += (gpu ? tokens
                       : (pagesOf(tokens, opt.page_tokens) + count) *
                             opt.page_tokens) *
                  tokenBytes;
    }
  }
  return bytes;
}

} // namespace

namespace {

/// Bytes every device's pools will span with the running requests and
/// `lengths` joining (CPU pages; a pool grows only past what its running
/// requests committed; on a GPU the tokens, what its caches reserve).
std::vector<int64_t> bytesWithJoiners(const fairkv_rt_session &session,
                                      int64_t headDim,
                                      const std::vector<LayoutEntry> &entries,
                                      const std::vector<int64_t> &lengths) {
  const fairkv_rt_options &opt = session.options;
  const int64_t pageBytes = opt.page_tokens * 2 * headDim * 4;
  std::vector<int64_t> bytes(opt.devices, 0);
  // The CUDA caches hold exactly their requests' tokens, in 16 bits: the
  // running requests' bytes, and the joiners' tokens.
  const bool gpu = opt.backend == FAIRKV_RT_BACKEND_CUDA;
  if (gpu)
    for (int64_t g = 0; g < opt.devices; ++g) {
      int64_t tokens = 0;
      fairkv::rt::gpu::backend().cacheStats(session.devices[g].get(), &tokens,
                                            &bytes[g]);
    }
  for (const LayoutEntry &e : entries) {
    const Split &s = e.split;
    std::vector<int64_t> added(s.devices.size(), 0);
    Owners owners;
    if (s.devices.size() > 1) {
      const auto &known = session.devices[s.devices[0]]->owners;
      if (auto it = known.find(splitKey(s)); it != known.end())
        owners = it->second;
    }
    for (size_t i = 0; i < lengths.size(); ++i) {
      const int64_t tokens = opt.adakv_alpha >= 0
                                 ? lengths[i] + opt.max_new_tokens
                                 : committedTokens(opt, lengths[i], s.budget);
      // Joiners take slots no running request has.
      const int64_t r =
          s.devices.size() > 1
              ? owners.assign(-1 - static_cast<int64_t>(i),
                              admissionCost(lengths[i], s.budget,
                                            opt.max_new_tokens),
                              s.shares)
              : 0;
      added[r] += gpu ? tokens : pagesOf(tokens, opt.page_tokens);
    }
    for (size_t r = 0; r < s.devices.size(); ++r) {
      if (gpu) {
        bytes[s.devices[r]] += added[r] * 2 * headDim * 2;
        continue;
      }
      const auto &caches = session.devices[s.devices[r]]->cache;
      int64_t pool = 0, committed = 0;
      if (auto it = caches.find({e.layer, s.head}); it != caches.end()) {
        pool = it->second.poolPages();
        committed = it->second.committedPages();
      }
      bytes[s.devices[r]] += std::max(pool, committed + added[r]) * pageBytes;
    }
  }
  return bytes;
}

} // namespace

namespace {

/// What `bytesOf` says `lengths` need, on every device.
using BytesOf = std::vector<int64_t> (*)(const fairkv_rt_session &, int64_t,
                                         const std::vector<LayoutEntry> &,
                                         const std::vector<int64_t> &);

std::vector<int64_t> batchBytes(const fairkv_rt_session &session,
                                int64_t headDim,
                                const std::vector<LayoutEntry> &entries,
                                const std::vector<int64_t> &lengths) {
  return bytesNeeded(session.options, headDim, entries, lengths);
}

/// Admission of `n` requests with prompts of `lengths` tokens: the bytes
/// every device needs, and the largest leading part that fits (each part
/// computed afresh: admission to copies depends on who else is admitted).
/// `refusal` words the error from (needed, device, limit, fit).
fairkv_status_t admit(const fairkv_rt_session *session, const int64_t *layout,
                      const double *shares, const int64_t *lengths, int64_t n,
                      int64_t *bytesPerDevice, int64_t *fitting,
                      BytesOf bytesOf,
                      std::string (*refusal)(int64_t n, int64_t needed,
                                             int64_t device, int64_t limit,
                                             int64_t fit)) {
  if (!session || !layout || !shares || (!lengths && n > 0) || n < 0)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "null argument");
  const fairkv_rt_options &opt = session->options;
  int64_t headDim = 0;
  std::vector<LayoutEntry> entries;
  std::string error;
  if (!parseLayout(layout, shares, opt.devices, headDim, entries, error))
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, error);
  const std::vector<int64_t> all(lengths, lengths + n);
  const int64_t limit = opt.kv_bytes_per_device;
  auto fits = [&](const std::vector<int64_t> &b) {
    return limit <= 0 ||
           std::all_of(b.begin(), b.end(), [&](int64_t v) { return v <= limit; });
  };
  const std::vector<int64_t> bytes = bytesOf(*session, headDim, entries, all);
  if (bytesPerDevice)
    std::copy(bytes.begin(), bytes.end(), bytesPerDevice);
  int64_t fit = n;
  if (!fits(bytes))
    for (fit = n - 1; fit > 0; --fit)
      if (fits(bytesOf(*session, headDim, entries,
                       std::vector<int64_t>(all.begin(), all.begin() + fit))))
        break;
  if (fitting)
    *fitting = fit;
  if (fit == n)
    return FAIRKV_OK;
  const auto worst = std::max_element(bytes.begin(), bytes.end());
  return fail(FAIRKV_ERROR_INVALID_ARGUMENT,
              refusal(n, *worst, worst - bytes.begin(), limit, fit));
}

} // namespace

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_session_admit_batch(
    const fairkv_rt_session *session, const int64_t *layout,
    const double *shares, const int64_t *lengths, int64_t batch,
    int64_t *bytesPerDevice, int64_t *fitting) {
  return admit(session, layout, shares, lengths, batch, bytesPerDevice,
               fitting, batchBytes,
               [](int64_t n, int64_t needed, int64_t device, int64_t limit,
                  int64_t fit) {
                 return "the batch of " + std::to_string(n) +
                        " requests needs " + std::to_string(needed) +
                        " bytes of KV on device " + std::to_string(device) +
                        " (may hold " + std::to_string(limit) + "); " +
                        (fit > 0 ? "its first " + std::to_string(fit) +
                                       " requests fit (--batch-size " +
                                       std::to_string(fit) + ")"
                                 : std::string("not even one request fits"));
               });
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_session_admit_join(
    const fairkv_rt_session *session, const int64_t *layout,
    const double *shares, const int64_t *lengths, int64_t n,
    int64_t *bytesPerDevice, int64_t *fitting) {
  return admit(session, layout, shares, lengths, n, bytesPerDevice, fitting,
               bytesWithJoiners,
               [](int64_t n, int64_t needed, int64_t device, int64_t limit,
                  int64_t fit) {
                 return std::to_string(n) + " joining requests need " +
                        std::to_string(needed) + " bytes of KV on device " +
                        std::to_string(device) + " (may hold " +
                        std::to_string(limit) + "); the first " +
                        std::to_string(fit) + " fit";
               });
}

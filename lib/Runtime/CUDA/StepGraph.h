//===- StepGraph.h - A device's decode step as one CUDA graph -----*- C++ -*-===//
//
// Under fairkv_rt_options.cuda_graphs the CUDA backend captures a device's
// decode step once per batch (CudaBackend::graphStep) and replays it: one
// graph launch a step instead of the host issuing every op's kernels, GEMMs
// and NCCL calls. A graph repeats the device work it saw, at the addresses
// it saw, so:
// - the step's buffers are the graph's own (allocate): made before or while
//   capturing, at one address until the graph goes;
// - the step's inputs, token ids and positions, are copied into two of them
//   before each launch, and its tokens read from a third after;
// - what the ops did on the host while the step was captured, and a replay
//   must do again (advance a decode plan, point the context at the logits,
//   check the token ids, hand over timing events), is a hook each op
//   registers while capturing.
// A graph belongs to one batch's decode plans: a new plan or a new batch
// drops it.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_CUDA_STEPGRAPH_H
#define FAIRKV_RUNTIME_CUDA_STEPGRAPH_H

#include "../Runtime.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fairkv::rt::gpu {

class StepGraph {
public:
  /// Buffers come from `malloc` (the backend's: cudaMalloc, which gives
  /// the stream-ordered pool's unused memory back when short).
  using Malloc = cudaError_t (*)(void **, size_t);
  StepGraph(int gpu, cudaStream_t stream, Malloc malloc)
      : gpu_(gpu), stream_(stream), malloc_(malloc) {}
  /// Waits for the GPU, then frees the graph, its buffers and events.
  ~StepGraph();
  StepGraph(const StepGraph &) = delete;
  StepGraph &operator=(const StepGraph &) = delete;

  /// Buffers of these sizes, made now, for the capture to take (what the
  /// step asked for when it last ran as it is, less what buffers it had
  /// freed could serve, as release() lets them here), so that capturing
  /// allocates nothing in the normal case.
  cudaError_t reserve(const std::vector<size_t> &sizes);
  /// A buffer of `bytes` the graph keeps: a free one of that size, else a
  /// new one (relaxed capture mode permits cudaMalloc).
  cudaError_t allocate(void **p, size_t bytes);
  /// While capturing, `p` may serve a later allocation of its size: the
  /// step's work is in stream order, as with the stream-ordered pool. After,
  /// the graph keeps it.
  void release(void *p, size_t bytes);
  /// A timing event recorded by the graph (an event record node, its
  /// times read after each launch); the graph destroys it. Fatal when
  /// CUDA has none.
  cudaEvent_t event();

  /// Starts capturing the stream (relaxed mode). "" or what failed.
  std::string beginCapture();
  /// Ends the capture and instantiates the graph. "" or what failed.
  std::string endCapture();
  bool capturing() const { return capturing_; }
  cudaError_t launch() { return cudaGraphLaunch(exec_, stream_); }

  using Hook = std::function<void(const std::shared_ptr<StepGraph> &)>;
  /// Host work each replay repeats, in the order the ops registered it,
  /// before the launch; a hook may read the replay's inputs.
  std::vector<Hook> hooks;
  const Tensor *replayIds = nullptr, *replayPositions = nullptr;

  /// The step's rows, its inputs' and its tokens' device buffers.
  int64_t batch = 0;
  int64_t *ids = nullptr, *positions = nullptr;
  const int64_t *tokens = nullptr;
  /// What the captured step added to the context's op counts and
  /// collective counters (host bookkeeping of the runtime's ops), which a
  /// replay adds again.
  std::map<std::string, std::pair<int64_t, double>> opCalls;
  std::map<std::string, int64_t> collectiveCounts;

private:
  int gpu_;
  cudaStream_t stream_;
  Malloc malloc_;
  bool capturing_ = false;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  std::vector<void *> owned_;
  std::multimap<size_t, void *> free_;
  std::vector<cudaEvent_t> events_;
};

} // namespace fairkv::rt::gpu

#endif // FAIRKV_RUNTIME_CUDA_STEPGRAPH_H

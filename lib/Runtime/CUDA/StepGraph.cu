//===- StepGraph.cu - A device's decode step as one CUDA graph -------------===//
//
// See StepGraph.h.
//
//===----------------------------------------------------------------------===//

#include "StepGraph.h"

using fairkv::rt::fatal;
using fairkv::rt::gpu::StepGraph;

StepGraph::~StepGraph() {
  cudaSetDevice(gpu_);
  if (capturing_) {
    cudaGraph_t abandoned = nullptr;
    cudaStreamEndCapture(stream_, &abandoned);
    if (abandoned)
      cudaGraphDestroy(abandoned);
  }
  // A launch may still be running. The device, not the stream: a graph
  // some tensor still refers to may outlive its device's stream.
  cudaDeviceSynchronize();
  if (exec_)
    cudaGraphExecDestroy(exec_);
  if (graph_)
    cudaGraphDestroy(graph_);
  for (void *p : owned_)
    cudaFree(p);
  for (cudaEvent_t e : events_)
    cudaEventDestroy(e);
}

cudaError_t StepGraph::reserve(const std::vector<size_t> &sizes) {
  for (size_t bytes : sizes) {
    void *p = nullptr;
    if (cudaError_t e = malloc_(&p, bytes); e != cudaSuccess)
      return e;
    owned_.push_back(p);
    free_.emplace(bytes, p);
  }
  return cudaSuccess;
}

cudaError_t StepGraph::allocate(void **p, size_t bytes) {
  auto it = free_.find(bytes);
  if (it != free_.end()) {
    *p = it->second;
    free_.erase(it);
    return cudaSuccess;
  }
  if (cudaError_t e = malloc_(p, bytes); e != cudaSuccess)
    return e;
  owned_.push_back(*p);
  return cudaSuccess;
}

void StepGraph::release(void *p, size_t bytes) {
  if (capturing_)
    free_.emplace(bytes, p);
}

cudaEvent_t StepGraph::event() {
  cudaEvent_t e = nullptr;
  if (cudaError_t err = cudaEventCreate(&e); err != cudaSuccess)
    fatal(std::string("CUDA: cudaEventCreate: ") + cudaGetErrorString(err));
  events_.push_back(e);
  return e;
}

std::string StepGraph::beginCapture() {
  if (cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed);
      e != cudaSuccess)
    return std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e);
  capturing_ = true;
  return "";
}

std::string StepGraph::endCapture() {
  capturing_ = false;
  // What was not taken stays the graph's, unused.
  free_.clear();
  if (cudaError_t e = cudaStreamEndCapture(stream_, &graph_); e != cudaSuccess)
    return std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e);
  if (cudaError_t e = cudaGraphInstantiate(&exec_, graph_, 0); e != cudaSuccess)
    return std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e);
  return "";
}

//===- DecodeLoads.cuh - The online decode-attention kernel's loads -*- C++ -*-===//
//
// Shared by the online split kernel (DecodeAttention.cu) and the GPU bench's
// loads-only yardstick (bench/gpu/ReadYardsticks.cu), so that the yardstick
// reads exactly what the kernel reads, in the same order and width.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_CUDA_DECODELOADS_CUH
#define FAIRKV_RUNTIME_CUDA_DECODELOADS_CUH

namespace fairkv::cuda {

/// Warps per block of the decode split kernels (one block per chunk).
constexpr int kDecodeWarps = 4;

/// How the online kernel spreads a chunk over a warp: a row of HeadDim
/// values over HeadDim / 8 lanes (one 16-byte load each), so a warp loads
/// Rows rows at once, Unroll such batches of K and of V in flight.
template <int HeadDim> struct OnlineLayout {
  static constexpr int Lanes = HeadDim / 8; // lanes per row: 16 or 8
  static constexpr int Rows = 32 / Lanes;   // rows a warp loads at once: 2 or 4
  static constexpr int Unroll = 4;
  static constexpr int BatchTokens = Rows * Unroll;
};

/// The lane's 16 bytes of K and of V of the chunk's tokens
/// t0 + u * Rows + row (u < Unroll), zeros for tokens at or past `count`;
/// kRows and vRows point at the chunk's first row, at the lane's dims.
template <int HeadDim, typename T>
__device__ __forceinline__ void
loadKvBatch(const T *kRows, const T *vRows, int t0, int row, int count,
            uint4 (&kRaw)[OnlineLayout<HeadDim>::Unroll],
            uint4 (&vRaw)[OnlineLayout<HeadDim>::Unroll]) {
  using L = OnlineLayout<HeadDim>;
#pragma unroll
  for (int u = 0; u < L::Unroll; ++u) {
    const int t = t0 + u * L::Rows + row;
    kRaw[u] = vRaw[u] = make_uint4(0, 0, 0, 0);
    if (t < count) {
      kRaw[u] = *reinterpret_cast<const uint4 *>(kRows + t * HeadDim);
      vRaw[u] = *reinterpret_cast<const uint4 *>(vRows + t * HeadDim);
    }
  }
}

/// A warp's batches of a chunk, at t0 = its first, first + step, ...: `k`
/// and `v` hold the batch at t0 after next(t0). Pipelined, the batch after
/// it is already loading meanwhile (twice the registers, the loads
/// overlapping the math on the current batch).
template <int HeadDim, typename T, bool Pipelined> struct KvBatches {
  static constexpr int Unroll = OnlineLayout<HeadDim>::Unroll;
  const T *kRows, *vRows;
  int row, count, step;
  uint4 k[Unroll], v[Unroll], kNext[Unroll], vNext[Unroll];

  __device__ __forceinline__ KvBatches(const T *kRows, const T *vRows,
                                       int first, int row, int count,
                                       int step)
      : kRows(kRows), vRows(vRows), row(row), count(count), step(step) {
    if constexpr (Pipelined)
      loadKvBatch<HeadDim>(kRows, vRows, first, row, count, kNext, vNext);
  }
  __device__ __forceinline__ void next(int t0) {
    if constexpr (Pipelined) {
#pragma unroll
      for (int u = 0; u < Unroll; ++u) {
        k[u] = kNext[u];
        v[u] = vNext[u];
      }
      loadKvBatch<HeadDim>(kRows, vRows, t0 + step, row, count, kNext, vNext);
    } else {
      loadKvBatch<HeadDim>(kRows, vRows, t0, row, count, k, v);
    }
  }
};

} // namespace fairkv::cuda

#endif // FAIRKV_RUNTIME_CUDA_DECODELOADS_CUH

//===- ModelKernels.h - The model's elementwise kernels and GEMMs -*- C++ -*-===//
//
// Kernels the decode step (DecodeStep.h) and the CUDA backend of the runtime
// ABI (Backend.cu) share: embedding gather, RMSNorm, rotary embedding, bf16
// conversion, the gated MLP activation, greedy argmax, and GEMMs with bf16
// inputs and fp32 output and accumulation. Every launcher enqueues on
// `stream` and returns the launch's status.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_CUDA_MODELKERNELS_H
#define FAIRKV_RUNTIME_CUDA_MODELKERNELS_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fairkv::cuda {

// Storage types (weights, KV, GEMM inputs): __nv_bfloat16 or __half.

/// Fills `count` values with a seeded uniform [offset - scale,
/// offset + scale) (random weights and caches for checks and benchmarks).
template <typename T>
cudaError_t fillUniform(T *data, int64_t count, uint64_t seed, float scale,
                        float offset, cudaStream_t stream);

/// x[r] = table[ids[r]] as fp32, for `rows` ids (int or int64_t).
template <typename T, typename Id>
cudaError_t embedding(const T *table, const Id *ids, int rows, int hidden,
                      float *x, cudaStream_t stream);

/// out[r] = x[r] / rms(x[r]) * w, one block per row of `width`; `Out` is
/// the storage type or float.
template <typename T, typename Out>
cudaError_t rmsNorm(const float *x, const T *w, int rows, int width,
                    float eps, Out *out, cudaStream_t stream);

/// out [rows, width] += bias [width] (storage type), per row.
template <typename T>
cudaError_t addBias(float *out, const T *bias, int rows, int width,
                    cudaStream_t stream);

/// Rotary embedding of x [rows, heads, headDim] at positions [rows]: pairs
/// (i, i + headDim / 2) turn by position * invFreq[i] (a device table of
/// headDim / 2), cos and sin scaled by attentionFactor.
cudaError_t rotary(const float *x, const int64_t *positions, int rows,
                   int heads, int headDim, const float *invFreq,
                   float attentionFactor, float *out, cudaStream_t stream);

/// fp32 to the storage type.
template <typename T>
cudaError_t toStorage(const float *in, T *out, int64_t count,
                      cudaStream_t stream);

/// out[r, f] = silu(gate[r, f]) * up[r, f] in the storage type (or fp32); row r
/// of gate and up starts at r * rowStride.
template <typename T>
cudaError_t siluMul(const float *gate, const float *up, int64_t rowStride,
                    int rows, int ffn, T *out, cudaStream_t stream);

/// out[r] = the id of the largest of logits[r * rowStride + v], v < vocab
/// (ties: the smallest id); Id is int or int64_t.
template <typename Id>
cudaError_t argmax(const float *logits, int64_t rowStride, int rows,
                   int vocab, Id *out, cudaStream_t stream);

/// y[m, n] (+)= x[m, k] * w[n, k]^T: x and w in the storage type (w in the
/// Hugging Face [out, in] layout), fp32 y and accumulation.
template <typename T>
cublasStatus_t gemm(cublasHandle_t blas, const T *x, const T *w, float *y,
                    int m, int n, int k, bool accumulate);

#ifdef __CUDACC__
/// cos and sin of the rotary angle of pair `i` at `position`.
__device__ inline void rotaryAngle(double position, int i, int headDim,
                                   double theta, float &c, float &s) {
  double sd, cd;
  sincos(position * pow(theta, -2.0 * i / headDim), &sd, &cd);
  c = static_cast<float>(cd);
  s = static_cast<float>(sd);
}
#endif

} // namespace fairkv::cuda

#endif // FAIRKV_RUNTIME_CUDA_MODELKERNELS_H

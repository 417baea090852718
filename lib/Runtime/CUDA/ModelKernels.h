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
#include <cuda_runtime.h>

#include <cstdint>

namespace fairkv::cuda {

/// Fills `count` bf16 values with a seeded uniform [offset - scale,
/// offset + scale) (random weights and caches for checks and benchmarks).
cudaError_t fillUniform(__nv_bfloat16 *data, int64_t count, uint64_t seed,
                        float scale, float offset, cudaStream_t stream);

/// x[r] = table[ids[r]] as fp32, for `rows` ids.
cudaError_t embedding(const __nv_bfloat16 *table, const int *ids, int rows,
                      int hidden, float *x, cudaStream_t stream);
cudaError_t embedding(const __nv_bfloat16 *table, const int64_t *ids,
                      int rows, int hidden, float *x, cudaStream_t stream);

/// out[r] = x[r] / rms(x[r]) * w, one block per row of `width`.
cudaError_t rmsNorm(const float *x, const __nv_bfloat16 *w, int rows,
                    int width, float eps, __nv_bfloat16 *out,
                    cudaStream_t stream);
cudaError_t rmsNorm(const float *x, const __nv_bfloat16 *w, int rows,
                    int width, float eps, float *out, cudaStream_t stream);

/// Rotary embedding of x [rows, heads, headDim] at positions [rows]: pairs
/// (i, i + headDim / 2) turn by position * theta^(-2i / headDim).
cudaError_t rotary(const float *x, const int64_t *positions, int rows,
                   int heads, int headDim, double theta, float *out,
                   cudaStream_t stream);

cudaError_t toBf16(const float *in, __nv_bfloat16 *out, int64_t count,
                   cudaStream_t stream);

/// out[r, f] = silu(gate[r, f]) * up[r, f] as bf16; row r of gate and up
/// starts at r * rowStride.
cudaError_t siluMul(const float *gate, const float *up, int64_t rowStride,
                    int rows, int ffn, __nv_bfloat16 *out, cudaStream_t stream);

/// out[r] = the id of the largest of logits[r * rowStride + v], v < vocab
/// (ties: the smallest id).
cudaError_t argmax(const float *logits, int64_t rowStride, int rows,
                   int vocab, int *out, cudaStream_t stream);
cudaError_t argmax(const float *logits, int64_t rowStride, int rows,
                   int vocab, int64_t *out, cudaStream_t stream);

/// y[m, n] (+)= x[m, k] * w[n, k]^T: bf16 x and w (Hugging Face [out, in]
/// layout), fp32 y, fp32 accumulation.
cublasStatus_t gemm(cublasHandle_t blas, const __nv_bfloat16 *x,
                    const __nv_bfloat16 *w, float *y, int m, int n, int k,
                    bool accumulate);

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

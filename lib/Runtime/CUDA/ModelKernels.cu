//===- ModelKernels.cu - The model's elementwise kernels and GEMMs --------===//

#include "ModelKernels.h"
#include "BlockReduce.cuh"

#include <algorithm>
#include <cfloat>

using namespace fairkv::cuda;

namespace {

constexpr int kThreads = 256;

int gridFor(int64_t n) {
  return static_cast<int>(std::min<int64_t>(4096, (n + kThreads - 1) / kThreads));
}

__global__ void fillUniformKernel(__nv_bfloat16 *p, int64_t n, uint64_t seed,
                                  float scale, float offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    float u = static_cast<float>(z >> 40) / float(1 << 23) - 1.0f; // [-1, 1)
    p[i] = __float2bfloat16(offset + scale * u);
  }
}

template <typename Id>
__global__ void embeddingKernel(const __nv_bfloat16 *table, const Id *ids,
                                float *x, int hidden) {
  const int r = blockIdx.x;
  const __nv_bfloat16 *row = table + static_cast<int64_t>(ids[r]) * hidden;
  for (int e = threadIdx.x; e < hidden; e += blockDim.x)
    x[static_cast<int64_t>(r) * hidden + e] = __bfloat162float(row[e]);
}

__device__ void store(__nv_bfloat16 *p, float v) { *p = __float2bfloat16(v); }
__device__ void store(float *p, float v) { *p = v; }

template <typename Out>
__global__ void rmsNormKernel(const float *x, const __nv_bfloat16 *w,
                              Out *out, int width, float eps) {
  const float *row = x + static_cast<int64_t>(blockIdx.x) * width;
  float sq = 0;
  for (int e = threadIdx.x; e < width; e += blockDim.x)
    sq += row[e] * row[e];
  const float inv = rsqrtf(blockReduce<kThreads, false>(sq) / width + eps);
  for (int e = threadIdx.x; e < width; e += blockDim.x)
    store(out + static_cast<int64_t>(blockIdx.x) * width + e,
          row[e] * inv * __bfloat162float(w[e]));
}

__global__ void rotaryKernel(const float *x, const int64_t *positions,
                             int heads, int headDim, double theta,
                             float *out) {
  const int r = blockIdx.x, half = headDim / 2;
  const double position = static_cast<double>(positions[r]);
  for (int p = threadIdx.x; p < heads * half; p += blockDim.x) {
    const int head = p / half, i = p % half;
    float c, s;
    rotaryAngle(position, i, headDim, theta, c, s);
    const int64_t at = (static_cast<int64_t>(r) * heads + head) * headDim;
    const float lo = x[at + i], hi = x[at + i + half];
    out[at + i] = lo * c - hi * s;
    out[at + i + half] = hi * c + lo * s;
  }
}

__global__ void toBf16Kernel(const float *in, __nv_bfloat16 *out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}

__global__ void siluMulKernel(const float *gate, const float *up,
                              int64_t rowStride, int ffn, int64_t n,
                              __nv_bfloat16 *out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / ffn, f = i % ffn;
    const float g = gate[r * rowStride + f], u = up[r * rowStride + f];
    out[i] = __float2bfloat16(g / (1.0f + __expf(-g)) * u);
  }
}

constexpr int kArgmaxThreads = 1024;

template <typename Id>
__global__ void argmaxKernel(const float *logits, int64_t rowStride, int vocab,
                             Id *out) {
  const float *row = logits + static_cast<int64_t>(blockIdx.x) * rowStride;
  float best = -FLT_MAX;
  int id = vocab;
  for (int v = threadIdx.x; v < vocab; v += blockDim.x)
    if (row[v] > best) {
      best = row[v];
      id = v;
    }
  __shared__ float bestOf[kArgmaxThreads];
  __shared__ int idOf[kArgmaxThreads];
  bestOf[threadIdx.x] = best;
  idOf[threadIdx.x] = id;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      const float ob = bestOf[threadIdx.x + stride];
      const int oi = idOf[threadIdx.x + stride];
      if (ob > bestOf[threadIdx.x] ||
          (ob == bestOf[threadIdx.x] && oi < idOf[threadIdx.x])) {
        bestOf[threadIdx.x] = ob;
        idOf[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0)
    out[blockIdx.x] = idOf[0];
}

} // namespace

cudaError_t fairkv::cuda::fillUniform(__nv_bfloat16 *data, int64_t count,
                                      uint64_t seed, float scale, float offset,
                                      cudaStream_t stream) {
  fillUniformKernel<<<gridFor(count), kThreads, 0, stream>>>(data, count, seed,
                                                             scale, offset);
  return cudaGetLastError();
}

cudaError_t fairkv::cuda::embedding(const __nv_bfloat16 *table, const int *ids,
                                    int rows, int hidden, float *x,
                                    cudaStream_t stream) {
  if (rows > 0)
    embeddingKernel<<<rows, kThreads, 0, stream>>>(table, ids, x, hidden);
  return cudaGetLastError();
}

cudaError_t fairkv::cuda::embedding(const __nv_bfloat16 *table,
                                    const int64_t *ids, int rows, int hidden,
                                    float *x, cudaStream_t stream) {
  if (rows > 0)
    embeddingKernel<<<rows, kThreads, 0, stream>>>(table, ids, x, hidden);
  return cudaGetLastError();
}

cudaError_t fairkv::cuda::rmsNorm(const float *x, const __nv_bfloat16 *w,
                                  int rows, int width, float eps,
                                  __nv_bfloat16 *out, cudaStream_t stream) {
  if (rows > 0)
    rmsNormKernel<<<rows, kThreads, 0, stream>>>(x, w, out, width, eps);
  return cudaGetLastError();
}

cudaError_t fairkv::cuda::rmsNorm(const float *x, const __nv_bfloat16 *w,
                                  int rows, int width, float eps, float *out,
                                  cudaStream_t stream) {
  if (rows > 0)
    rmsNormKernel<<<rows, kThreads, 0, stream>>>(x, w, out, width, eps);
  return cudaGetLastError();
}

cudaError_t fairkv::cuda::rotary(const float *x, const int64_t *positions,
                                 int rows, int heads, int headDim,
                                 double theta, float *out,
                                 cudaStream_t stream) {
  if (rows > 0)
    rotaryKernel<<<rows, kThreads, 0, stream>>>(x, positions, heads, headDim,
                                                theta, out);
  return cudaGetLastError();
}

cudaError_t fairkv::cuda::toBf16(const float *in, __nv_bfloat16 *out,
                                 int64_t count, cudaStream_t stream) {
  if (count > 0)
    toBf16Kernel<<<gridFor(count), kThreads, 0, stream>>>(in, out, count);
  return cudaGetLastError();
}

cudaError_t fairkv::cuda::siluMul(const float *gate, const float *up,
                                  int64_t rowStride, int rows, int ffn,
                                  __nv_bfloat16 *out, cudaStream_t stream) {
  const int64_t n = int64_t(rows) * ffn;
  if (n > 0)
    siluMulKernel<<<gridFor(n), kThreads, 0, stream>>>(gate, up, rowStride,
                                                       ffn, n, out);
  return cudaGetLastError();
}

cudaError_t fairkv::cuda::argmax(const float *logits, int64_t rowStride,
                                 int rows, int vocab, int *out,
                                 cudaStream_t stream) {
  if (rows > 0)
    argmaxKernel<<<rows, kArgmaxThreads, 0, stream>>>(logits, rowStride, vocab,
                                                      out);
  return cudaGetLastError();
}

cudaError_t fairkv::cuda::argmax(const float *logits, int64_t rowStride,
                                 int rows, int vocab, int64_t *out,
                                 cudaStream_t stream) {
  if (rows > 0)
    argmaxKernel<<<rows, kArgmaxThreads, 0, stream>>>(logits, rowStride, vocab,
                                                      out);
  return cudaGetLastError();
}

cublasStatus_t fairkv::cuda::gemm(cublasHandle_t blas, const __nv_bfloat16 *x,
                                  const __nv_bfloat16 *w, float *y, int m,
                                  int n, int k, bool accumulate) {
  if (m == 0 || n == 0)
    return CUBLAS_STATUS_SUCCESS;
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // Row-major y [m, n] is column-major y^T = w x^T.
  return cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w,
                      CUDA_R_16BF, k, x, CUDA_R_16BF, k, &beta, y, CUDA_R_32F,
                      n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

//===- ModelKernels.cu - The model's elementwise kernels and GEMMs --------===//

#include "ModelKernels.h"
#include "BlockReduce.cuh"

#include <algorithm>
#include <cfloat>

using namespace fairkv::cuda;

namespace {

constexpr int kThreads = 256;

__device__ __host__ inline float toFloat(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
__device__ __host__ inline float toFloat(__half v) { return __half2float(v); }
template <typename T> __device__ T fromFloat(float v);
template <> __device__ __nv_bfloat16 fromFloat(float v) {
  return __float2bfloat16(v);
}
template <> __device__ __half fromFloat(float v) { return __float2half(v); }
template <> __device__ float fromFloat(float v) { return v; }

int gridFor(int64_t n) {
  return static_cast<int>(std::min<int64_t>(4096, (n + kThreads - 1) / kThreads));
}

template <typename T>
__global__ void fillUniformKernel(T *p, int64_t n, uint64_t seed, float scale,
                                  float offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    float u = static_cast<float>(z >> 40) / float(1 << 23) - 1.0f; // [-1, 1)
    p[i] = fromFloat<T>(offset + scale * u);
  }
}

template <typename T, typename Id>
__global__ void embeddingKernel(const T *table, const Id *ids, float *x,
                                int hidden) {
  const int r = blockIdx.x;
  const T *row = table + static_cast<int64_t>(ids[r]) * hidden;
  for (int e = threadIdx.x; e < hidden; e += blockDim.x)
    x[static_cast<int64_t>(r) * hidden + e] = toFloat(row[e]);
}

template <typename T, typename Out>
__global__ void rmsNormKernel(const float *x, const T *w, Out *out, int width,
                              float eps) {
  const float *row = x + static_cast<int64_t>(blockIdx.x) * width;
  float sq = 0;
  for (int e = threadIdx.x; e < width; e += blockDim.x)
    sq += row[e] * row[e];
  const float inv = rsqrtf(blockReduce<kThreads, false>(sq) / width + eps);
  for (int e = threadIdx.x; e < width; e += blockDim.x)
    out[static_cast<int64_t>(blockIdx.x) * width + e] =
        fromFloat<Out>(row[e] * inv * toFloat(w[e]));
}

__global__ void rotaryKernel(const float *x, const int64_t *positions,
                             int heads, int headDim, const float *invFreq,
                             float attentionFactor, float *out) {
  const int r = blockIdx.x, half = headDim / 2;
  const float position = static_cast<float>(positions[r]);
  for (int p = threadIdx.x; p < heads * half; p += blockDim.x) {
    const int head = p / half, i = p % half;
    // As transformers (and the CPU backend): a float32 angle, its cos and
    // sin times the rope's attention factor.
    double sd, cd;
    sincos(static_cast<double>(position * invFreq[i]), &sd, &cd);
    const float c = static_cast<float>(cd) * attentionFactor,
                s = static_cast<float>(sd) * attentionFactor;
    const int64_t at = (static_cast<int64_t>(r) * heads + head) * headDim;
    const float lo = x[at + i], hi = x[at + i + half];
    out[at + i] = lo * c - hi * s;
    out[at + i + half] = hi * c + lo * s;
  }
}

template <typename T>
__global__ void toStorageKernel(const float *in, T *out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = fromFloat<T>(in[i]);
}

template <typename T>
__global__ void siluMulKernel(const float *gate, const float *up,
                              int64_t rowStride, int ffn, int64_t n, T *out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / ffn, f = i % ffn;
    const float g = gate[r * rowStride + f], u = up[r * rowStride + f];
    out[i] = fromFloat<T>(g / (1.0f + __expf(-g)) * u);
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

/// The cuBLAS type of a storage type.
constexpr cudaDataType_t blasType(__nv_bfloat16) { return CUDA_R_16BF; }
constexpr cudaDataType_t blasType(__half) { return CUDA_R_16F; }

} // namespace

namespace fairkv::cuda {

template <typename T>
cudaError_t fillUniform(T *data, int64_t count, uint64_t seed, float scale,
                        float offset, cudaStream_t stream) {
  fillUniformKernel<<<gridFor(count), kThreads, 0, stream>>>(data, count, seed,
                                                             scale, offset);
  return cudaGetLastError();
}

template <typename T, typename Id>
cudaError_t embedding(const T *table, const Id *ids, int rows, int hidden,
                      float *x, cudaStream_t stream) {
  if (rows > 0)
    embeddingKernel<<<rows, kThreads, 0, stream>>>(table, ids, x, hidden);
  return cudaGetLastError();
}

template <typename T, typename Out>
cudaError_t rmsNorm(const float *x, const T *w, int rows, int width,
                    float eps, Out *out, cudaStream_t stream) {
  if (rows > 0)
    rmsNormKernel<<<rows, kThreads, 0, stream>>>(x, w, out, width, eps);
  return cudaGetLastError();
}

cudaError_t rotary(const float *x, const int64_t *positions, int rows,
                   int heads, int headDim, const float *invFreq,
                   float attentionFactor, float *out, cudaStream_t stream) {
  if (rows > 0)
    rotaryKernel<<<rows, kThreads, 0, stream>>>(x, positions, heads, headDim,
                                                invFreq, attentionFactor, out);
  return cudaGetLastError();
}

template <typename T>
__global__ void addBiasKernel(float *out, const T *bias, int width,
                              int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] += toFloat(bias[i % width]);
}

template <typename T>
cudaError_t addBias(float *out, const T *bias, int rows, int width,
                    cudaStream_t stream) {
  const int64_t n = int64_t(rows) * width;
  if (n > 0)
    addBiasKernel<<<gridFor(n), kThreads, 0, stream>>>(out, bias, width, n);
  return cudaGetLastError();
}

template <typename T>
cudaError_t toStorage(const float *in, T *out, int64_t count,
                      cudaStream_t stream) {
  if (count > 0)
    toStorageKernel<<<gridFor(count), kThreads, 0, stream>>>(in, out, count);
  return cudaGetLastError();
}

template <typename T>
cudaError_t siluMul(const float *gate, const float *up, int64_t rowStride,
                    int rows, int ffn, T *out, cudaStream_t stream) {
  const int64_t n = int64_t(rows) * ffn;
  if (n > 0)
    siluMulKernel<<<gridFor(n), kThreads, 0, stream>>>(gate, up, rowStride,
                                                       ffn, n, out);
  return cudaGetLastError();
}

template <typename Id>
cudaError_t argmax(const float *logits, int64_t rowStride, int rows,
                   int vocab, Id *out, cudaStream_t stream) {
  if (rows > 0)
    argmaxKernel<<<rows, kArgmaxThreads, 0, stream>>>(logits, rowStride, vocab,
                                                      out);
  return cudaGetLastError();
}

template <typename T>
cublasStatus_t gemm(cublasHandle_t blas, const T *x, const T *w, float *y,
                    int m, int n, int k, bool accumulate) {
  if (m == 0 || n == 0)
    return CUBLAS_STATUS_SUCCESS;
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // Row-major y [m, n] is column-major y^T = w x^T.
  return cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w,
                      blasType(T()), k, x, blasType(T()), k, &beta, y,
                      CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

// The instances the backend and the decode step use.
#define FAIRKV_STORAGE(T)                                                      \
  template cudaError_t fillUniform(T *, int64_t, uint64_t, float, float,       \
                                   cudaStream_t);                              \
  template cudaError_t embedding(const T *, const int *, int, int, float *,    \
                                 cudaStream_t);                                \
  template cudaError_t embedding(const T *, const int64_t *, int, int,         \
                                 float *, cudaStream_t);                       \
  template cudaError_t rmsNorm(const float *, const T *, int, int, float,      \
                               T *, cudaStream_t);                             \
  template cudaError_t rmsNorm(const float *, const T *, int, int, float,      \
                               float *, cudaStream_t);                         \
  template cudaError_t toStorage(const float *, T *, int64_t, cudaStream_t);   \
  template cudaError_t addBias(float *, const T *, int, int, cudaStream_t);    \
  template cudaError_t siluMul(const float *, const float *, int64_t, int,     \
                               int, T *, cudaStream_t);                        \
  template cublasStatus_t gemm(cublasHandle_t, const T *, const T *, float *,  \
                               int, int, int, bool);
FAIRKV_STORAGE(__nv_bfloat16)
FAIRKV_STORAGE(__half)
#undef FAIRKV_STORAGE
// fp32 activations for the backend's gated_act op.
template cudaError_t siluMul(const float *, const float *, int64_t, int, int,
                             float *, cudaStream_t);
template cudaError_t argmax(const float *, int64_t, int, int, int *,
                            cudaStream_t);
template cudaError_t argmax(const float *, int64_t, int, int, int64_t *,
                            cudaStream_t);

} // namespace fairkv::cuda

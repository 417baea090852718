//===- GemmChoice.cu - cublasGemmEx against cuBLASLt's choice -------------===//

#include "GemmChoice.h"

#include "CudaCheck.h"
#include "EventTiming.h"
#include "ModelKernels.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace fairkv::bench {
namespace {

struct Shape {
  const char *name;
  int m, n, k;
};

constexpr size_t kWorkspaceBytes = size_t(32) << 20;
constexpr int kCandidates = 8;

/// cuBLASLt's description of the runtime's GEMM, y[m, n] = x[m, k] w[n, k]^T
/// (column-major y^T = w^T^T x^T: A = w transposed, B = x, C = D = y),
/// bf16 inputs, fp32 output, scale and accumulation.
struct LtGemm {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;

  LtGemm(int m, int n, int k) {
    CHECK_BLAS(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
    CHECK_BLAS(cublasLtMatmulDescSetAttribute(
        desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
    CHECK_BLAS(cublasLtMatmulDescSetAttribute(
        desc, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof(nt)));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, k, n, k));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, k, m, k));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&c, CUDA_R_32F, n, m, n));
  }
  ~LtGemm() {
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatmulDescDestroy(desc);
  }
};

/// out[0] = max |a - b|, out[1] = max |b| (as float bits: non-negative
/// floats order like their bits), out[2] = how many a are not finite.
__global__ void differenceKernel(const float *a, const float *b, int64_t n,
                                 unsigned *out) {
  float worst = 0, largest = 0;
  unsigned bad = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    bad += !isfinite(a[i]);
    worst = fmaxf(worst, fabsf(a[i] - b[i]));
    largest = fmaxf(largest, fabsf(b[i]));
  }
  for (int o = 16; o > 0; o /= 2) {
    worst = fmaxf(worst, __shfl_xor_sync(0xffffffffu, worst, o));
    largest = fmaxf(largest, __shfl_xor_sync(0xffffffffu, largest, o));
    bad += __shfl_xor_sync(0xffffffffu, bad, o);
  }
  if (threadIdx.x % 32 == 0) {
    atomicMax(&out[0], __float_as_uint(worst));
    atomicMax(&out[1], __float_as_uint(largest));
    atomicAdd(&out[2], bad);
  }
}

/// The largest |a - b| over the largest |b| (on the device: the prefill's
/// outputs are a GB); infinite when a holds a NaN or an infinity.
double relativeDifference(const float *a, const float *b, size_t count,
                          unsigned *scratch) {
  CHECK_CUDA(cudaMemset(scratch, 0, 3 * sizeof(unsigned)));
  differenceKernel<<<1024, 256>>>(a, b, static_cast<int64_t>(count), scratch);
  CHECK_CUDA(cudaGetLastError());
  unsigned host[3];
  CHECK_CUDA(cudaMemcpy(host, scratch, sizeof(host), cudaMemcpyDeviceToHost));
  if (host[2] > 0)
    return INFINITY;
  float worst, largest;
  std::memcpy(&worst, &host[0], 4);
  std::memcpy(&largest, &host[1], 4);
  return largest > 0 ? worst / largest : worst;
}

} // namespace

bool compareGemms(const fairkv::model::ModelConfig &model,
                  double copyBytesPerSecond) {
  const int hidden = static_cast<int>(model.hidden),
            q = static_cast<int>(model.heads * model.headDim),
            kv = static_cast<int>(model.kvHeads * model.headDim),
            ffn = static_cast<int>(model.ffn),
            vocab = static_cast<int>(model.vocab);
  std::vector<Shape> shapes;
  for (int m : {64, 256}) {
    shapes.push_back({"q_proj", m, q, hidden});
    shapes.push_back({"k_proj / v_proj", m, kv, hidden});
    shapes.push_back({"o_proj", m, hidden, q});
    shapes.push_back({"gate + up (fused)", m, 2 * ffn, hidden});
    shapes.push_back({"down_proj", m, hidden, ffn});
    shapes.push_back({"lm_head", m, vocab, hidden});
  }
  for (Shape s : {Shape{"q_proj", 8192, q, hidden},
                  Shape{"o_proj", 8192, hidden, q},
                  Shape{"gate + up (fused)", 8192, 2 * ffn, hidden},
                  Shape{"down_proj", 8192, hidden, ffn}})
    shapes.push_back(s);

  cublasHandle_t blas;
  cublasLtHandle_t lt;
  CHECK_BLAS(cublasCreate(&blas));
  CHECK_BLAS(cublasLtCreate(&lt));
  void *workspace = nullptr;
  unsigned *scratch = nullptr;
  CHECK_CUDA(cudaMalloc(&workspace, kWorkspaceBytes));
  CHECK_CUDA(cudaMalloc(&scratch, 3 * sizeof(unsigned)));
  cublasLtMatmulPreference_t preference;
  CHECK_BLAS(cublasLtMatmulPreferenceCreate(&preference));
  const size_t workspaceBytes = kWorkspaceBytes;
  CHECK_BLAS(cublasLtMatmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
      sizeof(workspaceBytes)));

  std::printf("  ms per GEMM (decode: share of copy bandwidth for its "
              "weights, input and output; prefill: TFLOP/s)\n");
  std::printf("  %-18s %5s %6s %6s | %-22s | %-22s | %-22s | %s\n", "GEMM",
              "m", "n", "k", "cublasGemmEx (runtime)", "cuBLASLt first",
              "cuBLASLt best of 8", "GemmEx / best");
  bool ok = true;
  for (const Shape &s : shapes) {
    const size_t xCount = size_t(s.m) * s.k, wCount = size_t(s.n) * s.k,
                 yCount = size_t(s.m) * s.n;
    __nv_bfloat16 *x = nullptr, *w = nullptr;
    float *yEx = nullptr, *yLt = nullptr;
    CHECK_CUDA(cudaMalloc(&x, xCount * 2));
    CHECK_CUDA(cudaMalloc(&w, wCount * 2));
    CHECK_CUDA(cudaMalloc(&yEx, yCount * 4));
    CHECK_CUDA(cudaMalloc(&yLt, yCount * 4));
    CHECK_CUDA(fairkv::cuda::fillUniform(x, xCount, 7, 1.0f, 0.0f, 0));
    CHECK_CUDA(fairkv::cuda::fillUniform(w, wCount, 8, 0.05f, 0.0f, 0));
    // A decode GEMM against the bytes it must move at least (its weights,
    // input and output) at the copy bandwidth; a prefill's in TFLOP/s.
    const double bytes = 2.0 * (wCount + xCount) + 4.0 * yCount;
    const bool prefill = s.m >= 8192;
    auto rate = [&](double seconds) {
      char text[32];
      if (prefill)
        std::snprintf(text, sizeof(text), "%.4f (%.0f TF/s)", seconds * 1e3,
                      2.0 * s.m * s.n * s.k / seconds / 1e12);
      else
        std::snprintf(text, sizeof(text), "%.4f (%.0f%%)", seconds * 1e3,
                      100 * bytes / seconds / copyBytesPerSecond);
      return std::string(text);
    };
    const int repeats = prefill ? 5 : 20;
    CHECK_BLAS(fairkv::cuda::gemm(blas, x, w, yEx, s.m, s.n, s.k, false));
    const double exSeconds = secondsPerRepeat(repeats, [&] {
      CHECK_BLAS(fairkv::cuda::gemm(blas, x, w, yEx, s.m, s.n, s.k, false));
    });

    LtGemm g(s.m, s.n, s.k);
    cublasLtMatmulHeuristicResult_t found[kCandidates];
    int returned = 0;
    const cublasStatus_t heuristic = cublasLtMatmulAlgoGetHeuristic(
        lt, g.desc, g.a, g.b, g.c, g.c, preference, kCandidates, found,
        &returned);
    const float alpha = 1.0f, beta = 0.0f;
    auto runLt = [&](const cublasLtMatmulAlgo_t &algo) {
      return cublasLtMatmul(lt, g.desc, &alpha, w, g.a, x, g.b, &beta, yLt,
                            g.c, yLt, g.c, &algo, workspace, kWorkspaceBytes,
                            0);
    };
    double firstSeconds = INFINITY, bestSeconds = INFINITY, worstDiff = 0;
    for (int i = 0; heuristic == CUBLAS_STATUS_SUCCESS && i < returned; ++i) {
      if (found[i].state != CUBLAS_STATUS_SUCCESS ||
          runLt(found[i].algo) != CUBLAS_STATUS_SUCCESS)
        continue;
      worstDiff =
          std::max(worstDiff, relativeDifference(yLt, yEx, yCount, scratch));
      const double seconds = secondsPerRepeat(
          repeats, [&] { CHECK_BLAS(runLt(found[i].algo)); });
      if (i == 0)
        firstSeconds = seconds;
      bestSeconds = std::min(bestSeconds, seconds);
    }
    const std::string ex = rate(exSeconds);
    const std::string first = std::isfinite(firstSeconds)
                                  ? rate(firstSeconds)
                                  : std::string("no algorithm");
    const std::string best =
        std::isfinite(bestSeconds) ? rate(bestSeconds) : std::string("-");
    // bf16 inputs, fp32 accumulation in another order: about 1e-6 apart.
    const bool same = worstDiff < 1e-4;
    ok &= same;
    std::printf("  %-18s %5d %6d %6d | %-22s | %-22s | %-22s | %.2fx%s\n",
                s.name, s.m, s.n, s.k, ex.c_str(), first.c_str(), best.c_str(),
                std::isfinite(bestSeconds) ? exSeconds / bestSeconds : 0.0,
                same ? "" : "  RESULTS DIFFER");
    CHECK_CUDA(cudaFree(x));
    CHECK_CUDA(cudaFree(w));
    CHECK_CUDA(cudaFree(yEx));
    CHECK_CUDA(cudaFree(yLt));
  }
  cublasLtMatmulPreferenceDestroy(preference);
  CHECK_CUDA(cudaFree(workspace));
  CHECK_CUDA(cudaFree(scratch));
  cublasLtDestroy(lt);
  cublasDestroy(blas);
  return ok;
}

} // namespace fairkv::bench

//===- OverlapBench.cpp - Fused projection + all_reduce against unfused ---===//
//
// The two row-parallel projections of a llama-3-8b layer as one of 8 tp
// devices holds them (o_proj: 4 heads of 128 -> 4096; down_proj: 1792 ->
// 4096), at a decode-sized and a prefill-sized number of rows: each as
// out_proj + all_reduce (unfused) and as fairkv_rt_linear_all_reduce in 1,
// 2 and 4 column blocks (fused; the runtime overlaps block c's reduction
// with block c + 1's GEMM where it can: with NCCL on GPUs). Every fused
// result is checked against the unfused one. Also shows how many blocks
// the default rule (fairkv-overlap-collectives' smallest paying block on
// h100-sxm at G = 8) gives each shape. On one GPU (the GPU default) the
// all_reduce has nothing to add, so this measures what splitting costs, not
// what overlap gains: that needs several GPUs. The CPU default runs 2
// devices as threads. Writes its section of bench/RESULTS.md.
//
// Usage: fairkv-bench-overlap [--results FILE] [--backend cpu|cuda]
//            [--collectives rendezvous|nccl] [--devices G] [--rows LIST]
//            [--hidden N] [--heads N] [--ffn N] [--repeats N]
// (the CPU defaults are smaller shapes than the GPU's, on 2 devices).
//
//===----------------------------------------------------------------------===//

#include "ResultsFile.h"
#include "fairkv/Placement/Model.h"
#include "fairkv/Placement/Plan.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using fairkv::bench::formatNumber;

namespace {

constexpr int64_t kHeadDim = 128;

struct Shape {
  std::string name;
  std::string weight; // tensor name in the weight file
  int64_t k;          // the projection's input features
};

/// Seeded values in [-1, 1).
std::vector<float> seeded(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (float &e : v) {
    x = x * 1664525u + 1013904223u;
    e = static_cast<float>(x >> 8) / float(1u << 23) - 1.0f;
  }
  return v;
}

/// Runs `body(ctx, device)` on every device of `session`, one thread each.
template <typename Body>
void onEveryDevice(fairkv_rt_session *session, int devices, Body body) {
  std::vector<std::thread> threads;
  for (int g = 0; g < devices; ++g)
    threads.emplace_back(
        [&, g] { body(fairkv_rt_session_device(session, g), g); });
  for (std::thread &t : threads)
    t.join();
}

} // namespace

int main(int argc, char **argv) {
  fairkv::bench::BenchArgs args;
  if (int exit = fairkv::bench::parseBenchArgs(
          argc, argv, "fairkv-bench-overlap", FAIRKV_SOURCE_DIR,
          {{"backend", "cpu"},
           {"collectives", ""},
           {"devices", ""},
           {"rows", ""},
           {"hidden", ""},
           {"heads", "4"},
           {"ffn", ""},
           {"repeats", ""}},
          args);
      exit >= 0)
    return exit;
  auto fail = [](const std::string &why) {
    std::cerr << "fairkv-bench-overlap: error: " << why << "\n";
    return 1;
  };
  auto &v = args.values;
  const bool cuda = v["backend"] == "cuda";
  if (!cuda && v["backend"] != "cpu")
    return fail("--backend must be cpu or cuda, not '" + v["backend"] + "'");
  // A GPU takes the layer's real shapes; a CPU smaller ones.
  auto value = [&](const char *key, const char *gpu, const char *cpu) {
    return v[key].empty() ? std::string(cuda ? gpu : cpu) : v[key];
  };
  const int64_t hidden = std::atoll(value("hidden", "4096", "1024").c_str()),
                heads = std::atoll(v["heads"].c_str()),
                ffn = std::atoll(value("ffn", "1792", "512").c_str()),
                repeats = std::atoll(value("repeats", "20", "30").c_str());
  const int devices = std::atoi(value("devices", "1", "2").c_str());
  std::vector<int64_t> rowCounts;
  {
    std::stringstream list(value("rows", "64,8192", "16,512"));
    for (std::string item; std::getline(list, item, ',');)
      rowCounts.push_back(std::atoll(item.c_str()));
  }
  const std::string collectives = v["collectives"].empty()
                                      ? (cuda ? "nccl" : "rendezvous")
                                      : v["collectives"];
  if (hidden < 1 || heads < 1 || ffn < 1 || repeats < 1 || devices < 1 ||
      rowCounts.empty() ||
      std::any_of(rowCounts.begin(), rowCounts.end(),
                  [](int64_t r) { return r < 1; }))
    return fail("--hidden, --heads, --ffn, --repeats, --devices and every "
                "--rows entry must be positive");
  if (ffn % kHeadDim)
    return fail("--ffn must be a multiple of " + std::to_string(kHeadDim));
  if (collectives != "rendezvous" && collectives != "nccl")
    return fail("--collectives must be rendezvous or nccl");

  std::string weights = (std::filesystem::temp_directory_path() /
                         "fairkv-bench-overlap.safetensors")
                            .string();
  if (fairkv_rt_write_random_weights(weights.c_str(), 1, hidden, heads, 1,
                                     kHeadDim, ffn, 256, 7,
                                     cuda ? "bf16" : "f32") != FAIRKV_OK)
    return fail(fairkv_rt_last_error());
  fairkv_rt_options options;
  fairkv_rt_default_options(&options);
  options.devices = devices;
  options.backend = cuda ? FAIRKV_RT_BACKEND_CUDA : FAIRKV_RT_BACKEND_CPU;
  options.collectives = collectives == "nccl"
                            ? FAIRKV_RT_COLLECTIVES_NCCL
                            : FAIRKV_RT_COLLECTIVES_RENDEZVOUS;
  fairkv_rt_session *session = nullptr;
  if (fairkv_rt_session_create(weights.c_str(), &options, &session) !=
      FAIRKV_OK)
    return fail(fairkv_rt_last_error());

  std::string machine = fairkv::bench::machineDescription();
  if (cuda) {
    char name[256] = "";
    if (fairkv_rt_cuda_device_name(0, name, sizeof(name)) == FAIRKV_OK)
      machine += "; GPU: " + std::string(name);
  }
  const fairkv::placement::Hardware hw =
      *fairkv::placement::hardwarePreset("h100-sxm");
  const auto paying = static_cast<int64_t>(
      std::ceil(fairkv::placement::smallestPayingReductionBlock(8, hw)));
  const Shape shapes[] = {
      {"o_proj", "model.layers.0.self_attn.o_proj.weight", heads * kHeadDim},
      {"down_proj", "model.layers.0.mlp.down_proj.weight", ffn}};
  const int64_t blockCounts[] = {1, 2, 4};

  std::ostringstream md;
  md << "## Fused projection + all_reduce (`bench/overlap`)\n\n"
     << "Machine: " << machine << ". Run: " << fairkv::bench::utcNow()
     << ". Backend " << (cuda ? "cuda" : "cpu") << ", " << collectives
     << " collectives, " << devices
     << " device(s). A layer's two row-parallel projections as one of 8 tp "
        "devices of llama-3-8b holds them (hidden "
     << hidden << "; o_proj K = " << heads * kHeadDim
     << ", down_proj K = " << ffn
     << "): out_proj + all_reduce against fairkv_rt_linear_all_reduce in 1, "
        "2 and 4 column blocks, milliseconds per call (mean of "
     << repeats << "). "
     << (devices == 1
             ? "On one device the all_reduce adds nothing, so the blocks "
               "show what splitting costs; what overlap gains needs several "
               "GPUs. "
             : std::string(cuda ? "The devices share this machine's GPUs. "
                                : "The devices are threads on this "
                                  "machine's cores, which they share. "))
     << "`default` is how many blocks fairkv-overlap-collectives' smallest "
        "paying block (h100-sxm, G = 8: "
     << formatNumber("%.2f", paying / 1e6)
     << " MB) gives the shape, at most 4. Max diff: the largest difference "
        "of a fused result from the unfused one, relative to its largest "
        "value.\n\n"
     << "| rows | projection | result MB | unfused ms | 1 block | 2 blocks | "
        "4 blocks | 4 blocks / unfused | default | max diff |\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n";
  bool ok = true;
  const double tolerance = cuda ? 1e-3 : 1e-5;
  for (int64_t rows : rowCounts)
    for (const Shape &shape : shapes) {
      // Variant 0: unfused; 1..3: fused in blockCounts[i - 1] blocks.
      double seconds[4] = {0, 0, 0, 0}, worst = 0;
      onEveryDevice(session, devices, [&](fairkv_rt_ctx *ctx, int g) {
        const int64_t xShape[] = {rows, 1, shape.k / kHeadDim, kHeadDim},
                      wShape[] = {hidden, shape.k};
        const std::vector<float> x =
            seeded(size_t(rows) * shape.k, static_cast<uint32_t>(g + 1));
        std::vector<float> reference;
        for (int variant = 0; variant < 4; ++variant) {
          // Each call starts a step (freeing the last one's tensors) with
          // its input already where the op reads it: on a GPU the upload,
          // which the first op reading a tensor does, goes to an add before
          // the clock starts. Every call is timed to completion.
          auto run = [&](double *seconds) {
            fairkv_rt_step_begin(ctx, rows, 1);
            fairkv_rt_tensor *w = fairkv_rt_weight(ctx, shape.weight.c_str(),
                                                   -1, nullptr, 0, wShape, 2);
            fairkv_rt_tensor *in =
                fairkv_rt_tensor_from_f32(ctx, x.data(), xShape, 4);
            fairkv_rt_add(ctx, in, in);
            fairkv_rt_ctx_synchronize(ctx);
            auto start = std::chrono::steady_clock::now();
            fairkv_rt_tensor *y =
                variant == 0
                    ? fairkv_rt_all_reduce(ctx, fairkv_rt_out_proj(ctx, in, w),
                                           0)
                    : fairkv_rt_linear_all_reduce(ctx, in, w, nullptr,
                                                  blockCounts[variant - 1], 0);
            fairkv_rt_ctx_synchronize(ctx);
            *seconds += std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - start)
                            .count();
            return y;
          };
          // Warm up (weights to the device, cuBLAS plans), and keep the
          // result to compare.
          double total = 0;
          fairkv_rt_tensor *first = run(&total);
          const float *data = fairkv_rt_tensor_f32_data(first);
          std::vector<float> result(data, data + fairkv_rt_tensor_numel(first));
          if (variant == 0) {
            reference = result;
          } else if (g == 0) {
            double largest = 0, diff = 0;
            for (size_t e = 0; e < result.size(); ++e) {
              largest = std::max(largest, double(std::fabs(reference[e])));
              diff =
                  std::max(diff, double(std::fabs(result[e] - reference[e])));
            }
            worst = std::max(worst, largest > 0 ? diff / largest : diff);
          }
          total = 0;
          for (int64_t r = 0; r < repeats; ++r)
            run(&total);
          if (g == 0)
            seconds[variant] = total / repeats;
        }
      });
      ok = ok && worst <= tolerance;
      const int64_t defaultBlocks =
          fairkv_rt_reduction_blocks(rows, hidden, 4, paying);
      md << "| " << rows << " | " << shape.name << " | "
         << formatNumber("%.2f", rows * hidden * 4 / 1e6) << " | "
         << formatNumber("%.3f", seconds[0] * 1e3) << " | "
         << formatNumber("%.3f", seconds[1] * 1e3) << " | "
         << formatNumber("%.3f", seconds[2] * 1e3) << " | "
         << formatNumber("%.3f", seconds[3] * 1e3) << " | "
         << formatNumber("%.2f", seconds[3] / seconds[0]) << " | "
         << defaultBlocks << " | " << formatNumber("%.1e", worst) << " |\n";
    }
  fairkv_rt_session_destroy(session);
  std::filesystem::remove(weights);
  std::cout << md.str();
  if (!ok)
    return fail("a fused result differs from the unfused one by more than " +
                formatNumber("%.0e", tolerance));
  if (!fairkv::bench::writeSection(args.results, "overlap", md.str()))
    return fail("cannot write " + args.results);
  std::cout << "fairkv-bench-overlap: wrote " << args.results << "\n";
  return 0;
}

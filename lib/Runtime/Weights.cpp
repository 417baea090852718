//===- Weights.cpp - safetensors: memory-mapped reading, random writing ---===//

#include "Runtime.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <random>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace fairkv::rt;

WeightFile::~WeightFile() {
  for (auto [mapping, bytes] : mappings)
    munmap(mapping, bytes);
}

bool WeightFile::open(const std::string &path, std::string &error) {
  const std::string suffix = ".index.json";
  if (path.size() < suffix.size() ||
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return openShard(path, error);
  std::ifstream in(path);
  if (!in) {
    error = "cannot open weights '" + path + "'";
    return false;
  }
  nlohmann::json index =
      nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  auto map = index.is_object() ? index.find("weight_map") : index.end();
  if (index.is_discarded() || !index.is_object() || map == index.end() ||
      !map->is_object()) {
    error = path + ": not a safetensors index (no \"weight_map\" object)";
    return false;
  }
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto &[name, file] : map->items()) {
    if (!file.is_string()) {
      error = path + ": the shard of '" + name + "' is not a file name";
      return false;
    }
    shards[file.get<std::string>()].push_back(name);
  }
  for (const auto &[file, names] : shards) {
    if (!openShard(dir + file, error))
      return false;
    for (const std::string &name : names)
      if (!tensors.count(name)) {
        error = dir + file + ": missing tensor '" + name +
                "' that the index places there";
        return false;
      }
  }
  return true;
}

bool WeightFile::openShard(const std::string &path, std::string &error) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    error = "cannot open weights '" + path + "'";
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < 8) {
    ::close(fd);
    error = path + ": not a safetensors file (too short)";
    return false;
  }
  size_t mappedBytes = static_cast<size_t>(st.st_size);
  void *mapping = mmap(nullptr, mappedBytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) {
    error = "cannot map weights '" + path + "'";
    return false;
  }
  mappings.push_back({mapping, mappedBytes});
  const auto *bytes = static_cast<const uint8_t *>(mapping);
  uint64_t headerBytes = 0;
  std::memcpy(&headerBytes, bytes, 8);
  if (headerBytes > mappedBytes - 8) {
    error = path + ": safetensors header runs past the end of the file";
    return false;
  }
  nlohmann::json header = nlohmann::json::parse(
      bytes + 8, bytes + 8 + headerBytes, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    error = path + ": safetensors header is not a JSON object";
    return false;
  }
  const uint8_t *data = bytes + 8 + headerBytes;
  const uint64_t dataBytes = mappedBytes - 8 - headerBytes;
  for (const auto &[name, entry] : header.items()) {
    if (name == "__metadata__")
      continue;
    Info info;
    auto dtype = entry.find("dtype");
    auto shape = entry.find("shape");
    auto offsets = entry.find("data_offsets");
    if (dtype == entry.end() || !dtype->is_string() || shape == entry.end() ||
        !shape->is_array() || offsets == entry.end() ||
        !offsets->is_array() || offsets->size() != 2) {
      error = path + ": tensor '" + name + "' has a malformed header entry";
      return false;
    }
    info.dtype = dtype->get<std::string>();
    int64_t elementBytes = info.dtype == "F32"                        ? 4
                           : info.dtype == "F16" || info.dtype == "BF16" ? 2
                                                                          : 0;
    if (!elementBytes) {
      error = path + ": tensor '" + name + "' has unsupported dtype '" +
              info.dtype + "' (F32, F16, BF16)";
      return false;
    }
    // Sizes are checked before they are multiplied: a header may claim
    // anything, and the tensor must fit in the file.
    uint64_t bytes = static_cast<uint64_t>(elementBytes);
    for (const auto &d : *shape) {
      if (!d.is_number_unsigned() || info.shape.size() >= 8 ||
          __builtin_mul_overflow(bytes, d.get<uint64_t>(), &bytes) ||
          d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        error = path + ": tensor '" + name +
                "' has a bad shape (at most 8 non-negative integer "
                "dimensions whose bytes fit in the file)";
        return false;
      }
      info.shape.push_back(d.get<int64_t>());
    }
    if (!(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned()) {
      error = path + ": tensor '" + name +
              "' has data offsets that are not non-negative integers";
      return false;
    }
    uint64_t begin = (*offsets)[0].get<uint64_t>(),
             end = (*offsets)[1].get<uint64_t>();
    if (end < begin || end > dataBytes || end - begin != bytes) {
      error = path + ": tensor '" + name + "' has data offsets that do not "
                                             "match its shape and dtype";
      return false;
    }
    info.data = data + begin;
    tensors[name] = std::move(info);
  }
  return true;
}

const WeightFile::Info *WeightFile::find(const std::string &name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

namespace {

uint16_t toHalf(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exponent = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = x & 0x7fffff;
  if (exponent <= 0)
    return static_cast<uint16_t>(sign); // flush tiny values to zero
  if (exponent >= 31)
    return static_cast<uint16_t>(sign | 0x7c00);
  // Round to nearest even.
  uint32_t half = sign | (exponent << 10) | (mantissa >> 13);
  uint32_t rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1)))
    ++half;
  return static_cast<uint16_t>(half);
}

uint16_t toBF16(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  uint32_t rounding = 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

} // namespace

namespace {

/// The tensors of a dense Llama-layout model of these sizes.
std::vector<fairkv::model::TensorSpec>
denseTensors(int64_t layers, int64_t hidden, int64_t heads, int64_t kvHeads,
             int64_t headDim, int64_t ffn, int64_t vocab) {
  return fairkv::model::modelTensors(fairkv::model::ModelConfig::llama(
      "", layers, hidden, heads, kvHeads, headDim, ffn, vocab));
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

} // namespace

bool fairkv::rt::checkTensors(const std::string &path,
                              const std::vector<model::TensorSpec> &specs,
                              std::string &error) {
  WeightFile file;
  if (!file.open(path, error))
    return false;
  std::set<std::string> wanted;
  for (const model::TensorSpec &e : specs) {
    wanted.insert(e.name);
    const WeightFile::Info *info = file.find(e.name);
    if (!info) {
      error = path + ": missing tensor '" + e.name + "'";
      return false;
    }
    if (info->shape != e.shape) {
      error = path + ": tensor '" + e.name + "' has shape " +
              shapeText(info->shape) + ", the model needs " +
              shapeText(e.shape);
      return false;
    }
  }
  // A tensor the model would not read means the file is of another model
  // (a bias on a family without biases, an lm_head on a tied model): what
  // it computes would not be that file's model. Older checkpoints' rotary
  // buffers are recomputed, as transformers does.
  for (const std::string &name : file.names())
    if (!wanted.count(name) &&
        !endsWith(name, ".rotary_emb.inv_freq")) {
      error = path + ": tensor '" + name + "' is not read by this model";
      return false;
    }
  return true;
}

bool fairkv::rt::checkWeights(const std::string &path, int64_t layers,
                              int64_t hidden, int64_t heads, int64_t kvHeads,
                              int64_t headDim, int64_t ffn, int64_t vocab,
                              std::string &error) {
  return checkTensors(
      path, denseTensors(layers, hidden, heads, kvHeads, headDim, ffn, vocab),
      error);
}

bool fairkv::rt::writeRandomWeights(const std::string &path, int64_t layers,
                                    int64_t hidden, int64_t heads,
                                    int64_t kvHeads, int64_t headDim,
                                    int64_t ffn, int64_t vocab, uint64_t seed,
                                    const std::string &dtype,
                                    std::string &error) {
  if (dtype != "f32" && dtype != "f16" && dtype != "bf16") {
    error = "dtype must be f32, f16 or bf16";
    return false;
  }
  std::vector<fairkv::model::TensorSpec> entries =
      denseTensors(layers, hidden, heads, kvHeads, headDim, ffn, vocab);

  const int64_t elementBytes = dtype == "f32" ? 4 : 2;
  const char *stName = dtype == "f32" ? "F32" : dtype == "f16" ? "F16" : "BF16";
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"},
                            {"generator", "fairkv random weights"},
                            {"seed", std::to_string(seed)}};
  uint64_t offset = 0;
  for (const fairkv::model::TensorSpec &e : entries) {
    int64_t count = 1;
    for (int64_t d : e.shape)
      count *= d;
    uint64_t bytes = static_cast<uint64_t>(count * elementBytes);
    header[e.name] = {{"dtype", stName},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8)
    text += ' ';
  std::ofstream out(path, std::ios::binary);
  if (!out) {
    error = "cannot write '" + path + "'";
    return false;
  }
  uint64_t headerBytes = text.size();
  out.write(reinterpret_cast<const char *>(&headerBytes), 8);
  out.write(text.data(), text.size());
  std::mt19937_64 rng(seed);
  // A real-sized model takes minutes: say how far it is, every 5%.
  const bool progress = offset >= (uint64_t(256) << 20);
  uint64_t written = 0;
  int reported = 0;
  for (const fairkv::model::TensorSpec &e : entries) {
    int64_t count = 1;
    for (int64_t d : e.shape)
      count *= d;
    // Scaled like a trained model's layers: activations stay O(1).
    const bool norm = e.kind == fairkv::model::TensorKind::Norm;
    double bound = norm ? 0.1 : 1.0 / std::sqrt(static_cast<double>(e.shape.back()));
    std::uniform_real_distribution<double> dist(-bound, bound);
    std::vector<char> buffer(count * elementBytes);
    for (int64_t i = 0; i < count; ++i) {
      float v = static_cast<float>(norm ? 1.0 + dist(rng) : dist(rng));
      if (dtype == "f32") {
        std::memcpy(buffer.data() + 4 * i, &v, 4);
      } else {
        uint16_t h = dtype == "f16" ? toHalf(v) : toBF16(v);
        std::memcpy(buffer.data() + 2 * i, &h, 2);
      }
    }
    out.write(buffer.data(), buffer.size());
    written += buffer.size();
    if (progress && written * 20 / offset > static_cast<uint64_t>(reported)) {
      reported = static_cast<int>(written * 20 / offset);
      std::fprintf(stderr, "writing weights: %d%% (%llu of %llu MiB)\n",
                   reported * 5, static_cast<unsigned long long>(written >> 20),
                   static_cast<unsigned long long>(offset >> 20));
    }
  }
  if (!out) {
    error = "cannot write '" + path + "'";
    return false;
  }
  return true;
}

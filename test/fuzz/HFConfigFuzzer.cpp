//===- HFConfigFuzzer.cpp - The Hugging Face config.json reader -----------===//
//
// Any text as a config.json: read or refused in one line. What is read
// must describe a model whose derived sizes (weights, KV, rope tables) can
// be computed without overflow, since every later stage relies on that.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Model/ModelConfig.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string text(reinterpret_cast<const char *>(data), size);
  fairkv::model::Result<fairkv::model::ModelConfig> config =
      fairkv::model::parseHFConfig(text, "config.json");
  if (!config)
    return 0;
  if (!config->validate())
    __builtin_trap(); // the reader returned a model it should have refused
  (void)config->describe();
  (void)fairkv::model::modelTensors(*config);
  if (config->maxPositions <= 4096)
    (void)config->ropeInverseFrequencies(config->maxPositions);
  return 0;
}

//===- ModelFolder.h - What a Hugging Face model folder says ----*- C++ -*-===//

#ifndef FAIRKV_SERVE_MODELFOLDER_H
#define FAIRKV_SERVE_MODELFOLDER_H

#include "fairkv/Placement/Result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fairkv::serve {

using placement::Result;

/// The end-of-sequence ids of the model whose tokenizer is `tokenizerPath`
/// (a tokenizer.json or its folder): generation_config.json's eos_token_id
/// (an id or a list), else config.json's; none when neither says.
Result<std::vector<int64_t>> readEosIds(const std::string &tokenizerPath);

/// The chat template of tokenizer_config.json (or chat_template.jinja)
/// beside `tokenizerPath`, with its bos and eos tokens; an empty template
/// when it has none.
struct ChatConfig {
  std::string chatTemplate, bosToken, eosToken;
};
Result<ChatConfig> readChatConfig(const std::string &tokenizerPath);

} // namespace fairkv::serve

#endif // FAIRKV_SERVE_MODELFOLDER_H

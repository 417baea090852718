//===- ModelFolder.cpp - End-of-sequence ids from a model folder ----------===//

#include "fairkv/Serve/ModelFolder.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace fairkv::serve;
using fairkv::placement::makeError;

namespace {

/// The model folder of a tokenizer path: the path itself, or the folder of
/// the tokenizer file it names.
std::filesystem::path folderOf(const std::string &tokenizerPath) {
  std::filesystem::path folder(tokenizerPath);
  std::error_code ec;
  return std::filesystem::is_directory(folder, ec) ? folder
                                                   : folder.parent_path();
}

} // namespace

Result<std::vector<int64_t>>
fairkv::serve::readEosIds(const std::string &tokenizerPath) {
  const std::filesystem::path folder = folderOf(tokenizerPath);
  for (const char *name : {"generation_config.json", "config.json"}) {
    std::ifstream in(folder / name);
    if (!in)
      continue;
    std::ostringstream text;
    text << in.rdbuf();
    nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return makeError((folder / name).string() + ": not a JSON object");
    auto it = j.find("eos_token_id");
    if (it == j.end() || it->is_null())
      continue;
    std::vector<int64_t> ids;
    if (it->is_number_integer())
      ids.push_back(it->get<int64_t>());
    else if (it->is_array())
      for (const auto &id : *it) {
        if (!id.is_number_integer())
          return makeError((folder / name).string() +
                           ": eos_token_id holds a non-integer");
        ids.push_back(id.get<int64_t>());
      }
    else
      return makeError((folder / name).string() +
                       ": eos_token_id is neither an id nor a list");
    return ids;
  }
  return std::vector<int64_t>();
}

Result<ChatConfig> fairkv::serve::readChatConfig(const std::string &tokenizerPath) {
  const std::filesystem::path folder = folderOf(tokenizerPath);
  ChatConfig config;
  std::ifstream in(folder / "tokenizer_config.json");
  if (!in)
    return config;
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return makeError((folder / "tokenizer_config.json").string() +
                     ": not a JSON object");
  auto token = [&](const char *key) {
    const nlohmann::json v = j.value(key, nlohmann::json());
    if (v.is_string())
      return v.get<std::string>();
    if (v.is_object() && v.value("content", nlohmann::json()).is_string())
      return v["content"].get<std::string>();
    return std::string();
  };
  config.bosToken = token("bos_token");
  config.eosToken = token("eos_token");
  const nlohmann::json t = j.value("chat_template", nlohmann::json());
  if (t.is_string()) {
    config.chatTemplate = t.get<std::string>();
  } else if (t.is_array()) {
    for (const nlohmann::json &named : t)
      if (named.is_object() && named.value("name", "") == "default" &&
          named.value("template", nlohmann::json()).is_string())
        config.chatTemplate = named["template"].get<std::string>();
  }
  // transformers 4.43+ may keep it in chat_template.jinja instead.
  if (config.chatTemplate.empty()) {
    std::ifstream jinja(folder / "chat_template.jinja");
    if (jinja) {
      std::ostringstream body;
      body << jinja.rdbuf();
      config.chatTemplate = body.str();
    }
  }
  return config;
}

//===- ModelFolder.cpp - End-of-sequence ids from a model folder ----------===//

#include "fairkv/Serve/ModelFolder.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace fairkv::serve;
using fairkv::placement::makeError;

Result<std::vector<int64_t>>
fairkv::serve::readEosIds(const std::string &tokenizerPath) {
  std::filesystem::path folder(tokenizerPath);
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec))
    folder = folder.parent_path();
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

//===- ProfileArgs.h - Model and profile options shared by commands -*- C++ -*-===//

#ifndef FAIRKV_TOOLS_FAIRKV_PROFILEARGS_H
#define FAIRKV_TOOLS_FAIRKV_PROFILEARGS_H

#include "fairkv/Placement/Profile.h"

#include <string>
#include <vector>

namespace CLI {
class App;
} // namespace CLI

namespace fairkv::tool {

/// --model and the budget profile with each format's options.
struct ProfileArgs {
  std::string model;
  std::string profile;
  std::string profileFormat;
  placement::HeadKVOptions headkv;
  std::string headkvGroup = "sum";
  placement::DuoOptions duo;
  double duoSparsity = -1;
  uint64_t seed = 1;
  double skew = 1.0;
  int64_t meanTokens = 512;
  int64_t uniformTokens = int64_t(1) << 20;
};

void addProfileOptions(CLI::App &command, ProfileArgs &args);

/// Resolves --model.
placement::Result<placement::ModelConfig> loadModel(const ProfileArgs &args);
/// Reads --profile in its format and checks it against `model`.
placement::Result<placement::BudgetProfile>
loadProfile(ProfileArgs &args, const placement::ModelConfig &model);

/// "a|b|c", for option help.
std::string joined(const std::vector<std::string> &names);

/// Writes `text` to `path`, or to stdout for "" or "-".
bool writeTo(const std::string &path, const std::string &text);

} // namespace fairkv::tool

#endif // FAIRKV_TOOLS_FAIRKV_PROFILEARGS_H

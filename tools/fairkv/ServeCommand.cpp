//===- ServeCommand.cpp - fairkv serve MODEL_DIR --program PROG -----------===//
//
// The server lives in every compiled program (`PROG --serve`); this command
// is the short way to start one on a Hugging Face model folder: it runs the
// program with the folder's weights and tokenizer, and passes the rest on.
//
//===----------------------------------------------------------------------===//

#include "Commands.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <vector>

#include <unistd.h>

namespace {

struct ServeArgs {
  std::string folder, program, listen = "127.0.0.1:8000", modelName;
  std::vector<std::string> extra;
};

int runServe(const ServeArgs &a) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto fail = [](const std::string &m) {
    std::cerr << "fairkv serve: error: " << m << "\n";
    return 1;
  };
  if (!fs::is_directory(a.folder, ec))
    return fail("'" + a.folder + "' is not a model folder");
  const fs::path weights = fs::path(a.folder) / "model.safetensors";
  if (!fs::exists(weights, ec))
    return fail("'" + a.folder + "' has no model.safetensors");
  if (!fs::exists(fs::path(a.folder) / "tokenizer.json", ec))
    return fail("'" + a.folder + "' has no tokenizer.json");
  std::vector<std::string> args = {a.program,         "--weights",
                                   weights.string(),  "--tokenizer",
                                   a.folder,          "--serve",
                                   a.listen,          "--model-name",
                                   a.modelName.empty()
                                       ? fs::path(a.folder).filename().string()
                                       : a.modelName};
  args.insert(args.end(), a.extra.begin(), a.extra.end());
  std::vector<char *> argv;
  for (std::string &s : args)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  ::execv(a.program.c_str(), argv.data());
  return fail("cannot run '" + a.program + "': " + std::strerror(errno));
}

} // namespace

std::function<int()> fairkv::tool::addServeCommand(CLI::App &app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App *c = app.add_subcommand(
      "serve", "Serve a Hugging Face model folder (model.safetensors, "
               "tokenizer.json, tokenizer_config.json) with a program from "
               "`fairkv compile`: OpenAI-compatible completions and chat "
               "completions; arguments after -- go to the program");
  c->add_option("folder", args->folder, "the model folder")->required();
  c->add_option("--program", args->program,
                "the compiled program (fairkv compile --model "
                "FOLDER/config.json ...)")
      ->required();
  c->add_option("--listen", args->listen, "HOST:PORT to serve on")
      ->capture_default_str();
  c->add_option("--model-name", args->modelName,
                "the model's name in the API (default: the folder's name)");
  c->add_option("extra", args->extra,
                "program options (after --), e.g. -- --max-new-tokens 256 "
                "--batch-size 16");
  return [args] { return runServe(*args); };
}

//===- fairkv.cpp - The fairkv command ------------------------------------===//
//
// `fairkv <command> ...`: the user's entry point. Every command has --help,
// reports bad input as one line on stderr with a non-zero exit code.
//
//===----------------------------------------------------------------------===//

#include "Commands.h"

#include "fairkv/Compile/Compiler.h"
#include "fairkv/Version.h"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char **argv) {
  CLI::App app{"FairKV: head placement for per-head compressed KV caches "
               "under tensor parallelism"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fairkv " FAIRKV_VERSION);
  std::string libDir = fairkv::compile::defaultRuntimeLibDir(
      argv[0], reinterpret_cast<void *>(&main));
  std::function<int()> plan = fairkv::tool::addPlanCommand(app);
  std::function<int()> import = fairkv::tool::addImportCommand(app);
  std::function<int()> compile = fairkv::tool::addCompileCommand(app, libDir);
  std::function<int()> weights = fairkv::tool::addWeightsCommand(app);
  std::function<int()> demo = fairkv::tool::addDemoCommand(app, libDir);
  std::function<int()> serve = fairkv::tool::addServeCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e);
  }
  // Every error is a one-line message; an exception reaching here is a bug,
  // still reported in one line rather than an abort.
  try {
    for (auto &[name, command] :
         {std::pair{"plan", &plan}, {"import", &import}, {"compile", &compile},
          {"weights", &weights}, {"demo", &demo}, {"serve", &serve}})
      if (app.got_subcommand(name))
        return (*command)();
  } catch (const std::exception &e) {
    std::cerr << "fairkv: error: " << e.what() << "\n";
  }
  return 1;
}

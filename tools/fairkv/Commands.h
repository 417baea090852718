//===- Commands.h - Subcommands of the fairkv tool --------------*- C++ -*-===//

#ifndef FAIRKV_TOOLS_FAIRKV_COMMANDS_H
#define FAIRKV_TOOLS_FAIRKV_COMMANDS_H

#include <functional>
#include <string>

namespace CLI {
class App;
} // namespace CLI

namespace fairkv::tool {

/// Adds `plan` to `app`; the returned function runs it once parsed and
/// returns the process exit code.
std::function<int()> addPlanCommand(CLI::App &app);
/// Adds `import`.
std::function<int()> addImportCommand(CLI::App &app);
/// Adds `compile`; `libDir` holds the runtime libraries.
std::function<int()> addCompileCommand(CLI::App &app, std::string libDir);
/// Adds `weights`.
std::function<int()> addWeightsCommand(CLI::App &app);
/// Adds `demo`; `libDir` holds the runtime libraries.
std::function<int()> addDemoCommand(CLI::App &app, std::string libDir);
/// Adds `serve`.
std::function<int()> addServeCommand(CLI::App &app);

} // namespace fairkv::tool

#endif // FAIRKV_TOOLS_FAIRKV_COMMANDS_H

//===- Commands.h - Subcommands of the fairkv tool --------------*- C++ -*-===//

#ifndef FAIRKV_TOOLS_FAIRKV_COMMANDS_H
#define FAIRKV_TOOLS_FAIRKV_COMMANDS_H

#include <functional>

namespace CLI {
class App;
} // namespace CLI

namespace fairkv::tool {

/// Adds `plan` to `app`; the returned function runs it once parsed and
/// returns the process exit code.
std::function<int()> addPlanCommand(CLI::App &app);
/// Adds `import`.
std::function<int()> addImportCommand(CLI::App &app);

} // namespace fairkv::tool

#endif // FAIRKV_TOOLS_FAIRKV_COMMANDS_H

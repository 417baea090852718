//===- ImportCommand.cpp - `fairkv import` --------------------------------===//
//
// Writes the unsharded fairkv module of a model (preset or config.json) with
// the per-KV-head budgets of a profile on its attention ops.
//
//===----------------------------------------------------------------------===//

#include "Commands.h"
#include "ProfileArgs.h"

#include "fairkv/Import/ModelWriter.h"
#include "fairkv/Runtime/FairKVRuntime.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

using namespace fairkv::placement;
using namespace fairkv::tool;

namespace {

struct ImportArgs : ProfileArgs {
  std::string output;
  std::string weights;
  std::string function = "decode_step";
};

int fail(const std::string &message) {
  std::cerr << "fairkv import: error: " << message << "\n";
  return 1;
}

int runImport(ImportArgs &a) {
  Result<ModelConfig> model = loadModel(a);
  if (!model)
    return fail(model.error());
  if (Status s = model->checkComputable(); !s)
    return fail(s.error());
  Result<BudgetProfile> profile = loadProfile(a, *model);
  if (!profile)
    return fail(profile.error());
  if (!a.weights.empty() &&
      fairkv_rt_check_weights(a.weights.c_str(), model->layers, model->hidden,
                              model->heads, model->kvHeads, model->headDim,
                              model->ffn, model->vocab) != FAIRKV_OK)
    return fail(fairkv_rt_last_error());
  if (!writeTo(a.output,
               fairkv::import::writeModelModule(*model, *profile, a.function)))
    return fail("cannot write '" + a.output + "'");
  return 0;
}

} // namespace

std::function<int()> fairkv::tool::addImportCommand(CLI::App &app) {
  auto args = std::make_shared<ImportArgs>();
  CLI::App *command = app.add_subcommand(
      "import", "Write the unsharded fairkv module of a model, with the "
                "per-KV-head budgets of a profile on its attention ops");
  addProfileOptions(*command, *args);
  command->add_option("--output,-o", args->output,
                      "write the module here (default: stdout)");
  command->add_option("--weights", args->weights,
                      "check that this safetensors file holds the model's "
                      "tensors (names, shapes, dtypes)");
  command->add_option("--function", args->function,
                      "name of the decode-step function")
      ->capture_default_str();
  return [args] { return runImport(*args); };
}

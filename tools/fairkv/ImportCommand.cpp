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
#include <vector>

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
  Result<BudgetProfile> profile = loadProfile(a, *model);
  if (!profile)
    return fail(profile.error());
  if (!a.weights.empty()) {
    // Exactly the tensors the model reads, before anything runs.
    std::vector<fairkv::model::TensorSpec> tensors =
        fairkv::model::modelTensors(*model);
    std::vector<fairkv_rt_tensor_spec> specs;
    for (const fairkv::model::TensorSpec &t : tensors) {
      fairkv_rt_tensor_spec spec{t.name.c_str(),
                                 static_cast<int64_t>(t.shape.size()),
                                 {0, 0}};
      for (size_t i = 0; i < t.shape.size(); ++i)
        spec.shape[i] = t.shape[i];
      specs.push_back(spec);
    }
    if (fairkv_rt_check_tensors(a.weights.c_str(), specs.data(),
                                static_cast<int64_t>(specs.size())) !=
        FAIRKV_OK)
      return fail(fairkv_rt_last_error());
  }
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

//===- ModelWriter.h - Write a model as an unsharded fairkv module -*- C++ -*-===//
//
// Emits the unsharded fairkv module of a Llama/Mistral-style model: one
// decode-step function over named weights, every attention op carrying its
// layer's per-KV-head budgets. Plain C++ (MLIR text), so `fairkv import`
// needs no MLIR; `fairkv-opt` parses and verifies what it writes.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_IMPORT_MODELWRITER_H
#define FAIRKV_IMPORT_MODELWRITER_H

#include "fairkv/Placement/Profile.h"

#include <string>

namespace fairkv::import {

/// The module text. Activations and weights are f32 tensors (the compute
/// type); the model's storage dtype is recorded in `fairkv.config`.
std::string writeModelModule(const placement::ModelConfig &model,
                             const placement::BudgetProfile &profile,
                             const std::string &functionName = "decode_step");

} // namespace fairkv::import

#endif // FAIRKV_IMPORT_MODELWRITER_H

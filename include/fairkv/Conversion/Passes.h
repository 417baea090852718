//===- Passes.h - FairKV conversion passes ----------------------*- C++ -*-===//

#ifndef FAIRKV_CONVERSION_PASSES_H
#define FAIRKV_CONVERSION_PASSES_H

#include "mlir/Pass/Pass.h"

#include <string>
#include <vector>

namespace mlir {
namespace LLVM {
class LLVMDialect;
} // namespace LLVM
namespace arith {
class ArithDialect;
} // namespace arith
namespace cf {
class ControlFlowDialect;
} // namespace cf
namespace func {
class FuncDialect;
} // namespace func
} // namespace mlir

namespace mlir::fairkv {

#define GEN_PASS_DECL
#include "fairkv/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "fairkv/Conversion/Passes.h.inc"

/// One runtime entry point as convert-fairkv-to-runtime declares it, from
/// RuntimeAPI.def: its symbol and the kinds of its result and arguments
/// ("ctx", "tensor", "i64", "f64", "str", "iarr", "farr"; a result may be
/// "void").
struct RuntimeFunctionInfo {
  std::string symbol;
  std::string result;
  std::vector<std::string> arguments;
};
const std::vector<RuntimeFunctionInfo> &getRuntimeFunctions();

} // namespace mlir::fairkv

#endif // FAIRKV_CONVERSION_PASSES_H

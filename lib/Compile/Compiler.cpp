//===- Compiler.cpp - Model to executable, in process ---------------------===//

#include "fairkv/Compile/Compiler.h"

#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Transforms/Pipelines.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

using namespace fairkv::compile;

std::string fairkv::compile::defaultRuntimeLibDir(const char *argv0,
                                                  void *mainAddress) {
  std::string exe = llvm::sys::fs::getMainExecutable(argv0, mainAddress);
  llvm::SmallString<256> dir(llvm::sys::path::parent_path(exe));
  llvm::sys::path::remove_filename(dir); // bin/.. = the prefix
  llvm::sys::path::append(dir, "lib");
  return std::string(dir);
}

namespace {

/// Emits `module` as a host object file at `path`.
std::string emitObject(llvm::Module &module, const std::string &path) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return "no LLVM target for " + triple.str() + ": " + error;
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple, "generic", "", llvm::TargetOptions(), llvm::Reloc::PIC_,
      std::nullopt, llvm::CodeGenOptLevel::Default));
  if (!machine)
    return "cannot create a target machine for " + triple.str();
  module.setTargetTriple(triple);
  module.setDataLayout(machine->createDataLayout());
  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return "cannot write '" + path + "': " + ec.message();
  llvm::legacy::PassManager passes;
  if (machine->addPassesToEmitFile(passes, out, nullptr,
                                   llvm::CodeGenFileType::ObjectFile))
    return "LLVM cannot emit an object file for " + triple.str();
  passes.run(module);
  out.flush();
  return "";
}

/// Links `object` with the runtime into the executable `output`.
std::string link(const std::string &object, const std::string &output,
                 const std::string &libDir) {
  // Any C++ driver links the object with the runtime (libstdc++).
  // A build with sanitizers links its programs with the same driver and
  // flags (FAIRKV_PROGRAM_LINKER, FAIRKV_PROGRAM_LINK_FLAGS), since the
  // runtime it links needs their runtimes.
  llvm::ErrorOr<std::string> cxx = std::make_error_code(std::errc::no_such_file_or_directory);
  const std::vector<std::string> drivers =
      llvm::StringRef(FAIRKV_PROGRAM_LINKER).empty()
          ? std::vector<std::string>{"c++", "g++", "clang++-22", "clang++"}
          : std::vector<std::string>{FAIRKV_PROGRAM_LINKER};
  for (const std::string &driver : drivers)
    if ((cxx = llvm::sys::findProgramByName(driver)))
      break;
  if (!cxx)
    return "no C++ compiler driver (c++, g++, clang++) on PATH to link with";
  for (const char *lib : {"libFairKVRuntime.so", "libFairKVRuntimeMain.a",
                          "libFairKVServe.so", "libFairKVTokenizer.so"}) {
    llvm::SmallString<256> path(libDir);
    llvm::sys::path::append(path, lib);
    if (!llvm::sys::fs::exists(path))
      return "the runtime library '" + std::string(path) +
             "' is missing (use --runtime-lib-dir)";
  }
  // The program finds the runtime first in ../lib beside it (installed in
  // a prefix's bin/, wherever the prefix is moved), then where it was
  // linked against.
  std::string rpath = "-Wl,-rpath,$ORIGIN/../lib:" + libDir;
  std::string libFlag = "-L" + libDir;
  llvm::SmallVector<llvm::StringRef> args = {
      *cxx,           object,           libFlag,
      "-lFairKVRuntimeMain", "-lFairKVServe", "-lFairKVTokenizer",
      "-lFairKVRuntime", rpath, "-Wl,--enable-new-dtags", "-o", output};
  llvm::SmallVector<llvm::StringRef> extra;
  llvm::StringRef(FAIRKV_PROGRAM_LINK_FLAGS)
      .split(extra, ' ', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  args.append(extra.begin(), extra.end());
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(*cxx, args, std::nullopt, {}, 0, 0,
                                     &message);
  if (rc != 0)
    return "linking failed (" + *cxx + " exited with " + std::to_string(rc) +
           (message.empty() ? "" : ": " + message) + ")";
  return "";
}

} // namespace

std::string fairkv::compile::compileToExecutable(const std::string &moduleText,
                                                 const CompileOptions &o) {
  if (o.output.empty())
    return "no output file given";
  mlir::DialectRegistry registry;
  registry.insert<mlir::fairkv::FairKVDialect, mlir::arith::ArithDialect,
                  mlir::cf::ControlFlowDialect, mlir::func::FuncDialect,
                  mlir::LLVM::LLVMDialect, mlir::shard::ShardDialect>();
  mlir::registerBuiltinDialectTranslation(registry);
  mlir::registerLLVMDialectTranslation(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();

  // The first diagnostic becomes the one-line error.
  std::string diagnostic;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    if (diagnostic.empty() && d.getSeverity() == mlir::DiagnosticSeverity::Error) {
      std::string loc;
      llvm::raw_string_ostream os(loc);
      os << d.getLocation();
      diagnostic = loc + ": " + d.str();
    }
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(moduleText, &context);
  if (!module)
    return diagnostic.empty() ? "cannot parse the model module" : diagnostic;

  mlir::fairkv::ShardPipelineOptions shard;
  shard.strategy = o.strategy;
  shard.devices = o.devices;
  shard.copyBudget = o.copyBudget;
  shard.copyBudgetBytes = o.copyBudgetBytes;
  shard.copyBudgetFraction = o.copyBudgetFraction;
  shard.evenShares = o.evenShares;
  shard.equalHeads = o.equalHeads;
  shard.timeLimit = o.timeLimit;
  shard.decodeTokens = o.decodeTokens;
  shard.promptTokens = o.promptTokens;
  shard.loadProfile = o.loadProfile;
  shard.promptLengths = o.promptLengths;
  shard.hardware = o.hardware;
  shard.report = o.report;
  shard.overlapChunks = o.overlapChunks;
  shard.overlapMinChunkBytes = o.overlapMinChunkBytes;
  mlir::PassManager pm(&context);
  mlir::fairkv::buildShardPipeline(pm, shard);
  mlir::fairkv::buildLowerToLLVMPipeline(pm);
  if (mlir::failed(pm.run(*module)))
    return diagnostic.empty() ? "the compiler pipeline failed" : diagnostic;

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      mlir::translateModuleToLLVMIR(*module, llvmContext, "fairkv_program");
  if (!llvmModule)
    return "cannot translate the lowered module to LLVM IR";
  if (o.keepIR) {
    std::error_code ec;
    llvm::raw_fd_ostream ir(o.output + ".ll", ec, llvm::sys::fs::OF_Text);
    if (!ec)
      llvmModule->print(ir, nullptr);
  }
  std::string object = o.output + ".o";
  if (std::string error = emitObject(*llvmModule, object); !error.empty())
    return error;
  std::string error = link(object, o.output, o.runtimeLibDir);
  llvm::sys::fs::remove(object);
  return error;
}

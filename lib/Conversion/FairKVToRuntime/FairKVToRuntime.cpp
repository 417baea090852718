//===- FairKVToRuntime.cpp - Lower device programs to runtime calls -------===//
//
// Implements convert-fairkv-to-runtime; see its description in
// include/fairkv/Conversion/Passes.td.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Conversion/Passes.h"

#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/TypeSwitch.h"

#include "fairkv/Model/ModelConfig.h"
#include "fairkv/Placement/Profile.h"

#include <map>

namespace mlir::fairkv {
#define GEN_PASS_DEF_CONVERTFAIRKVTORUNTIMEPASS
#include "fairkv/Conversion/Passes.h.inc"
} // namespace mlir::fairkv

using namespace mlir;
using namespace mlir::fairkv;
namespace model = ::fairkv::model;

//===----------------------------------------------------------------------===//
// The runtime ABI, from RuntimeAPI.def
//===----------------------------------------------------------------------===//

const std::vector<RuntimeFunctionInfo> &mlir::fairkv::getRuntimeFunctions() {
#define FAIRKV_RT_UNPAREN(...) __VA_ARGS__
#define RT_CTX "ctx"
#define RT_T "tensor"
#define RT_I64 "i64"
#define RT_F64 "f64"
#define RT_STR "str"
#define RT_IARR "iarr"
#define RT_FARR "farr"
#define RT_VOID "void"
#define FAIRKV_RT_FN(name, result, args)                                       \
  {"fairkv_rt_" #name, result, {FAIRKV_RT_UNPAREN args}},
  static const std::vector<RuntimeFunctionInfo> functions = {
#include "fairkv/Runtime/RuntimeAPI.def"
  };
#undef FAIRKV_RT_UNPAREN
  return functions;
}

namespace {

/// A copied head's split: which head, and its replicas' devices and shares.
struct SplitOperands {
  int64_t head = -1, budget = -1;
  SmallVector<int64_t> devices;
  SmallVector<double> shares;
};

SplitOperands splitOf(int64_t head, std::optional<uint64_t> budget,
                      ArrayAttr replicas) {
  SplitOperands s;
  s.head = head;
  s.budget = budget ? static_cast<int64_t>(*budget) : -1;
  for (Attribute a : replicas) {
    auto r = cast<ReplicaAttr>(a);
    s.devices.push_back(r.getDevice());
    s.shares.push_back(r.getShareValue());
  }
  return s;
}

/// A dimension of an op's own (not yet lowered) result.
int64_t dimOf(Value v, unsigned i) {
  return cast<RankedTensorType>(v.getType()).getDimSize(i);
}

/// What `r` needs of a model description to derive its frequencies (from
/// its result: the operands are runtime handles by now).
model::ModelConfig ropeOf(RotaryOp r) {
  model::ModelConfig m;
  m.headDim = dimOf(r.getResult(), 3);
  m.ropeTheta = r.getTheta().convertToDouble();
  if (RopeScalingAttr s = r.getScalingAttr())
    m.rope = s.toRopeScaling();
  return m;
}

class Lowering {
public:
  explicit Lowering(ModuleOp module)
      : module(module), b(module.getContext()),
        ptr(LLVM::LLVMPointerType::get(module.getContext())),
        i64(b.getI64Type()), f64(b.getF64Type()) {}

  LogicalResult run();

private:
  Type typeOf(StringRef kind) {
    if (kind == "i64")
      return i64;
    if (kind == "f64")
      return f64;
    return ptr;
  }

  func::FuncOp declare(StringRef symbol) {
    if (auto f = module.lookupSymbol<func::FuncOp>(symbol))
      return f;
    for (const RuntimeFunctionInfo &fn : getRuntimeFunctions())
      if (fn.symbol == symbol) {
        SmallVector<Type> args;
        for (const std::string &k : fn.arguments)
          args.push_back(typeOf(k));
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToEnd(module.getBody());
        SmallVector<Type> results;
        if (fn.result != "void")
          results.push_back(typeOf(fn.result));
        auto f = func::FuncOp::create(b, module.getLoc(), symbol,
                                      b.getFunctionType(args, results));
        f.setPrivate();
        return f;
      }
    llvm_unreachable("runtime function missing from RuntimeAPI.def");
  }

  Value call(Location loc, StringRef op, ValueRange args) {
    func::FuncOp f = declare(("fairkv_rt_" + op).str());
    return func::CallOp::create(b, loc, f, args).getResult(0);
  }

  Value constI64(Location loc, int64_t v) {
    return arith::ConstantIntOp::create(b, loc, v, 64);
  }
  Value constF64(Location loc, double v) {
    return arith::ConstantOp::create(b, loc, b.getF64FloatAttr(v));
  }
  Value null(Location loc) { return LLVM::ZeroOp::create(b, loc, ptr); }

  /// The address of a private constant global holding `value`, shared by
  /// every use of the same payload.
  Value global(Location loc, const std::string &key, Type type,
               Attribute value) {
    auto it = globals.find(key);
    if (it == globals.end()) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(module.getBody());
      std::string name = "__fairkv_const_" + std::to_string(globals.size());
      auto g = LLVM::GlobalOp::create(b, loc, type, /*isConstant=*/true,
                                      LLVM::Linkage::Private, name, value);
      it = globals.emplace(key, g).first;
    }
    return LLVM::AddressOfOp::create(b, loc, it->second);
  }

  Value str(Location loc, StringRef s) {
    std::string text = s.str();
    text.push_back('\0');
    auto type = LLVM::LLVMArrayType::get(b.getI8Type(), text.size());
    return global(loc, "s:" + text, type, b.getStringAttr(text));
  }

  Value iarr(Location loc, ArrayRef<int64_t> values) {
    if (values.empty())
      return null(loc);
    std::string key = "i:";
    for (int64_t v : values)
      key += std::to_string(v) + ",";
    auto type = LLVM::LLVMArrayType::get(i64, values.size());
    auto data = DenseElementsAttr::get(
        RankedTensorType::get({static_cast<int64_t>(values.size())}, i64),
        values);
    return global(loc, key, type, data);
  }

  Value farr(Location loc, ArrayRef<double> values) {
    if (values.empty())
      return null(loc);
    std::string key = "f:";
    for (double v : values) {
      char buf[40];
      std::snprintf(buf, sizeof(buf), "%.17g,", v);
      key += buf;
    }
    auto type = LLVM::LLVMArrayType::get(f64, values.size());
    auto data = DenseElementsAttr::get(
        RankedTensorType::get({static_cast<int64_t>(values.size())}, f64),
        values);
    return global(loc, key, type, data);
  }

  /// head, n, devices, shares: n = 0 for the whole batch.
  SmallVector<Value> splitArgs(Location loc, const SplitOperands &s) {
    return {constI64(loc, s.head), constI64(loc, s.budget),
            constI64(loc, static_cast<int64_t>(s.devices.size())),
            iarr(loc, s.devices), farr(loc, s.shares)};
  }

  LogicalResult lowerOp(Operation *op, Value ctx);
  LogicalResult lowerFunction(func::FuncOp f);
  void emitEntryPoints(ArrayRef<func::FuncOp> programs);

  ModuleOp module;
  OpBuilder b;
  Type ptr, i64, f64;
  std::map<std::string, LLVM::GlobalOp> globals;
  /// Where the attention ops' budgets came from (the profile), for the
  /// programs' default compression method.
  std::string budgetSource;
  /// Every (layer, KV head)'s budget and replicas, gathered from the device
  /// programs' attention ops, for the program's admission before prefill.
  std::map<std::pair<int64_t, int64_t>, SplitOperands> kvLayout;
  /// The device of the program being lowered.
  int64_t currentDevice = 0;
};

LogicalResult Lowering::lowerOp(Operation *op, Value ctx) {
  Location loc = op->getLoc();
  b.setInsertionPoint(op);
  SmallVector<Value> results;
  auto operands = [&](std::initializer_list<Value> rest) {
    SmallVector<Value> args{ctx};
    args.append(rest.begin(), rest.end());
    return args;
  };
  LogicalResult lowered =
      llvm::TypeSwitch<Operation *, LogicalResult>(op)
          .Case([&](WeightOp w) {
            auto type = cast<RankedTensorType>(w.getType());
            SmallVector<int64_t> ranges;
            if (w.getRanges())
              ranges.assign(w.getRanges()->begin(), w.getRanges()->end());
            results.push_back(call(
                loc, "weight",
                {ctx, str(loc, w.getName()),
                 constI64(loc, w.getSliceDim() ? *w.getSliceDim() : -1),
                 iarr(loc, ranges),
                 constI64(loc, static_cast<int64_t>(ranges.size())),
                 iarr(loc, type.getShape()),
                 constI64(loc, type.getRank())}));
            return success();
          })
          .Case([&](EmbeddingOp e) {
            results.push_back(call(loc, "embedding",
                                   operands({e.getIds(), e.getTable()})));
            return success();
          })
          .Case([&](RMSNormOp n) {
            results.push_back(call(
                loc, "rms_norm",
                operands({n.getInput(), n.getWeight(),
                          constF64(loc, n.getEps().convertToDouble())})));
            return success();
          })
          .Case([&](QKVProjOp p) {
            int64_t d = dimOf(p.getQ(), 3);
            for (auto [w, bias, result] :
                 {std::tuple(p.getWq(), p.getBq(), p.getQ()),
                  std::tuple(p.getWk(), p.getBk(), p.getK()),
                  std::tuple(p.getWv(), p.getBv(), p.getV())}) {
              SmallVector<Value> args = operands({p.getInput(), w});
              args.push_back(bias ? bias : null(loc));
              args.append({constI64(loc, dimOf(result, 2)), constI64(loc, d)});
              results.push_back(call(loc, "project_heads", args));
            }
            return success();
          })
          .Case([&](RotaryOp r) -> LogicalResult {
            if (ShapedType::isDynamic(dimOf(r.getResult(), 3)))
              return r.emitOpError("needs a static head_dim to lower");
            // The frequency table is computed here, once, by the model
            // library (exactly as transformers derives it); the runtime
            // only rotates.
            model::ModelConfig m = ropeOf(r);
            SmallVector<double> table;
            for (float f : m.ropeInverseFrequencies())
              table.push_back(f);
            // Dynamic NTK rescales per request past its maximum: the runtime
            // derives those frequencies (from the same model library).
            const bool dynamic = m.rope.type == "dynamic";
            results.push_back(call(
                loc, "rotary",
                operands({r.getInput(), r.getPositions(), farr(loc, table),
                          constF64(loc, m.rope.attentionFactor),
                          constI64(loc, dynamic ? m.rope.originalMaxPositions
                                                : 0),
                          constF64(loc, dynamic ? m.rope.factor : 1.0),
                          constF64(loc, m.ropeTheta)})));
            return success();
          })
          .Case([&](AttentionOp a) -> LogicalResult {
            if (budgetSource.empty())
              budgetSource = a.getBudgets().getSource().str();
            // Operands are already runtime handles: take the head count from
            // the budgets (one per KV head, checked by the verifier).
            int64_t nk = a.getBudgets().getNumKVHeads();
            SmallVector<int64_t> heads;
            if (a.getKvHeads())
              heads.assign(a.getKvHeads()->begin(), a.getKvHeads()->end());
            else
              for (int64_t h = 0; h < nk; ++h)
                heads.push_back(h);
            SplitOperands s;
            if (std::optional<ReplicaAttr> share = a.getBatchShare()) {
              if (!a.getPlacement())
                return a.emitOpError("a batch share needs the placement");
              SmallVector<Attribute> reps(
                  a.getPlacement()->getHeads()[heads[0]].getValue());
              s = splitOf(heads[0], a.getBudgets().getTokens()[0],
                          ArrayAttr::get(a.getContext(), reps));
            }
            for (size_t i = 0; i < heads.size(); ++i) {
              SplitOperands &entry = kvLayout[{a.getLayer(), heads[i]}];
              entry.head = heads[i];
              entry.budget = a.getBudgets().getTokens()[i];
              if (s.head >= 0) {
                entry.devices = s.devices;
                entry.shares = s.shares;
              } else {
                entry.devices = {currentDevice};
                entry.shares = {1.0};
              }
            }
            SmallVector<Value> args =
                operands({a.getQuery(), a.getKey(), a.getValue(),
                          constI64(loc, a.getLayer()), constI64(loc, nk),
                          iarr(loc, heads), iarr(loc, a.getBudgets().getTokens())});
            args.append(splitArgs(loc, s));
            results.push_back(call(loc, "attention", args));
            return success();
          })
          .Case([&](OutProjOp o) {
            results.push_back(
                call(loc, "out_proj", operands({o.getInput(), o.getWo()})));
            return success();
          })
          .Case([&](MLPOp m) {
            results.push_back(call(loc, "mlp",
                                   operands({m.getInput(), m.getWGate(),
                                             m.getWUp(), m.getWDown()})));
            return success();
          })
          .Case([&](GatedActOp m) {
            results.push_back(
                call(loc, "gated_act",
                     operands({m.getInput(), m.getWGate(), m.getWUp()})));
            return success();
          })
          .Case([&](AddOp a) {
            results.push_back(
                call(loc, "add", operands({a.getLhs(), a.getRhs()})));
            return success();
          })
          .Case([&](LastPositionOp l) {
            results.push_back(
                call(loc, "last_position", operands({l.getInput()})));
            return success();
          })
          .Case([&](LMHeadOp l) {
            results.push_back(
                call(loc, "lm_head", operands({l.getInput(), l.getWeight()})));
            return success();
          })
          .Case([&](GreedySampleOp g) {
            results.push_back(
                call(loc, "greedy_sample", operands({g.getLogits()})));
            return success();
          })
          .Case([&](ReplicateOp r) {
            SmallVector<Value> args = operands({r.getInput()});
            args.append(splitArgs(loc, splitOf(r.getKvHead(), r.getBudget(), r.getReplicas())));
            results.push_back(call(loc, "take_rows", args));
            return success();
          })
          .Case([&](GatherOp g) {
            SmallVector<Value> args = operands({g.getInput()});
            args.append(splitArgs(loc, splitOf(g.getKvHead(), g.getBudget(), g.getReplicas())));
            results.push_back(call(loc, "gather_rows", args));
            return success();
          })
          .Case([&](AddRowsOp a) {
            SmallVector<Value> args = operands({a.getAcc(), a.getRows()});
            args.append(splitArgs(loc, splitOf(a.getKvHead(), a.getBudget(), a.getReplicas())));
            results.push_back(call(loc, "add_rows", args));
            return success();
          })
          .Case([&](ZerosLikeOp z) {
            results.push_back(call(loc, "zeros_like", operands({z.getLike()})));
            return success();
          })
          .Case([&](AllReduceOp r) {
            int64_t kind = r.getReduction() == ReductionKind::Sum ? 0 : 1;
            results.push_back(call(
                loc, "all_reduce", operands({r.getInput(), constI64(loc, kind)})));
            return success();
          })
          .Case([&](LinearAllReduceOp r) {
            // An absent projection or addend is a null handle.
            auto orNull = [&](Value v) { return v ? v : null(loc); };
            results.push_back(call(
                loc, "linear_all_reduce",
                operands({orNull(r.getInput()), orNull(r.getWeight()),
                          orNull(r.getAddend()), constI64(loc, r.getChunks()),
                          constI64(loc, r.getMinChunkBytes())})));
            return success();
          })
          .Case([&](AllGatherOp g) {
            results.push_back(call(
                loc, "all_gather",
                operands({g.getInput(), constI64(loc, g.getAxis())})));
            return success();
          })
          .Default([&](Operation *other) {
            return other->emitOpError(
                "cannot be lowered to the FairKV runtime");
          });
  if (failed(lowered))
    return failure();
  op->replaceAllUsesWith(results);
  op->erase();
  return success();
}

LogicalResult Lowering::lowerFunction(func::FuncOp f) {
  if (!f.getBody().hasOneBlock())
    return f.emitOpError("a device program must have a single block");
  SmallVector<Type> types(f.getArgumentTypes());
  llvm::append_range(types, f.getResultTypes());
  for (Type t : types)
    if (!isa<RankedTensorType>(t))
      return f.emitOpError("device program arguments and results must be "
                           "tensors");
  Block &entry = f.front();
  Value ctx = entry.insertArgument(0u, ptr, f.getLoc());
  for (BlockArgument arg : entry.getArguments().drop_front())
    arg.setType(ptr);
  SmallVector<Operation *> ops;
  for (Operation &op : entry.without_terminator())
    ops.push_back(&op);
  for (Operation *op : ops)
    if (failed(lowerOp(op, ctx)))
      return failure();
  SmallVector<Type> inputs(entry.getNumArguments(), ptr);
  SmallVector<Type> outputs(f.getNumResults(), ptr);
  f.setType(FunctionType::get(f.getContext(), inputs, outputs));
  return success();
}

void Lowering::emitEntryPoints(ArrayRef<func::FuncOp> programs) {
  Location loc = module.getLoc();
  b.setInsertionPointToEnd(module.getBody());
  const int64_t devices = static_cast<int64_t>(programs.size());
  LLVM::GlobalOp::create(b, loc, i64, /*isConstant=*/true,
                         LLVM::Linkage::External, "fairkv_program_num_devices",
                         b.getI64IntegerAttr(devices));
  // The first position the CUDA backend cannot compute as transformers
  // does (0: none) and why, so that the program refuses such a request
  // there before any work.
  std::string why;
  int64_t limit = 0, window = 0, headDim = 0;
  if (auto config = module->getAttrOfType<ModelConfigAttr>(
          FairKVDialect::getConfigAttrName())) {
    model::ModelConfig m = config.toModelConfig("module");
    limit = m.cudaPositionLimit(&why);
    window = config.getSlidingWindow();
    headDim = m.headDim;
  }
  // The compression method the profile's budgets were made for: HeadKV's
  // budgets with HeadKV's selection, DuoAttention's with its streaming
  // heads (and the sink its importer used), anything else SnapKV.
  std::string method = "snapkv";
  int64_t sink = -1;
  if (StringRef(budgetSource).starts_with("headkv:")) {
    method = "headkv";
  } else if (StringRef(budgetSource).starts_with("duo:")) {
    method = "duo";
    sink = ::fairkv::placement::sourceParameter(budgetSource, "sink");
    if (sink < 0)
      sink = 128; // DuoAttention's own default
  }
  method.push_back('\0');
  LLVM::GlobalOp::create(
      b, loc, LLVM::LLVMArrayType::get(b.getI8Type(), method.size()),
      /*isConstant=*/true, LLVM::Linkage::External, "fairkv_program_kv_method",
      b.getStringAttr(method));
  LLVM::GlobalOp::create(b, loc, i64, /*isConstant=*/true,
                         LLVM::Linkage::External, "fairkv_program_duo_sink",
                         b.getI64IntegerAttr(sink));
  // The model's sliding window, for the runtime's attention (0: none).
  LLVM::GlobalOp::create(b, loc, i64, /*isConstant=*/true,
                         LLVM::Linkage::External,
                         "fairkv_program_sliding_window",
                         b.getI64IntegerAttr(window));
  LLVM::GlobalOp::create(b, loc, i64, /*isConstant=*/true,
                         LLVM::Linkage::External,
                         "fairkv_program_cuda_position_limit",
                         b.getI64IntegerAttr(limit));
  why.push_back('\0');
  LLVM::GlobalOp::create(
      b, loc, LLVM::LLVMArrayType::get(b.getI8Type(), why.size()),
      /*isConstant=*/true, LLVM::Linkage::External,
      "fairkv_program_cuda_position_limit_reason", b.getStringAttr(why));
  // The KV layout, for admission before any prefill: head_dim, the number
  // of (layer, KV head) entries, then per entry layer, head, budget and its
  // replicas' count and devices; their batch shares in the f64 table.
  SmallVector<int64_t> layout = {
      headDim, static_cast<int64_t>(kvLayout.size())};
  SmallVector<double> shares;
  for (const auto &[layerHead, entry] : kvLayout) {
    layout.append({layerHead.first, layerHead.second, entry.budget,
                   static_cast<int64_t>(entry.devices.size())});
    layout.append(entry.devices.begin(), entry.devices.end());
    shares.append(entry.shares.begin(), entry.shares.end());
  }
  shares.push_back(0.0); // never an empty array
  LLVM::GlobalOp::create(
      b, loc, LLVM::LLVMArrayType::get(i64, layout.size()),
      /*isConstant=*/true, LLVM::Linkage::External, "fairkv_program_kv_layout",
      DenseElementsAttr::get(
          RankedTensorType::get({static_cast<int64_t>(layout.size())}, i64),
          ArrayRef<int64_t>(layout)));
  LLVM::GlobalOp::create(
      b, loc, LLVM::LLVMArrayType::get(f64, shares.size()),
      /*isConstant=*/true, LLVM::Linkage::External, "fairkv_program_kv_shares",
      DenseElementsAttr::get(
          RankedTensorType::get({static_cast<int64_t>(shares.size())}, f64),
          ArrayRef<double>(shares)));
  auto step = func::FuncOp::create(
      b, loc, "fairkv_program_step",
      b.getFunctionType({ptr, i64, ptr, ptr}, {ptr}));
  Block *entry = step.addEntryBlock();
  Value ctx = entry->getArgument(0), device = entry->getArgument(1);
  SmallVector<Block *> cases;
  for (func::FuncOp program : programs) {
    Block *block = b.createBlock(&step.getBody());
    auto result = func::CallOp::create(
        b, loc, program,
        ValueRange{ctx, entry->getArgument(2), entry->getArgument(3)});
    func::ReturnOp::create(b, loc, result.getResults());
    cases.push_back(block);
  }
  Block *bad = b.createBlock(&step.getBody());
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(module.getBody());
    auto fatal = func::FuncOp::create(b, loc, "fairkv_rt_fatal",
                                      b.getFunctionType({ptr}, {}));
    fatal.setPrivate();
    b.setInsertionPointToEnd(bad);
    func::CallOp::create(b, loc, fatal,
                         ValueRange{str(loc, "no program for this device")});
    func::ReturnOp::create(b, loc, ValueRange{null(loc)});
  }
  b.setInsertionPointToEnd(entry);
  SmallVector<APInt> values;
  SmallVector<ValueRange> operands;
  for (int64_t g = 0; g < devices; ++g) {
    values.push_back(APInt(64, g));
    operands.push_back({});
  }
  cf::SwitchOp::create(b, loc, device, bad, ValueRange{},
                       ArrayRef<APInt>(values), cases, operands);
}

LogicalResult Lowering::run() {
  std::map<int64_t, func::FuncOp> byDevice;
  std::string base;
  for (func::FuncOp f : module.getOps<func::FuncOp>()) {
    auto device =
        f->getAttrOfType<IntegerAttr>(FairKVDialect::getDeviceAttrName());
    if (!device)
      continue;
    std::string name = f.getName().str();
    std::string suffix = "_dev" + std::to_string(device.getInt());
    std::string stem = name.size() > suffix.size() &&
                               name.compare(name.size() - suffix.size(),
                                            suffix.size(), suffix) == 0
                           ? name.substr(0, name.size() - suffix.size())
                           : name;
    if (!base.empty() && stem != base)
      return f.emitOpError() << "convert-fairkv-to-runtime lowers the device "
                                "programs of one function, found '"
                             << base << "' and '" << stem << "'";
    base = stem;
    if (!byDevice.emplace(device.getInt(), f).second)
      return f.emitOpError() << "a second program for device "
                             << device.getInt();
  }
  if (byDevice.empty())
    return module.emitError("convert-fairkv-to-runtime needs a sharded module "
                            "(functions marked fairkv.device): run "
                            "fairkv-shard-pipeline first");
  SmallVector<func::FuncOp> programs;
  for (auto [g, f] : byDevice) {
    if (g != static_cast<int64_t>(programs.size()))
      return f.emitOpError() << "device programs must be numbered 0.."
                             << byDevice.size() - 1;
    if (f.getNumArguments() != 2 || f.getNumResults() != 1)
      return f.emitOpError("a device program must take (token ids, "
                           "positions) and return the next tokens");
    programs.push_back(f);
  }
  // Nothing of the dialect may live outside the programs.
  WalkResult stray = module.walk([&](Operation *op) {
    if (isa<FairKVDialect>(op->getDialect()) &&
        !op->getParentOfType<func::FuncOp>()->hasAttr(
            FairKVDialect::getDeviceAttrName())) {
      op->emitOpError("is outside any device program: run "
                      "fairkv-shard-pipeline first");
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (stray.wasInterrupted())
    return failure();
  for (auto [g, f] : llvm::enumerate(programs)) {
    currentDevice = static_cast<int64_t>(g);
    if (failed(lowerFunction(f)))
      return failure();
  }
  for (func::FuncOp f : programs)
    f->removeAttr(FairKVDialect::getDeviceAttrName());
  for (auto grid : llvm::make_early_inc_range(module.getOps<shard::GridOp>()))
    grid->erase();
  emitEntryPoints(programs);
  module->removeAttr(FairKVDialect::getConfigAttrName());
  return success();
}

struct ConvertFairKVToRuntimePass
    : public mlir::fairkv::impl::ConvertFairKVToRuntimePassBase<
          ConvertFairKVToRuntimePass> {
  void runOnOperation() override {
    if (failed(Lowering(getOperation()).run()))
      signalPassFailure();
  }
};

} // namespace

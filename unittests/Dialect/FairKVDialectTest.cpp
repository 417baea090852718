//===- FairKVDialectTest.cpp - Build fairkv IR from C++ -------------------===//
//
// Builds one decoder layer with the C++ API, verifies it, queries its
// attributes, and checks that broken attributes are diagnosed.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::fairkv;

namespace {

class FairKVDialectTest : public ::testing::Test {
protected:
  FairKVDialectTest() {
    context.loadDialect<FairKVDialect, func::FuncDialect,
                        shard::ShardDialect>();
  }

  ModelConfigAttr tinyConfig() {
    return ModelConfigAttr::get(&context, /*layers=*/2, /*hidden=*/64,
                                /*heads=*/4, /*kv_heads=*/2, /*head_dim=*/16,
                                /*ffn=*/128, /*vocab=*/256,
                                llvm::APFloat(10000.0), llvm::APFloat(1e-5),
                                Float32Type::get(&context), "llama",
                                RopeScalingAttr(), /*max_positions=*/2048,
                                /*tie_word_embeddings=*/false,
                                /*qkv_bias=*/false, /*qk_norm=*/false,
                                /*sliding_window=*/0);
  }

  MLIRContext context;
};

RankedTensorType tensorOf(MLIRContext *ctx, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, Float32Type::get(ctx));
}

TEST_F(FairKVDialectTest, BuildsAndQueriesOneLayer) {
  OpBuilder b(&context);
  Location loc = b.getUnknownLoc();
  ModuleOp module = ModuleOp::create(loc);
  ModelConfigAttr config = tinyConfig();
  module->setAttr(FairKVDialect::getConfigAttrName(), config);
  b.setInsertionPointToEnd(module.getBody());
  shard::GridOp::create(b, loc, "grid", ArrayRef<int64_t>{2});

  int64_t dyn = ShapedType::kDynamic;
  auto hiddenTy = tensorOf(&context, {dyn, dyn, 64});
  auto idsTy = RankedTensorType::get({dyn, dyn}, b.getI64Type());
  auto fn = func::FuncOp::create(
      b, loc, "layer0", b.getFunctionType({hiddenTy, idsTy}, {hiddenTy}));
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value x = entry->getArgument(0), pos = entry->getArgument(1);

  auto weight = [&](StringRef name, ArrayRef<int64_t> shape) -> Value {
    return WeightOp::create(b, loc, tensorOf(&context, shape), name);
  };
  Value wq = weight("model.layers.0.self_attn.q_proj.weight", {64, 64});
  Value wk = weight("model.layers.0.self_attn.k_proj.weight", {32, 64});
  Value wv = weight("model.layers.0.self_attn.v_proj.weight", {32, 64});
  Value wo = weight("model.layers.0.self_attn.o_proj.weight", {64, 64});

  auto qTy = tensorOf(&context, {dyn, dyn, 4, 16});
  auto kvTy = tensorOf(&context, {dyn, dyn, 2, 16});
  auto qkv = QKVProjOp::create(b, loc, TypeRange{qTy, kvTy, kvTy}, x, wq, wk,
                               wv, /*bq=*/Value(), /*bk=*/Value(),
                               /*bv=*/Value());
  Value q = RotaryOp::create(b, loc, qkv.getQ(), pos, b.getF64FloatAttr(1e4),
                             RopeScalingAttr());
  Value k = RotaryOp::create(b, loc, qkv.getK(), pos, b.getF64FloatAttr(1e4),
                             RopeScalingAttr());

  auto budgets = KVBudgetsAttr::get(&context, {512, 96}, "unit-test");
  // Head 0 copied on both devices with uneven shares; head 1 on device 1.
  auto placement = PlacementAttr::get(
      &context, 2,
      {SmallVector<ReplicaAttr>{ReplicaAttr::get(&context, 0, 0.75),
                                ReplicaAttr::get(&context, 1, 0.25)},
       SmallVector<ReplicaAttr>{ReplicaAttr::get(&context, 1, 1.0)}});
  auto attn = AttentionOp::create(b, loc, qTy, q, k, qkv.getV(),
                                  b.getI64IntegerAttr(0), budgets, placement,
                                  FlatSymbolRefAttr::get(&context, "grid"),
                                  /*kv_heads=*/nullptr, /*batch_share=*/nullptr);
  Value y = OutProjOp::create(b, loc, hiddenTy, attn.getResult(), wo);
  Value r = AddOp::create(b, loc, x, y);
  func::ReturnOp::create(b, loc, r);

  ASSERT_TRUE(succeeded(verify(module)));

  // Query the attributes back through the op.
  ModelConfigAttr found = lookupModelConfig(attn);
  ASSERT_TRUE(found);
  EXPECT_EQ(found.getQueryGroupSize(), 2);
  EXPECT_DOUBLE_EQ(found.getRopeThetaValue(), 10000.0);
  EXPECT_EQ(attn.getLayer(), 0u);
  EXPECT_EQ(attn.getBudgets().getNumKVHeads(), 2);
  EXPECT_EQ(attn.getBudgets().getTotalTokens(), 608);
  EXPECT_EQ(attn.getBudgets().getSource(), "unit-test");
  ASSERT_TRUE(attn.getPlacement().has_value());
  PlacementAttr p = *attn.getPlacement();
  EXPECT_EQ(p.getDevices(), 2);
  EXPECT_EQ(p.getNumKVHeads(), 2);
  EXPECT_EQ(p.getNumExtraReplicas(), 1);
  SmallVector<ReplicaAttr> head0 = p.getReplicas(0);
  ASSERT_EQ(head0.size(), 2u);
  EXPECT_EQ(head0[1].getDevice(), 1);
  EXPECT_DOUBLE_EQ(head0[1].getShareValue(), 0.25);

  // A config mismatch is caught once the op is verified in its module.
  attn->setAttr("budgets", KVBudgetsAttr::get(&context, {1, 2, 3}, "bad"));
  std::string message;
  {
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      message = diag.str();
      return success();
    });
    EXPECT_TRUE(failed(verify(module)));
  }
  EXPECT_EQ(message, "'fairkv.attention' op expected one budget per kv head "
                     "(2), got 3");
  module->erase();
}

TEST_F(FairKVDialectTest, InvalidAttributesAreDiagnosed) {
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    message = diag.str();
    return success();
  });
  auto emitAtUnknown = [&] { return emitError(UnknownLoc::get(&context)); };
  // Exact parameter types select the generated, verifying getChecked().
  llvm::function_ref<InFlightDiagnostic()> emit = emitAtUnknown;
  auto i64 = [](int64_t v) { return v; };

  int64_t badBudgets[] = {4, 0};
  EXPECT_FALSE(KVBudgetsAttr::getChecked(emit, &context,
                                         ArrayRef<int64_t>(badBudgets),
                                         StringRef("x")));
  EXPECT_EQ(message, "budget of kv head 1 must be positive, got 0");

  EXPECT_FALSE(ModelConfigAttr::getChecked(
      emit, &context, i64(2), i64(64), i64(6), i64(4), i64(16), i64(128),
      i64(256), llvm::APFloat(1e4), llvm::APFloat(1e-5),
      Type(Float32Type::get(&context)), StringRef("llama"), RopeScalingAttr(),
      i64(0), false, false, false, i64(0)));
  EXPECT_EQ(message,
            "model_config 'heads' (6) must be divisible by 'kv_heads' (4)");
  // A family's options are its own: biases are qwen2's.
  EXPECT_FALSE(ModelConfigAttr::getChecked(
      emit, &context, i64(2), i64(64), i64(4), i64(2), i64(16), i64(128),
      i64(256), llvm::APFloat(1e4), llvm::APFloat(1e-5),
      Type(Float32Type::get(&context)), StringRef("llama"), RopeScalingAttr(),
      i64(0), false, /*qkv_bias=*/true, false, i64(0)));
  EXPECT_EQ(message, "model_config 'qkv_bias' is 1 for family 'llama' (q/k/v "
                     "biases are qwen2's, and always there)");

  auto half = ReplicaAttr::get(&context, 0, 0.5);
  auto alsoDevice0 = ReplicaAttr::get(&context, 0, 0.5);
  ArrayAttr sameDevice[] = {ArrayAttr::get(&context, {half, alsoDevice0})};
  EXPECT_FALSE(PlacementAttr::getChecked(emit, &context, i64(2),
                                         ArrayRef<ArrayAttr>(sameDevice)));
  EXPECT_EQ(message, "kv head 0 has two replicas on device 0");
}

} // namespace

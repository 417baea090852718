//===- PlanPlacement.cpp - Attach a KV-head placement to every layer ------===//
//
// Implements fairkv-plan-placement: reads the per-KV-head budgets off the
// module's attention ops, runs the placement engine (shared with
// `fairkv plan`) and writes the placement back as #fairkv.placement.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Transforms/Passes.h"

#include "fairkv/Dialect/FairKV/IR/FairKVDialect.h"
#include "fairkv/Dialect/FairKV/IR/FairKVOps.h"
#include "fairkv/Placement/Report.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <fstream>

namespace mlir::fairkv {
#define GEN_PASS_DEF_FAIRKVPLANPLACEMENTPASS
#include "fairkv/Transforms/Passes.h.inc"
} // namespace mlir::fairkv

using namespace mlir;
using namespace mlir::fairkv;
namespace fp = ::fairkv::placement;

namespace {

struct PlanPlacementPass
    : public mlir::fairkv::impl::FairKVPlanPlacementPassBase<PlanPlacementPass> {
  using FairKVPlanPlacementPassBase::FairKVPlanPlacementPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto config = module->getAttrOfType<ModelConfigAttr>(
        FairKVDialect::getConfigAttrName());
    if (!config) {
      module.emitError("fairkv-plan-placement needs the model shape: the "
                       "module has no 'fairkv.config'");
      return signalPassFailure();
    }
    fp::ModelConfig model = config.toModelConfig("module");

    // One attention op per layer, in layer order.
    std::vector<AttentionOp> layers(model.layers);
    WalkResult walk = module.walk([&](AttentionOp op) {
      int64_t layer = op.getLayer();
      if (layer >= model.layers) {
        op.emitOpError() << "layer " << layer << " is out of range";
        return WalkResult::interrupt();
      }
      if (layers[layer]) {
        InFlightDiagnostic diag =
            op.emitOpError() << "is the second attention op of layer "
                             << layer;
        diag.attachNote(layers[layer].getLoc()) << "the first one is here";
        return WalkResult::interrupt();
      }
      layers[layer] = op;
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();

    fp::BudgetProfile profile;
    profile.model = model.name;
    for (int64_t l = 0; l < model.layers; ++l) {
      if (!layers[l]) {
        module.emitError() << "layer " << l << " has no fairkv.attention op";
        return signalPassFailure();
      }
      KVBudgetsAttr budgets = layers[l].getBudgets();
      profile.tokens.emplace_back(budgets.getTokens().begin(),
                                  budgets.getTokens().end());
      if (profile.source.empty())
        profile.source = budgets.getSource().str();
    }

    // The load the plan balances: the budgets, or what a run measured.
    if (!loadProfile.empty()) {
      fp::Result<fp::BudgetProfile> load =
          fp::readLoadProfile(loadProfile, model);
      if (!load) {
        module.emitError() << "fairkv-plan-placement: " << load.error();
        return signalPassFailure();
      }
      profile = std::move(*load);
    }

    fp::Result<fp::Strategy> strategyKind = fp::parseStrategy(strategy);
    fp::Result<fp::Hardware> hw = fp::hardwarePreset(hardware);
    if (!strategyKind || !hw) {
      module.emitError() << (strategyKind ? hw.error() : strategyKind.error());
      return signalPassFailure();
    }
    fp::PlanOptions options;
    options.strategy = *strategyKind;
    options.devices = static_cast<int>(devices);
    if (copyBudget >= 0)
      options.copyBudget = copyBudget;
    if (copyBudgetBytes >= 0 && copyBudgetFraction >= 0) {
      module.emitError("give at most one of copy-budget-bytes and "
                       "copy-budget-fraction");
      return signalPassFailure();
    }
    if (copyBudgetBytes >= 0)
      options.copyBudgetBytes = copyBudgetBytes;
    if (copyBudgetFraction >= 0) {
      fp::Result<double> bytes = fp::copyBudgetBytesOf(
          copyBudgetFraction, model, static_cast<int>(options.devices));
      if (!bytes) {
        module.emitError() << "fairkv-plan-placement: " << bytes.error();
        return signalPassFailure();
      }
      options.copyBudgetBytes = *bytes;
    }
    options.evenShares = evenShares;
    options.equalHeads = equalHeads;
    options.epsilon = epsilon;
    options.timeLimitSeconds = timeLimit;
    options.decodeTokens = decodeTokens;
    options.promptTokens = promptTokens;
    if (!promptLengths.empty()) {
      fp::Result<std::vector<fp::PromptLength>> lengths =
          fp::parsePromptLengths(promptLengths);
      if (!lengths) {
        module.emitError() << "fairkv-plan-placement: " << lengths.error();
        return signalPassFailure();
      }
      options.promptLengths = std::move(*lengths);
    }
    if (devices <= 0 || batch <= 0) {
      module.emitError("devices and batch must be positive");
      return signalPassFailure();
    }

    fp::Result<fp::PlanReport> report = fp::makeError("");
    if (!planFile.empty()) {
      // A plan made elsewhere: read it, and evaluate it like our own.
      fp::Result<std::string> text = fp::readFile(planFile);
      fp::Result<fp::Plan> plan =
          text ? fp::readPlanJson(*text, profile) : fp::makeError(text.error());
      if (!plan) {
        module.emitError() << "fairkv-plan-placement: " << planFile << ": "
                           << plan.error();
        return signalPassFailure();
      }
      options.devices = plan->devices;
      fp::PlanReport external;
      external.result.plan = std::move(*plan);
      external.metrics = fp::evaluatePlan(
          external.result.plan,
          fp::withWorkload(profile, options),
          model, *hw, batch);
      report = std::move(external);
    } else {
      report = fp::planAndEvaluate(profile, model, *hw, options, batch);
    }
    if (!report) {
      module.emitError() << "fairkv-plan-placement: " << report.error();
      return signalPassFailure();
    }
    // The IR's replicas split the batch; tp's replicated KV heads split the
    // query group instead, which the planner evaluates but the sharding and
    // the runtimes do not implement.
    if (fp::splitsQueries(report->result.plan)) {
      module.emitError()
          << "fairkv-plan-placement: the plan replicates KV heads over "
             "split query groups (tp on more devices than the "
          << model.kvHeads
          << " KV heads), which programs cannot run yet; use "
             "--strategy fairkv, whose copies split the batch instead";
      return signalPassFailure();
    }
    const int64_t gridDevices = report->result.plan.devices;

    // The grid the placement refers to.
    MLIRContext *ctx = &getContext();
    SymbolTable symbols(module);
    if (Operation *existing = symbols.lookup(gridName)) {
      auto grid = dyn_cast<shard::GridOp>(existing);
      if (!grid || grid.getShape() != ArrayRef<int64_t>{gridDevices}) {
        existing->emitError() << "'@" << gridName
                              << "' exists but is not a shard.grid of shape "
                              << gridDevices;
        return signalPassFailure();
      }
    } else {
      OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
      shard::GridOp::create(b, module.getLoc(), gridName,
                            ArrayRef<int64_t>{gridDevices});
    }

    const fp::Plan &plan = report->result.plan;
    for (int64_t l = 0; l < model.layers; ++l) {
      SmallVector<SmallVector<ReplicaAttr>> heads;
      for (const auto &head : plan.layers[l]) {
        SmallVector<ReplicaAttr> replicas;
        for (const fp::Replica &r : head)
          replicas.push_back(ReplicaAttr::get(ctx, r.device, r.share));
        heads.push_back(std::move(replicas));
      }
      layers[l].setPlacementAttr(PlacementAttr::get(ctx, gridDevices, heads));
      layers[l].setGridAttr(FlatSymbolRefAttr::get(ctx, gridName));
    }
    numPlacedLayers = model.layers;
    numExtraReplicas = report->metrics.extraReplicas;

    if (!this->report.empty()) {
      fp::ReportContext rc{&profile, &model, &*hw, &options, batch};
      std::ofstream out(this->report);
      out << fp::renderJson(*report, rc);
      if (!out) {
        module.emitError() << "cannot write the report to '" << this->report
                           << "'";
        return signalPassFailure();
      }
    }
  }
};

} // namespace

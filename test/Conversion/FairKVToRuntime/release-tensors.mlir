// RUN: fairkv-opt %s --fairkv-release-tensors | FileCheck %s
// Idempotent: a second run adds nothing.
// RUN: fairkv-opt %s --fairkv-release-tensors --fairkv-release-tensors | FileCheck %s
// The pipeline's programs release their tensors too.
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv" --fairkv-lower-to-llvm-pipeline | FileCheck %s --check-prefix=PIPE

func.func private @fairkv_rt_weight(!llvm.ptr, !llvm.ptr, i64, !llvm.ptr, i64, !llvm.ptr, i64) -> !llvm.ptr
func.func private @fairkv_rt_embedding(!llvm.ptr, !llvm.ptr, !llvm.ptr) -> !llvm.ptr
func.func private @fairkv_rt_rms_norm(!llvm.ptr, !llvm.ptr, !llvm.ptr, f64) -> !llvm.ptr
func.func private @fairkv_rt_add(!llvm.ptr, !llvm.ptr, !llvm.ptr) -> !llvm.ptr
func.func private @fairkv_rt_greedy_sample(!llvm.ptr, !llvm.ptr) -> !llvm.ptr
func.func private @other(!llvm.ptr) -> ()

// CHECK-LABEL: func.func @step(
// CHECK-SAME: %[[CTX:[^:]+]]: !llvm.ptr, %[[IDS:[^:]+]]: !llvm.ptr
// CHECK: %[[W:.+]] = call @fairkv_rt_weight(
// CHECK-NEXT: %[[X:.+]] = call @fairkv_rt_embedding(%[[CTX]], %[[IDS]], %[[W]])
// CHECK-NEXT: %[[N:.+]] = call @fairkv_rt_rms_norm(%[[CTX]], %[[X]], %[[W]],
// A tensor nothing reads goes back at once.
// CHECK-NEXT: %[[DEAD:.+]] = call @fairkv_rt_rms_norm(%[[CTX]], %[[X]], %[[W]],
// CHECK-NEXT: call @fairkv_rt_release(%[[CTX]], %[[DEAD]])
// Each operand after its last reader, in use order; never a weight, the
// function's arguments or what it returns.
// CHECK-NEXT: %[[S:.+]] = call @fairkv_rt_add(%[[CTX]], %[[X]], %[[N]])
// CHECK-NEXT: call @fairkv_rt_release(%[[CTX]], %[[N]])
// CHECK-NEXT: call @fairkv_rt_release(%[[CTX]], %[[X]])
// CHECK-NEXT: %[[T:.+]] = call @fairkv_rt_greedy_sample(%[[CTX]], %[[S]])
// CHECK-NEXT: call @fairkv_rt_release(%[[CTX]], %[[S]])
// CHECK-NEXT: return %[[T]]
func.func @step(%ctx: !llvm.ptr, %ids: !llvm.ptr, %name: !llvm.ptr) -> !llvm.ptr {
  %c = arith.constant 0 : i64
  %eps = arith.constant 1.0e-5 : f64
  %w = func.call @fairkv_rt_weight(%ctx, %name, %c, %name, %c, %name, %c) : (!llvm.ptr, !llvm.ptr, i64, !llvm.ptr, i64, !llvm.ptr, i64) -> !llvm.ptr
  %x = func.call @fairkv_rt_embedding(%ctx, %ids, %w) : (!llvm.ptr, !llvm.ptr, !llvm.ptr) -> !llvm.ptr
  %n = func.call @fairkv_rt_rms_norm(%ctx, %x, %w, %eps) : (!llvm.ptr, !llvm.ptr, !llvm.ptr, f64) -> !llvm.ptr
  %dead = func.call @fairkv_rt_rms_norm(%ctx, %x, %w, %eps) : (!llvm.ptr, !llvm.ptr, !llvm.ptr, f64) -> !llvm.ptr
  %s = func.call @fairkv_rt_add(%ctx, %x, %n) : (!llvm.ptr, !llvm.ptr, !llvm.ptr) -> !llvm.ptr
  %t = func.call @fairkv_rt_greedy_sample(%ctx, %s) : (!llvm.ptr, !llvm.ptr) -> !llvm.ptr
  return %t : !llvm.ptr
}

// A tensor that leaves its block, or that something else reads, lives until
// the step ends.
// CHECK-LABEL: func.func @kept(
// CHECK-NOT: fairkv_rt_release
// CHECK: return
func.func @kept(%ctx: !llvm.ptr, %ids: !llvm.ptr, %w: !llvm.ptr) -> !llvm.ptr {
  %x = func.call @fairkv_rt_embedding(%ctx, %ids, %w) : (!llvm.ptr, !llvm.ptr, !llvm.ptr) -> !llvm.ptr
  %y = func.call @fairkv_rt_embedding(%ctx, %ids, %w) : (!llvm.ptr, !llvm.ptr, !llvm.ptr) -> !llvm.ptr
  func.call @other(%y) : (!llvm.ptr) -> ()
  cf.br ^next
^next:
  %s = func.call @fairkv_rt_add(%ctx, %x, %x) : (!llvm.ptr, !llvm.ptr, !llvm.ptr) -> !llvm.ptr
  return %s : !llvm.ptr
}

// The declaration, once.
// CHECK: func.func private @fairkv_rt_release(!llvm.ptr, !llvm.ptr)
// CHECK-NOT: func.func private @fairkv_rt_release

// PIPE: llvm.func @decode_step_dev0(
// PIPE: llvm.call @fairkv_rt_release(
// PIPE: llvm.func @decode_step_dev1(
// PIPE: llvm.call @fairkv_rt_release(
// PIPE: llvm.func @fairkv_rt_release(!llvm.ptr, !llvm.ptr)

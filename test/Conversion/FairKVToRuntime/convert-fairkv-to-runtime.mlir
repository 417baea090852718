// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv" --convert-fairkv-to-runtime | FileCheck %s --implicit-check-not=fairkv.
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2" --fairkv-lower-to-llvm-pipeline | mlir-translate --mlir-to-llvmir | FileCheck %s --check-prefix=LLVM
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv" --convert-fairkv-to-runtime | FileCheck %s --check-prefix=DECL
// RUN: fairkv-opt %s -split-input-file --convert-fairkv-to-runtime -verify-diagnostics
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=tp overlap-chunks=2 overlap-min-chunk-bytes=512" --convert-fairkv-to-runtime | FileCheck %s --check-prefix=FUSED
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv overlap-chunks=2" --convert-fairkv-to-runtime | FileCheck %s --check-prefix=COPIES

// A fused projection passes its block count and smallest block size, and
// a null handle for what it lacks: here the addend (tp has no copies); with
// copies, the projection of a device that holds only copies.
// FUSED-LABEL: func.func @decode_step_dev0(
// FUSED: %[[A:.+]] = call @fairkv_rt_attention(
// FUSED: %[[WO:.+]] = call @fairkv_rt_weight(
// FUSED: %[[NULL:.+]] = llvm.mlir.zero : !llvm.ptr
// FUSED: %[[C2:.+]] = arith.constant 2 : i64
// FUSED: %[[MIN:.+]] = arith.constant 512 : i64
// FUSED: call @fairkv_rt_linear_all_reduce(%{{.+}}, %[[A]], %[[WO]], %[[NULL]], %[[C2]], %[[MIN]])
// FUSED: %[[G:.+]] = call @fairkv_rt_gated_act(
// FUSED: call @fairkv_rt_linear_all_reduce(%{{.+}}, %[[G]],
// FUSED-NOT: call @fairkv_rt_all_reduce(
// FUSED-NOT: call @fairkv_rt_mlp(
// COPIES-LABEL: func.func @decode_step_dev1(
// COPIES: %[[ROWS:.+]] = call @fairkv_rt_add_rows(
// COPIES: %[[X:.+]] = llvm.mlir.zero : !llvm.ptr
// COPIES: %[[W:.+]] = llvm.mlir.zero : !llvm.ptr
// COPIES: call @fairkv_rt_linear_all_reduce(%{{.+}}, %[[X]], %[[W]], %[[ROWS]],

// Device programs take the runtime context first and pass handles; attribute
// payloads become private constant globals; a copy's split descriptor is its
// head, its budget, its replica count and its devices and shares.
// CHECK-DAG: llvm.mlir.global private constant @{{.*}}("model.embed_tokens.weight\00")
// CHECK-DAG: llvm.mlir.global private constant @[[$DEVS:.*]](dense<[1, 0]> : tensor<2xi64>) {{.*}} : !llvm.array<2 x i64>
// CHECK-DAG: llvm.mlir.global private constant @[[$SHARES:.*]](dense<[5.937500e-01, 4.062500e-01]> : tensor<2xf64>) {{.*}} : !llvm.array<2 x f64>
// CHECK-LABEL: func.func @decode_step_dev0(
// CHECK-SAME: %[[CTX:.+]]: !llvm.ptr, %[[IDS:.+]]: !llvm.ptr, %[[POS:.+]]: !llvm.ptr) -> !llvm.ptr
// CHECK: %[[EMB:.+]] = call @fairkv_rt_weight(%[[CTX]],
// CHECK: call @fairkv_rt_embedding(%[[CTX]], %[[IDS]], %[[EMB]])
// CHECK: call @fairkv_rt_project_heads
// CHECK: call @fairkv_rt_rotary
// CHECK: %[[D:.+]] = llvm.mlir.addressof @[[$DEVS]]
// CHECK: %[[S:.+]] = llvm.mlir.addressof @[[$SHARES]]
// CHECK: call @fairkv_rt_take_rows(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[D]], %[[S]])
// CHECK: call @fairkv_rt_attention(
// CHECK: call @fairkv_rt_add_rows(
// CHECK: call @fairkv_rt_all_reduce(
// CHECK: call @fairkv_rt_mlp(
// CHECK: call @fairkv_rt_all_gather(
// CHECK: call @fairkv_rt_greedy_sample(
// CHECK-LABEL: func.func @decode_step_dev1(
// The entry points the program driver calls.
// CHECK: llvm.mlir.global external constant @fairkv_program_num_devices(2 : i64)
// CHECK-LABEL: func.func @fairkv_program_step(
// CHECK-SAME: %[[C:.+]]: !llvm.ptr, %[[DEV:.+]]: i64, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr) -> !llvm.ptr
// CHECK: cf.switch %[[DEV]] : i64, [
// CHECK-NEXT: default: ^[[BAD:.+]],
// CHECK-NEXT: 0: ^[[B0:.+]],
// CHECK-NEXT: 1: ^[[B1:.+]]
// CHECK: call @decode_step_dev0(%[[C]]
// CHECK: call @decode_step_dev1(%[[C]]
// CHECK: call @fairkv_rt_fatal
// DECL: func.func private @fairkv_rt_attention(!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64, !llvm.ptr, !llvm.ptr) -> !llvm.ptr

// LLVM: @fairkv_program_num_devices = constant i64 2
// LLVM: declare ptr @fairkv_rt_attention(ptr, ptr, ptr, ptr, i64, i64, ptr, ptr, i64, i64, i64, ptr, ptr)
// LLVM: define ptr @fairkv_program_step(ptr %0, i64 %1, ptr %2, ptr %3)
// LLVM: switch i64 %1

// expected-error @+1 {{convert-fairkv-to-runtime needs a sharded module (functions marked fairkv.device): run fairkv-shard-pipeline first}}
module {
  func.func @f() {
    return
  }
}

// -----

module {
  func.func @p_dev0(%ids: tensor<?x?xi64>, %pos: tensor<?x?xi64>) -> tensor<?xi64> attributes {fairkv.device = 0 : i64} {
    %t = fairkv.weight "t" : tensor<4x4xf32>
    %h = fairkv.embedding %ids, %t : (tensor<?x?xi64>, tensor<4x4xf32>) -> tensor<?x?x4xf32>
    %l = fairkv.lm_head %h, %t : (tensor<?x?x4xf32>, tensor<4x4xf32>) -> tensor<?x?x4xf32>
    %n = fairkv.greedy_sample %l : tensor<?x?x4xf32> -> tensor<?xi64>
    return %n : tensor<?xi64>
  }
  func.func @unsharded(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
    // expected-error @+1 {{'fairkv.add' op is outside any device program: run fairkv-shard-pipeline first}}
    %y = fairkv.add %x, %x : tensor<?x?x4xf32>
    return %y : tensor<?x?x4xf32>
  }
}

// -----

module {
  // expected-error @+1 {{'func.func' op a device program must take (token ids, positions) and return the next tokens}}
  func.func @q_dev0(%ids: tensor<?x?xi64>) -> tensor<?xi64> attributes {fairkv.device = 0 : i64} {
    %t = fairkv.weight "t" : tensor<4x4xf32>
    %h = fairkv.embedding %ids, %t : (tensor<?x?xi64>, tensor<4x4xf32>) -> tensor<?x?x4xf32>
    %l = fairkv.lm_head %h, %t : (tensor<?x?x4xf32>, tensor<4x4xf32>) -> tensor<?x?x4xf32>
    %n = fairkv.greedy_sample %l : tensor<?x?x4xf32> -> tensor<?xi64>
    return %n : tensor<?xi64>
  }
}

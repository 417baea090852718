// The bundled two-layer model round-trips: printed pretty and re-parsed, and
// printed generic and re-parsed, both give the same module.
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir > %t.pretty.mlir
// RUN: fairkv-opt %t.pretty.mlir > %t.pretty2.mlir
// RUN: diff %t.pretty.mlir %t.pretty2.mlir
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --mlir-print-op-generic > %t.generic.mlir
// RUN: fairkv-opt %t.generic.mlir > %t.from-generic.mlir
// RUN: diff %t.pretty.mlir %t.from-generic.mlir
// RUN: FileCheck %s --input-file=%t.pretty.mlir
// RUN: FileCheck %s --check-prefix=GENERIC --input-file=%t.generic.mlir

// CHECK: module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.000000e+04, norm_eps = 1.000000e-05, dtype = f32>}
// CHECK-LABEL: func.func @decode_step
// CHECK-SAME: (%[[IDS:.+]]: tensor<?x?xi64>, %[[POS:.+]]: tensor<?x?xi64>) -> tensor<?xi64>
// CHECK: %[[EMB:.+]] = fairkv.weight "model.embed_tokens.weight" : tensor<256x64xf32>
// CHECK: %[[H0:.+]] = fairkv.embedding %[[IDS]], %[[EMB]]
// CHECK: %[[Q:.+]], %[[K:.+]], %[[V:.+]] = fairkv.qkv_proj
// CHECK-SAME: -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
// CHECK: %[[QR:.+]] = fairkv.rotary %[[Q]], %[[POS]] theta = 1.000000e+04
// CHECK: %[[KR:.+]] = fairkv.rotary %[[K]], %[[POS]] theta = 1.000000e+04
// CHECK: fairkv.attention %[[QR]], %[[KR]], %[[V]] layer 0 budgets <tokens = [512, 96], source = "example:skewed">
// CHECK: fairkv.out_proj
// CHECK: fairkv.mlp
// CHECK: fairkv.attention {{.*}} layer 1 budgets <tokens = [160, 384], source = "example:skewed">
// CHECK: %[[LAST:.+]] = fairkv.last_position %{{.+}} : tensor<?x?x64xf32> -> tensor<?x1x64xf32>
// CHECK: %[[FINAL:.+]] = fairkv.rms_norm %[[LAST]]
// CHECK: %[[LOGITS:.+]] = fairkv.lm_head %[[FINAL]]
// CHECK: %[[NEXT:.+]] = fairkv.greedy_sample %[[LOGITS]] : tensor<?x1x256xf32> -> tensor<?xi64>
// CHECK: return %[[NEXT]]

// GENERIC: "fairkv.qkv_proj"
// GENERIC: "fairkv.attention"
// GENERIC-SAME: budgets = #fairkv.kv_budgets<tokens = [512, 96], source = "example:skewed">
// GENERIC-SAME: layer = 0 : i64
// GENERIC: "fairkv.qkv_proj"
// GENERIC: "fairkv.attention"
// GENERIC-SAME: layer = 1 : i64

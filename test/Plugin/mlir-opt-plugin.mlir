// Stock mlir-opt-22 with FairKV loaded as a plugin runs the whole shard
// pipeline and produces exactly what fairkv-opt produces. (Plugin passes are
// reached through --pass-pipeline: mlir-opt builds its per-pass flags before
// it loads plugins.)
// RUN: mlir-opt %fairkv_src_root/examples/tiny-2layer.mlir --load-dialect-plugin=%fairkv_libs/libFairKVPlugin.so --load-pass-plugin=%fairkv_libs/libFairKVPlugin.so --pass-pipeline="builtin.module(fairkv-shard-pipeline{devices=2 strategy=fairkv})" -o %t.mlir-opt.mlir
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv" -o %t.fairkv-opt.mlir
// RUN: diff %t.mlir-opt.mlir %t.fairkv-opt.mlir
// RUN: FileCheck %s --input-file=%t.mlir-opt.mlir
// And the lowering to runtime calls.
// RUN: mlir-opt %t.mlir-opt.mlir --load-dialect-plugin=%fairkv_libs/libFairKVPlugin.so --load-pass-plugin=%fairkv_libs/libFairKVPlugin.so --pass-pipeline="builtin.module(convert-fairkv-to-runtime)" | FileCheck %s --check-prefix=LOWERED

// CHECK: shard.grid @grid(shape = 2)
// CHECK: func.func @decode_step_dev0
// CHECK: func.func @decode_step_dev1
// LOWERED: func.func @fairkv_program_step

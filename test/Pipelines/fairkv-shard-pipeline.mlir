// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv" | FileCheck %s --implicit-check-not=fairkv.gather
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv" | grep -c "fairkv.all_reduce" | FileCheck %s --check-prefix=COUNT
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=tp" | grep -c "fairkv.all_reduce" | FileCheck %s --check-prefix=COUNT
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv even-shares=true copy-budget=1" | FileCheck %s --check-prefix=EVEN --implicit-check-not=fairkv.gather
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=1" | FileCheck %s --check-prefix=ONE

// The example planned with copies on 2 devices: every copied head's gather is
// folded (no fairkv.gather anywhere), each replica projects its own rows and
// adds them into the partial sum of the layer's single attention all_reduce.
// CHECK: shard.grid @grid(shape = 2)
// CHECK-LABEL: func.func @decode_step_dev0
// CHECK: fairkv.attention {{.*}} layer 0 {{.*}} kv_heads [0] share <0, 4.062500e-01>
// CHECK-NEXT: fairkv.weight "model.layers.0.self_attn.o_proj.weight" slice 1 [0, 32] of [64, 64]
// CHECK-NEXT: %[[P:.+]] = fairkv.out_proj
// CHECK-NEXT: %[[S:.+]] = fairkv.add_rows %{{.+}}, %[[P]] head 0
// CHECK-NEXT: fairkv.all_reduce %[[S]]
// CHECK-LABEL: func.func @decode_step_dev1

// 2 layers x (attention + MLP) x 2 devices, with and without copies: copies
// add no collective.
// COUNT: 8

// EVEN: fairkv.attention {{.*}} share <{{[01]}}, 5.000000e-01>

// ONE-LABEL: func.func @decode_step_dev0
// ONE-NOT: fairkv.replicate
// ONE-NOT: func.func @decode_step_dev1

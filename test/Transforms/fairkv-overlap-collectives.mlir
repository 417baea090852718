// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=tp overlap-chunks=3 overlap-min-chunk-bytes=4096" > %t.tp.mlir
// RUN: FileCheck %s --check-prefix=TP --input-file=%t.tp.mlir
// RUN: grep -c "fairkv.linear_all_reduce" %t.tp.mlir | FileCheck %s --check-prefix=COUNT
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv" --fairkv-overlap-collectives | FileCheck %s --check-prefix=COPY
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 strategy=fairkv" | FileCheck %s --check-prefix=OFF
// RUN: fairkv-opt %s -split-input-file --fairkv-overlap-collectives -verify-diagnostics | FileCheck %s --check-prefix=KEEP
// RUN: not fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2" --fairkv-overlap-collectives="chunks=0" 2>&1 | FileCheck %s --check-prefix=BADOPT
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=1" --fairkv-overlap-collectives | FileCheck %s --check-prefix=ONE
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2 overlap-chunks=2 hw=h200-sxm" | FileCheck %s --check-prefix=H200
// RUN: not fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-shard-pipeline="devices=2" --fairkv-overlap-collectives="hw=tpu" 2>&1 | FileCheck %s --check-prefix=BADHW

// tp: every all_reduce follows a projection on every device, so all fuse:
// the attention's out_proj, and the MLP split into gated_act and its down
// projection. The pipeline options reach the pass.
// TP-LABEL: func.func @decode_step_dev0
// TP: %[[A:.+]] = fairkv.attention
// TP: %[[WO:.+]] = fairkv.weight "model.layers.0.self_attn.o_proj.weight" slice 1 [0, 32] of [64, 64]
// TP: %[[R:.+]] = fairkv.linear_all_reduce proj %[[A]], %[[WO]] on @grid chunks = 3 min_chunk_bytes = 4096 : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
// TP: %[[H:.+]] = fairkv.add %{{.+}}, %[[R]]
// TP: %[[N:.+]] = fairkv.rms_norm %[[H]]
// TP: %[[WD:.+]] = fairkv.weight "model.layers.0.mlp.down_proj.weight" slice 1 [0, 64] of [64, 128]
// TP: %[[G:.+]] = fairkv.gated_act %[[N]], %{{.+}}, %{{.+}} : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
// TP: fairkv.linear_all_reduce proj %[[G]], %[[WD]] on @grid chunks = 3
// TP-NOT: fairkv.all_reduce
// TP-NOT: fairkv.mlp
// TP-LABEL: func.func @decode_step_dev1
// TP-NOT: fairkv.all_reduce
// TP: fairkv.linear_all_reduce
// 2 devices x 2 layers x (attention, MLP):
// COUNT: 8

// fairkv: layer 0 copies head 0 and layer 1 copies head 1. A device that
// holds whole heads and a copy projects its whole heads in the fused op and
// adds the copy's rows, now gathered on zeros of the layer's input; a
// device that holds only a copy has no projection, only the addend. The
// MLPs fuse everywhere.
// COPY-LABEL: func.func @decode_step_dev0
// COPY: %[[N0:.+]] = fairkv.rms_norm %{{.+}}, %{{.+}} eps
// COPY: %[[WHOLE:.+]] = fairkv.attention {{.*}} kv_heads [1] :
// COPY: %[[WO:.+]] = fairkv.weight "model.layers.0.self_attn.o_proj.weight" slice 1 [32, 64]
// COPY: %[[MINE:.+]] = fairkv.out_proj
// COPY: %[[Z:.+]] = fairkv.zeros_like %[[N0]]
// COPY: %[[ROWS:.+]] = fairkv.add_rows %[[Z]], %[[MINE]] head 0
// COPY: fairkv.linear_all_reduce proj %[[WHOLE]], %[[WO]] plus %[[ROWS]] on @grid chunks = 4 min_chunk_bytes = 3600000
// COPY: fairkv.gated_act
// COPY: fairkv.linear_all_reduce proj
// COPY: %[[ONLY:.+]] = fairkv.add_rows
// COPY: fairkv.linear_all_reduce plus %[[ONLY]] on @grid
// COPY: fairkv.gated_act
// COPY: fairkv.linear_all_reduce proj
// COPY-LABEL: func.func @decode_step_dev1
// COPY: fairkv.linear_all_reduce plus
// COPY: fairkv.linear_all_reduce proj
// COPY: fairkv.linear_all_reduce proj {{.*}} plus
// COPY: fairkv.linear_all_reduce proj
// COPY-NOT: fairkv.all_reduce
// COPY-NOT: fairkv.mlp

// The smallest block defaults to where its transfer time equals the
// collective's fixed cost on the hardware preset: 8 us x 450 GB/s x G /
// (2 (G - 1)) = 3.6 MB at G = 2 on h100-sxm and h200-sxm (the same NVLink).
// On one device there is nothing to reduce: one block.
// ONE: fairkv.linear_all_reduce proj {{.*}} on @grid chunks = 1 min_chunk_bytes = 0
// ONE-NOT: chunks = 4
// H200: fairkv.linear_all_reduce proj {{.*}} on @grid chunks = 2 min_chunk_bytes = 3600000
// BADHW: unknown hardware preset 'tpu'

// Without the option the pipeline leaves every collective as it was.
// OFF-NOT: fairkv.linear_all_reduce
// OFF-NOT: fairkv.gated_act

// BADOPT: fairkv-overlap-collectives needs chunks >= 1 and min-chunk-bytes >= -1 (got 0 and -1)

// A max reduction, and a projection used twice, are not fused; the other
// device's matching all_reduce is then kept too. A collective with no
// projection on any device has nothing to overlap: kept.
shard.grid @grid(shape = 2)
// KEEP-LABEL: func.func @step_dev0
// KEEP: fairkv.all_reduce %{{.+}} on @grid reduction = max
// KEEP: fairkv.all_reduce %{{.+}} on @grid reduction = sum
// KEEP-LABEL: func.func @step_dev1
// KEEP-NOT: linear_all_reduce
func.func @step_dev0(%a: tensor<?x?x2x16xf32>, %wo: tensor<64x32xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>) attributes {fairkv.device = 0 : i64} {
  %p = fairkv.out_proj %a, %wo : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  %r = fairkv.all_reduce %p on @grid reduction = max : tensor<?x?x64xf32>
  %q = fairkv.out_proj %a, %wo : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  %s = fairkv.all_reduce %q on @grid reduction = sum : tensor<?x?x64xf32>
  return %r, %q : tensor<?x?x64xf32>, tensor<?x?x64xf32>
}
func.func @step_dev1(%a: tensor<?x?x2x16xf32>, %wo: tensor<64x32xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>) attributes {fairkv.device = 1 : i64} {
  %p = fairkv.out_proj %a, %wo : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  %r = fairkv.all_reduce %p on @grid reduction = sum : tensor<?x?x64xf32>
  %q = fairkv.out_proj %a, %wo : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  %s = fairkv.all_reduce %q on @grid reduction = sum : tensor<?x?x64xf32>
  return %r, %s : tensor<?x?x64xf32>, tensor<?x?x64xf32>
}
// KEEP-LABEL: func.func @zeros_dev0
// KEEP: fairkv.all_reduce
func.func @zeros_dev0(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> attributes {fairkv.device = 0 : i64} {
  %z = fairkv.zeros_like %x : tensor<?x?x64xf32>
  %r = fairkv.all_reduce %z on @grid reduction = sum : tensor<?x?x64xf32>
  return %r : tensor<?x?x64xf32>
}
func.func @zeros_dev1(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> attributes {fairkv.device = 1 : i64} {
  %z = fairkv.zeros_like %x : tensor<?x?x64xf32>
  %r = fairkv.all_reduce %z on @grid reduction = sum : tensor<?x?x64xf32>
  return %r : tensor<?x?x64xf32>
}

// -----

// Device programs that disagree on their collectives cannot run together.
shard.grid @grid(shape = 2)
func.func @step_dev0(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> attributes {fairkv.device = 0 : i64} {
  %r = fairkv.all_reduce %x on @grid reduction = sum : tensor<?x?x64xf32>
  return %r : tensor<?x?x64xf32>
}
// expected-error @+1 {{issues 0 all_reduce ops where device program 'step_dev0' issues 1: the devices could not run together}}
func.func @step_dev1(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> attributes {fairkv.device = 1 : i64} {
  return %x : tensor<?x?x64xf32>
}

// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-plan-placement="devices=2 strategy=tp" --fairkv-shard-heads | FileCheck %s --check-prefix=TP
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-plan-placement="devices=2 strategy=fairkv" --fairkv-shard-heads | FileCheck %s --check-prefix=COPY
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-plan-placement="devices=1" --fairkv-shard-heads | FileCheck %s --check-prefix=ONE
// RUN: fairkv-opt %s -split-input-file --fairkv-shard-heads -verify-diagnostics

// Contiguous tp on 2 devices: device g computes KV head g (with its query
// group, q rows 32g..32g+31), the o_proj columns of that group, half of the
// MLP and of the vocabulary; one all_reduce after attention and one after the
// MLP; no copies.
// TP-LABEL: func.func @decode_step_dev0
// TP-SAME: attributes {fairkv.device = 0 : i64}
// TP: fairkv.weight "model.layers.0.self_attn.q_proj.weight" slice 0 [0, 32] of [64, 64] : tensor<32x64xf32>
// TP: fairkv.weight "model.layers.0.self_attn.k_proj.weight" slice 0 [0, 16] of [32, 64] : tensor<16x64xf32>
// TP: fairkv.attention {{.*}} layer 0 budgets <tokens = [512], {{.*}} kv_heads [0] :
// TP: fairkv.weight "model.layers.0.self_attn.o_proj.weight" slice 1 [0, 32] of [64, 64] : tensor<64x32xf32>
// TP: %[[PART:.+]] = fairkv.out_proj
// TP: fairkv.all_reduce %[[PART]] on @grid reduction = sum
// TP: fairkv.weight "model.layers.0.mlp.gate_proj.weight" slice 0 [0, 64] of [128, 64]
// TP: fairkv.weight "model.layers.0.mlp.down_proj.weight" slice 1 [0, 64] of [64, 128]
// TP: %[[MLP:.+]] = fairkv.mlp
// TP: fairkv.all_reduce %[[MLP]] on @grid reduction = sum
// TP: fairkv.weight "lm_head.weight" slice 0 [0, 128] of [256, 64] : tensor<128x64xf32>
// TP: fairkv.all_gather {{.*}} on @grid axis = 2 : tensor<?x1x128xf32> -> tensor<?x1x256xf32>
// TP-LABEL: func.func @decode_step_dev1
// TP: fairkv.weight "model.layers.0.self_attn.q_proj.weight" slice 0 [32, 64] of [64, 64]
// TP: fairkv.attention {{.*}} layer 0 budgets <tokens = [96], {{.*}} kv_heads [1] :
// TP: fairkv.weight "lm_head.weight" slice 0 [128, 256] of [256, 64]
// TP-NOT: fairkv.replicate
// TP-NOT: fairkv.gather

// fairkv on 2 devices: layer 0 copies head 0 (device 1 serves 0.59375 of the
// requests, device 0 the rest); device 0 also holds head 1 whole. The copy
// is explicit: replicate the batch rows, attend, gather, project, take this
// replica's rows back and add them into the partial sum.
// COPY-LABEL: func.func @decode_step_dev0
// COPY: %[[N:.+]] = fairkv.rms_norm
// COPY: fairkv.attention {{.*}} layer 0 budgets <tokens = [96], {{.*}} kv_heads [1] :
// COPY: %[[WHOLE:.+]] = fairkv.out_proj
// COPY: %[[ROWS:.+]] = fairkv.replicate %[[N]] head 0 budget 512 replicas [#fairkv.replica<1, 5.937500e-01>, #fairkv.replica<0, 4.062500e-01>] on @grid
// COPY: %[[POS:.+]] = fairkv.replicate %arg1 head 0
// COPY: fairkv.weight "model.layers.0.self_attn.q_proj.weight" slice 0 [0, 32] of [64, 64]
// COPY: %[[Q:.+]], %{{.+}}, %{{.+}} = fairkv.qkv_proj %[[ROWS]]
// COPY: fairkv.rotary %[[Q]], %[[POS]]
// COPY: %[[A:.+]] = fairkv.attention {{.*}} layer 0 budgets <tokens = [512], {{.*}} kv_heads [0] share <0, 4.062500e-01> :
// COPY: %[[G:.+]] = fairkv.gather %[[A]] head 0
// COPY: %[[P:.+]] = fairkv.out_proj %[[G]]
// COPY: %[[MINE:.+]] = fairkv.replicate %[[P]] head 0
// COPY: %[[SUM:.+]] = fairkv.add_rows %[[WHOLE]], %[[MINE]] head 0
// COPY: fairkv.all_reduce %[[SUM]] on @grid reduction = sum
// Device 1 holds only its share of head 0 in layer 0: its partial sum starts
// from zeros.
// COPY-LABEL: func.func @decode_step_dev1
// COPY: fairkv.attention {{.*}} layer 0 budgets <tokens = [512], {{.*}} kv_heads [0] share <1, 5.937500e-01> :
// COPY: %[[Z:.+]] = fairkv.zeros_like
// COPY: %[[S1:.+]] = fairkv.add_rows %[[Z]],
// COPY: fairkv.all_reduce %[[S1]]

// One device: every head whole, every slice the full tensor.
// ONE-LABEL: func.func @decode_step_dev0
// ONE: fairkv.weight "model.layers.0.self_attn.q_proj.weight" slice 0 [0, 64] of [64, 64] : tensor<64x64xf32>
// ONE: fairkv.attention {{.*}} layer 0 budgets <tokens = [512, 96], {{.*}} kv_heads [0, 1] :
// ONE: fairkv.weight "lm_head.weight" slice 0 [0, 256] of [256, 64]
// ONE-NOT: func.func @decode_step_dev1

// expected-error @+1 {{fairkv-shard-heads found no function with fairkv.attention ops to shard}}
module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  func.func @nothing() {
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  func.func @unplaced(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32> {
    // expected-error @+1 {{'fairkv.attention' op layer 0 has no placement on a grid: run fairkv-plan-placement first}}
    %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    return %o : tensor<?x?x4x16xf32>
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @not_from_rotary(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32> {
    // expected-error @+1 {{'fairkv.attention' op layer 0: fairkv-shard-heads expects qkv_proj -> [per-head rms_norm ->] rotary -> attention -> out_proj (query and key must come from fairkv.rotary)}}
    %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 1.0>]]> on @grid : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    return %o : tensor<?x?x4x16xf32>
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 3)
  func.func @ffn_not_divisible(%n: tensor<?x?x64xf32>, %pos: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
    %wq = fairkv.weight "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %wk = fairkv.weight "model.layers.0.self_attn.k_proj.weight" : tensor<32x64xf32>
    %wo = fairkv.weight "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
    %wg = fairkv.weight "model.layers.0.mlp.gate_proj.weight" : tensor<128x64xf32>
    %wd = fairkv.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x128xf32>
    %q, %k, %v = fairkv.qkv_proj %n, %wq, %wk, %wk : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
    %qr = fairkv.rotary %q, %pos theta = 1.0e4 : tensor<?x?x4x16xf32>, tensor<?x?xi64>
    %kr = fairkv.rotary %k, %pos theta = 1.0e4 : tensor<?x?x2x16xf32>, tensor<?x?xi64>
    %a = fairkv.attention %qr, %kr, %v layer 0 budgets <tokens = [8, 8], source = ""> placement <devices = 3, heads = [[<0, 1.0>], [<1, 1.0>]]> on @grid : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    %o = fairkv.out_proj %a, %wo : (tensor<?x?x4x16xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    // expected-error @+1 {{'fairkv.mlp' op ffn (128) must be divisible by the devices (3)}}
    %m = fairkv.mlp %o, %wg, %wg, %wd : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>) -> tensor<?x?x64xf32>
    return %m : tensor<?x?x64xf32>
  }
}

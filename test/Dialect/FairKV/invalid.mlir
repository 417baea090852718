// RUN: fairkv-opt %s -split-input-file -verify-diagnostics

// One case per constraint of the fairkv ops (FairKVOps.td); the cases that
// check shapes against the model config sit in invalid-config.mlir.

func.func @weight_empty_name() {
  // expected-error @+1 {{'fairkv.weight' op weight name must not be empty}}
  %w = fairkv.weight "" : tensor<4x4xf32>
  return
}

// -----

func.func @weight_dynamic_shape() {
  // expected-error @+1 {{'fairkv.weight' op weight must have a static shape}}
  %w = fairkv.weight "w" : tensor<?x4xf32>
  return
}

// -----

func.func @embedding_hidden_mismatch(%ids: tensor<?x?xi64>, %t: tensor<256x64xf32>) {
  // expected-error @+1 {{'fairkv.embedding' op result hidden size (32) does not match the table's (64)}}
  %h = fairkv.embedding %ids, %t : (tensor<?x?xi64>, tensor<256x64xf32>) -> tensor<?x?x32xf32>
  return
}

// -----

func.func @embedding_batch_mismatch(%ids: tensor<2x5xi64>, %t: tensor<256x64xf32>) {
  // expected-error @+1 {{'fairkv.embedding' op result batch and seq dims [3, 5] do not match ids's [2, 5]}}
  %h = fairkv.embedding %ids, %t : (tensor<2x5xi64>, tensor<256x64xf32>) -> tensor<3x5x64xf32>
  return
}

// -----

func.func @embedding_element_type(%ids: tensor<?x?xi64>, %t: tensor<256x64xf16>) {
  // expected-error @+1 {{'fairkv.embedding' op result and table must have the same element type}}
  %h = fairkv.embedding %ids, %t : (tensor<?x?xi64>, tensor<256x64xf16>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @embedding_ids_not_i64(%ids: tensor<?x?xi32>, %t: tensor<256x64xf32>) {
  // expected-error @+1 {{'fairkv.embedding' op operand #0 must be 2D tensor of 64-bit signless integer values}}
  %h = fairkv.embedding %ids, %t : (tensor<?x?xi32>, tensor<256x64xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @rms_norm_weight_size(%x: tensor<?x?x64xf32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{'fairkv.rms_norm' op weight size (32) does not match the input's last dim (64)}}
  %n = fairkv.rms_norm %x, %g eps = 1.0e-5 : tensor<?x?x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @rms_norm_element_type(%x: tensor<?x?x64xf32>, %g: tensor<64xbf16>) {
  // expected-error @+1 {{'fairkv.rms_norm' op input and weight must have the same element type}}
  %n = fairkv.rms_norm %x, %g eps = 1.0e-5 : tensor<?x?x64xf32>, tensor<64xbf16>
  return
}

// -----

func.func @rms_norm_eps(%x: tensor<?x?x64xf32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{'fairkv.rms_norm' op eps must be positive}}
  %n = fairkv.rms_norm %x, %g eps = 0.0 : tensor<?x?x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @qkv_kv_types(%x: tensor<?x?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op key and value must have the same type}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x1x32xf32>)
  return
}

// -----

func.func @qkv_heads_not_divisible(%x: tensor<?x?x64xf32>, %wq: tensor<48x64xf32>, %wk: tensor<32x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op query heads (3) must be divisible by kv heads (2)}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<?x?x64xf32>, tensor<48x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x?x3x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}

// -----

func.func @qkv_head_dim_mismatch(%x: tensor<?x?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<16x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op query and key head_dim differ (16 vs 8)}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<16x64xf32>, tensor<16x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>)
  return
}

// -----

func.func @qkv_wq_shape(%x: tensor<?x?x64xf32>, %wq: tensor<32x64xf32>, %wk: tensor<32x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op wq shape [32, 64] does not match [heads * head_dim, hidden] = [64, 64]}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<?x?x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}

// -----

func.func @qkv_wk_shape(%x: tensor<?x?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x48xf32>, %wv: tensor<32x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op wk shape [32, 48] does not match [kv_heads * head_dim, hidden] = [32, 64]}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wv : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x48xf32>, tensor<32x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}

// -----

func.func @qkv_wv_shape(%x: tensor<?x?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<16x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op wv shape [16, 64] does not match [kv_heads * head_dim, hidden] = [32, 64]}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wv : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<16x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}

// -----

func.func @qkv_batch_seq(%x: tensor<2x7x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op q batch and seq dims [2, 1] do not match input's [2, 7]}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<2x7x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<2x1x4x16xf32>, tensor<2x7x2x16xf32>, tensor<2x7x2x16xf32>)
  return
}

// -----

func.func @qkv_element_type(%x: tensor<?x?x64xf32>, %wq: tensor<64x64xf16>, %wk: tensor<32x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op input and every weight and result must have the same element type}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<?x?x64xf32>, tensor<64x64xf16>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}

// -----

func.func @rotary_odd_head_dim(%q: tensor<?x?x4x15xf32>, %pos: tensor<?x?xi64>) {
  // expected-error @+1 {{'fairkv.rotary' op head_dim must be even, got 15}}
  %r = fairkv.rotary %q, %pos theta = 1.0e4 : tensor<?x?x4x15xf32>, tensor<?x?xi64>
  return
}

// -----

func.func @rotary_positions(%q: tensor<2x3x4x16xf32>, %pos: tensor<2x4xi64>) {
  // expected-error @+1 {{'fairkv.rotary' op positions batch and seq dims [2, 4] do not match input's [2, 3]}}
  %r = fairkv.rotary %q, %pos theta = 1.0e4 : tensor<2x3x4x16xf32>, tensor<2x4xi64>
  return
}

// -----

func.func @rotary_theta(%q: tensor<?x?x4x16xf32>, %pos: tensor<?x?xi64>) {
  // expected-error @+1 {{'fairkv.rotary' op theta must be positive}}
  %r = fairkv.rotary %q, %pos theta = -1.0 : tensor<?x?x4x16xf32>, tensor<?x?xi64>
  return
}

// -----

func.func @attention_negative_layer(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op attribute 'layer' failed to satisfy constraint: 64-bit signless integer attribute whose value is non-negative}}
  %o = fairkv.attention %q, %k, %k layer -1 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

func.func @attention_kv_types(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>, %v: tensor<?x?x2x16xf16>) {
  // expected-error @+1 {{'fairkv.attention' op key and value must have the same type}}
  %o = fairkv.attention %q, %k, %v layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf16>) -> tensor<?x?x4x16xf32>
  return
}

// -----

func.func @attention_result_type(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op result must have the query's type}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x2x16xf32>
  return
}

// -----

func.func @attention_heads_not_divisible(%q: tensor<?x?x5x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op query heads (5) must be divisible by kv heads (2)}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x5x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x5x16xf32>
  return
}

// -----

func.func @attention_head_dim(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x32xf32>) {
  // expected-error @+1 {{'fairkv.attention' op query and key head_dim differ (16 vs 32)}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x32xf32>, tensor<?x?x2x32xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

func.func @attention_batch(%q: tensor<4x1x4x16xf32>, %k: tensor<3x1x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op key batch and seq dims [3, 1] do not match query's [4, 1]}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<4x1x4x16xf32>, tensor<3x1x2x16xf32>, tensor<3x1x2x16xf32>) -> tensor<4x1x4x16xf32>
  return
}

// -----

func.func @attention_budget_count(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op expected one budget per kv head (2), got 3}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

func.func @attention_placement_heads(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op placement has 1 kv heads, expected 2}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> placement <devices = 2, heads = [[<0, 1.0>]]> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

func.func private @not_a_grid()
func.func @attention_grid_symbol(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op '@not_a_grid' does not reference a shard.grid}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> on @not_a_grid : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

shard.grid @grid(shape = 2x2)
func.func @attention_grid_size(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op placement is over 2 devices but grid @grid has 4}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 1.0>]]> on @grid : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

func.func @out_proj_wo_shape(%o: tensor<?x?x4x16xf32>, %wo: tensor<64x32xf32>) {
  // expected-error @+1 {{'fairkv.out_proj' op wo shape [64, 32] does not match [hidden, heads * head_dim] = [64, 64]}}
  %y = fairkv.out_proj %o, %wo : (tensor<?x?x4x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @out_proj_batch(%o: tensor<2x1x4x16xf32>, %wo: tensor<64x64xf32>) {
  // expected-error @+1 {{'fairkv.out_proj' op result batch and seq dims [3, 1] do not match input's [2, 1]}}
  %y = fairkv.out_proj %o, %wo : (tensor<2x1x4x16xf32>, tensor<64x64xf32>) -> tensor<3x1x64xf32>
  return
}

// -----

func.func @mlp_up_shape(%x: tensor<?x?x64xf32>, %wg: tensor<128x64xf32>, %wu: tensor<96x64xf32>, %wd: tensor<64x128xf32>) {
  // expected-error @+1 {{'fairkv.mlp' op w_up shape [96, 64] does not match [ffn, hidden] = [128, 64]}}
  %m = fairkv.mlp %x, %wg, %wu, %wd : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<96x64xf32>, tensor<64x128xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @mlp_gate_shape(%x: tensor<?x?x64xf32>, %wg: tensor<128x32xf32>, %wu: tensor<128x64xf32>, %wd: tensor<64x128xf32>) {
  // expected-error @+1 {{'fairkv.mlp' op w_gate shape [128, 32] does not match [ffn, hidden] = [128, 64]}}
  %m = fairkv.mlp %x, %wg, %wu, %wd : (tensor<?x?x64xf32>, tensor<128x32xf32>, tensor<128x64xf32>, tensor<64x128xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @mlp_down_shape(%x: tensor<?x?x64xf32>, %wg: tensor<128x64xf32>, %wd: tensor<128x64xf32>) {
  // expected-error @+1 {{'fairkv.mlp' op w_down shape [128, 64] does not match [hidden, ffn] = [64, 128]}}
  %m = fairkv.mlp %x, %wg, %wg, %wd : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

// expected-note @+1 {{prior use here}}
func.func @add_types(%a: tensor<?x?x64xf32>, %b: tensor<?x?x32xf32>) {
  // expected-error @+1 {{use of value '%b' expects different type than prior uses: 'tensor<?x?x64xf32>' vs 'tensor<?x?x32xf32>'}}
  %r = fairkv.add %a, %b : tensor<?x?x64xf32>
  return
}

// -----

func.func @add_types_generic(%a: tensor<?x?x64xf32>, %b: tensor<?x?x32xf32>) {
  // expected-error @+1 {{'fairkv.add' op requires the same type for all operands and results}}
  %r = "fairkv.add"(%a, %b) : (tensor<?x?x64xf32>, tensor<?x?x32xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @last_position_seq(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.last_position' op result seq dim (?) must be 1}}
  %l = fairkv.last_position %x : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return
}

// -----

func.func @last_position_dims(%x: tensor<2x5x64xf32>) {
  // expected-error @+1 {{'fairkv.last_position' op result batch and feature dims [3, 64] do not match the input's [2, 64]}}
  %l = fairkv.last_position %x : tensor<2x5x64xf32> -> tensor<3x1x64xf32>
  return
}

// -----

func.func @last_position_type(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.last_position' op input and result must have the same element type}}
  %l = fairkv.last_position %x : tensor<?x?x64xf32> -> tensor<?x1x64xf16>
  return
}

// -----

func.func @lm_head_weight(%x: tensor<?x?x64xf32>, %w: tensor<256x32xf32>) {
  // expected-error @+1 {{'fairkv.lm_head' op weight shape [256, 32] does not match [vocab, hidden] = [256, 64]}}
  %l = fairkv.lm_head %x, %w : (tensor<?x?x64xf32>, tensor<256x32xf32>) -> tensor<?x?x256xf32>
  return
}

// -----

func.func @lm_head_batch(%x: tensor<2x1x64xf32>, %w: tensor<256x64xf32>) {
  // expected-error @+1 {{'fairkv.lm_head' op logits batch and seq dims [2, 3] do not match input's [2, 1]}}
  %l = fairkv.lm_head %x, %w : (tensor<2x1x64xf32>, tensor<256x64xf32>) -> tensor<2x3x256xf32>
  return
}

// -----

func.func @greedy_sample_batch(%l: tensor<4x1x256xf32>) {
  // expected-error @+1 {{'fairkv.greedy_sample' op result batch dim (3) does not match the logits' (4)}}
  %t = fairkv.greedy_sample %l : tensor<4x1x256xf32> -> tensor<3xi64>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @replicate_no_replica(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.replicate' op kv head 1 has no replica}}
  %y = fairkv.replicate %x head 1 replicas [] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @replicate_negative_head(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.replicate' op attribute 'kv_head' failed to satisfy constraint: 64-bit signless integer attribute whose value is non-negative}}
  %y = fairkv.replicate %x head -2 replicas [#fairkv.replica<0, 1.0>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @add_rows_negative_budget(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.add_rows' op attribute 'budget' failed to satisfy constraint: 64-bit signless integer attribute whose value is non-negative}}
  %y = fairkv.add_rows %x, %x head 1 budget -5 replicas [#fairkv.replica<0, 1.0>] on @grid : tensor<?x?x64xf32>, tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @replicate_same_device(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.replicate' op kv head 1 has two replicas on device 2}}
  %y = fairkv.replicate %x head 1 replicas [#fairkv.replica<2, 0.5>, #fairkv.replica<2, 0.5>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @replicate_shares(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.replicate' op shares of kv head 1 sum to 1.25, not 1}}
  %y = fairkv.replicate %x head 1 replicas [#fairkv.replica<0, 0.5>, #fairkv.replica<1, 0.75>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @replicate_outside_grid(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.replicate' op replica device 4 is outside grid @grid of 4 devices}}
  %y = fairkv.replicate %x head 1 replicas [#fairkv.replica<0, 0.5>, #fairkv.replica<4, 0.5>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @replicate_rank(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.replicate' op input and result must have the same rank and element type}}
  %y = fairkv.replicate %x head 0 replicas [#fairkv.replica<0, 1.0>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @replicate_non_batch_dim(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.replicate' op result dim 2 (32) differs from the input's (64): only the batch dim may change}}
  %y = fairkv.replicate %x head 0 replicas [#fairkv.replica<0, 1.0>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x32xf32>
  return
}

// -----

func.func @replicate_missing_grid(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.replicate' op '@nowhere' does not reference a shard.grid}}
  %y = fairkv.replicate %x head 0 replicas [#fairkv.replica<0, 1.0>] on @nowhere : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 2)
func.func @gather_shares(%x: tensor<?x?x2x8xf32>) {
  // expected-error @+1 {{'fairkv.gather' op shares of kv head 3 sum to 0.5, not 1}}
  %y = fairkv.gather %x head 3 replicas [#fairkv.replica<0, 0.25>, #fairkv.replica<1, 0.25>] on @grid : tensor<?x?x2x8xf32> -> tensor<?x?x2x8xf32>
  return
}

// -----

shard.grid @grid(shape = 2)
func.func @gather_outside_grid(%x: tensor<?x?x2x8xf32>) {
  // expected-error @+1 {{'fairkv.gather' op replica device 7 is outside grid @grid of 2 devices}}
  %y = fairkv.gather %x head 3 replicas [#fairkv.replica<7, 1.0>] on @grid : tensor<?x?x2x8xf32> -> tensor<?x?x2x8xf32>
  return
}

// -----

shard.grid @grid(shape = 2)
func.func @gather_non_batch_dim(%x: tensor<?x?x2x8xf32>) {
  // expected-error @+1 {{'fairkv.gather' op result dim 3 (16) differs from the input's (8): only the batch dim may change}}
  %y = fairkv.gather %x head 0 replicas [#fairkv.replica<0, 1.0>] on @grid : tensor<?x?x2x8xf32> -> tensor<?x?x2x16xf32>
  return
}

// -----

func.func @all_reduce_missing_grid(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.all_reduce' op '@grid' does not reference a shard.grid}}
  %y = fairkv.all_reduce %x on @grid reduction = sum : tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 2)
func.func @all_reduce_types(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{'fairkv.all_reduce' op requires the same type for all operands and results}}
  %y = "fairkv.all_reduce"(%x) <{grid = @grid, reduction = 0 : i32}> : (tensor<?x?x64xf32>) -> tensor<?x?x32xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @all_gather_axis(%x: tensor<2x3x16xf32>) {
  // expected-error @+1 {{'fairkv.all_gather' op axis 3 is not a dimension of a rank 3 input}}
  %y = fairkv.all_gather %x on @grid axis = 3 : tensor<2x3x16xf32> -> tensor<2x3x64xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @all_gather_rank(%x: tensor<2x3x16xf32>) {
  // expected-error @+1 {{'fairkv.all_gather' op input and result must have the same rank and element type}}
  %y = fairkv.all_gather %x on @grid axis = 2 : tensor<2x3x16xf32> -> tensor<2x3x64xf16>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @all_gather_other_dim(%x: tensor<2x3x16xf32>) {
  // expected-error @+1 {{'fairkv.all_gather' op result dim 0 (4) differs from the input's (2): only the gathered axis may change}}
  %y = fairkv.all_gather %x on @grid axis = 2 : tensor<2x3x16xf32> -> tensor<4x3x64xf32>
  return
}

// -----

shard.grid @grid(shape = 4)
func.func @all_gather_grid_size(%x: tensor<2x3x16xf32>) {
  // expected-error @+1 {{'fairkv.all_gather' op result dim 2 (32) must be the input's (16) times the grid size (4)}}
  %y = fairkv.all_gather %x on @grid axis = 2 : tensor<2x3x16xf32> -> tensor<2x3x32xf32>
  return
}

// -----

func.func @all_gather_missing_grid(%x: tensor<2x3x16xf32>) {
  // expected-error @+1 {{'fairkv.all_gather' op '@grid' does not reference a shard.grid}}
  %y = fairkv.all_gather %x on @grid axis = 2 : tensor<2x3x16xf32> -> tensor<2x3x64xf32>
  return
}

// -----

shard.grid @grid(shape = 2)
func.func @linear_all_reduce_weight(%h: tensor<?x?x2x8xf32>, %wo: tensor<64x32xf32>) {
  // expected-error @+1 {{'fairkv.linear_all_reduce' op weight shape [64, 32] does not match [hidden, K] = [64, 16]}}
  %r = fairkv.linear_all_reduce proj %h, %wo on @grid chunks = 2 min_chunk_bytes = 0 : (tensor<?x?x2x8xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 2)
func.func @linear_all_reduce_chunks(%h: tensor<?x?x2x8xf32>, %wo: tensor<64x16xf32>) {
  // expected-error @+1 {{'fairkv.linear_all_reduce' op attribute 'chunks' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %r = fairkv.linear_all_reduce proj %h, %wo on @grid chunks = 0 min_chunk_bytes = 0 : (tensor<?x?x2x8xf32>, tensor<64x16xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @linear_all_reduce_grid(%h: tensor<?x?x2x8xf32>, %wo: tensor<64x16xf32>) {
  // expected-error @+1 {{'fairkv.linear_all_reduce' op '@nowhere' does not reference a shard.grid}}
  %r = fairkv.linear_all_reduce proj %h, %wo on @nowhere chunks = 1 min_chunk_bytes = 0 : (tensor<?x?x2x8xf32>, tensor<64x16xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @gated_act_result(%x: tensor<?x?x64xf32>, %wg: tensor<32x64xf32>, %wu: tensor<32x64xf32>) {
  // expected-error @+1 {{'fairkv.gated_act' op result features (48) must be w_gate's rows (32)}}
  %a = fairkv.gated_act %x, %wg, %wu : (tensor<?x?x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<?x?x48xf32>
  return
}

// -----

func.func @gated_act_up(%x: tensor<?x?x64xf32>, %wg: tensor<32x64xf32>, %wu: tensor<16x64xf32>) {
  // expected-error @+1 {{'fairkv.gated_act' op w_up shape [16, 64] does not match [ffn, hidden] = [32, 64]}}
  %a = fairkv.gated_act %x, %wg, %wu : (tensor<?x?x64xf32>, tensor<32x64xf32>, tensor<16x64xf32>) -> tensor<?x?x32xf32>
  return
}

// -----

shard.grid @grid(shape = 2)
func.func @linear_all_reduce_nothing() {
  // expected-error @+1 {{'fairkv.linear_all_reduce' op needs a projection, an addend or both}}
  %r = fairkv.linear_all_reduce on @grid chunks = 1 min_chunk_bytes = 0 : () -> tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 2)
func.func @linear_all_reduce_addend(%h: tensor<?x?x2x8xf32>, %wo: tensor<64x16xf32>, %a: tensor<?x?x32xf32>) {
  // expected-error @+1 {{'fairkv.linear_all_reduce' op addend type 'tensor<?x?x32xf32>' differs from the result type 'tensor<?x?x64xf32>'}}
  %r = fairkv.linear_all_reduce proj %h, %wo plus %a on @grid chunks = 1 min_chunk_bytes = 0 : (tensor<?x?x2x8xf32>, tensor<64x16xf32>, tensor<?x?x32xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

shard.grid @grid(shape = 2)
func.func @linear_all_reduce_half(%h: tensor<?x?x2x8xf32>) {
  // expected-error @+1 {{'fairkv.linear_all_reduce' op needs both the projection's input and its weight, or neither}}
  %r = "fairkv.linear_all_reduce"(%h) <{grid = @grid, chunks = 1 : i64, min_chunk_bytes = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<?x?x2x8xf32>) -> tensor<?x?x64xf32>
  return
}

// RUN: fairkv-opt %s -split-input-file -verify-diagnostics

// Shapes that contradict the module's #fairkv.model_config (layers = 2,
// hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256).

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @embedding_vocab(%ids: tensor<?x?xi64>, %t: tensor<100x64xf32>) {
  // expected-error @+1 {{'fairkv.embedding' op table vocab size (100) does not match the model config (256)}}
  %h = fairkv.embedding %ids, %t : (tensor<?x?xi64>, tensor<100x64xf32>) -> tensor<?x?x64xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @embedding_hidden(%ids: tensor<?x?xi64>, %t: tensor<256x32xf32>) {
  // expected-error @+1 {{'fairkv.embedding' op table hidden size (32) does not match the model config (64)}}
  %h = fairkv.embedding %ids, %t : (tensor<?x?xi64>, tensor<256x32xf32>) -> tensor<?x?x32xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @rms_norm_hidden(%x: tensor<?x?x32xf32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{'fairkv.rms_norm' op hidden size (32) does not match the model config (64)}}
  %n = fairkv.rms_norm %x, %g eps = 1.0e-5 : tensor<?x?x32xf32>, tensor<32xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @qkv_heads(%x: tensor<?x?x64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<32x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op query heads (8) does not match the model config (4)}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @qkv_kv_heads(%x: tensor<?x?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op kv heads (4) does not match the model config (2)}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>)
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @qkv_head_dim(%x: tensor<?x?x64xf32>, %wq: tensor<32x64xf32>, %wk: tensor<16x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op head_dim (8) does not match the model config (16)}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<?x?x64xf32>, tensor<32x64xf32>, tensor<16x64xf32>, tensor<16x64xf32>) -> (tensor<?x?x4x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>)
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @qkv_hidden(%x: tensor<?x?x48xf32>, %wq: tensor<64x48xf32>, %wk: tensor<32x48xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op hidden size (48) does not match the model config (64)}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wk : (tensor<?x?x48xf32>, tensor<64x48xf32>, tensor<32x48xf32>, tensor<32x48xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @rotary_head_dim(%q: tensor<?x?x4x8xf32>, %pos: tensor<?x?xi64>) {
  // expected-error @+1 {{'fairkv.rotary' op head_dim (8) does not match the model config (16)}}
  %r = fairkv.rotary %q, %pos theta = 1.0e4 : tensor<?x?x4x8xf32>, tensor<?x?xi64>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @attention_layer_range(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op layer 2 is out of range for a model of 2 layers}}
  %o = fairkv.attention %q, %k, %k layer 2 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @attention_heads(%q: tensor<?x?x8x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op query heads (8) does not match the model config (4)}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x8x16xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @attention_kv_heads(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{'fairkv.attention' op kv heads (4) does not match the model config (2)}}
  %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8, 8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>) -> tensor<?x?x4x16xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @out_proj_heads(%o: tensor<?x?x2x16xf32>, %wo: tensor<64x32xf32>) {
  // expected-error @+1 {{'fairkv.out_proj' op heads (2) does not match the model config (4)}}
  %y = fairkv.out_proj %o, %wo : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @mlp_ffn(%x: tensor<?x?x64xf32>, %wg: tensor<96x64xf32>, %wd: tensor<64x96xf32>) {
  // expected-error @+1 {{'fairkv.mlp' op ffn size (96) does not match the model config (128)}}
  %m = fairkv.mlp %x, %wg, %wg, %wd : (tensor<?x?x64xf32>, tensor<96x64xf32>, tensor<96x64xf32>, tensor<64x96xf32>) -> tensor<?x?x64xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @lm_head_vocab(%x: tensor<?x?x64xf32>, %w: tensor<300x64xf32>) {
  // expected-error @+1 {{'fairkv.lm_head' op vocab size (300) does not match the model config (256)}}
  %l = fairkv.lm_head %x, %w : (tensor<?x?x64xf32>, tensor<300x64xf32>) -> tensor<?x?x300xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32, rope_scaling = #fairkv.rope_scaling<type = "linear", factor = 2.0>>} {
func.func @rotary_without_scaling(%q: tensor<?x?x4x16xf32>, %pos: tensor<?x?xi64>) {
  // expected-error @+1 {{'fairkv.rotary' op scaling differs from the model config's rope_scaling}}
  %r = fairkv.rotary %q, %pos theta = 1.0e4 : tensor<?x?x4x16xf32>, tensor<?x?xi64>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @rotary_theta(%q: tensor<?x?x4x16xf32>, %pos: tensor<?x?xi64>) {
  // expected-error @+1 {{'fairkv.rotary' op theta 5.000000e+05 differs from the model config's rope_theta 1.000000e+04}}
  %r = fairkv.rotary %q, %pos theta = 5.0e5 : tensor<?x?x4x16xf32>, tensor<?x?xi64>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
func.func @head_norm_without_qk_norm(%q: tensor<?x?x4x16xf32>, %g: tensor<16xf32>) {
  // expected-error @+1 {{'fairkv.rms_norm' op normalizes heads, but the model config has no qk_norm}}
  %n = fairkv.rms_norm %q, %g eps = 1.0e-5 : tensor<?x?x4x16xf32>, tensor<16xf32>
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32, family = "qwen2", qkv_bias = true>} {
func.func @qwen2_without_biases(%x: tensor<?x?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op lacks biases, but the model config's qkv_bias is 1}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wv : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32, family = "qwen2", qkv_bias = true>} {
func.func @bias_size(%x: tensor<?x?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %bq: tensor<64xf32>, %bk: tensor<16xf32>, %bv: tensor<32xf32>) {
  // expected-error @+1 {{'fairkv.qkv_proj' op bk has 16 elements, its projection 32 rows}}
  %q, %k, %v = fairkv.qkv_proj %x, %wq, %wk, %wv bias %bq, %bk, %bv : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64xf32>, tensor<16xf32>, tensor<32xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}
}

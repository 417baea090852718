// A tiny two-layer Llama-style model in the fairkv dialect: the model every
// pass, test and the demo start from. 4 query heads share 2 KV heads (GQA
// group 2); KV head budgets are skewed the way per-head compression makes
// them (HeadKV-like), so placement matters.
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.000000e+04, norm_eps = 1.000000e-05, dtype = f32>} {
  func.func @decode_step(%ids: tensor<?x?xi64>, %pos: tensor<?x?xi64>) -> tensor<?xi64> {
    %embed = fairkv.weight "model.embed_tokens.weight" : tensor<256x64xf32>
    %h0 = fairkv.embedding %ids, %embed : (tensor<?x?xi64>, tensor<256x64xf32>) -> tensor<?x?x64xf32>
    // Layer 0.
    %ln0 = fairkv.weight "model.layers.0.input_layernorm.weight" : tensor<64xf32>
    %wq0 = fairkv.weight "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %wk0 = fairkv.weight "model.layers.0.self_attn.k_proj.weight" : tensor<32x64xf32>
    %wv0 = fairkv.weight "model.layers.0.self_attn.v_proj.weight" : tensor<32x64xf32>
    %wo0 = fairkv.weight "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
    %pln0 = fairkv.weight "model.layers.0.post_attention_layernorm.weight" : tensor<64xf32>
    %wg0 = fairkv.weight "model.layers.0.mlp.gate_proj.weight" : tensor<128x64xf32>
    %wu0 = fairkv.weight "model.layers.0.mlp.up_proj.weight" : tensor<128x64xf32>
    %wd0 = fairkv.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x128xf32>
    %n0 = fairkv.rms_norm %h0, %ln0 eps = 1.000000e-05 : tensor<?x?x64xf32>, tensor<64xf32>
    %q0, %k0, %v0 = fairkv.qkv_proj %n0, %wq0, %wk0, %wv0 : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
    %qr0 = fairkv.rotary %q0, %pos theta = 1.000000e+04 : tensor<?x?x4x16xf32>, tensor<?x?xi64>
    %kr0 = fairkv.rotary %k0, %pos theta = 1.000000e+04 : tensor<?x?x2x16xf32>, tensor<?x?xi64>
    %att0 = fairkv.attention %qr0, %kr0, %v0 layer 0 budgets <tokens = [512, 96], source = "example:skewed"> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    %o0 = fairkv.out_proj %att0, %wo0 : (tensor<?x?x4x16xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    %r0 = fairkv.add %h0, %o0 : tensor<?x?x64xf32>
    %m0n = fairkv.rms_norm %r0, %pln0 eps = 1.000000e-05 : tensor<?x?x64xf32>, tensor<64xf32>
    %m0 = fairkv.mlp %m0n, %wg0, %wu0, %wd0 : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>) -> tensor<?x?x64xf32>
    %h1 = fairkv.add %r0, %m0 : tensor<?x?x64xf32>
    // Layer 1.
    %ln1 = fairkv.weight "model.layers.1.input_layernorm.weight" : tensor<64xf32>
    %wq1 = fairkv.weight "model.layers.1.self_attn.q_proj.weight" : tensor<64x64xf32>
    %wk1 = fairkv.weight "model.layers.1.self_attn.k_proj.weight" : tensor<32x64xf32>
    %wv1 = fairkv.weight "model.layers.1.self_attn.v_proj.weight" : tensor<32x64xf32>
    %wo1 = fairkv.weight "model.layers.1.self_attn.o_proj.weight" : tensor<64x64xf32>
    %pln1 = fairkv.weight "model.layers.1.post_attention_layernorm.weight" : tensor<64xf32>
    %wg1 = fairkv.weight "model.layers.1.mlp.gate_proj.weight" : tensor<128x64xf32>
    %wu1 = fairkv.weight "model.layers.1.mlp.up_proj.weight" : tensor<128x64xf32>
    %wd1 = fairkv.weight "model.layers.1.mlp.down_proj.weight" : tensor<64x128xf32>
    %n1 = fairkv.rms_norm %h1, %ln1 eps = 1.000000e-05 : tensor<?x?x64xf32>, tensor<64xf32>
    %q1, %k1, %v1 = fairkv.qkv_proj %n1, %wq1, %wk1, %wv1 : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
    %qr1 = fairkv.rotary %q1, %pos theta = 1.000000e+04 : tensor<?x?x4x16xf32>, tensor<?x?xi64>
    %kr1 = fairkv.rotary %k1, %pos theta = 1.000000e+04 : tensor<?x?x2x16xf32>, tensor<?x?xi64>
    %att1 = fairkv.attention %qr1, %kr1, %v1 layer 1 budgets <tokens = [160, 384], source = "example:skewed"> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    %o1 = fairkv.out_proj %att1, %wo1 : (tensor<?x?x4x16xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    %r1 = fairkv.add %h1, %o1 : tensor<?x?x64xf32>
    %m1n = fairkv.rms_norm %r1, %pln1 eps = 1.000000e-05 : tensor<?x?x64xf32>, tensor<64xf32>
    %m1 = fairkv.mlp %m1n, %wg1, %wu1, %wd1 : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>) -> tensor<?x?x64xf32>
    %h2 = fairkv.add %r1, %m1 : tensor<?x?x64xf32>
    %fn = fairkv.weight "model.norm.weight" : tensor<64xf32>
    %lm = fairkv.weight "lm_head.weight" : tensor<256x64xf32>
    %hl = fairkv.last_position %h2 : tensor<?x?x64xf32> -> tensor<?x1x64xf32>
    %hf = fairkv.rms_norm %hl, %fn eps = 1.000000e-05 : tensor<?x1x64xf32>, tensor<64xf32>
    %logits = fairkv.lm_head %hf, %lm : (tensor<?x1x64xf32>, tensor<256x64xf32>) -> tensor<?x1x256xf32>
    %next = fairkv.greedy_sample %logits : tensor<?x1x256xf32> -> tensor<?xi64>
    return %next : tensor<?xi64>
  }
}

// RUN: fairkv-opt %s -split-input-file --fairkv-verify-sharding -verify-diagnostics | FileCheck %s

// CHECK-LABEL: func.func @f_dev0
// CHECK-LABEL: func.func @f_dev1

// Tests a valid sharded module: head 0 whole on device 0, head 1 copied
// with half the batch on each device.
module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

// expected-error @+1 {{layer 0, kv head 1 is computed for 0.5 of the batch (devices 0), not exactly once}}
module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    return
  }
}

// -----

// expected-error @+1 {{layer 0, kv head 0 is computed by no device}}
module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    // expected-error @+1 {{'fairkv.attention' op computes layer 0, kv head 0 a second time on device 0}}
    %again = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    // expected-error @+1 {{'fairkv.attention' op device 1 computes layer 0, kv head 0, which the placement does not give it}}
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    // expected-error @+1 {{'fairkv.attention' op device 0 computes all requests of copied layer 0, kv head 1 instead of its share}}
    %a1 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    // expected-error @+1 {{'fairkv.attention' op runs on device 0 but serves the replica of layer 0, kv head 1 on device 1}}
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    // expected-error @+1 {{'fairkv.weight' op device 1 references kv head 0 of 'model.layers.0.self_attn.q_proj.weight' (layer 0), which it does not own}}
    %w = fairkv.weight "model.layers.0.self_attn.q_proj.weight" slice 0 [0, 16] of [16, 16] : tensor<16x16xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    // expected-error @+1 {{'fairkv.weight' op device 0 references mlp block 1 of 'model.layers.0.mlp.gate_proj.weight' (layer 0), which it does not own}}
    %w = fairkv.weight "model.layers.0.mlp.gate_proj.weight" slice 0 [8, 16] of [16, 16] : tensor<8x16xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    // expected-error @+1 {{'fairkv.weight' op slices 'model.layers.0.self_attn.o_proj.weight' along dim 0, expected 1}}
    %w = fairkv.weight "model.layers.0.self_attn.o_proj.weight" slice 0 [0, 8] of [16, 16] : tensor<8x16xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @unsharded(%x: tensor<?x?x16xf32>) -> tensor<?x?x16xf32> {
    // expected-error @+1 {{'fairkv.add' op is an unsharded op left over outside any device program: run fairkv-shard-heads}}
    %y = fairkv.add %x, %x : tensor<?x?x16xf32>
    return %y : tensor<?x?x16xf32>
  }
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    // expected-error @+1 {{'fairkv.attention' op is an unsharded attention op of layer 0 left over (no kv_heads or no placement)}}
    %whole = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %wo16 = fairkv.weight "model.layers.0.self_attn.o_proj.weight" : tensor<16x8xf32>
    // expected-error @+1 {{'fairkv.out_proj' op is an unsharded op left over: its weights are not per-device slices}}
    %p = fairkv.out_proj %a0, %wo16 : (tensor<?x?x1x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 16, heads = 2, kv_heads = 2, head_dim = 8, ffn = 16, vocab = 16, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  shard.grid @grid(shape = 2)
  func.func @f_dev0(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 0 : i64} {
    %a0 = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [64], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [0] : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <0, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    %wo16 = fairkv.weight "model.layers.0.self_attn.o_proj.weight" : tensor<16x8xf32>
    // The same projection fused with its all_reduce.
    // expected-error @+1 {{'fairkv.linear_all_reduce' op is an unsharded op left over: its weights are not per-device slices}}
    %p = fairkv.linear_all_reduce proj %a0, %wo16 on @grid chunks = 2 min_chunk_bytes = 0 : (tensor<?x?x1x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
    return
  }
  func.func @f_dev1(%q: tensor<?x?x1x8xf32>) attributes {fairkv.device = 1 : i64} {
    %a1s = fairkv.attention %q, %q, %q layer 0 budgets <tokens = [32], source = ""> placement <devices = 2, heads = [[<0, 1.0>], [<1, 0.5>, <0, 0.5>]]> on @grid kv_heads [1] share <1, 0.5> : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
    return
  }
}

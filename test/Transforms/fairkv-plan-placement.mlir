// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-plan-placement="devices=2 strategy=fairkv report=%t.json" | FileCheck %s --check-prefix=FAIRKV
// RUN: FileCheck %s --check-prefix=REPORT --input-file=%t.json
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-plan-placement="devices=2 strategy=tp" | FileCheck %s --check-prefix=TP
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-plan-placement="devices=2 strategy=fairkv copy-budget=0" | FileCheck %s --check-prefix=NOCOPY
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-plan-placement="devices=2 strategy=fairkv even-shares=true" | FileCheck %s --check-prefix=EVEN
// RUN: fairkv-opt %fairkv_src_root/examples/tiny-2layer.mlir --fairkv-plan-placement="devices=1" | FileCheck %s --check-prefix=ONE
// RUN: fairkv-opt %s -split-input-file --fairkv-plan-placement="devices=2 strategy=tp" -verify-diagnostics

// Layer 0 budgets [512, 96] on 2 devices: the ideal is 304 tokens per device,
// reached by splitting head 0 as 304 + 208 with head 1 (96) beside the 208.
// FAIRKV: shard.grid @grid(shape = 2)
// FAIRKV: fairkv.attention {{.*}} layer 0
// FAIRKV-SAME: placement <devices = 2, heads = {{\[}}[<1, 5.937500e-01>, <0, 4.062500e-01>], [<0, 1.000000e+00>]]> on @grid
// Layer 1 budgets [160, 384]: ideal 272, head 1 split 272 + 112.
// FAIRKV: fairkv.attention {{.*}} layer 1
// FAIRKV-SAME: placement <devices = 2, heads = {{\[}}[<1, 1.000000e+00>], [<0, 0.70833333333333337>, <1, 0.29166666666666669>]]> on @grid

// REPORT: "strategy": "fairkv"
// REPORT: "devices": 2
// REPORT: "attention_imbalance": 1.0
// REPORT: "extra_replicas": 2
// REPORT: "layers": [

// Contiguous tensor parallelism: head h on device h.
// TP: fairkv.attention {{.*}} layer 0 {{.*}} placement <devices = 2, heads = {{\[}}[<0, 1.000000e+00>], [<1, 1.000000e+00>]]> on @grid
// TP: fairkv.attention {{.*}} layer 1 {{.*}} placement <devices = 2, heads = {{\[}}[<0, 1.000000e+00>], [<1, 1.000000e+00>]]> on @grid

// Without copies every head has exactly one replica.
// NOCOPY-COUNT-2: placement <devices = 2, heads = {{\[}}[<{{[01]}}, 1.000000e+00>], [<{{[01]}}, 1.000000e+00>]]>

// Even shares: a copied head splits its batch in equal halves.
// EVEN: layer 0 {{.*}}[<{{[01]}}, 5.000000e-01>, <{{[01]}}, 5.000000e-01>]

// A single device holds everything.
// ONE: shard.grid @grid(shape = 1)
// ONE-COUNT-2: placement <devices = 1, heads = {{\[}}[<0, 1.000000e+00>], [<0, 1.000000e+00>]]> on @grid

// expected-error @+1 {{fairkv-plan-placement needs the model shape: the module has no 'fairkv.config'}}
module {
  func.func @f(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
    %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    return
  }
}

// -----

// expected-error @+1 {{layer 1 has no fairkv.attention op}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  func.func @f(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
    %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  func.func @f(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
    // expected-note @+1 {{the first one is here}}
    %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    // expected-error @+1 {{'fairkv.attention' op is the second attention op of layer 0}}
    %p = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    return
  }
}

// -----

module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  // expected-error @+1 {{'@grid' exists but is not a shard.grid of shape 2}}
  shard.grid @grid(shape = 4)
  func.func @f(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
    %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8], source = ""> : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    return
  }
}

// -----

// tp is not defined when the devices do not divide the KV heads.
// expected-error @+1 {{fairkv-plan-placement: tp needs the devices (2) to divide the kv heads (3), or to be a multiple of them that divides the query heads (6)}}
module attributes {fairkv.config = #fairkv.model_config<layers = 1, hidden = 96, heads = 6, kv_heads = 3, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {
  func.func @f(%q: tensor<?x?x6x16xf32>, %k: tensor<?x?x3x16xf32>) {
    %o = fairkv.attention %q, %k, %k layer 0 budgets <tokens = [8, 8, 8], source = ""> : (tensor<?x?x6x16xf32>, tensor<?x?x3x16xf32>, tensor<?x?x3x16xf32>) -> tensor<?x?x6x16xf32>
    return
  }
}

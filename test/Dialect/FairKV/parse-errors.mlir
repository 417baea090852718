// RUN: fairkv-opt %s -split-input-file -verify-diagnostics

// Malformed syntax gives a located diagnostic, never a crash.

// expected-error @+1 {{expected ','}}
func.func private @replica_without_share() attributes {attrs.p = #fairkv.placement<devices = 2, heads = [[<0>]]>}

// -----

// expected-error @+2 {{expected floating point literal}}
// expected-error @+1 {{failed to parse FairKV_ReplicaAttr parameter 'share'}}
func.func private @share_not_a_number() attributes {attrs.r = #fairkv.replica<0, "half">}

// -----

// expected-error @+1 {{struct is missing required parameter: dtype}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5>} {}

// -----

func.func @attention_without_budgets(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{expected 'budgets'}}
  %o = fairkv.attention %q, %k, %k layer 0 : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

func.func @unknown_reduction(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'reduction' [sum, max]}}
  %y = fairkv.all_reduce %x on @grid reduction = mean : tensor<?x?x64xf32>
  return
}

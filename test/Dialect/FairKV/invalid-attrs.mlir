// RUN: fairkv-opt %s -split-input-file -verify-diagnostics

// One case per constraint of the fairkv attributes (FairKVAttrs.td) and of
// the dialect's discardable attributes.

// expected-error @+1 {{model_config 'layers' must be positive, got 0}}
module attributes {fairkv.config = #fairkv.model_config<layers = 0, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {}

// -----

// expected-error @+1 {{model_config 'vocab' must be positive, got -3}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = -3, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {}

// -----

// expected-error @+1 {{model_config 'heads' (6) must be divisible by 'kv_heads' (4)}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 6, kv_heads = 4, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {}

// -----

// expected-error @+1 {{model_config 'head_dim' must be even for rotary embedding, got 15}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 15, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32>} {}

// -----

// expected-error @+1 {{model_config 'rope_theta' must be positive}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 0.0, norm_eps = 1.0e-5, dtype = f32>} {}

// -----

// expected-error @+1 {{model_config 'norm_eps' must be positive}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = -1.0e-5, dtype = f32>} {}

// -----

// expected-error @+1 {{model_config 'dtype' must be f32, f16 or bf16, got 'i32'}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = i32>} {}

// -----

// expected-error @+1 {{'fairkv.config' must be a #fairkv.model_config}}
module attributes {fairkv.config = 3 : i64} {}

// -----

// expected-error @+1 {{unknown fairkv attribute 'fairkv.colour'}}
module attributes {fairkv.colour = "blue"} {}

// -----

// expected-error @+1 {{kv_budgets must have at least one budget}}
func.func private @no_budget() attributes {attrs.b = #fairkv.kv_budgets<tokens = [], source = "">}

// -----

// expected-error @+1 {{budget of kv head 1 must be positive, got 0}}
func.func private @zero_budget() attributes {attrs.b = #fairkv.kv_budgets<tokens = [12, 0], source = "">}

// -----

// expected-error @+1 {{replica device must be non-negative, got -1}}
func.func private @negative_device() attributes {attrs.r = #fairkv.replica<-1, 1.0>}

// -----

// expected-error @+1 {{replica share must be in (0, 1], got 0}}
func.func private @zero_share() attributes {attrs.r = #fairkv.replica<0, 0.0>}

// -----

// expected-error @+1 {{replica share must be in (0, 1], got 1.5}}
func.func private @share_above_one() attributes {attrs.r = #fairkv.replica<0, 1.5>}

// -----

// expected-error @+1 {{placement 'devices' must be positive, got 0}}
func.func private @no_devices() attributes {attrs.p = #fairkv.placement<devices = 0, heads = [[<0, 1.0>]]>}

// -----

// expected-error @+1 {{placement must have at least one kv head}}
func.func private @no_heads() attributes {attrs.p = #fairkv.placement<devices = 2, heads = []>}

// -----

// expected-error @+1 {{kv head 1 has no replica}}
func.func private @head_without_replica() attributes {attrs.p = #fairkv.placement<devices = 2, heads = [[<0, 1.0>], []]>}

// -----

// expected-error @+1 {{kv head 0 has two replicas on device 1}}
func.func private @replicas_on_one_device() attributes {attrs.p = #fairkv.placement<devices = 2, heads = [[<1, 0.5>, <1, 0.5>]]>}

// -----

// expected-error @+1 {{kv head 0 has a replica on device 2, outside the grid of 2 devices}}
func.func private @device_outside_grid() attributes {attrs.p = #fairkv.placement<devices = 2, heads = [[<2, 1.0>]]>}

// -----

// expected-error @+1 {{shares of kv head 0 sum to 0.9, not 1}}
func.func private @shares_not_summing_to_one() attributes {attrs.p = #fairkv.placement<devices = 2, heads = [[<0, 0.5>, <1, 0.4>]]>}

// -----

// Shares within 1e-6 of 1 are accepted.
func.func private @shares_within_tolerance() attributes {attrs.p = #fairkv.placement<devices = 3, heads = [[<0, 0.3333333>, <1, 0.3333333>, <2, 0.3333334>]]>}

// -----

// expected-error @+1 {{replica share must be in (0, 1], got 0}}
func.func private @zero_share_in_placement() attributes {attrs.p = #fairkv.placement<devices = 2, heads = [[<0, 1.0>, <1, 0.0>]]>}

// -----

// expected-error @+1 {{model_config 'family' must be llama, mistral, qwen2 or qwen3, got 'gemma'}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32, family = "gemma">} {}

// -----

// expected-error @+1 {{model_config 'qk_norm' is 0 for family 'qwen3' (q/k norms are qwen3's, and always there)}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32, family = "qwen3">} {}

// -----

// expected-error @+1 {{model_config 'sliding_window' is mistral's, not llama's}}
module attributes {fairkv.config = #fairkv.model_config<layers = 2, hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 128, vocab = 256, rope_theta = 1.0e4, norm_eps = 1.0e-5, dtype = f32, sliding_window = 8>} {}

// -----

// expected-error @+1 {{rope_scaling 'type' must be linear, dynamic, llama3 or yarn, got 'longrope'}}
func.func private @rope_type() attributes {attrs.r = #fairkv.rope_scaling<type = "longrope", factor = 2.0>}

// -----

// expected-error @+1 {{rope_scaling of type 'llama3' needs a positive 'original_max_positions'}}
func.func private @rope_original() attributes {attrs.r = #fairkv.rope_scaling<type = "llama3", factor = 8.0>}

// -----

// expected-error @+1 {{rope_scaling 'high_freq_factor' must exceed 'low_freq_factor'}}
func.func private @rope_llama3_factors() attributes {attrs.r = #fairkv.rope_scaling<type = "llama3", factor = 8.0, original_max_positions = 8192, low_freq_factor = 4.0, high_freq_factor = 1.0>}

// -----

// expected-error @+1 {{rope_scaling 'factor' and 'attention_factor' must be positive}}
func.func private @rope_factor() attributes {attrs.r = #fairkv.rope_scaling<type = "linear", factor = 0.0>}

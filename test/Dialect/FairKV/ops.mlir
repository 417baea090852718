// RUN: fairkv-opt %s | fairkv-opt | FileCheck %s
// RUN: fairkv-opt %s --mlir-print-op-generic | fairkv-opt | FileCheck %s

// Tests that a placed attention op with copies and uneven shares round-trips.
shard.grid @grid(shape = 4)

// CHECK-LABEL: func.func @placed_attention
// CHECK: fairkv.attention %{{.*}}, %{{.*}}, %{{.*}} layer 3
// CHECK-SAME: budgets <tokens = [4096, 128, 640], source = "headkv:base=512,beta=1.2,group=sum">
// CHECK-SAME: placement <devices = 4, heads = {{\[}}[<0, 2.500000e-01>, <1, 7.500000e-01>], [<2, 1.000000e+00>], [<3, 1.000000e+00>]]>
// CHECK-SAME: on @grid
func.func @placed_attention(%q: tensor<?x?x6x8xf32>, %k: tensor<?x?x3x8xf32>,
                            %v: tensor<?x?x3x8xf32>) -> tensor<?x?x6x8xf32> {
  %o = fairkv.attention %q, %k, %v layer 3
      budgets <tokens = [4096, 128, 640], source = "headkv:base=512,beta=1.2,group=sum">
      placement <devices = 4, heads = [[<0, 0.25>, <1, 0.75>], [<2, 1.0>], [<3, 1.0>]]>
      on @grid
      : (tensor<?x?x6x8xf32>, tensor<?x?x3x8xf32>, tensor<?x?x3x8xf32>) -> tensor<?x?x6x8xf32>
  return %o : tensor<?x?x6x8xf32>
}

// Tests the sharding ops: a copied head's batch split and gather, then the
// collectives.
// CHECK-LABEL: func.func @sharding_ops
// CHECK: %[[LOCAL:.+]] = fairkv.replicate %{{.*}} head 1 replicas [#fairkv.replica<1, 2.500000e-01>, #fairkv.replica<2, 7.500000e-01>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
// CHECK: %[[FULL:.+]] = fairkv.gather %{{.*}} head 1 budget 96 replicas [#fairkv.replica<1, 2.500000e-01>, #fairkv.replica<2, 7.500000e-01>] on @grid : tensor<?x?x2x8xf32> -> tensor<?x?x2x8xf32>
// CHECK: fairkv.all_reduce %[[LOCAL]] on @grid reduction = sum : tensor<?x?x64xf32>
// CHECK: fairkv.all_reduce %[[LOCAL]] on @grid reduction = max : tensor<?x?x64xf32>
// CHECK: fairkv.all_gather %{{.*}} on @grid axis = 2 : tensor<2x3x16xf32> -> tensor<2x3x64xf32>
func.func @sharding_ops(%x: tensor<?x?x64xf32>, %h: tensor<?x?x2x8xf32>,
                        %l: tensor<2x3x16xf32>) {
  %local = fairkv.replicate %x head 1
      replicas [#fairkv.replica<1, 0.25>, #fairkv.replica<2, 0.75>] on @grid
      : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  %full = fairkv.gather %h head 1 budget 96
      replicas [#fairkv.replica<1, 0.25>, #fairkv.replica<2, 0.75>] on @grid
      : tensor<?x?x2x8xf32> -> tensor<?x?x2x8xf32>
  %s = fairkv.all_reduce %local on @grid reduction = sum : tensor<?x?x64xf32>
  %m = fairkv.all_reduce %local on @grid reduction = max : tensor<?x?x64xf32>
  %g = fairkv.all_gather %l on @grid axis = 2 : tensor<2x3x16xf32> -> tensor<2x3x64xf32>
  return
}

// Tests the fused form of a row-parallel projection and its all_reduce, on
// an attention output (with and without the copies' rows as an addend), on
// an MLP's gated activation, and with only an addend.
// CHECK-LABEL: func.func @fused_projections
// CHECK: fairkv.linear_all_reduce proj %{{.*}}, %{{.*}} on @grid chunks = 4 min_chunk_bytes = 1048576 : (tensor<?x?x2x8xf32>, tensor<64x16xf32>) -> tensor<?x?x64xf32>
// CHECK: fairkv.linear_all_reduce proj %{{.*}}, %{{.*}} plus %{{.*}} on @grid chunks = 2 min_chunk_bytes = 0 : (tensor<?x?x2x8xf32>, tensor<64x16xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
// CHECK: %[[A:.+]] = fairkv.gated_act %{{.*}}, %{{.*}}, %{{.*}} : (tensor<?x?x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<?x?x32xf32>
// CHECK: fairkv.linear_all_reduce proj %[[A]], %{{.*}} on @grid chunks = 1 min_chunk_bytes = 0 : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
// CHECK: fairkv.linear_all_reduce plus %{{.*}} on @grid chunks = 3 min_chunk_bytes = 7 : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
func.func @fused_projections(%h: tensor<?x?x2x8xf32>, %wo: tensor<64x16xf32>,
                             %x: tensor<?x?x64xf32>, %wg: tensor<32x64xf32>,
                             %wu: tensor<32x64xf32>, %wd: tensor<64x32xf32>) {
  %r = fairkv.linear_all_reduce proj %h, %wo on @grid chunks = 4
      min_chunk_bytes = 1048576
      : (tensor<?x?x2x8xf32>, tensor<64x16xf32>) -> tensor<?x?x64xf32>
  %p = fairkv.linear_all_reduce proj %h, %wo plus %x on @grid chunks = 2
      min_chunk_bytes = 0
      : (tensor<?x?x2x8xf32>, tensor<64x16xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  %a = fairkv.gated_act %x, %wg, %wu
      : (tensor<?x?x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<?x?x32xf32>
  %s = fairkv.linear_all_reduce proj %a, %wd on @grid chunks = 1 min_chunk_bytes = 0
      : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  %t = fairkv.linear_all_reduce plus %x on @grid chunks = 3 min_chunk_bytes = 7
      : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  return
}

// Tests that attributes also round-trip standalone, in attr-dicts.
// CHECK-LABEL: func.func @standalone_attrs
// CHECK-SAME: attrs.b = #fairkv.kv_budgets<tokens = [1], source = "">
// CHECK-SAME: attrs.p = #fairkv.placement<devices = 1, heads = {{\[}}[<0, 1.000000e+00>]]>
// CHECK-SAME: attrs.r = #fairkv.replica<0, 0.33333333333333331>
func.func @standalone_attrs() attributes {
    attrs.b = #fairkv.kv_budgets<tokens = [1], source = "">,
    attrs.p = #fairkv.placement<devices = 1, heads = [[<0, 1.0>]]>,
    attrs.r = #fairkv.replica<0, 0.33333333333333331>} {
  return
}

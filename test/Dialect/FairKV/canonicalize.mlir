// RUN: fairkv-opt %s -canonicalize -split-input-file | FileCheck %s

// Tests that a copied head's gather folds into the all_reduce after the
// row-parallel output projection: the replica projects its own rows and adds
// them to the partial sum; no gather, and one all_reduce as before.
shard.grid @grid(shape = 2)
// CHECK-LABEL: func.func @fold_gather_into_all_reduce
// CHECK-SAME: (%[[ACC:.+]]: tensor<?x?x64xf32>, %[[A:.+]]: tensor<?x?x2x16xf32>, %[[WO:.+]]: tensor<64x32xf32>)
// CHECK-NOT: fairkv.gather
// CHECK: %[[P:.+]] = fairkv.out_proj %[[A]], %[[WO]] : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
// CHECK: %[[S:.+]] = fairkv.add_rows %[[ACC]], %[[P]] head 0
// CHECK: %[[R:.+]] = fairkv.all_reduce %[[S]] on @grid reduction = sum
// CHECK: return %[[R]]
func.func @fold_gather_into_all_reduce(%acc: tensor<?x?x64xf32>, %a: tensor<?x?x2x16xf32>, %wo: tensor<64x32xf32>) -> tensor<?x?x64xf32> attributes {fairkv.device = 0 : i64} {
  %g = fairkv.gather %a head 0 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x2x16xf32> -> tensor<?x?x2x16xf32>
  %p = fairkv.out_proj %g, %wo : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  %mine = fairkv.replicate %p head 0 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  %s = fairkv.add_rows %acc, %mine head 0 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x64xf32>, tensor<?x?x64xf32>
  %r = fairkv.all_reduce %s on @grid reduction = sum : tensor<?x?x64xf32>
  return %r : tensor<?x?x64xf32>
}

// -----

// Tests that the gather stays when its result is also used whole (here
// returned): the other replicas' rows are really needed there, while the
// projection of this replica's rows still folds.
shard.grid @grid(shape = 2)
// CHECK-LABEL: func.func @keep_gather_used_whole
// CHECK-SAME: (%[[A:.+]]: tensor<?x?x2x16xf32>, %[[WO:.+]]: tensor<64x32xf32>)
// CHECK: %[[G:.+]] = fairkv.gather %[[A]]
// CHECK: %[[P:.+]] = fairkv.out_proj %[[A]], %[[WO]]
// CHECK: return %[[G]], %[[P]]
func.func @keep_gather_used_whole(%a: tensor<?x?x2x16xf32>, %wo: tensor<64x32xf32>) -> (tensor<?x?x2x16xf32>, tensor<?x?x64xf32>) {
  %g = fairkv.gather %a head 0 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x2x16xf32> -> tensor<?x?x2x16xf32>
  %p = fairkv.out_proj %g, %wo : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  %mine = fairkv.replicate %p head 0 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return %g, %mine : tensor<?x?x2x16xf32>, tensor<?x?x64xf32>
}

// -----

// Tests that a gather whose consumer is not the output projection stays,
// and that a gather of another head's split does not fold.
shard.grid @grid(shape = 2)
// CHECK-LABEL: func.func @keep_gather_other_consumer
// CHECK: %[[G:.+]] = fairkv.gather
// CHECK: fairkv.add %[[G]], %[[G]]
// CHECK: %[[G2:.+]] = fairkv.gather
// CHECK: %[[P:.+]] = fairkv.out_proj %[[G2]]
// CHECK: fairkv.replicate %[[P]] head 1
func.func @keep_gather_other_consumer(%x: tensor<?x?x64xf32>, %a: tensor<?x?x2x16xf32>, %wo: tensor<64x32xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>) {
  %g = fairkv.gather %x head 0 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  %sum = fairkv.add %g, %g : tensor<?x?x64xf32>
  %g2 = fairkv.gather %a head 0 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x2x16xf32> -> tensor<?x?x2x16xf32>
  %p = fairkv.out_proj %g2, %wo : (tensor<?x?x2x16xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
  %other = fairkv.replicate %p head 1 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return %sum, %other : tensor<?x?x64xf32>, tensor<?x?x64xf32>
}

// -----

// Tests replicate(gather(x)) -> x.
shard.grid @grid(shape = 2)
// CHECK-LABEL: func.func @replicate_of_gather
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x64xf32>)
// CHECK-NEXT: return %[[X]]
func.func @replicate_of_gather(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  %g = fairkv.gather %x head 0 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  %r = fairkv.replicate %g head 0 replicas [#fairkv.replica<1, 0.75>, #fairkv.replica<0, 0.25>] on @grid : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return %r : tensor<?x?x64xf32>
}

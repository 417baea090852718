/*===- FairKVRuntime.h - FairKV runtime C ABI ---------------------*- C -*-===//
 *
 * The C ABI of the FairKV runtime (`fairkv_rt_*`). It has no MLIR, CUDA or
 * NCCL dependency. Every function is thread-safe unless it says otherwise;
 * errors are status codes, and fairkv_rt_last_error() gives the reason
 * (per thread).
 *
 *===----------------------------------------------------------------------===*/

#ifndef FAIRKV_RUNTIME_FAIRKVRUNTIME_H
#define FAIRKV_RUNTIME_FAIRKVRUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fairkv_status {
  FAIRKV_OK = 0,
  FAIRKV_ERROR_INVALID_ARGUMENT = 1,
  /// The backend was not built, or has no usable device.
  FAIRKV_ERROR_UNAVAILABLE = 2,
  FAIRKV_ERROR_INTERNAL = 3,
} fairkv_status_t;

/// The runtime's version string, e.g. "0.1.0". Static storage.
const char *fairkv_rt_version(void);

/// The reason for the last non-OK status returned on this thread, or "".
const char *fairkv_rt_last_error(void);

/// 1 when the CUDA backend was compiled in, 0 otherwise.
int32_t fairkv_rt_cuda_built(void);

/// Writes the number of usable CUDA devices to `*count`. Returns
/// FAIRKV_ERROR_UNAVAILABLE (with a reason) when the backend is not built or
/// no driver/device is present.
fairkv_status_t fairkv_rt_cuda_device_count(int64_t *count);

/// Writes the name of CUDA device `device` (e.g. "NVIDIA H100 80GB HBM3"),
/// NUL-terminated, into `name` of `size` bytes.
fairkv_status_t fairkv_rt_cuda_device_name(int64_t device, char *name,
                                           int64_t size);

/// Writes NCCL's version code (e.g. 22809 for 2.28.9) to `*version`.
/// FAIRKV_ERROR_UNAVAILABLE when the CUDA backend is not built.
fairkv_status_t fairkv_rt_nccl_version(int64_t *version);

/*===----------------------------------------------------------------------===
 * Sessions: G devices (threads of one process on the CPU backend) sharing
 * one weight file and one communicator.
 *===----------------------------------------------------------------------===*/

typedef struct fairkv_rt_session fairkv_rt_session;
typedef struct fairkv_rt_ctx fairkv_rt_ctx;
typedef struct fairkv_rt_tensor fairkv_rt_tensor;

typedef struct fairkv_rt_options {
  /// Devices (ranks) of the session.
  int64_t devices;
  /// Decode steps after the prompt: KV pages kept free per request.
  int64_t max_new_tokens;
  /// SnapKV: how many of the prompt's last queries score its tokens.
  int64_t snapkv_window;
  /// SnapKV: the pooling of the scores over this many tokens (odd), and
  /// its kind: FAIRKV_RT_POOL_AVG (SnapKV and kvpress: zero-padded average)
  /// or FAIRKV_RT_POOL_MAX (the Ada-KV and HeadKV reference code).
  int64_t snapkv_kernel;
  int64_t snapkv_pool;
  /// Tokens per KV page.
  int64_t page_tokens;
  /// Bytes of KV pages a device may hold (0: no limit). A batch that needs
  /// more is refused at prefill with a one-line reason.
  int64_t kv_bytes_per_device;
  /// Ada-KV: negative keeps the static per-head budgets of the program;
  /// otherwise each layer's budget (the sum of its heads' budgets) is
  /// shared per request across the layer's heads by their SnapKV scores,
  /// as kvpress's AdaKVPress does, every head keeping at least this
  /// fraction (the alpha safeguard, in [0, 1]) of its own budget.
  double adakv_alpha;
  /// FAIRKV_RT_BACKEND_CPU (the fp32 reference) or FAIRKV_RT_BACKEND_CUDA
  /// (device d on GPU d modulo the GPUs visible; bf16 weights and KV).
  int64_t backend;
  /// CUDA backend: FAIRKV_RT_COLLECTIVES_RENDEZVOUS (the devices meet in
  /// the process and copy between their buffers; any number of devices per
  /// GPU) or FAIRKV_RT_COLLECTIVES_NCCL (one NCCL communicator over the
  /// devices, ncclCommInitAll; needs one GPU per device).
  int64_t collectives;
  /// CUDA backend: the 16-bit type of weights, KV cache and GEMM inputs,
  /// FAIRKV_RT_STORAGE_BF16 or FAIRKV_RT_STORAGE_FP16 (activations and
  /// accumulation stay fp32; the CPU backend is fp32 throughout).
  int64_t storage;
  /// -1: every device is a thread of this process. Otherwise this process
  /// is MPI rank `mpi_rank` of an MPI job with one rank per device, and runs
  /// only device `mpi_rank`; collectives go through MPI (through NCCL on
  /// the CUDA backend, which then needs NCCL collectives). Call
  /// fairkv_rt_mpi_init first.
  int64_t mpi_rank;
  /// DuoAttention (negative: not): a head whose budget is below its
  /// prompt is a streaming head, keeping the prompt's first `duo_sink`
  /// tokens and its last budget - duo_sink, and staying at that size while
  /// decoding (the oldest recent token leaves as a new one arrives); the
  /// other heads (retrieval heads) keep everything.
  int64_t duo_sink;
  /// The model's sliding window (Mistral; 0: none): a query at position p
  /// attends to keys at positions after p - sliding_window, and a head
  /// gives back what no later query can see. CPU backend only.
  int64_t sliding_window;
  /// Nonzero: the devices take turns, one computing at a time, and each
  /// one's work between collectives is timed (fairkv_rt_ctx_busy_seconds):
  /// what a device of the plan takes with the machine to itself. The
  /// results are those of a normal run; the run is slower. Devices as
  /// threads with rendezvous collectives only.
  int64_t time_devices;
  /// Nonzero: every op of every step is timed (fairkv_rt_ctx_op_times), on
  /// a GPU by events on the device's stream around the op's work, on the
  /// CPU by the clock; attention is always timed (fairkv_rt_ctx_stats).
  /// The results are those of a normal run.
  int64_t op_times;
  /// Nonzero (CUDA backend; one device, or NCCL collectives): each device's
  /// decode steps of an offline batch (fairkv_rt_run_step) are captured
  /// once as a CUDA graph and replayed, one launch a step instead of the
  /// host issuing every op's work. The first decode step runs as it is
  /// (it plans the batch's decode), the second is captured. The results
  /// are those of a normal run. Continuous batching runs its steps as
  /// they are.
  int64_t cuda_graphs;
  /// Nonzero (with time_devices): each device's decode steps run alone,
  /// their collectives (all_reduce, all_gather, gather_rows) replaced by
  /// local stand-ins that give the device its own part (all_reduce: its
  /// input; all_gather: its input in every device's place; gather_rows:
  /// its own rows, zeros for the other copies'). A device's decode step is
  /// then its own work only, as on a machine of its own whose collectives
  /// the cost model prices, and one CUDA graph even where the devices
  /// share a GPU. The prefill is the model's; the decode steps' results
  /// are not (they are the same from run to run, so two solo runs can be
  /// compared).
  int64_t solo_devices;
} fairkv_rt_options;

#define FAIRKV_RT_BACKEND_CPU 0
#define FAIRKV_RT_BACKEND_CUDA 1
#define FAIRKV_RT_COLLECTIVES_RENDEZVOUS 0
#define FAIRKV_RT_COLLECTIVES_NCCL 1
#define FAIRKV_RT_STORAGE_BF16 0
#define FAIRKV_RT_STORAGE_FP16 1
#define FAIRKV_RT_POOL_AVG 0
#define FAIRKV_RT_POOL_MAX 1

/// Limits of the options and of a request (refused beyond, in one line):
/// devices, tokens per request (prompt or decoded), snapkv window and
/// kernel, and tokens per page.
#define FAIRKV_RT_MAX_DEVICES 4096
#define FAIRKV_RT_MAX_TOKENS (INT64_C(1) << 22)

/// devices 1, max_new_tokens 16, snapkv_window 8, snapkv_kernel 5,
/// snapkv_pool AVG, page_tokens 16,
/// kv_bytes_per_device 0, adakv_alpha -1 (static budgets), backend CPU,
/// collectives RENDEZVOUS, storage BF16, mpi_rank -1, duo_sink -1,
/// sliding_window 0.
void fairkv_rt_default_options(fairkv_rt_options *options);

/// Opens `weights_path` (safetensors, memory-mapped) for `options->devices`
/// devices. On failure returns a status and sets fairkv_rt_last_error().
fairkv_status_t fairkv_rt_session_create(const char *weights_path,
                                         const fairkv_rt_options *options,
                                         fairkv_rt_session **session);
void fairkv_rt_session_destroy(fairkv_rt_session *session);
/// The context of device `device`; owned by the session. Each device's
/// context must be used by one thread at a time.
fairkv_rt_ctx *fairkv_rt_session_device(fairkv_rt_session *session,
                                        int64_t device);

/// Initializes MPI (thread level FUNNELED: a process's MPI calls come from
/// the thread that runs its device) and returns this process's rank and the
/// job's size. FAIRKV_ERROR_UNAVAILABLE when FairKV was built without MPI.
fairkv_status_t fairkv_rt_mpi_init(int *argc, char ***argv, int64_t *rank,
                                   int64_t *size);
/// Finalizes MPI if it was initialized.
void fairkv_rt_mpi_finalize(void);

/// Starts a batch of `batch` requests whose prompts have `lengths` tokens
/// (prefilled left-padded to the longest): drops every device's KV cache of
/// the previous batch. Call it with no device thread running.
void fairkv_rt_session_begin_batch(fairkv_rt_session *session,
                                   const int64_t *lengths, int64_t batch);

/// Continuous batching: drops every device's KV cache and starts a batch
/// that requests (slots, any ids) join and leave between steps. Call it,
/// and the three below, with no device thread running.
fairkv_status_t fairkv_rt_session_begin_continuous(fairkv_rt_session *session);
/// Requests `slots` with prompts of `lengths` tokens join: the next step is
/// their prefill, its rows these slots in order.
void fairkv_rt_session_join(fairkv_rt_session *session, const int64_t *slots,
                            const int64_t *lengths, int64_t n);
/// The rows of the next steps are these joined slots, in order. In a batch
/// of fairkv_rt_session_begin_batch, `slots` are requests of the batch (a
/// prefill in groups of rows: each group's step, then n = 0, every request
/// in order, for the decode steps); a copied head's replicas serve the
/// requests that the whole batch's admission gave them.
void fairkv_rt_session_set_rows(fairkv_rt_session *session,
                                const int64_t *slots, int64_t n);
/// A finished request leaves: its KV pages go back to its heads' pools on
/// every device, and copies forget it.
void fairkv_rt_session_release(fairkv_rt_session *session, int64_t slot);
/// Admission of joiners to a continuous batch, before any work: the KV bytes
/// every device will hold with the running requests and `n` joining with
/// prompts of `lengths` tokens (a copied head's new request counted on the
/// replica it will join), and the largest leading part of them that fits.
/// Exact for SnapKV, HeadKV and DuoAttention; for Ada-KV each head counts
/// its whole prompt. FAIRKV_ERROR_INVALID_ARGUMENT when not all fit.
fairkv_status_t fairkv_rt_session_admit_join(
    const fairkv_rt_session *session, const int64_t *layout,
    const double *shares, const int64_t *lengths, int64_t n,
    int64_t *bytes_per_device, int64_t *fitting);

/// Admission before any work: the KV bytes every device needs for a batch
/// of `batch` requests whose prompts have `lengths` tokens, each decoding
/// max_new_tokens, under the session's method and the program's KV layout
/// (`layout`, `shares`: `fairkv_program_kv_layout` and
/// `fairkv_program_kv_shares` of a compiled program). Exact for SnapKV,
/// HeadKV and DuoAttention; for Ada-KV the most the reallocation can put on
/// a device. Writes `devices` entries to `bytes_per_device` (may be null)
/// and the largest leading part of the batch that fits to `*fitting`. With
/// kv_bytes_per_device set and a device over it: FAIRKV_ERROR_INVALID_ARGUMENT
/// and a one-line reason with the bytes needed and the batch that fits.
fairkv_status_t fairkv_rt_session_admit_batch(
    const fairkv_rt_session *session, const int64_t *layout,
    const double *shares, const int64_t *lengths, int64_t batch,
    int64_t *bytes_per_device, int64_t *fitting);

/// Admission of `batch` requests to the `replicas` replicas of a copied KV
/// head: request i, costing costs[i] tokens of KV, goes to the replica r
/// with the least (load_r + costs[i]) / shares[r] (ties: the lower r);
/// writes r to owner[i]. The runtime serves copies by this rule.
void fairkv_rt_admit(const int64_t *costs, int64_t batch,
                     const double *shares, int64_t replicas, int64_t *owner);

/// Starts a step over `batch` requests with `seq` new tokens each (seq > 1:
/// prefill of the prompts, seq = 1: one decode step); frees the previous
/// step's tensors.
void fairkv_rt_step_begin(fairkv_rt_ctx *ctx, int64_t batch, int64_t seq);
/// Waits until the work queued on this device has finished (the CUDA
/// backend queues work on streams; the CPU backend runs it in the call).
/// For timing.
void fairkv_rt_ctx_synchronize(fairkv_rt_ctx *ctx);
/// Ends a step. After a prefill it chooses the tokens each head keeps and
/// fills the cache; with Ada-KV that is a collective of all devices (they
/// exchange their heads' scores), so every device must call it.
void fairkv_rt_step_end(fairkv_rt_ctx *ctx);
/// A compiled program's step (fairkv_program_step): the tokens it samples
/// for [batch, seq] token ids and positions.
typedef fairkv_rt_tensor *(*fairkv_rt_step_fn)(fairkv_rt_ctx *ctx,
                                               int64_t device,
                                               fairkv_rt_tensor *ids,
                                               fairkv_rt_tensor *positions);
/// Runs `step` on this device between fairkv_rt_step_begin and
/// fairkv_rt_step_end and returns its tokens: a call of `step`, or, under
/// fairkv_rt_options.cuda_graphs, a decode step replayed from its CUDA
/// graph (the same tokens and logits).
fairkv_rt_tensor *fairkv_rt_run_step(fairkv_rt_ctx *ctx, int64_t device,
                                     fairkv_rt_tensor *ids,
                                     fairkv_rt_tensor *positions,
                                     fairkv_rt_step_fn step);
/// A [rows, cols] int64 tensor (token ids, positions) for this step.
fairkv_rt_tensor *fairkv_rt_tensor_from_i64(fairkv_rt_ctx *ctx,
                                            const int64_t *data, int64_t rows,
                                            int64_t cols);
/// A float tensor of `rank` dims (at most 4) holding a copy of `data`.
fairkv_rt_tensor *fairkv_rt_tensor_from_f32(fairkv_rt_ctx *ctx,
                                            const float *data,
                                            const int64_t *shape,
                                            int64_t rank);
int64_t fairkv_rt_tensor_numel(const fairkv_rt_tensor *tensor);
/// The data of a float tensor (null for an int64 tensor).
const float *fairkv_rt_tensor_f32_data(const fairkv_rt_tensor *tensor);
/// The data of an int64 tensor (null for a float tensor).
const int64_t *fairkv_rt_tensor_i64_data(const fairkv_rt_tensor *tensor);

/// Rows of the weights' `model.embed_tokens.weight` (the vocabulary), or -1.
int64_t fairkv_rt_session_vocab(const fairkv_rt_session *session);
/// The last-position logits greedy_sample saw in the last step on this
/// device (batch x vocab floats); `*count` receives their number. The CUDA
/// backend keeps them on the device until this call copies them.
const float *fairkv_rt_ctx_last_logits(const fairkv_rt_ctx *ctx,
                                       int64_t *count);
/// CPU backend: entry `index` of what this device's KV cache holds, in
/// (layer, KV head, request) order: sets `*layer`, `*head`, `*request` and
/// `*positions` (the sequence positions of the tokens it keeps, ascending;
/// valid until the next step) and returns their number, or -1 past the
/// last entry (and always on the CUDA backend).
int64_t fairkv_rt_ctx_kept(const fairkv_rt_ctx *ctx, int64_t index,
                           int64_t *layer, int64_t *head, int64_t *request,
                           const int64_t **positions);
/// Work done on this device so far: seconds in attention at prefill and at
/// decode, KV tokens held, bytes of KV page pools.
void fairkv_rt_ctx_stats(const fairkv_rt_ctx *ctx,
                         double *prefill_attention_seconds,
                         double *decode_attention_seconds, int64_t *kv_tokens,
                         int64_t *kv_pool_bytes);
/// The most bytes of step tensors (op results, and on a GPU the ops'
/// temporaries) this device held at once in a prefill step and in a decode
/// step so far: what its activations need beside its weights and KV cache.
/// A tensor counts from the op that makes it to its release
/// (fairkv_rt_release) or the end of its step. A decode step replayed from
/// a CUDA graph makes none: the graph's buffers are its own.
void fairkv_rt_ctx_tensor_bytes(const fairkv_rt_ctx *ctx, int64_t *prefill_peak,
                                int64_t *decode_peak);
/// What one kind of op took on a device, summed over its calls
/// (fairkv_rt_ctx_op_times).
typedef struct fairkv_rt_op_time {
  /// The runtime entry point without its prefix ("attention", "mlp", ...).
  const char *name;
  int64_t prefill_calls, decode_calls;
  double prefill_seconds, decode_seconds;
  /// Bytes of weights the decode calls read (in the storage type).
  double decode_weight_bytes;
} fairkv_rt_op_time;

/// Op timing (op_times): the ops this device ran, by name, up to `capacity`
/// of them into `out` (names valid until the next call); returns how many
/// there are, and the decode steps the device ran in `decode_steps`.
/// Waits for the device's timed work. Without op_times only attention is
/// there.
int64_t fairkv_rt_ctx_op_times(fairkv_rt_ctx *ctx, fairkv_rt_op_time *out,
                               int64_t capacity, int64_t *decode_steps);

/// Timing mode (time_devices): seconds this device worked, without its
/// collectives' waits and transfers, in prefill steps and in decode steps,
/// the decode steps, and the median decode step; all 0 otherwise.
void fairkv_rt_ctx_busy_seconds(const fairkv_rt_ctx *ctx,
                                double *prefill_seconds,
                                double *decode_seconds,
                                int64_t *decode_steps,
                                double *median_decode_step_seconds);
/// Writes a seeded random-weight model of this shape to `path` as
/// safetensors with Hugging Face tensor names; `dtype` is "f32", "f16" or
/// "bf16" (storage; the CPU backend computes in fp32).
fairkv_status_t fairkv_rt_write_random_weights(
    const char *path, int64_t layers, int64_t hidden, int64_t heads,
    int64_t kv_heads, int64_t head_dim, int64_t ffn, int64_t vocab,
    uint64_t seed, const char *dtype);

/// One tensor a model reads: its Hugging Face name and shape (rank 1 or 2).
typedef struct fairkv_rt_tensor_spec {
  const char *name;
  int64_t rank;
  int64_t shape[2];
} fairkv_rt_tensor_spec;

/// Checks that the safetensors file `path` holds exactly these tensors: each
/// with its shape and a supported dtype (F32, F16, BF16), and no tensor the
/// model would not read (a bias on a family without biases); otherwise
/// returns an error with a one-line reason.
fairkv_status_t fairkv_rt_check_tensors(const char *path,
                                        const fairkv_rt_tensor_spec *specs,
                                        int64_t count);

/// Checks that the safetensors file `path` holds every tensor of a model of
/// this shape (Hugging Face names) with the right shape and a supported
/// dtype (F32, F16, BF16); otherwise returns an error with a one-line reason.
fairkv_status_t fairkv_rt_check_weights(const char *path, int64_t layers,
                                        int64_t hidden, int64_t heads,
                                        int64_t kv_heads, int64_t head_dim,
                                        int64_t ffn, int64_t vocab);

/// Benchmark support: fills request `request`'s cache of (`layer`, kv head
/// `head`) on this device with `tokens` seeded random K/V rows of
/// `head_dim`, as if a prefill had kept them (sizing the page pool for
/// `requests` such requests on first use).
void fairkv_rt_cache_fill_random(fairkv_rt_ctx *ctx, int64_t layer,
                                 int64_t head, int64_t request, int64_t tokens,
                                 int64_t head_dim, int64_t requests,
                                 uint64_t seed);

/// How many column blocks fairkv_rt_linear_all_reduce reduces a [rows,
/// columns] fp32 result in: at most `chunks` and `columns`, each block of
/// at least `min_chunk_bytes` (0: no floor), at least one. It depends only
/// on the shape, so every device of a collective splits alike.
int64_t fairkv_rt_reduction_blocks(int64_t rows, int64_t columns,
                                   int64_t chunks, int64_t min_chunk_bytes);

/// Prints "fairkv runtime: error: <message>" and exits the process.
void fairkv_rt_fatal(const char *message);

/*===----------------------------------------------------------------------===
 * The entry points compiled programs call, from RuntimeAPI.def.
 *===----------------------------------------------------------------------===*/

#define RT_CTX fairkv_rt_ctx *
#define RT_T fairkv_rt_tensor *
#define RT_I64 int64_t
#define RT_F64 double
#define RT_STR const char *
#define RT_IARR const int64_t *
#define RT_FARR const double *
#define RT_VOID void
#define FAIRKV_RT_FN(name, result, args) result fairkv_rt_##name args;
#include "fairkv/Runtime/RuntimeAPI.def"

#ifdef __cplusplus
}
#endif

#endif /* FAIRKV_RUNTIME_FAIRKVRUNTIME_H */

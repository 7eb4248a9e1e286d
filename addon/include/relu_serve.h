/* relu-serve engine: a small C ABI over opaque handles.
 *
 * Every function that can fail returns an rs_status and, where it takes an
 * rs_error*, writes a human-readable message naming the problem (the file, the
 * tensor, the key, the sizes involved). Nothing here aborts the process: errors are
 * values. Handles come in init/free pairs; a free of NULL is a no-op.
 *
 * Threading: a model is immutable after load and may be shared by contexts. A
 * context is used by one caller at a time (the N-API layer serialises calls on it).
 */
#ifndef RELU_SERVE_H
#define RELU_SERVE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  RS_OK = 0,
  RS_ERR_IO = 1,          /* cannot open / map / read the file */
  RS_ERR_FORMAT = 2,      /* the file is malformed (magic, version, bounds, counts...) */
  RS_ERR_UNSUPPORTED = 3, /* well-formed but uses something we do not support */
  RS_ERR_INVALID_ARG = 4, /* caller passed something out of range */
  RS_ERR_NO_MEMORY = 5,   /* an allocation failed */
  RS_ERR_INTERNAL = 6,
  RS_ERR_MODEL_FILE = 7   /* the model file changed under the engine: a read of its mapping
                             faulted (truncated in place); the model refuses every decode after */
} rs_status;

typedef struct {
  char message[1024];
} rs_error;

typedef struct rs_model rs_model;
typedef struct rs_context rs_context;

/* ---------- model ---------- */

typedef struct {
  /* "auto" or NULL: decided from the file (see README "FFN activation");
   * otherwise "swiglu", "relu_glu" or "drelu". */
  const char *ffn_activation;
  /* Read the whole file into memory instead of mapping it (for tests and odd
   * filesystems). */
  int no_mmap;
  /* Do not repack the FFN of ReLU models into the sparse layout (dense-only use, tests). */
  int no_repack;
  /* Sparse FFN of PowerInfer files with Q4_0 down rows: store them in the split layout
   * and accumulate the down projection in 8-bit integers (rs_axpy_q4_0s_i8: each term's
   * coefficient rounded to 1/127 of the largest of up to 16 neurons in its block; error
   * of the order of a dense Q4_0 product's). Faster on CPUs where widening nibbles to
   * floats is the bottleneck; exact and predictor mode then differ from dense mode by
   * that rounding. No effect on other types. */
  int down_int8;
} rs_model_params;

void rs_model_params_default(rs_model_params *p);
rs_status rs_model_load(const char *path, const rs_model_params *params, rs_model **out,
                        rs_error *err);
void rs_model_free(rs_model *model);

typedef struct {
  const char *arch;         /* "llama" | "bamboo" */
  const char *ffn_act;      /* "swiglu" | "relu_glu" | "drelu" */
  const char *ffn_act_from; /* why: "flag", "powerinfer magic", "architecture", "model name", "default" */
  int is_powerinfer;        /* magic was PWRI */
  int gguf_version;
  int n_vocab, n_embd, n_ff, n_layer, n_head, n_head_kv, n_ctx_train;
  float rope_freq_base, rms_eps;
  int tied_output;          /* output matrix shares the token embedding */
  uint64_t n_params;        /* weights in the matmul/embedding tensors */
  uint64_t file_bytes;
  uint64_t bytes_per_token; /* weight bytes a one-token decode reads (all matrices but the embedding) */
  uint64_t non_ffn_bytes;   /* of which outside the FFN (attention, output) */
  uint64_t neuron_bytes;    /* one FFN neuron's gate+up+down rows (layer 0) */
  uint64_t predictor_bytes; /* all layers' predictors */
  int has_predictors;       /* PowerInfer fc1/fc2 present */
  int sparse_capable;       /* ReLU-type FFN: neurons can be skipped */
  int sparse_packed;        /* FFN repacked into the per-neuron layout at load */
  float sparse_threshold;   /* powerinfer.sparse_threshold (0 when absent) */
  double repack_ms;         /* load-time repacking */
  uint64_t file_resident_bytes; /* mincore over the file's bytes now: the --no-mmap private
                                   copy's pages this process holds; for a mapping, the pages
                                   in the page cache (resident or not in this process) */
  uint64_t x8_bytes;        /* plain-row bytes of the matrices repacked 8 rows at a time at
                               load (dense Q4_0 products; 0 where the CPU has no such kernel) */
} rs_model_info;

void rs_model_get_info(const rs_model *model, rs_model_info *info);

/* ---------- GGUF metadata (read-only view of the file's key/values) ---------- */

typedef enum {
  RS_META_U8 = 0, RS_META_I8 = 1, RS_META_U16 = 2, RS_META_I16 = 3, RS_META_U32 = 4,
  RS_META_I32 = 5, RS_META_F32 = 6, RS_META_BOOL = 7, RS_META_STRING = 8,
  RS_META_ARRAY = 9, RS_META_U64 = 10, RS_META_I64 = 11, RS_META_F64 = 12
} rs_meta_type;

typedef struct {
  const char *data; /* not NUL-terminated */
  uint64_t len;
} rs_str;

typedef struct rs_meta_kv {
  rs_str key;
  rs_meta_type type;      /* for arrays: RS_META_ARRAY */
  rs_meta_type elem_type; /* arrays only */
  uint64_t n;             /* arrays only: element count */
  /* scalars: the value widened; strings: str; arrays of numbers: data points at the
   * packed little-endian elements (maybe unaligned); arrays of strings: strs[n];
   * arrays of arrays: items[n] (key empty) */
  union { uint64_t u; int64_t i; double f; rs_str str; } v;
  const void *data;
  const rs_str *strs;
  const struct rs_meta_kv *items;
} rs_meta_kv;

int64_t rs_model_meta_count(const rs_model *model);
/* Fills *kv for index i; pointers stay valid while the model lives. */
rs_status rs_model_meta_get(const rs_model *model, int64_t i, rs_meta_kv *kv);

/* ---------- tensors ---------- */

typedef struct {
  const char *name; /* NUL-terminated */
  int type;         /* ggml type id */
  const char *type_name;
  int n_dims;
  int64_t ne[4];    /* ne[0] fastest */
  uint64_t n_bytes;
  uint64_t offset;  /* from the start of the data section */
} rs_tensor_info;

int64_t rs_model_tensor_count(const rs_model *model);
rs_status rs_model_tensor_get(const rs_model *model, int64_t i, rs_tensor_info *info);

/* ---------- context: KV cache for several sequences, decode ---------- */

typedef struct {
  int n_seq;     /* sequences (server slots) held at once */
  int n_ctx;     /* positions per sequence */
  int n_threads; /* compute threads (0: all cores) */
  int n_batch;   /* most tokens one decode may carry */
  int isa;       /* rs_isa cap; RS_ISA_BEST (99) for the best the CPU has */
  const char *backend; /* "cpu" (default) or "ref" (plain reference kernels, tests) */
  /* FFN mode: "auto" (predictor where the file has predictors, exact for other ReLU
   * models, dense for SiLU), "dense", "exact" or "predictor". */
  const char *ffn_mode;
  float sparse_threshold; /* predictor threshold; NaN: the file's powerinfer.sparse_threshold */
  int sparse_max_batch;   /* a sequence bringing more rows to a step runs the dense FFN; 1 to
                           * RS_SPARSE_MAX_BATCH_LIMIT, or 0: every size for PowerInfer
                           * files (the limit), 8 for other ReLU files (measured crossovers) */

  /* Hybrid CPU/GPU runtime (README "Hybrid CPU/GPU"). device: "cpu" (default), "cuda",
   * "emu" (the emulated device, for machines without a GPU) or "auto" (cuda when a GPU is
   * found, else cpu). On a device, attention, predictors, norms, output and KV cache live
   * in device memory, and the FFN's hot neurons; the CPU computes the cold ones. */
  const char *device;
  uint64_t vram_budget;        /* bytes the device may hold; 0: a placement file's budget, else */
  double vram_budget_fraction; /* this share of the device's free memory (default 0.9) */
  /* Hot neurons: hot_ids[l] (hot_counts[l] ascending ids) for each layer, e.g. solved from
   * activation statistics by the caller (hot_source says how, for the report); else the
   * .rspl / .gpuidx at placement_path; else an even choice that fills the budget. */
  const char *placement_path;
  const int32_t *const *hot_ids;
  const uint32_t *hot_counts;
  const char *hot_source;
  uint64_t emu_memory;  /* emulated device: its memory (0: 8 GiB) */
  int emu_latency_us;   /* emulated device: delay before every operation */
} rs_context_params;

#define RS_SPARSE_MAX_BATCH_LIMIT 65536

void rs_context_params_default(rs_context_params *p);
rs_status rs_context_new(rs_model *model, const rs_context_params *params, rs_context **out,
                         rs_error *err);
void rs_context_free(rs_context *ctx);

/* One decode step. n entries; entry j is token tokens[j] of sequence seq[j] at position
 * pos[j]. Within a sequence positions must be increasing and contiguous with what the
 * cache already holds for it (pos[j] == length so far). For each j with want[j] != 0 the
 * logits of that row are written, in order, to logits_out (n_vocab floats each). */
rs_status rs_decode(rs_context *ctx, int n, const int32_t *tokens, const int32_t *pos,
                    const int32_t *seq, const uint8_t *want, float *logits_out, rs_error *err);

/* Forget positions >= p0 of a sequence (p0 = 0 clears it). */
rs_status rs_seq_truncate(rs_context *ctx, int seq, int p0, rs_error *err);
/* Positions the cache holds for a sequence. */
int rs_seq_length(const rs_context *ctx, int seq);

/* Activation statistics of the FFN (dense path: the true activations). When enabled,
 * every decoded row adds 1 to counts[layer][i] for each neuron i whose activation is
 * non-zero. */
rs_status rs_context_set_activation_counting(rs_context *ctx, int enable, rs_error *err);
/* Copies layer `layer`'s counts (n_ff values); *n_rows gets the rows counted so far. */
rs_status rs_context_get_activation_counts(const rs_context *ctx, int layer, uint32_t *counts,
                                           uint64_t *n_rows, rs_error *err);
void rs_context_reset_activation_counts(rs_context *ctx);
/* Capture for predictor training: while enabled (and counting is on), every counted row
 * also keeps, per layer, the FFN block's input residual (n_embd floats, before ffn_norm)
 * and its true activation mask (n_ff bits, LSB first, (n_ff + 7) / 8 bytes per row).
 * Reset with rs_context_reset_activation_counts. */
rs_status rs_context_set_activation_capture(rs_context *ctx, int enable, rs_error *err);
/* Pointers into the context's capture of layer `layer` (valid until the next decode or
 * reset); *n_rows gets its rows. */
rs_status rs_context_get_activation_capture(const rs_context *ctx, int layer, const float **x,
                                            const uint8_t **mask, uint64_t *n_rows, rs_error *err);
/* Predictor quality of layer `layer` over the counted rows (zeros without predictors):
 * (row, neuron) pairs predicted and active, predicted only, active only. */
rs_status rs_context_get_predictor_quality(const rs_context *ctx, int layer, uint64_t *tp, uint64_t *fp,
                                           uint64_t *fn, rs_error *err);

/* Sparsity of the FFN as computed: per layer, (row, neuron) pairs computed in the last
 * decode and since the context was made (dense steps count every neuron). */
typedef struct {
  const char *ffn_mode; /* the mode in force: "dense", "exact", "predictor" */
  float threshold;
  int sparse_max_batch;
  uint64_t last_rows, total_rows, sparse_steps, dense_steps;
  /* Wall time of the steps' parts since the context was made (ms; CPU steps, not the
   * hybrid executor's): attention blocks, choosing the FFN's neurons (predictor or exact
   * mode's gate), the rest of the FFN blocks, the output head. */
  double attention_ms, select_ms, ffn_ms, output_ms;
} rs_sparsity_info;
/* last_pairs and total_pairs: n_layer values each, or NULL. */
void rs_context_get_sparsity(const rs_context *ctx, rs_sparsity_info *info, uint64_t *last_pairs,
                             uint64_t *total_pairs);

typedef struct {
  double t_total_ms;      /* wall time inside rs_decode, cumulative */
  uint64_t n_decode_calls;
  uint64_t n_tokens;
  int n_threads;
  const char *isa;
  const char *backend;
} rs_context_stats;
void rs_context_get_stats(const rs_context *ctx, rs_context_stats *stats);

/* Where the hybrid runtime put what. Byte counts are what was allocated on the device,
 * by category, each piece rounded to 256 bytes (the rule `relu-serve place` uses). */
typedef struct {
  const char *device;       /* "cpu", "emu", "cuda" */
  const char *name;         /* the device, in words */
  uint64_t memory_total, memory_free; /* the device's, before this context's allocation */
  uint64_t budget;
  const char *budget_from;  /* "bytes", "placement file", "90% of free memory" */
  uint64_t attention, predictors, norms, output, kv_cache, index, workspace, ffn;
  uint64_t ffn_all;         /* the pieces every FFN neuron would take */
  uint64_t used;            /* all of the above but ffn_all */
  const char *placement_source;
} rs_device_info;
/* hot_per_layer: n_layer values (hot neurons placed), or NULL. On the CPU: device "cpu",
 * zeros elsewhere. Strings live as long as the context. */
void rs_context_get_device_info(const rs_context *ctx, rs_device_info *info, uint32_t *hot_per_layer);
/* The device's hot neurons of one layer, ascending (hot_per_layer[layer] values). */
rs_status rs_context_get_hot_neurons(const rs_context *ctx, int layer, int32_t *ids, rs_error *err);

/* The hybrid runtime's work per side: cumulative, and for the last decode. Pairs are
 * (row, neuron) pairs of the FFN computed on the device and on the host; device_wait_ms
 * is time the device spent waiting for the host's cold neurons (the host's FFN time
 * that was not hidden behind the device's). */
typedef struct {
  uint64_t steps, pairs_device, pairs_host;
  double device_busy_ms, device_wait_ms, host_ffn_ms, wall_ms;
  uint64_t last_pairs_device, last_pairs_host;
  double last_device_busy_ms, last_device_wait_ms, last_host_ffn_ms, last_wall_ms;
  /* Device time by part of the step, cumulative; filled only with the environment
   * variable RELU_SERVE_PROFILE_DEVICE=1 (timing every operation costs a little). */
  double attention_ms, predictor_ms, hot_ffn_ms, transfer_wait_ms, merge_ms, output_ms;
  /* Steps run from a recording (a CUDA graph: the step's shape seen before) and the
   * shapes recorded; RELU_SERVE_DEVICE_GRAPHS=0 turns recording off. */
  uint64_t replayed_steps, recordings;
} rs_hybrid_stats;
void rs_context_get_hybrid_stats(const rs_context *ctx, rs_hybrid_stats *stats);

/* CUDA devices this build can use (0 without CUDA support, a driver or a GPU). */
int rs_cuda_devices(void);
/* A device's memory before any context uses it: device "cuda" (the first GPU) or "emu"
 * (emu_memory bytes, 0: the default 8 GiB). For budgets given as a share of free memory. */
rs_status rs_device_memory(const char *device, uint64_t emu_memory, uint64_t *total, uint64_t *free_bytes,
                           rs_error *err);

/* ---------- machine ---------- */

/* This machine's memory read bandwidth, the limit a bandwidth-bound decode is judged
 * against: every configuration the parameters allow (read pattern, vector ISA, thread
 * count, ordinary or huge pages) reads a buffer far larger than the caches `reps` times;
 * each gives a row with its fastest and median pass. Method: addon/src/bandwidth.cpp. */
typedef struct {
  int max_threads;  /* thread counts 1, 2, 4, ... below this, and this (0: all cores) */
  int only_threads; /* > 0: only this thread count */
  uint64_t bytes;   /* buffer size, at least 64 MiB */
  int reps;         /* passes per configuration, 1..100 */
  uint32_t patterns; /* bit p: rs_read_pattern p (rs_kernels.h) */
  uint32_t pages;    /* bit 0: ordinary pages, bit 1: transparent huge pages */
  uint32_t isas;     /* bit i: rs_isa i; only vector ISAs this CPU has are tried */
} rs_bandwidth_params;
rs_bandwidth_params rs_bandwidth_default_params(void); /* all cores, 1 GiB, 5 reps, everything */

typedef struct {
  int pattern;                /* rs_read_pattern */
  const char *pattern_name;   /* static string: "plain", "prefetch", "nontemporal", "two-streams" */
  const char *isa_name;       /* static string: "avx2", "avx512", "scalar" */
  int threads;
  int huge_pages;
  double best_gb_per_s;       /* fastest pass (1e9 bytes/s) */
  double median_gb_per_s;
} rs_bandwidth_row;
#define RS_BANDWIDTH_MAX_ROWS 256

/* Fills rows[0 .. *n_rows) (max_rows of room; RS_BANDWIDTH_MAX_ROWS is always enough). */
rs_status rs_measure_read_bandwidth(const rs_bandwidth_params *params, rs_bandwidth_row *rows, int max_rows,
                                    int *n_rows, rs_error *err);

#ifdef __cplusplus
}
#endif
#endif

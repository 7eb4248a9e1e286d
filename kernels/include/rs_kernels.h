/* relu-serve compute kernels: pure functions over raw pointers.
 *
 * No globals that change, no allocation, no exit(). Every optimised kernel has a
 * plain reference twin in kernels/ref (rs_ref_*) that is the test oracle.
 *
 * Conventions
 * - A weight matrix W has `rows` rows of `n` elements each (GGUF ne[0] = n is the
 *   fastest dimension); each row is rs_row_size(type, n) bytes and rows are packed.
 * - Quantised weights are multiplied with activations converted to the weight
 *   type's "vec-dot type" (rs_type_traits.vec_dot_type): Q8_0X for Q4_0 and Q8_0
 *   (Q8_0 blocks plus a part laid out for the SIMD kernels), Q8_K for the K-quants,
 *   F32 for F32/F16/BF16. Size activation buffers with rs_row_size(vec_dot_type, n).
 *   The reference twin uses the same converted activations, so optimised and
 *   reference results differ only by float summation order.
 * - Type ids are GGUF's (ggml_type) so that file values can be used directly.
 */
#ifndef RS_KERNELS_H
#define RS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  RS_TYPE_F32 = 0,
  RS_TYPE_F16 = 1,
  RS_TYPE_Q4_0 = 2,
  RS_TYPE_Q4_1 = 3,
  RS_TYPE_Q5_0 = 6,
  RS_TYPE_Q5_1 = 7,
  RS_TYPE_Q8_0 = 8,
  RS_TYPE_Q8_1 = 9,
  RS_TYPE_Q2_K = 10,
  RS_TYPE_Q3_K = 11,
  RS_TYPE_Q4_K = 12,
  RS_TYPE_Q5_K = 13,
  RS_TYPE_Q6_K = 14,
  RS_TYPE_Q8_K = 15,
  RS_TYPE_I8 = 24,
  RS_TYPE_I16 = 25,
  RS_TYPE_I32 = 26,
  RS_TYPE_I64 = 27,
  RS_TYPE_F64 = 28,
  RS_TYPE_BF16 = 30,
  RS_TYPE_COUNT = 40,
  /* Not a GGUF type: the activation format of Q4_0 and Q8_0 weights. A row of n elements is
   * the n/32 standard Q8_0 blocks followed, for each whole group of 4 blocks, by 256
   * bytes the AVX-512 kernel streams against (see kernels/ref/rs_blocks.h). Kernels
   * without a use for the extra part read the Q8_0 prefix only. */
  RS_TYPE_Q8_0X = 100
} rs_type;

typedef struct {
  const char *name;     /* "q4_0" ... ; NULL for ids we do not know at all */
  int block_size;       /* elements per block (1 for plain floats) */
  size_t type_size;     /* bytes per block */
  rs_type vec_dot_type; /* activation format the matmul kernels expect */
  int supported;        /* 1 if relu-serve can use this type as a matmul weight */
} rs_type_traits;

/* Traits for a type id (GGUF ids, and RS_TYPE_Q8_0X); returns a record with
 * name == NULL for unknown ids. */
const rs_type_traits *rs_type_get_traits(int type);
/* Bytes of one row of n elements (n must be a multiple of the block size).
 * Returns 0 for an unknown type or an n that is not a non-negative multiple of the
 * block size, so callers can reject bad input instead of reading out of bounds. */
size_t rs_row_size(rs_type type, int64_t n);

/* ---------- conversions ---------- */
float rs_fp16_to_fp32(uint16_t h);
uint16_t rs_fp32_to_fp16(float f);
float rs_bf16_to_fp32(uint16_t h);
uint16_t rs_fp32_to_bf16(float f);

/* ---------- instruction sets ---------- */
typedef enum {
  RS_ISA_SCALAR = 0, /* portable C, what any x86-64 (or other) CPU runs */
  RS_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
  RS_ISA_AVX512 = 2, /* AVX-512 F/BW/VL/DQ (+VNNI where present) */
  RS_ISA_BEST = 99   /* the best this CPU supports (the default) */
} rs_isa;

/* The best ISA this CPU supports, honouring the RELU_SERVE_ISA environment
 * variable ("scalar", "avx2", "avx512") as a cap. */
rs_isa rs_cpu_best_isa(void);
const char *rs_isa_name(rs_isa isa);

/* ---------- matmul kernels of one weight type ---------- */

/* Convert n floats (one activation row) to this type's vec-dot format.
 *   x: [n] f32;  y: rs_row_size(vec_dot_type, n) bytes */
typedef void (*rs_from_float_fn)(const float *x, void *y, int64_t n);

/* Dequantise one row.  x: rs_row_size(type, n) bytes;  y: [n] f32 */
typedef void (*rs_to_float_fn)(const void *x, float *y, int64_t n);

/* out = dot(w_row, a_row) over n elements.
 *   w: one weight row (type);  a: one activation row (vec_dot_type) */
typedef void (*rs_vec_dot_fn)(int64_t n, float *out, const void *w, const void *a);

/* Tile of a matrix product: for r < nr, c < nc:
 *   out[c * out_stride + r] = dot(w + r * w_stride, a + c * a_stride)
 *   w: nr weight rows, w_stride bytes apart;  a: nc activation rows (vec_dot_type),
 *   a_stride bytes apart;  out: floats, out_stride floats between activation rows.
 * Implementations reuse each loaded weight block across the nc activation rows, which
 * is what makes prompt processing compute-bound rather than bandwidth-bound. */
typedef void (*rs_gemm_fn)(int64_t n, int nr, int nc, const void *w, size_t w_stride,
                           const void *a, size_t a_stride, float *out, size_t out_stride);

/* Matrix product over weights repacked eight rows at a time (rs_q4_0x8_pack):
 *   out[c * out_stride + 8 * g + r] = dot(row 8g + r, a + c * a_stride)
 *   for g < ng, r < 8, c < nc.  w8: ng groups of 8 repacked rows of n elements;
 *   a: nc activation rows (vec_dot_type), a_stride bytes apart.
 * One summation order per output whatever ng and nc (see rs_ref_q4_0x8_gemm), so a
 * decode (nc = 1) and a prompt (nc > 1) give a row the same bits. */
typedef void (*rs_gemm_x8_fn)(int64_t n, int ng, int nc, const void *w8, const void *a, size_t a_stride,
                              float *out, size_t out_stride);

typedef struct {
  rs_from_float_fn from_float; /* f32 -> vec_dot_type (quantises activations) */
  rs_to_float_fn to_float;     /* this type -> f32 */
  rs_vec_dot_fn vec_dot;       /* this type . vec_dot_type */
  rs_gemm_fn gemm;             /* tile of this type x vec_dot_type */
  rs_gemm_x8_fn gemm_x8;       /* the same product over 8-row repacked weights; NULL where
                                  this ISA has none (the plain rows are used instead) */
} rs_matmul_kernels;

/* Q4_0 weights repacked eight rows at a time. Why: a row-at-a-time Q4_0 dot converts
 * one f16 scale per block and adds each block into one long dependency chain, so on
 * AVX2 it is compute-bound well below memory speed. Interleaved, one load brings the
 * 8 rows' scales (one conversion) and each 32-bit lane of a register holds one row, so
 * the 8 rows' dots proceed side by side with no horizontal sums.
 * Layout: per group g of rows 8g..8g+7, per block b (n / 32 of them), 144 bytes:
 *   d[8] (f16, row r's scale), then qs[128] with qs[32k + 4r + j] = row r's qs[4k + j]
 *   (k < 4, j < 4): register k holds 4 bytes (8 nibbles) of every row.
 * Same size as the plain rows: rows * rs_row_size(RS_TYPE_Q4_0, n).
 *   w: rows (a multiple of 8) plain Q4_0 rows, w_stride bytes apart;  dst: the layout */
void rs_q4_0x8_pack(const void *w, size_t w_stride, int64_t rows, int64_t n, void *dst);

/* Kernels for weight type `type` at instruction set `isa` (RS_ISA_BEST picks the best
 * available; a request above what the CPU has falls back to the best available).
 * Returns NULL if the type is not a supported weight type. */
const rs_matmul_kernels *rs_cpu_matmul_kernels(rs_type type, rs_isa isa);

/* Quantise n floats into `type` (any supported weight type, used by model writers
 * and tests; not on the hot path). dst: rs_row_size(type, n) bytes. */
void rs_quantize_row(rs_type type, const float *src, void *dst, int64_t n);

/* ---------- float kernels (optimised; dispatch on rs_cpu_best_isa) ---------- */

/* y = x / rms(x) * w.  x, y: [n];  w: [n];  eps: from the model file */
void rs_rmsnorm(float *y, const float *x, const float *w, int n, float eps);
/* In-place rotary embedding, "normal" (interleaved pairs, llama GGUF) layout.
 *   x: [n_head][head_dim];  pos: token position;  freq_base: rope theta */
void rs_rope(float *x, int n_head, int head_dim, int pos, float freq_base);
/* In-place softmax over n values. */
void rs_softmax(float *x, int n);
/* dot of n floats */
float rs_dot_f32(const float *a, const float *b, int n);
/* dot of n f32 with n f16 (the KV cache) */
float rs_dot_f32_f16(const float *a, const uint16_t *b, int n);
/* y += a * x over n, x stored as f16 (the KV cache) */
void rs_axpy_f16(float *y, float a, const uint16_t *x, int n);
/* Store n floats as f16. */
void rs_f32_to_f16_row(const float *x, uint16_t *y, int n);

/* FFN activations, h = act(gate, up) elementwise over n:
 *   SWIGLU: silu(g) * u      RELU_GLU: relu(g) * u      DRELU: relu(g) * relu(u) */
typedef enum { RS_ACT_SWIGLU = 0, RS_ACT_RELU_GLU = 1, RS_ACT_DRELU = 2 } rs_act;
void rs_ffn_act(rs_act act, float *h, const float *gate, const float *up, int n);

/* Attention of one query head over t_len cached positions (same contract as
 * rs_ref_attention_head below), with the best ISA's dot/axpy kernels. */
void rs_attention_head(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                       int t_len, int head_dim, size_t row_stride, float scale,
                       float *scratch);

/* The n_q query heads that share one KV head (grouped-query attention), together:
 * out[g] = softmax(q[g] . K^T * scale) V for g < n_q.
 *   q, out: [n_q][head_dim];  k, v: [t_len] rows of head_dim f16, row_stride elements
 *   apart;  scratch: [n_q][t_len].  Equals rs_ref_attention_gqa up to float rounding
 *   (the dot products are summed in another order). */
void rs_attention_gqa(rs_isa isa, float *out, const float *q, int n_q, const uint16_t *k, const uint16_t *v,
                      int t_len, int head_dim, size_t row_stride, float scale, float *scratch);

/* How a bandwidth probe reads memory. Machines differ in which is fastest, so the probe
 * (addon/src/bandwidth.cpp) tries each and keeps the best:
 *   PLAIN:       widest loads, four independent accumulators, hardware prefetch only;
 *   PREFETCH:    the same with software prefetches RS_READ_PREFETCH_AHEAD bytes ahead;
 *   NONTEMPORAL: streaming loads (movntdqa) with non-temporal prefetches ahead, which
 *                keep the stream from evicting the caches;
 *   TWO_STREAMS: two halves of the range read in lockstep (two hardware prefetch streams
 *                per thread). */
typedef enum {
  RS_READ_PLAIN = 0,
  RS_READ_PREFETCH = 1,
  RS_READ_NONTEMPORAL = 2,
  RS_READ_TWO_STREAMS = 3,
  RS_READ_PATTERN_COUNT = 4
} rs_read_pattern;
#define RS_READ_PREFETCH_AHEAD 1024
const char *rs_read_pattern_name(rs_read_pattern pattern);

/* Reads every byte of [p, p + bytes) with the widest loads the ISA has, in the given
 * pattern, and returns a checksum (so the reads cannot be optimised away); any p and
 * bytes (an unaligned head and a short tail are read a byte at a time). Used to measure this machine's memory read
 * bandwidth, against which the kernels are judged. */
uint64_t rs_stream_read(const void *p, size_t bytes, rs_read_pattern pattern);

/* The float kernels of one ISA, for tests and benchmarks that compare ISAs (the
 * rs_* functions above dispatch to the table of rs_cpu_best_isa()). A request above
 * what the CPU has falls back to the best available, as for the matmul kernels. */
typedef struct {
  rs_isa isa; /* the ISA actually used */
  void (*rmsnorm)(float *y, const float *x, const float *w, int n, float eps);
  void (*rope)(float *x, int n_head, int head_dim, int pos, float freq_base);
  void (*softmax)(float *x, int n);
  float (*dot_f32)(const float *a, const float *b, int n);
  float (*dot_f32_f16)(const float *a, const uint16_t *b, int n);
  void (*axpy_f16)(float *y, float a, const uint16_t *x, int n);
  void (*f32_to_f16_row)(const float *x, uint16_t *y, int n);
  void (*ffn_act)(rs_act act, float *h, const float *gate, const float *up, int n);
  uint64_t (*stream_read)(const void *p, size_t bytes, rs_read_pattern pattern);
} rs_float_kernels;
const rs_float_kernels *rs_cpu_float_kernels(rs_isa isa);

/* The ISA a request resolves to on this CPU (RS_ISA_BEST or a cap above what the CPU
 * has resolve to rs_cpu_best_isa()). */
rs_isa rs_cpu_resolve_isa(rs_isa isa);

/* Attention of one head with a given float-kernel table (rs_attention_head uses the
 * best ISA's table). */
void rs_attention_head_with(const rs_float_kernels *fk, float *out, const float *q,
                            const uint16_t *k, const uint16_t *v, int t_len, int head_dim,
                            size_t row_stride, float scale, float *scratch);

/* ---------- reference twins (kernels/ref): plain scalar C, the oracle ---------- */
void rs_ref_from_float(rs_type vec_dot_type, const float *x, void *y, int64_t n);
void rs_ref_to_float(rs_type type, const void *x, float *y, int64_t n);
/* dot of one weight row (type) and one activation row (its vec_dot_type) */
float rs_ref_vec_dot(rs_type type, int64_t n, const void *w, const void *a);
/* rs_gemm_x8_fn for Q4_0 x8 weights and Q8_0X activations, written plainly. It defines
 * the summation order every ISA's version keeps bit for bit: per output, each block's
 * exact integer dot sum((q - 8) * a) becomes a float, times (d_w * d_a), and is added
 * with one fused multiply-add into one of two accumulators by block parity (even
 * blocks, odd blocks); the result is even + odd. */
void rs_ref_q4_0x8_gemm(int64_t n, int ng, int nc, const void *w8, const void *a, size_t a_stride, float *out,
                        size_t out_stride);
void rs_ref_rmsnorm(float *y, const float *x, const float *w, int n, float eps);
void rs_ref_rope(float *x, int n_head, int head_dim, int pos, float freq_base);
void rs_ref_softmax(float *x, int n);
void rs_ref_ffn_act(rs_act act, float *h, const float *gate, const float *up, int n);
/* One query head against t_len cached positions: out[head_dim] = softmax(q.K^T*scale) V
 *   q: [head_dim];  k, v: [t_len] rows of head_dim f16, row_stride elements apart;
 *   scratch: [t_len] */
void rs_ref_attention_head(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                           int t_len, int head_dim, size_t row_stride, float scale,
                           float *scratch);
/* Grouped heads: rs_ref_attention_head for each of the n_q heads (see rs_attention_gqa). */
void rs_ref_attention_gqa(float *out, const float *q, int n_q, const uint16_t *k, const uint16_t *v, int t_len,
                          int head_dim, size_t row_stride, float scale, float *scratch);

#ifdef __cplusplus
}
#endif
#endif

/* Per-ISA kernel tables, defined by scalar.c, avx2.c and avx512.c and chosen by
 * dispatch.c. Internal to kernels/.
 *
 * Batch independence: within one ISA, gemm's output (r, c) is bit for bit
 * vec_dot(w_r, a_c), whatever nr, nc, and wherever r and c fall in the tiles, edge
 * tiles and column blocks. The server decodes many users' sequences in one batch, and
 * a request re-run with the same seed must give the same text whatever else shares its
 * step. Each type's tile therefore runs, per output, the exact accumulation of the
 * 1 x 1 tile that vec_dot is: the same accumulators, in the same order, with the same
 * final reduction; the tile shape only decides how many outputs share the loads.
 * (-ffp-contract=off in CMakeLists.txt keeps the compiler from fusing differently in
 * different inlined copies.) test/kernels/batch-independence.test.ts checks this for
 * every type x ISA. Different ISAs may differ from each other. */
#ifndef RS_CPU_INTERNAL_H
#define RS_CPU_INTERNAL_H

#include "rs_kernels.h"

typedef struct {
  rs_matmul_kernels mm[RS_TYPE_COUNT]; /* entries of unsupported types are all NULL */
  rs_float_kernels fk;
} rs_isa_tables;

extern const rs_isa_tables rs_tables_scalar;
#if defined(__x86_64__)
extern const rs_isa_tables rs_tables_avx2;
extern const rs_isa_tables rs_tables_avx512;
/* avx2.c, avx512.c: rs_dot_rows's Q4_0 kernels, nr in 1..4 (AVX2) or 1..8 (AVX-512), nb blocks (sparse_dot.c) */
void rs_avx2_dot_rows_q4_0(int nr, int64_t nb, const char *const *w, const char *a, float *out);
void rs_avx512_dot_rows_q4_0(int nr, int64_t nb, const char *const *w, const char *a, float *out);
/* avx512.c: rs_dot_rows's float kernel (type RS_TYPE_F32 / F16 / BF16 weights, F32
 * activations), nr in 1..4 */
void rs_avx512_dot_rows_f(int type, int nr, int64_t n, const void *const *w, const float *a, float *out);
/* avx2.c: rs_dot_rows's F16 kernel (F32 activations), nr in 1..4 */
void rs_avx2_dot_rows_f16(int nr, int64_t n, const void *const *w, const float *a, float *out);
/* avx2_q4_0x8.c, avx512_q4_0x8.c: rs_gemm_x8_fn for Q4_0 (q4_0x8_body.h) */
void rs_avx2_gemm_q4_0x8(int64_t n, int ng, int nc, const void *w8, const void *a, size_t as, float *out,
                         size_t os);
void rs_avx512_gemm_q4_0x8(int64_t n, int ng, int nc, const void *w8, const void *a, size_t as, float *out,
                           size_t os);
/* avx512_kquant.c */
void rs_avx512_vec_dot_q4_k(int64_t n, float *out, const void *w, const void *a);
void rs_avx512_vec_dot_q5_k(int64_t n, float *out, const void *w, const void *a);
void rs_avx512_vec_dot_q6_k(int64_t n, float *out, const void *w, const void *a);
void rs_avx512_gemm_q4_k(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a, size_t as,
                         float *out, size_t os);
void rs_avx512_gemm_q5_k(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a, size_t as,
                         float *out, size_t os);
void rs_avx512_gemm_q6_k(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a, size_t as,
                         float *out, size_t os);
#endif

/* Scalar pieces the SIMD tables reuse (dequantisers are not on the hot path). */
void rs_scalar_to_float_f32(const void *x, float *y, int64_t n);
void rs_scalar_to_float_f16(const void *x, float *y, int64_t n);
void rs_scalar_to_float_bf16(const void *x, float *y, int64_t n);
void rs_scalar_to_float_q4_0(const void *x, float *y, int64_t n);
void rs_scalar_to_float_q8_0(const void *x, float *y, int64_t n);
void rs_scalar_to_float_q4_k(const void *x, float *y, int64_t n);
void rs_scalar_to_float_q5_k(const void *x, float *y, int64_t n);
void rs_scalar_to_float_q6_k(const void *x, float *y, int64_t n);
void rs_scalar_from_float_f32(const float *x, void *y, int64_t n);

/* A matmul-table entry from an ISA file's kernels named after the type (vec_dot_<name>,
 * gemm_<name>; dequantising is never on the hot path, so every ISA shares the scalar one). */
#define RS_MM_ENTRY(name, ff) {ff, rs_scalar_to_float_##name, vec_dot_##name, gemm_##name}
/* ... and with an rs_gemm_x8_fn for the type's 8-row repacked layout. */
#define RS_MM_X8_ENTRY(name, ff, x8) {ff, rs_scalar_to_float_##name, vec_dot_##name, gemm_##name, x8}

/* vec_dot_<name> and gemm_<name> of a float weight type (`t` selects the loader) from an
 * ISA file's tile_f / gemm_f: vec_dot is the 1 x 1 tile. */
#define RS_FLOAT_MATMUL_KERNELS(name, t)                                                        \
  static void vec_dot_##name(int64_t n, float *out, const void *w, const void *a) {             \
    tile_f(t, n, 1, 1, (const char *)w, 0, (const char *)a, 0, out, 0);                         \
  }                                                                                             \
  static void gemm_##name(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a,   \
                          size_t as, float *out, size_t os) {                                   \
    gemm_f(t, n, nr, nc, w, ws, a, as, out, os);                                                \
  }

/* Activation rows per gemm column block: as many as fit in about 512 KiB (half
 * of L2), a multiple of the tile width, at least one tile. */
static inline int rs_gemm_col_block(size_t a_stride, int tile) {
  size_t rows = ((size_t)512 << 10) / (a_stride ? a_stride : 1);
  rows -= rows % (size_t)tile;
  return rows < (size_t)tile ? tile : (rows > (1u << 20) ? (1 << 20) : (int)rows);
}

#endif

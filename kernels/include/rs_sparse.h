/* Kernels of the activation-sparse FFN: the down projection of PowerInfer files (and of
 * our packed layout) is an accumulation over active neurons, y += h_i * down_row_i, where
 * down_row_i is stored in the weight type (quantised along the output dimension).
 *
 * Each optimised kernel has a reference twin (rs_ref_*). Pure functions over raw
 * pointers; no allocation. */
#ifndef RS_SPARSE_H
#define RS_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "rs_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y[k] += h * row[k] for k < n.
 *   y: [n] f32;  row: one row of `type` holding n elements (n a multiple of the block
 *   size; a row may start at any block boundary of a longer row);  isa: cap as elsewhere.
 * Types with a dedicated kernel: F32, F16, BF16, Q8_0, Q4_0; any other supported type
 * goes through its to_float in chunks (correct, slower). */
void rs_axpy_row(rs_isa isa, rs_type type, float *y, float h, const void *row, int64_t n);
void rs_ref_axpy_row(rs_type type, float *y, float h, const void *row, int64_t n);

/* out[r] = dot(w[r], a) for r < nr: nr weight rows of `type` (n elements each, anywhere
 * in memory) against one activation row of the type's vec_dot_type, in one pass (the
 * rows' cache misses overlap; each activation block is loaded once). Each out[r] equals
 * the ISA's vec_dot(n, w[r], a) bit for bit, whatever nr. Any nr >= 0. */
void rs_dot_rows(rs_isa isa, rs_type type, int64_t n, int nr, const void *const *w, const void *a, float *out);
void rs_ref_dot_rows(rs_type type, int64_t n, int nr, const void *const *w, const void *a, float *out);

/* y[k] += h[0] * row[0][k], then += h[1] * row[1][k], ... for k < n: nr rows into one
 * accumulator in one pass (y is loaded and stored once per block, not once per row).
 * Each element takes the same operations, in the same order, as nr successive
 * rs_axpy_row calls of the same ISA, so the results are bit-identical to them. */
void rs_axpy_rows(rs_isa isa, rs_type type, float *y, int nr, const float *h, const void *const *row, int64_t n);
void rs_ref_axpy_rows(rs_type type, float *y, int nr, const float *h, const void *const *row, int64_t n);

/* ---- Q4_0 down rows in the split layout, accumulated in 8-bit integers ----
 * A split row of nbt Q4_0 blocks holds the same bytes as a plain one, reordered: the nbt
 * f16 scales first, then the nbt x 16 bytes of nibbles (block b's element j < 16 in the
 * low nibble of byte j, element j + 16 in the high one, as in Q4_0). Why: the scales of a
 * row load as vectors, and the nibbles of a block start on a 16-byte boundary.
 *
 * rs_axpy_q4_0s_i8 adds to y the terms of up to RS_I8_GROUP rows (the down rows of
 * active neurons), over blocks [b0, b0 + nb) of each row:
 *   y[32 (b - b0) + j] += step_b * sum_r k_rb * (q_rbj - 8)
 * where c_rb = h[r] * scale_rb (f32), amax_b = max_r |c_rb|, step_b = amax_b * (1 / 127)
 * and k_rb = c_rb * (127 / amax_b) rounded to nearest-even (0 when amax_b is 0): each
 * term's coefficient is rounded to one of 255 steps of the group's largest in that block,
 * the same kind of rounding as quantising the activation vector to Q8_0 in blocks of 32
 * (what llama.cpp's dense Q4_0 path does), so the error is of the order of a dense Q4_0
 * product's. The sums are exact integers (|sum| < 2^15 with 16 rows); the last step is
 * y = fma(step_b, (float)sum, y). Every ISA gives the reference's bits.
 *   y: [32 nb] f32;  nr: 1..RS_I8_GROUP;  h: [nr];  row[r]: a split row of nbt blocks. */
#define RS_I8_GROUP 16
void rs_axpy_q4_0s_i8(rs_isa isa, float *y, int nr, const float *h, const void *const *row, int64_t nbt, int64_t b0,
                      int64_t nb);
void rs_ref_axpy_q4_0s_i8(float *y, int nr, const float *h, const void *const *row, int64_t nbt, int64_t b0,
                          int64_t nb);
/* dst = the split layout of the plain Q4_0 row src (nbt blocks), and back; no overlap. */
void rs_q4_0_split_row(const void *src, void *dst, int64_t nbt);
void rs_q4_0_unsplit_row(const void *src, void *dst, int64_t nbt);

/* Appends base + i for every i < n with x[i] >= threshold, in order, to list; returns
 * how many. list: room for n. */
int64_t rs_select_ge(rs_isa isa, const float *x, int64_t n, float threshold, int32_t base, int32_t *list);
int64_t rs_ref_select_ge(const float *x, int64_t n, float threshold, int32_t base, int32_t *list);

#ifdef __cplusplus
}
#endif
#endif

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

/* Appends base + i for every i < n with x[i] >= threshold, in order, to list; returns
 * how many. list: room for n. */
int64_t rs_select_ge(rs_isa isa, const float *x, int64_t n, float threshold, int32_t base, int32_t *list);
int64_t rs_ref_select_ge(const float *x, int64_t n, float threshold, int32_t base, int32_t *list);

#ifdef __cplusplus
}
#endif
#endif

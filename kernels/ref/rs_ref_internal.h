/* Reference weight quantisers, shared by rs_quantize_row (kernels/cpu/dispatch.c). */
#ifndef RS_REF_INTERNAL_H
#define RS_REF_INTERNAL_H

#include <stdint.h>

void rs_ref_quantize_q4_0(const float *x, void *dst, int64_t n);
void rs_ref_quantize_q8_0(const float *x, void *dst, int64_t n);
void rs_ref_quantize_q4_k(const float *x, void *dst, int64_t n);
void rs_ref_quantize_q5_k(const float *x, void *dst, int64_t n);
void rs_ref_quantize_q6_k(const float *x, void *dst, int64_t n);

/* Fills the group part of a Q8_0X row whose Q8_0 prefix is already written. */
void rs_q8_0x_build_groups(void *row, int64_t n);

#endif

/* rs_dot_rows: several weight rows against one activation row in one pass, the phase-B
 * step of the sparse FFN (gate and up rows of one or two active neurons). Why fused: in
 * a sparse step each neuron is a random jump, so the cost is memory latency; walking
 * the rows side by side issues their cache misses together (more misses in flight) and
 * loads each activation group once for all rows.
 *
 * The Q4_0 variants live in avx512.c and avx2.c (compiled for their ISA), built from
 * the same pieces as each file's Q4_0 tile, so each output is bit for bit what vec_dot
 * gives: the sparse FFN with a complete predictor still equals the dense one; so do
 * AVX2's F16 variant and AVX-512's float variants. Other types and ISAs call the type's
 * vec_dot per row. */
#include "../ref/rs_blocks.h"
#include "rs_cpu_internal.h"
#include "rs_sparse.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define RS_X86 1
#define RS_X86_DOT_RUN(isa, type, n) ((isa) == RS_ISA_AVX512 && (type) == RS_TYPE_Q4_0 && (n) % RS_QK == 0 ? 8 : 4)
#else
#define RS_X86_DOT_RUN(isa, type, n) 4
#endif

static void dot_rows_generic(rs_isa isa, rs_type type, int64_t n, int nr, const void *const *w, const void *a,
                             float *out) {
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(type, isa);
  for (int r = 0; r < nr; r++) k->vec_dot(n, out + r, w[r], a);
}

void rs_dot_rows(rs_isa isa, rs_type type, int64_t n, int nr, const void *const *w, const void *a, float *out) {
  isa = rs_cpu_resolve_isa(isa);
  if (nr < 1) return;
  /* In runs of up to `run` rows (8 for AVX-512's Q4_0, else 4): each output's
   * operations do not depend on the grouping. */
  const int run = RS_X86_DOT_RUN(isa, type, n);
  if (nr > run) {
    for (int r0 = 0; r0 < nr; r0 += run) rs_dot_rows(isa, type, n, nr - r0 < run ? nr - r0 : run, w + r0, a, out + r0);
    return;
  }
#ifdef RS_X86
  if (type == RS_TYPE_Q4_0 && n % RS_QK == 0) {
    if (isa == RS_ISA_AVX512) {
      rs_avx512_dot_rows_q4_0(nr, n / RS_QK, (const char *const *)w, (const char *)a, out);
      return;
    }
    if (isa == RS_ISA_AVX2) {
      rs_avx2_dot_rows_q4_0(nr, n / RS_QK, (const char *const *)w, (const char *)a, out);
      return;
    }
  }
  if (type == RS_TYPE_F16 && isa == RS_ISA_AVX2) {
    rs_avx2_dot_rows_f16(nr, n, w, (const float *)a, out);
    return;
  }
  if ((type == RS_TYPE_F16 || type == RS_TYPE_F32 || type == RS_TYPE_BF16) && isa == RS_ISA_AVX512) {
    rs_avx512_dot_rows_f((int)type, nr, n, w, (const float *)a, out);
    return;
  }
#endif
  dot_rows_generic(isa, type, n, nr, w, a, out);
}

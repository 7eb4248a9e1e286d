/* AVX2 product over Q4_0 weights repacked eight rows at a time (rs_q4_0x8_pack), the
 * dense path's Q4_0 kernel (body: q4_0x8_body.h). Measured against the row-at-a-time
 * kernel on the 2-core AVX2 EPYC (one thread, 4096 columns): 1.6x from L2, 1.1-2x from
 * memory depending on load. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ref/rs_blocks.h"
#include "rs_cpu_internal.h"

#define X8_GEMM_NAME rs_avx2_gemm_q4_0x8
#define X8_VNNI 0
#include "q4_0x8_body.h"
#endif

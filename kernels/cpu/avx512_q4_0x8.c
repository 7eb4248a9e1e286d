/* AVX-512 VNNI product over Q4_0 weights repacked eight rows at a time (rs_q4_0x8_pack):
 * the AVX2 kernel's layout and order with vpdpbusd (256-bit, AVX512VL) in place of
 * maddubs + int16 adds + madd, a third of the integer instructions per block
 * (body: q4_0x8_body.h). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ref/rs_blocks.h"
#include "rs_cpu_internal.h"

#define X8_GEMM_NAME rs_avx512_gemm_q4_0x8
#define X8_VNNI 1
#include "q4_0x8_body.h"
#endif

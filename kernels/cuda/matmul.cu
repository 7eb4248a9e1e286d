// The matmul op: which kernel for which shape. A few rows of x (generation): the
// weight-streaming matvec, bound by reading W once, with x quantised as the CPU quantises
// it (matvec.cu). More: the tensor cores for weights that fit f16 (F16 and the quantised
// types, dequantised per tile; x in f16, so a prompt's products differ from the CPU's by
// that rounding, ~1e-3 of their size); F32 and BF16 weights keep their precision on the
// CUDA cores (the matvec kernel, 8 rows of x per pass).
#include "rs_cuda_compat.cuh"

extern "C" int rs_cuda_matvec(rs_cuda_matrix w, const float *x, int n, float *y, void *act, void *stream);
extern "C" int rs_cuda_matmul_tc(rs_cuda_matrix w, const float *x, int n, float *y, void *stream);

extern "C" int rs_cuda_matmul(rs_cuda_matrix w, const float *x, int n, float *y, void *act, void *stream) {
  constexpr int kTensorCoreRows = 16;  // below this, a tile is mostly padding
  const bool tc = n >= kTensorCoreRows && w.type != rs_cuda::kF32 && w.type != rs_cuda::kBF16 && w.cols % 32 == 0;
  return tc ? rs_cuda_matmul_tc(w, x, n, y, stream) : rs_cuda_matvec(w, x, n, y, act, stream);
}

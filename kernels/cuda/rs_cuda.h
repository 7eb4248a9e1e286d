/* CUDA side of relu-serve: host entry points of the device kernels (one op per .cu
 * file). Every function returns 0 on success or a CUDA error code, never aborts. The
 * CUDA backend (a later step) drives these through the same Backend interface the CPU
 * backend implements. */
#ifndef RS_CUDA_H
#define RS_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Usable CUDA devices; 0 when there is no driver or no GPU (never an error). */
int rs_cuda_device_count(void);
/* Name and memory of device `dev`; returns non-zero if it cannot be queried. */
int rs_cuda_device_info(int dev, char *name, size_t name_len, size_t *total_mem);

/* y[r][d] = x[r][d] / rms(x[r]) * w[d] for r < n_rows, device pointers, on `stream`
 * (a cudaStream_t, NULL for the default stream). */
int rs_cuda_rmsnorm(float *y, const float *x, const float *w, int n_rows, int d, float eps, void *stream);

/* Test helper: the same op on host buffers (copies in, runs, copies out). */
int rs_cuda_rmsnorm_host(float *y, const float *x, const float *w, int n_rows, int d, float eps);

#ifdef __cplusplus
}
#endif
#endif

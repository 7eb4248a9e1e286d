/* Every CUDA op against the CPU reference kernels, without Node: for GPU machines that
 * have the CUDA toolkit but no Node (the project's lent GPU machines). Mirrors
 * test/engine/cuda.test.ts. Build and run with tools/cuda-check/run.sh after
 * `npm run build` (it links the libraries the addon build leaves in build/). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "rs_cuda.h"
#include "rs_kernels.h"

static int rmsnorm(void) {
  const int d = 4096, rows = 3;
  float *x = malloc(sizeof(float) * rows * d), *w = malloc(sizeof(float) * d);
  float *gpu = malloc(sizeof(float) * rows * d), *cpu = malloc(sizeof(float) * d);
  for (int i = 0; i < rows * d; i++) x[i] = sinf(i * 0.013f) * 3.0f;
  for (int i = 0; i < d; i++) w[i] = 1.0f + 0.01f * (i % 17);
  int bad = 0;
  const int e = rs_cuda_rmsnorm_host(gpu, x, w, rows, d, 1e-5f);
  if (e != 0) {
    printf("FAIL rmsnorm: CUDA error %d\n", e);
    bad = 1;
  }
  for (int r = 0; r < rows && !bad; r++) {
    rs_ref_rmsnorm(cpu, x + r * d, w, d, 1e-5f);
    for (int i = 0; i < d; i++)
      if (fabsf(gpu[r * d + i] - cpu[i]) > 1e-5f * (1.0f + fabsf(cpu[i]))) {
        printf("FAIL rmsnorm row %d [%d]: gpu %.9g cpu %.9g\n", r, i, gpu[r * d + i], cpu[i]);
        bad = 1;
        break;
      }
  }
  if (!bad) printf("ok rmsnorm (%d rows x %d)\n", rows, d);
  free(x); free(w); free(gpu); free(cpu);
  return bad;
}

int main(void) {
  const int n = rs_cuda_device_count();
  if (n == 0) {
    printf("no CUDA device\n");
    return 2;
  }
  for (int dev = 0; dev < n; dev++) {
    char name[256];
    size_t mem = 0;
    if (rs_cuda_device_info(dev, name, sizeof name, &mem) == 0) printf("device %d: %s, %.1f GiB\n", dev, name, mem / 1073741824.0);
  }
  const int fails = rmsnorm();
  printf("%s\n", fails ? "FAILED" : "all CUDA ops match the CPU reference");
  return fails ? 1 : 0;
}

#!/bin/sh
# Builds ops_check.c with the CUDA sources (kernels/cuda/*.cu, compiled here by this
# machine's nvcc for its own GPU) and the CPU kernel library of the last `npm run build`
# (build/kernels/librs_kernels.a), then runs it. Exit status: 0 all ops match, 1 a
# mismatch or CUDA error, 2 no CUDA device.
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${TMPDIR:-/tmp}/rs-cuda-ops-check
arch=${RS_CUDA_ARCH:-native}
cc -O1 -std=c11 -I "$root/kernels/include" -I "$root/kernels/cuda" -c "$root/tools/cuda-check/ops_check.c" -o "$out.o"
nvcc -O2 -std=c++17 -arch="$arch" -I "$root/kernels/cuda" "$root"/kernels/cuda/*.cu "$out.o" \
  "$root/build/kernels/librs_kernels.a" -lm -o "$out"
exec "$out"

// A CUDA emulator for machines without a GPU: the kernels of kernels/cuda compiled as
// C++ (RS_CUDA_EMU) run here with CUDA's execution model - a grid of blocks, each block's
// threads as cooperative fibers, __syncthreads and warp shuffles as barriers, shared
// memory per block - and the slice of the runtime API the engine uses (memory, streams
// on worker threads, events, mapped host memory, graphs as recorded launches). It is
// slow and exists so that CI checks every CUDA kernel, and the CUDA device of the hybrid
// runtime end to end, against the CPU. It does not model timing, memory coalescing, or
// races between threads of a block that a real GPU could expose between barriers (a
// fiber runs until its next barrier); the GPU device check covers those.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

// ---------------------------------------------------------------- device side
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Blocks run one after another on a stream's thread: a thread_local static is one
// block's shared memory.
#define __shared__ static thread_local

struct float4 {
  float x, y, z, w;
};

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;

namespace rs_emu {

struct ThreadState {
  dim3 thread_idx, block_idx, block_dim, grid_dim;
  unsigned lane = 0, warp = 0, linear = 0;
};
ThreadState *current();

void syncthreads();
// All lanes of the calling warp in `mask` deposit `size` bytes of `value`; each gets back
// the bytes lane `src_lane` deposited (into `out`).
void warp_exchange(unsigned mask, const void *value, size_t size, int src_lane, void *out);
// Lanes of the warp in `mask` each contribute a predicate; returns the ballot.
unsigned warp_ballot(unsigned mask, bool pred);
uint64_t globaltimer_ns();
void nanosleep_yield();

}  // namespace rs_emu

#define threadIdx (rs_emu::current()->thread_idx)
#define blockIdx (rs_emu::current()->block_idx)
#define blockDim (rs_emu::current()->block_dim)
#define gridDim (rs_emu::current()->grid_dim)
constexpr int warpSize = 32;

inline void __syncthreads() { rs_emu::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) {
  int dummy = 0;
  rs_emu::warp_exchange(0xffffffffu, &dummy, sizeof dummy, 0, &dummy);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned) { rs_emu::nanosleep_yield(); }

template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  const int lane = static_cast<int>(rs_emu::current()->lane);
  const int base = lane & ~(width - 1);
  T out;
  rs_emu::warp_exchange(mask, &v, sizeof(T), base + (src & (width - 1)), &out);
  return out;
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  const int lane = static_cast<int>(rs_emu::current()->lane);
  T out;
  rs_emu::warp_exchange(mask, &v, sizeof(T), lane ^ lane_mask, &out);
  (void)width;
  return out;
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(rs_emu::current()->lane);
  const int src = (lane & (width - 1)) + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : lane;
  T out;
  rs_emu::warp_exchange(mask, &v, sizeof(T), src, &out);
  return out;
}
inline unsigned __ballot_sync(unsigned mask, int pred) { return rs_emu::warp_ballot(mask, pred != 0); }
inline int __any_sync(unsigned mask, int pred) { return rs_emu::warp_ballot(mask, pred != 0) != 0; }
inline int __all_sync(unsigned mask, int pred) {
  const unsigned yes = rs_emu::warp_ballot(mask, pred != 0), present = rs_emu::warp_ballot(mask, true);
  return yes == present;
}

// Fibers are cooperative: a read-modify-write never interleaves with another fiber of the
// block. Blocks of different streams can run at once on different threads, hence atomics.
template <typename T>
T atomicAdd(T *p, T v) {
  return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
inline float atomicAdd(float *p, float v) {
  uint32_t old = __atomic_load_n(reinterpret_cast<uint32_t *>(p), __ATOMIC_SEQ_CST), next;
  do {
    float f;
    std::memcpy(&f, &old, 4);
    f += v;
    std::memcpy(&next, &f, 4);
  } while (!__atomic_compare_exchange_n(reinterpret_cast<uint32_t *>(p), &old, next, true, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST));
  float r;
  std::memcpy(&r, &old, 4);
  return r;
}

inline float __int_as_float(int v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline float __uint_as_float(unsigned v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned v;
  std::memcpy(&v, &f, 4);
  return v;
}
inline float __expf(float x) { return std::exp(x); }
inline int __float2int_rn(float x) { return static_cast<int>(std::nearbyint(x)); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fmaf(a, b, c); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __ffsll(long long v) { return __builtin_ffsll(v); }
// Four signed bytes of a times four of b, plus c.
inline int __dp4a(int a, int b, int c) {
  for (int k = 0; k < 4; k++) c += static_cast<int8_t>(a >> (8 * k)) * static_cast<int8_t>(b >> (8 * k));
  return c;
}
template <typename T>
T __ldg(const T *p) {
  return *p;
}

// f16 storage and the tensor-core matrix API (nvcuda::wmma) for the emulator: a fragment
// holds its whole tile in every lane, so the warp-wide operations are each lane doing
// all of the work (same results, written redundantly).
struct __half {
  uint16_t x;
};
using half = __half;
namespace rs_emu {
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
}  // namespace rs_emu
inline float __half2float(half h) { return rs_emu::half_to_float(h.x); }
inline half __float2half(float f) { return half{rs_emu::float_to_half(f)}; }

namespace nvcuda {
namespace wmma {
struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };
template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static constexpr int R = std::is_same<Use, matrix_b>::value ? K : M;
  static constexpr int C = std::is_same<Use, matrix_a>::value ? K : N;
  float x[R * C];
};
template <typename Use, int M, int N, int K, typename T, typename Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, float v) {
  for (float &e : f.x) e = v;
}
template <typename Use, int M, int N, int K, typename Layout>
void load_matrix_sync(fragment<Use, M, N, K, half, Layout> &f, const half *p, unsigned ldm) {
  using F = fragment<Use, M, N, K, half, Layout>;
  for (int r = 0; r < F::R; r++)
    for (int c = 0; c < F::C; c++) {
      const half h = std::is_same<Layout, row_major>::value ? p[r * ldm + c] : p[c * ldm + r];
      f.x[r * F::C + c] = __half2float(h);
    }
}
template <int M, int N, int K, typename LA, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, half, LA> &a,
              const fragment<matrix_b, M, N, K, half, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
  float out[M * N];
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float s = c.x[i * N + j];
      for (int k = 0; k < K; k++) s += a.x[i * K + k] * b.x[k * N + j];
      out[i * N + j] = s;
    }
  for (int i = 0; i < M * N; i++) d.x[i] = out[i];
}
template <int M, int N, int K>
void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t layout) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) (layout == mem_row_major ? p[i * ldm + j] : p[j * ldm + i]) = f.x[i * N + j];
}
}  // namespace wmma
}  // namespace nvcuda

// ---------------------------------------------------------------- host side: the runtime API slice
typedef int cudaError_t;
enum : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorNoDevice = 100,
  cudaErrorNotReady = 600,
};
typedef struct rs_emu_stream *cudaStream_t;
typedef struct rs_emu_event *cudaEvent_t;
typedef struct rs_emu_graph *cudaGraph_t;
typedef struct rs_emu_graph *cudaGraphExec_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal, cudaStreamCaptureModeRelaxed };
constexpr unsigned cudaStreamNonBlocking = 1, cudaHostAllocMapped = 2, cudaHostAllocPortable = 1, cudaEventDisableTiming = 2;
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int multiProcessorCount, major, minor, clockRate, memoryClockRate, memoryBusWidth;
  size_t sharedMemPerBlockOptin;
};

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetLastError();
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaHostGetDevicePointer(void **dev, void *host, unsigned flags);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaMemset(void *dst, int value, size_t bytes);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t g);

namespace rs_emu {
// Runs `kernel` on a grid of blocks (in order, each block's threads as fibers) on the
// stream's thread, after the stream's earlier work; null: the calling thread, now.
void launch(cudaStream_t s, dim3 grid, dim3 block, std::function<void()> kernel);
}  // namespace rs_emu

#define RS_LAUNCH(kernel, grid, block, stream, ...) \
  rs_emu::launch((stream), dim3(grid), dim3(block), [=] { kernel(__VA_ARGS__); })

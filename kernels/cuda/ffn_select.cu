// Which FFN neurons a step computes, and on which side. Predictor mode: z1 = relu(fc1 .
// resid) (the matmul op), then a warp per neuron scores fc2 . z1 for every row and keeps
// the rows at or above the threshold as a bit mask; exact mode: the hot neurons' gates
// (the matmul op over their gate rows), positive ones kept. Then one block walks the
// neurons in order and writes the active ones as entries: the device's (slot, mask) and,
// in predictor mode, the host's (neuron id, mask) straight into host-visible memory.
// Entries come out in neuron order, as the CPU lists them.
#include "rs_cuda_compat.cuh"

extern "C" int rs_cuda_matmul(rs_cuda_matrix w, const float *x, int n, float *y, void *act, void *stream);

namespace {

constexpr int kWarps = 4;

template <int T>
__global__ void scores_kernel(rs_cuda_matrix fc2, const float *z1, int rank, int n, float threshold, uint64_t *nmask) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (i >= fc2.rows) return;
  const uint8_t *row = static_cast<const uint8_t *>(fc2.data) + i * fc2.row_stride;
  uint64_t mask = 0;
  for (int j = 0; j < n; j++) {
    const float *z = z1 + static_cast<size_t>(j) * rank;
    float s = 0.f;
    for (int r = lane; r < rank; r += 32) s += fmaxf(z[r], 0.f) * rs_cuda::dequant1<T>(row, r);
    s = rs_cuda::warp_sum(s);
    if (s >= threshold) mask |= 1ull << j;
  }
  if (lane == 0) nmask[i] = mask;
}

// Exact mode: slot s's mask from its gates (gates[j][s] > 0).
__global__ void gate_mask_kernel(const float *gates, int64_t n_hot, int n, uint64_t *nmask) {
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= n_hot) return;
  uint64_t mask = 0;
  for (int j = 0; j < n; j++)
    if (gates[static_cast<size_t>(j) * n_hot + s] > 0.f) mask |= 1ull << j;
  nmask[s] = mask;
}

// One block of 1024 threads: entries in order, by a scan per tile of 1024. With slot_of
// (predictor mode), item i is neuron i: hot ones go to the device list as their slot,
// cold ones to the host's list as their id. Without (exact mode), item i is slot i.
__global__ void compact_kernel(const uint64_t *nmask, int64_t count, const int32_t *slot_of, int32_t *hot_list,
                               uint64_t *hot_mask, int64_t *counts, int32_t *cold_list, uint64_t *cold_mask,
                               int64_t *cold_count, uint64_t *pairs) {
  __shared__ int warp_hot[32], warp_cold[32];
  __shared__ int64_t base_hot, base_cold;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
  if (threadIdx.x == 0) {
    base_hot = 0;
    base_cold = 0;
  }
  uint64_t my_hot_pairs = 0, my_cold_pairs = 0;
  __syncthreads();
  for (int64_t t0 = 0; t0 < count; t0 += blockDim.x) {
    const int64_t i = t0 + threadIdx.x;
    const uint64_t m = i < count ? nmask[i] : 0;
    const int32_t slot = !slot_of ? static_cast<int32_t>(i) : i < count ? slot_of[i] : -1;
    const bool hot = m != 0 && slot >= 0, cold = m != 0 && slot < 0 && cold_list != nullptr;
    const unsigned bh = __ballot_sync(0xffffffffu, hot), bc = __ballot_sync(0xffffffffu, cold);
    const unsigned below = (1u << lane) - 1;
    if (lane == 0) {
      warp_hot[warp] = __popc(bh);
      warp_cold[warp] = __popc(bc);
    }
    __syncthreads();
    int64_t oh = base_hot, oc = base_cold;
    for (int w = 0; w < warp; w++) {
      oh += warp_hot[w];
      oc += warp_cold[w];
    }
    if (hot) {
      const int64_t at = oh + __popc(bh & below);
      hot_list[at] = slot;
      hot_mask[at] = m;
      my_hot_pairs += static_cast<uint64_t>(__popcll(m));
    }
    if (cold) {
      const int64_t at = oc + __popc(bc & below);
      cold_list[at] = static_cast<int32_t>(i);
      cold_mask[at] = m;
      my_cold_pairs += static_cast<uint64_t>(__popcll(m));
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (int w = 0; w < n_warps; w++) {
        base_hot += warp_hot[w];
        base_cold += warp_cold[w];
      }
    __syncthreads();
  }
  // Pair counts: per warp, then thread 0 adds the warps' in order.
  __shared__ unsigned long long wp_hot[32], wp_cold[32];
  for (int o = 16; o > 0; o >>= 1) {
    my_hot_pairs += __shfl_xor_sync(0xffffffffu, my_hot_pairs, o);
    my_cold_pairs += __shfl_xor_sync(0xffffffffu, my_cold_pairs, o);
  }
  if (lane == 0) {
    wp_hot[warp] = my_hot_pairs;
    wp_cold[warp] = my_cold_pairs;
  }
  __threadfence_system();  // the host reads the lists once the step's flag is up
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long ph = 0, pc = 0;
    for (int w = 0; w < n_warps; w++) {
      ph += wp_hot[w];
      pc += wp_cold[w];
    }
    counts[0] = base_hot;
    if (cold_count) *cold_count = base_cold;
    pairs[0] += ph;
    if (cold_list) pairs[1] += pc;
    __threadfence_system();
  }
}

}  // namespace

extern "C" int rs_cuda_ffn_select_predictor(rs_cuda_neurons hot, rs_cuda_matrix fc1, rs_cuda_matrix fc2,
                                            float threshold, int n, const float *resid, float *z1, uint64_t *nmask,
                                            int32_t *hot_list, uint64_t *hot_mask, int64_t *counts,
                                            int32_t *cold_list, uint64_t *cold_mask, int64_t *cold_count,
                                            uint64_t *pairs, void *act, void *stream) {
  if (n < 1 || n > 64) return cudaErrorInvalidValue;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (int e = rs_cuda_matmul(fc1, resid, n, z1, act, stream)) return e;
  const int rank = static_cast<int>(fc1.rows);
  const unsigned blocks = static_cast<unsigned>((fc2.rows + kWarps - 1) / kWarps);
#define RS_SCORES(T)                                                                                          \
  {                                                                                                           \
    auto *k = scores_kernel<T>;                                                                               \
    RS_LAUNCH(k, blocks, 32 * kWarps, s, fc2, z1, rank, n, threshold, nmask);                                 \
  }
  RS_FOR_TYPE(fc2.type, RS_SCORES)
#undef RS_SCORES
  RS_LAUNCH(compact_kernel, 1, 1024, s, nmask, hot.n_ff, hot.slot_of, hot_list, hot_mask, counts, cold_list,
            cold_mask, cold_count, pairs);
  return rs_cuda::status(cudaGetLastError());
}

extern "C" int rs_cuda_ffn_select_exact(rs_cuda_neurons hot, int n, const float *xn, float *gates, uint64_t *nmask,
                                        int32_t *hot_list, uint64_t *hot_mask, int64_t *counts, uint64_t *pairs,
                                        void *act, void *stream) {
  if (n < 1 || n > 64) return cudaErrorInvalidValue;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (hot.n_hot > 0) {
    if (int e = rs_cuda_matmul(hot.gate, xn, n, gates, act, stream)) return e;
    RS_LAUNCH(gate_mask_kernel, static_cast<unsigned>((hot.n_hot + 255) / 256), 256, s, gates, hot.n_hot, n, nmask);
  }
  RS_LAUNCH(compact_kernel, 1, 1024, s, nmask, hot.n_hot, static_cast<const int32_t *>(nullptr), hot_list, hot_mask,
            counts, static_cast<int32_t *>(nullptr), static_cast<uint64_t *>(nullptr), static_cast<int64_t *>(nullptr),
            pairs);
  return rs_cuda::status(cudaGetLastError());
}

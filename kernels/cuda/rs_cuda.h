/* CUDA side of relu-serve: host entry points of the device kernels, one op per .cu file.
 * Every function returns 0 or a CUDA error code, never aborts, and runs asynchronously
 * on `stream` (a cudaStream_t; NULL: the default stream). Pointers are device memory
 * unless a comment says host-visible (pinned, mapped host memory). The hybrid runtime's
 * CUDA device (addon/src/device_cuda.cpp) drives these; tools/cuda-check checks each one
 * against the CPU reference, on a GPU or on the CPU emulator (kernels/cuda/emu). */
#ifndef RS_CUDA_H
#define RS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Usable CUDA devices; 0 when there is no driver or no GPU (never an error). */
int rs_cuda_device_count(void);
/* Name and memory of device `dev`; returns non-zero if it cannot be queried. */
int rs_cuda_device_info(int dev, char *name, size_t name_len, size_t *total_mem);

/* A matrix of `rows` rows of `cols` elements of GGUF type `type` (F32, F16, BF16, Q8_0,
 * Q4_0, Q4_K, Q5_K, Q6_K), row r at data + r * row_stride. */
typedef struct {
  int type;
  const void *data;
  int64_t rows, cols;
  size_t row_stride;
} rs_cuda_matrix;

/* The KV cache: [layer][seq][kv head][n_ctx][head_dim] halves each for K and V. */
typedef struct {
  uint16_t *k, *v;
  int n_seq, n_ctx, n_head_kv, head_dim;
} rs_cuda_kv;

/* One layer's hot neurons on the device: gate/up/down are views over blocks
 * [gate | up | down] (rows = n_hot, row_stride = the block size); slot s holds neuron
 * hot_ids[s] (ascending); slot_of[i] is neuron i's slot or -1. */
typedef struct {
  rs_cuda_matrix gate, up, down;
  int64_t n_hot, n_ff;
  const int32_t *hot_ids, *slot_of;
} rs_cuda_neurons;

/* y[r][d] = x[r][d] / rms(x[r]) * w[d] for r < n_rows. */
int rs_cuda_rmsnorm(float *y, const float *x, const float *w, int n_rows, int d, float eps, void *stream);

/* y[n][W.rows] = x[n][W.cols] . W^T: a warp per weight row for a few rows of x (x
 * quantised as the CPU quantises it for quantised weights: `act` is scratch of
 * n * W.cols / 32 * 36 bytes); tiles on the tensor cores (f16 in, f32 out) for 16 rows
 * and more, or the CUDA cores for F32/BF16 weights. */
int rs_cuda_matmul(rs_cuda_matrix w, const float *x, int n, float *y, void *act, void *stream);

/* Rotary embedding in place, pairs (2i, 2i + 1) of each head rotated by
 * pos * base^(-2i / head_dim): q[n][n_head * hd], k[n][n_head_kv * hd]. */
int rs_cuda_rope(float *q, float *k, const int32_t *pos, int n, int n_head, int n_head_kv, int head_dim,
                 float freq_base, void *stream);
/* Row j's k and v (f32 [n][n_head_kv * hd]) into the cache at (layer, seq[j], pos[j]). */
int rs_cuda_kv_store(rs_cuda_kv kv, int layer, const int32_t *pos, const int32_t *seq, int n, const float *k,
                     const float *v, void *stream);
/* out[n][n_head * hd]: causal attention of each row over its sequence's cache [0, pos[j]].
 * part: scratch of part_states * n_head * (hd + 2) floats: each (row, split of its
 * positions) of each head has a state there, combined in split order; up to 16 splits
 * per row when there are few rows. */
int rs_cuda_attention(rs_cuda_kv kv, int layer, const int32_t *pos, const int32_t *seq, int n, const float *q,
                      int n_head, float *part, int part_states, float *out, void *stream);
/* x[i] += y[i] */
int rs_cuda_add(float *x, const float *y, int64_t n, void *stream);

/* Predictor mode: z1 = relu(fc1 . resid) ([n][rank]), scores fc2 . z1 >= threshold give
 * each neuron's row mask (nmask[n_ff]); the active neurons split, in neuron order, into
 * the device's (hot_list: slot, hot_mask; counts[0] entries) and the host's (cold_list:
 * neuron id, cold_mask, *cold_count: host-visible). pairs[0] += (row, neuron) pairs on
 * the device, pairs[1] on the host (host-visible). */
int rs_cuda_ffn_select_predictor(rs_cuda_neurons hot, rs_cuda_matrix fc1, rs_cuda_matrix fc2, float threshold, int n,
                                 const float *resid, float *z1, uint64_t *nmask, int32_t *hot_list, uint64_t *hot_mask,
                                 int64_t *counts, int32_t *cold_list, uint64_t *cold_mask, int64_t *cold_count,
                                 uint64_t *pairs, void *act, void *stream);
/* Exact mode: the hot neurons' gates ([n][n_hot], kept for rs_cuda_ffn_hot), and the hot
 * entries with a positive gate. */
int rs_cuda_ffn_select_exact(rs_cuda_neurons hot, int n, const float *xn, float *gates, uint64_t *nmask,
                             int32_t *hot_list, uint64_t *hot_mask, int64_t *counts, uint64_t *pairs, void *act,
                             void *stream);
/* The hot half: y[n][d] = sum over the hot entries of act(gate, up) * down; act_q:
 * scratch as rs_cuda_matmul's for quantised gate/up rows. h: scratch
 * [n_ff][n]; part: scratch of part_floats floats for partial sums over ranges of entries,
 * added in order (no atomics: the same bits every run). act: RS_ACT_RELU_GLU (1) or
 * RS_ACT_DRELU (2); gates: exact mode's [n][n_hot], or NULL to read the gate rows. */
int rs_cuda_ffn_hot(rs_cuda_neurons hot, const int32_t *hot_list, const uint64_t *hot_mask, const int64_t *counts,
                    const float *gates, int act, int n, const float *xn, float *h, float *part, int64_t part_floats,
                    float *y, void *act_q, void *stream);
/* x[n][d] += hot[n][d] + cold[n][d] (the sum first). */
int rs_cuda_ffn_merge(float *x, const float *hot, const float *cold, int n, int d, void *stream);

/* dst = src, bytes of device or host-visible memory, by a kernel: read and written when
 * the stream reaches it (never a runtime memcpy, which may not wait its turn: copy.cu). */
int rs_cuda_copy(void *dst, const void *src, size_t bytes, void *stream);
/* dst[0..n) = 0 (floats), by a kernel. */
int rs_cuda_zero(float *dst, size_t n, void *stream);

/* *flag = v once everything before it on the stream is done (flag host-visible), where
 * v = *base + k, base (host-visible, or NULL for 0) read when the kernel runs, so a
 * captured graph replays with the values of the step it runs in. */
int rs_cuda_signal(uint64_t *flag, const uint64_t *base, uint64_t k, void *stream);
/* Later work on the stream waits until *flag >= *base + k (as above) or *abort != 0 (all
 * host-visible); *wait_ns (host-visible) += the time waited. */
int rs_cuda_wait(const uint64_t *flag, const uint64_t *base, uint64_t k, const uint32_t *abort, uint64_t *wait_ns,
                 void *stream);

/* The GPU's read bandwidth in GB/s, best of `reps` passes over a `bytes` buffer
 * (synchronous; for reports). */
int rs_cuda_read_bandwidth(size_t bytes, int reps, double *gb_per_s);

#ifdef __cplusplus
}
#endif
#endif

// KV cache: per layer, sequence and KV head, the head's positions in order, head_dim
// halves (f16) each. A sequence's positions are its cells, so a slot's cache never
// moves and never fragments. Why by head: attention reads one KV head's rows for all
// positions; stored together they are one sequential stream (measured at ~1000
// positions: the position-major layout, 128 bytes per head every 1 KB, read at a
// fraction of the machine's bandwidth).
//
// KvView is the layout over memory someone else owns (host memory here, a device's
// memory in the hybrid runtime); KvCache owns host memory and the sequence lengths.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace rs {

struct KvView {
  int n_layer = 0, n_seq = 0, n_ctx = 0, n_head_kv = 0, head_dim = 0, kv_dim = 0;
  uint16_t *k = nullptr, *v = nullptr;

  KvView() = default;
  KvView(int n_layer_, int n_seq_, int n_ctx_, int n_head_kv_, int head_dim_)
      : n_layer(n_layer_), n_seq(n_seq_), n_ctx(n_ctx_), n_head_kv(n_head_kv_), head_dim(head_dim_),
        kv_dim(n_head_kv_ * head_dim_) {}
  size_t cells() const { return static_cast<size_t>(n_layer) * n_seq * n_ctx; }
  // Halves in K (and in V).
  size_t elements() const { return cells() * static_cast<size_t>(kv_dim); }
  uint64_t bytes() const { return elements() * 2 * sizeof(uint16_t); }
  // Position 0 of one KV head: n_ctx rows of head_dim halves, head_dim apart.
  uint16_t *k_head(int layer, int seq, int head) const { return k + index(layer, seq, head); }
  uint16_t *v_head(int layer, int seq, int head) const { return v + index(layer, seq, head); }

 private:
  size_t index(int layer, int seq, int head) const {
    return ((static_cast<size_t>(layer) * n_seq + seq) * n_head_kv + head) * static_cast<size_t>(n_ctx) * head_dim;
  }
};

struct KvCache : KvView {
  std::vector<int> length;  // positions held per sequence

  struct Free { void operator()(uint16_t *p) const { std::free(p); } };
  std::unique_ptr<uint16_t, Free> k_mem, v_mem;  // calloc'd: pages are touched only when used

  // With own_memory false the cache keeps only the lengths (its K/V live elsewhere).
  KvCache(int n_layer_, int n_seq_, int n_ctx_, int n_head_kv_, int head_dim_, bool own_memory = true);
};

}  // namespace rs

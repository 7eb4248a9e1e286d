// KV cache: per layer, per sequence, per position, kv_dim halves (f16). A sequence's
// positions are its cells, so a slot's cache never moves and never fragments.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace rs {

struct KvCache {
  int n_layer = 0, n_seq = 0, n_ctx = 0, kv_dim = 0;
  std::vector<int> length;  // positions held per sequence

  struct Free { void operator()(uint16_t *p) const { std::free(p); } };
  std::unique_ptr<uint16_t, Free> k, v;  // calloc'd: pages are touched only when used

  KvCache(int n_layer_, int n_seq_, int n_ctx_, int kv_dim_);
  size_t cells() const { return static_cast<size_t>(n_layer) * n_seq * n_ctx; }
  uint64_t bytes() const { return cells() * kv_dim * 2 * sizeof(uint16_t); }
  // Row of kv_dim halves for (layer, seq, pos).
  uint16_t *k_at(int layer, int seq, int pos) const { return k.get() + index(layer, seq, pos); }
  uint16_t *v_at(int layer, int seq, int pos) const { return v.get() + index(layer, seq, pos); }

 private:
  size_t index(int layer, int seq, int pos) const {
    return ((static_cast<size_t>(layer) * n_seq + seq) * n_ctx + pos) * kv_dim;
  }
};

}  // namespace rs

// The reference forward pass: the test oracle for the optimised one. One token row at a
// time, single-threaded, plain loops over the reference kernels (kernels/ref), sharing
// nothing with forward.cpp but the model's weight views.
#pragma once

#include <vector>

#include "kv_cache.h"
#include "model.h"

namespace rs {

class RefForward {
 public:
  RefForward(const Model &model, KvCache &cache) : m_(model), cache_(cache) {}
  // Same contract as forward(): rows in order, logits for rows with want[j].
  void decode(int n, const int32_t *tokens, const int32_t *pos, const int32_t *seq, const uint8_t *want,
              float *logits);

 private:
  void matvec(const Weight &W, const float *x, float *y);  // y[W.rows] = W . x
  void token(int32_t tok, int pos, int seq, float *logits);

  const Model &m_;
  KvCache &cache_;
  std::vector<uint8_t> qbuf_;
};

}  // namespace rs

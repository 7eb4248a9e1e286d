// The optimised forward pass: one decode step over a batch of token rows of any
// sequences, written against the Backend interface.
#pragma once

#include <vector>

#include "backend.h"

namespace rs {

// Activation buffers for up to n_batch rows, allocated once per context.
struct Scratch {
  int n_batch = 0;
  std::vector<float> x, xb, q, k, v, att, gate, up, h, logits_rows;
  Scratch(const HParams &hp, int n_batch);
};

// Per-layer neuron firing counts (null when counting is off): counts[layer][i] += 1 for
// each row whose activation i is non-zero.
struct ActivationCounts {
  std::vector<std::vector<uint32_t>> counts;
  uint64_t rows = 0;
};

// Runs the batch through every layer, writing K/V into the cache, and writes the
// logits of rows with want[j] into logits (n_vocab floats each, in row order).
void forward(const Model &model, Backend &be, KvCache &cache, Scratch &s, const int32_t *tokens,
             const BatchView &b, const uint8_t *want, float *logits, ActivationCounts *counts = nullptr);

}  // namespace rs

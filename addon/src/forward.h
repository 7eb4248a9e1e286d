// The optimised forward pass: one decode step over a batch of token rows of any
// sequences, written against the Backend interface.
#pragma once

#include <vector>

#include "backend.h"

namespace rs {

// Activation buffers for up to n_batch rows, allocated once per context.
struct Scratch {
  int n_batch = 0;
  std::vector<float> x, xb, q, k, v, att, gate, up, h, gx, gxb;  // gx, gxb: rows gathered for a mixed step
  Scratch(const HParams &hp, int n_batch);
};

// Per-layer neuron firing counts (null when counting is off): counts[layer][i] += 1 for
// each row whose activation i is non-zero.
// Where the model has predictors, also their quality against these true activations:
// per layer, (row, neuron) pairs predicted and active (tp), predicted only (fp), active
// only (fn).
struct ActivationCounts {
  std::vector<std::vector<uint32_t>> counts;
  std::vector<uint64_t> tp, fp, fn;
  uint64_t rows = 0;
  // Training data for predictors (train-predictor), kept only when `capture` is set: per
  // layer and row, the FFN block's input residual (n_embd floats, before ffn_norm: what
  // a PowerInfer predictor reads) and the true activation mask (n_ff bits, LSB first).
  bool capture = false;
  std::vector<std::vector<float>> cap_x;
  std::vector<std::vector<uint8_t>> cap_mask;
};

// Per layer: FFN (row, neuron) pairs computed over rows decoded, for the last decode
// and since the context was made.
struct SparsityStats {
  std::vector<uint64_t> last_pairs, total_pairs;
  uint64_t last_rows = 0, total_rows = 0;
  uint64_t sparse_steps = 0, dense_steps = 0;
  // Wall time of the step's parts, cumulative (ms): the attention blocks, choosing the
  // FFN's neurons (Backend::select_ms), the rest of the FFN blocks, the output head.
  double attention_ms = 0, select_ms = 0, ffn_ms = 0, output_ms = 0;
};

struct ForwardOptions {
  FfnMode mode = FfnMode::Dense;  // for rows of sequences with at most sparse_max_batch rows in the step
  float threshold = 0.f;          // predictor threshold
  int sparse_max_batch = 8;       // a sequence with more rows in a step runs dense (matrix-matrix wins)
  ActivationCounts *counts = nullptr;  // counting forces the dense FFN (true activations)
  SparsityStats *stats = nullptr;
};

// Runs the batch through every layer, writing K/V into the cache, and writes the
// logits of rows with want[j] into logits (n_vocab floats each, in row order).
void forward(const Model &model, Backend &be, KvCache &cache, Scratch &s, const int32_t *tokens,
             const BatchView &b, const uint8_t *want, float *logits, const ForwardOptions &opt);

}  // namespace rs

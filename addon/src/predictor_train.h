// Trains a PowerInfer activation predictor for one FFN layer: logits = fc2 . relu(fc1 . p),
// p the residual entering the FFN block, target the true activation mask. Minibatch Adam
// on a weighted binary cross-entropy (positives weighted up: a missed active neuron costs
// accuracy, a false alarm only time). Deterministic for a given seed whatever the thread
// count: every batch is cut into a fixed number of slices whose gradients are summed in
// slice order.
#pragma once

#include <cstdint>
#include <vector>

namespace rs {

struct PredictorTrainOptions {
  int rank = 64;
  int epochs = 8;
  int batch = 256;
  float lr = 1e-2f;
  // Weight of an active neuron's loss term relative to an inactive one's.
  float pos_weight = 3.f;
  // The decision boundary during training sits at logits = margin; train-predictor puts it
  // at the file's (negative) threshold, so each layer's chosen threshold has that sign and
  // can be folded into fc2's scale (the file has one threshold for all layers).
  float margin = 0.f;
  uint64_t seed = 1;
  int threads = 0;  // 0: all cores
};

// Rows of (p, mask): x is rows x n_embd floats, mask rows x ceil(n_ff / 8) bytes, bit i of
// a row (LSB first) set when neuron i fired.
struct PredictorSamples {
  const float *x = nullptr;
  const uint8_t *mask = nullptr;
  int64_t rows = 0;
  int n_embd = 0, n_ff = 0;
};

struct PredictorWeights {
  int rank = 0, n_embd = 0, n_ff = 0;
  std::vector<float> fc1;  // rank x n_embd (row k: hidden unit k's input weights)
  std::vector<float> fc2;  // n_ff x rank (row i: neuron i's weights over hidden units)
  std::vector<double> epoch_loss;  // mean weighted loss per epoch, for progress and tests
};

PredictorWeights train_predictor(const PredictorSamples &data, const PredictorTrainOptions &opt);

// Raw logits (no margin) of `rows` inputs: out is rows x n_ff.
void predictor_logits(const PredictorWeights &w, const float *x, int64_t rows, float *out, int threads);

}  // namespace rs

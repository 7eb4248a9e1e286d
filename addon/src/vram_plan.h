// What the hybrid runtime puts in device memory, to the byte, before anything is
// allocated: the fixed part in PowerInfer's order (attention weights of every layer,
// predictors, norms, output matrix, KV cache), then our neuron index and working
// buffers, then the hot FFN neurons. Every piece is rounded to device_piece(). The same
// sums are made by `place` (server/profiler/vram-costs.ts), so a placement it solves
// for a budget fits that budget here; test/engine/hybrid-vram.test.ts holds the two to
// each other.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model.h"

namespace rs {

// The context a device holds buffers for.
struct DeviceShape {
  int n_seq = 1, n_ctx = 0, n_batch = 0;
  bool predictors = false;  // the predictors are used (predictor mode) and so resident
};

// Rows per FFN group: a split step handles the rows of a batch 64 at a time (one bit
// each in a row mask).
constexpr int kGroupRows = 64;
// Attention's partial states per row of a group: a device may split one row's positions
// across this many blocks (decode), or rows over more launches (prompts).
constexpr int kAttentionSplits = 16;

struct VramPlan {
  uint64_t attention = 0, predictors = 0, norms = 0, output = 0, kv_cache = 0;
  uint64_t index = 0;      // per layer: each neuron's slot, each slot's neuron
  uint64_t workspace = 0;  // activations, scores, lists, partial sums, logits
  std::vector<uint64_t> neuron_cost;  // per layer: one hot neuron's gate + up + down rows
  std::vector<uint32_t> hot;          // per layer: hot neurons placed
  uint64_t ffn = 0;                   // the hot neurons' pieces
  uint64_t ffn_all = 0;               // the pieces if every neuron were hot

  uint64_t fixed() const { return attention + predictors + norms + output + kv_cache + index + workspace; }
  uint64_t total() const { return fixed() + ffn; }
  // The fixed part by name, in allocation order.
  std::vector<std::pair<const char *, uint64_t>> fixed_parts() const;
};

// The working buffers, in order: name and bytes (each a device piece).
std::vector<std::pair<const char *, uint64_t>> workspace_parts(const HParams &hp, const DeviceShape &s,
                                                                int64_t max_rank);

// The fixed part and the neuron costs; hot and ffn stay empty.
VramPlan plan_fixed(const Model &m, const DeviceShape &s);
// Bytes of hot neurons placed with count[l] neurons in layer l.
uint64_t ffn_bytes(const VramPlan &p, const std::vector<uint32_t> &count);

// Which FFN neurons of each layer live on the device, ascending ids, and where that
// choice came from (for logs and /v1/models).
struct Placement {
  std::vector<std::vector<int32_t>> hot;
  std::string source;
  uint64_t file_budget = 0;  // the budget a .rspl was solved for (0: none recorded)
};

// Reads our .rspl or PowerInfer's .generated.gpuidx (told apart by magic) and checks it
// against the model: fingerprint (.rspl), layer count, n_ff, bytes per neuron. Throws
// FormatError / InvalidArgError naming the file and the mismatch.
Placement read_placement_file(const std::string &path, const Model &m, const VramPlan &plan);

// Without statistics: the same number of neurons in every layer, as many as fit
// `capacity` bytes, at evenly spaced ids.
Placement uniform_placement(const VramPlan &plan, int64_t n_ff, uint64_t capacity);

// The model's fingerprint as server/profiler/model-identity.ts computes it (SHA-256 over
// hyper-parameters, general.name, every tensor's name/type/shape/bytes and the first
// 4 KiB of every tensor's data).
std::string model_fingerprint_hex(const Model &m);

}  // namespace rs

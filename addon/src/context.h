// A context: the KV cache of several sequences plus the machinery to decode batches.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "executor.h"
#include "forward_ref.h"

namespace rs {

class Context {
 public:
  Context(const Model &model, const rs_context_params &p);

  // Validates the whole batch before touching the cache; see rs_decode.
  void decode(int n, const int32_t *tokens, const int32_t *pos, const int32_t *seq, const uint8_t *want,
              float *logits);
  void truncate(int seq, int p0);
  int seq_length(int seq) const;

  void set_counting(bool on);
  const ActivationCounts *counts() const { return counting_ ? &counts_ : nullptr; }
  void reset_counts();
  // Keeps each counted row's predictor input and activation mask (see ActivationCounts);
  // read with captured(), which works whether counting is on or off.
  void set_capture(bool on);
  const ActivationCounts &captured() const { return counts_; }

  const Model &model() const { return model_; }
  const ForwardOptions &options() const { return opt_; }
  // A copy taken after each decode, so it can be read while the next one runs.
  SparsityStats sparsity() const {
    std::lock_guard<std::mutex> lk(snap_mu_);
    return snapshot_;
  }
  const char *mode_name() const;
  const KvCache &cache() const { return cache_; }
  rs_context_stats stats() const;
  // "cpu", "emu" or "cuda"
  const std::string &device() const { return device_; }
  // The hybrid runtime's placement and accounting, and its per-side statistics (null /
  // zeros on the CPU).
  const DeviceReport *device_report() const { return exec_ ? exec_->device_report() : nullptr; }
  HybridStats hybrid_stats() const { return exec_ ? exec_->hybrid_stats() : HybridStats{}; }

 private:
  void choose_ffn_mode(const rs_context_params &p);

  const Model &model_;
  int n_batch_;
  bool use_ref_;
  std::string device_;
  KvCache cache_;
  std::unique_ptr<Executor> exec_;
  std::unique_ptr<RefForward> ref_;
  bool counting_ = false;
  ActivationCounts counts_;
  SparsityStats sparsity_;
  SparsityStats snapshot_;
  mutable std::mutex snap_mu_;
  ForwardOptions opt_;
  double total_ms_ = 0;
  uint64_t calls_ = 0, tokens_ = 0;
};

}  // namespace rs

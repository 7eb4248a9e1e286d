// Executors run a whole decode step over buffers they own: the CPU executor over host
// arrays with the CPU backend (forward.cpp), the hybrid executor over a device's memory
// with the CPU computing the cold FFN neurons alongside (hybrid.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend_cpu.h"
#include "device.h"
#include "forward.h"
#include "vram_plan.h"

namespace rs {

// What a context asks of the device.
struct DeviceRequest {
  std::string kind;               // "emu" or "cuda"
  uint64_t budget = 0;            // bytes; 0: budget_fraction of the device's free memory
  double budget_fraction = 0.9;
  std::string placement_path;     // .rspl or .gpuidx; empty: none
  bool has_hot = false;           // hot given as ids (solved from statistics by the caller)
  std::vector<std::vector<int32_t>> hot;
  std::string hot_source;
  EmuOptions emu;
};

// What went where, for /v1/models and the logs.
struct DeviceReport {
  std::string kind, name;
  uint64_t memory_total = 0, memory_free = 0;  // at load, before our allocation
  uint64_t budget = 0;
  std::string budget_from;  // "bytes", "fraction of free memory", "placement file"
  VramPlan plan;            // allocated, by category (plan.hot: hot neurons per layer)
  std::vector<std::vector<int32_t>> hot;  // the hot neurons' ids per layer
  std::string placement_source;
};

// Per side, cumulative and for the last step.
struct HybridStats {
  uint64_t steps = 0;
  uint64_t pairs_device = 0, pairs_host = 0;  // (row, neuron) pairs of the FFN computed
  double device_busy_ms = 0;  // device running operations
  double device_wait_ms = 0;  // device blocked waiting for the host's cold neurons
  double host_ffn_ms = 0;     // host computing cold neurons
  double wall_ms = 0;
  double last_device_busy_ms = 0, last_device_wait_ms = 0, last_host_ffn_ms = 0, last_wall_ms = 0;
  uint64_t last_pairs_device = 0, last_pairs_host = 0;
  double phase_ms[kPhases] = {};  // device time by phase, cumulative (RELU_SERVE_PROFILE_DEVICE=1)
  uint64_t replayed_steps = 0;    // steps run from a recording (CUDA graph)
  uint64_t recordings = 0;        // step shapes recorded
};

class Executor {
 public:
  virtual ~Executor() = default;
  // One step: see forward().
  virtual void decode(const int32_t *tokens, const BatchView &b, const uint8_t *want, float *logits,
                      const ForwardOptions &opt) = 0;
  virtual CpuBackend &cpu() = 0;
  // The hybrid runtime's placement and accounting (null on the CPU) and work per side.
  virtual const DeviceReport *device_report() const { return nullptr; }
  virtual HybridStats hybrid_stats() const { return HybridStats{}; }
};

class CpuExecutor final : public Executor {
 public:
  CpuExecutor(const Model &m, KvCache &cache, int n_threads, rs_isa isa, int n_batch)
      : model_(m), cache_(cache), cpu_(n_threads, isa, cache.n_ctx), scratch_(m.hp(), n_batch) {}
  void decode(const int32_t *tokens, const BatchView &b, const uint8_t *want, float *logits,
              const ForwardOptions &opt) override {
    forward(model_, cpu_, cache_, scratch_, tokens, b, want, logits, opt);
  }
  CpuBackend &cpu() override { return cpu_; }

 private:
  const Model &model_;
  KvCache &cache_;
  CpuBackend cpu_;
  Scratch scratch_;
};

// Builds the device, plans and checks the budget, uploads; throws with a message naming
// every part's size when the budget is too small.
std::unique_ptr<Executor> make_hybrid_executor(const Model &m, KvCache &cache, int n_threads, rs_isa isa, int n_batch,
                                               FfnMode mode, const DeviceRequest &req);

}  // namespace rs

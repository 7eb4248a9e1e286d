// The device layer of the hybrid runtime: memory, one in-order stream of operations,
// flags shared with the host, and the kernels a layer needs. Two implementations:
//   emu  (device_emu.cpp): runs the operations with the CPU kernels on a thread of its
//        own, from memory of its own, with an optional delay per operation, so the
//        whole hybrid orchestration runs and is tested on machines without a GPU;
//   cuda (device_cuda.cpp): kernels/cuda on a CUDA stream.
// Everything after "stream" is asynchronous: calls enqueue and return. Pointers
// passed to the operations are device addresses (from alloc), except where a comment
// says host-visible memory (from host_alloc).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "backend.h"
#include "kv_cache.h"
#include "model.h"

namespace rs {

// Device memory is carved from one allocation in pieces that each start on a 256-byte
// boundary; a piece of n bytes takes device_piece(n). `place` uses the same rule, so
// its figures and what the runtime allocates agree to the byte.
constexpr uint64_t kDeviceAlign = 256;
inline uint64_t device_piece(uint64_t n) { return (n + kDeviceAlign - 1) / kDeviceAlign * kDeviceAlign; }

// A counter in host-visible memory. The side that signals only ever raises it; the
// other side waits until it reaches a value. Steps number their signals, so nothing is
// ever reset.
struct HostFlag {
  std::atomic<uint64_t> value{0};
};

// Host memory the device reads and writes while it runs (pinned and mapped on CUDA).
struct HostBuffer {
  uint8_t *host = nullptr;
  size_t bytes = 0;
};

// The parts of a step whose device time is reported (with RELU_SERVE_PROFILE_DEVICE=1:
// timing every operation costs a little, so it is off by default).
enum Phase : int { kPhaseAttention = 0, kPhasePredictor, kPhaseHotFfn, kPhaseTransferWait, kPhaseMerge, kPhaseOutput, kPhases };
const char *phase_name(int phase);

// Cumulative device time: running operations, and blocked in wait() for the host; per
// phase when profiling.
struct DeviceTimes {
  double busy_ms = 0, wait_ms = 0;
  double phase_ms[kPhases] = {};
};

// The device's hot neurons of one layer: k blocks [gate | up | down] (NeuronBlocks
// views over device memory), slot s holding neuron hot_ids[s] (ascending);
// slot_of[i] is neuron i's slot or -1.
struct DeviceNeurons {
  NeuronBlocks blocks;
  int64_t n_hot = 0, n_ff = 0;
  const int32_t *hot_ids = nullptr, *slot_of = nullptr;
};

// Which neurons a step computes, and the split into the device's and the host's.
struct FfnSelect {
  FfnMode mode = FfnMode::Predictor;  // Predictor or Exact
  float threshold = 0.f;
  int n = 0;                      // rows, 1..64
  const float *resid = nullptr;   // [n][d] predictor input (residual before ffn_norm)
  const float *xn = nullptr;      // [n][d] FFN input (after ffn_norm)
  Weight fc1, fc2;                // predictor, file types (Predictor mode)
  float *z1 = nullptr;            // [n][rank] scratch
  float *scores = nullptr;        // [n][n_ff] predictor scores; Exact: [n][n_hot] the hot gates
  uint64_t *nmask = nullptr;      // [n_ff] scratch: each neuron's (exact: each slot's) row mask
  DeviceNeurons hot;
  // Device: the hot entries (slot, row mask) in neuron order; counts[0] = entries.
  int32_t *hot_list = nullptr;
  uint64_t *hot_mask = nullptr;
  int64_t *counts = nullptr;
  // Host-visible (Predictor mode): the cold entries (neuron id, row mask) in neuron
  // order and their count; pairs[0] += (row, neuron) pairs on the device, pairs[1] on the host.
  int32_t *cold_list = nullptr;
  uint64_t *cold_mask = nullptr;
  int64_t *cold_count = nullptr;
  uint64_t *pairs = nullptr;
};

// The hot half of a split FFN: y[n][d] = sum over hot entries of act(gate, up) * down,
// each row's terms summed by chunks of neuron ids in order (sparse::kChunk).
struct FfnHot {
  DeviceNeurons hot;
  const int32_t *hot_list = nullptr;
  const uint64_t *hot_mask = nullptr;
  const int64_t *counts = nullptr;
  const float *gates = nullptr;  // Exact mode: the hot gates [n][n_hot]; null: gate rows of the blocks
  rs_act act = RS_ACT_RELU_GLU;
  int n = 0;
  const float *xn = nullptr;     // [n][d]
  float *h = nullptr;            // [n_ff][n] scratch: the entries' activations
  float *part = nullptr;         // scratch for partial sums, part_floats floats
  int64_t part_floats = 0;
  float *y = nullptr;            // [n][d]
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const char *kind() const = 0;  // "emu" or "cuda"
  virtual std::string name() const = 0;
  virtual uint64_t total_memory() const = 0;
  virtual uint64_t free_memory() const = 0;

  // ---- memory (at load; synchronous) ----
  virtual uint8_t *alloc(uint64_t bytes) = 0;  // throws InvalidArgError naming the sizes when it cannot
  virtual void release(uint8_t *p) = 0;
  virtual HostBuffer host_alloc(size_t bytes) = 0;
  virtual void host_release(HostBuffer &b) = 0;
  virtual void upload(uint8_t *dst, const void *src, size_t bytes) = 0;
  // Device scratch for activations quantised for the matrix kernels (the workspace's
  // act_q); a device that needs none ignores it.
  virtual void set_act_scratch(void *p, size_t bytes) {
    (void)p;
    (void)bytes;
  }

  // ---- stream ----
  virtual void copy_in(void *dst, const void *host_src, size_t bytes) = 0;  // host_src: host-visible
  virtual void copy_out(void *host_dst, const void *src, size_t bytes) = 0;  // host_dst: host-visible
  virtual void copy(void *dst, const void *src, size_t bytes) = 0;
  // After everything before it: f = *base + k. base is host-visible and read when the
  // operation runs, so a recorded step replays with the counts of the step it runs in.
  virtual void signal(HostFlag *f, const uint64_t *base, uint64_t k) = 0;
  // Nothing after it starts before f >= *base + k (raised by host_signal).
  virtual void wait(const HostFlag *f, const uint64_t *base, uint64_t k) = 0;

  // ---- recorded steps ----
  // A device that can record a step's operations once and replay them as one (CUDA
  // graphs: one launch instead of hundreds per token) returns true from record_begin;
  // the operations enqueued until record_end are then recorded, not run, and record_end
  // returns the recording (null if recording failed: run the step as usual). Everything
  // an operation takes by value is frozen at recording time, so a recording is only
  // replayed for a step of the same shape, and whatever changes from step to step is
  // read from memory when the operation runs (positions, flag bases, host-visible data).
  using Recording = std::shared_ptr<void>;
  virtual bool record_begin() { return false; }
  virtual Recording record_end() { return nullptr; }
  virtual void replay(const Recording &r) { (void)r; }

  // ---- host side ----
  virtual void host_signal(HostFlag *f, uint64_t v) = 0;
  // Blocks until f >= v; throws if the device failed meanwhile.
  virtual void host_wait(const HostFlag *f, uint64_t v) = 0;
  // Blocks until every queued operation has run; throws the device's error, if any.
  virtual void synchronize() = 0;
  // After a host-side failure mid-step: queued and blocked operations are dropped and
  // the stream is usable again once abort returns.
  virtual void abort() = 0;
  virtual DeviceTimes times() const = 0;
  // Operations enqueued from now on count toward this phase (when profiling).
  void phase(Phase p) { phase_ = p; }

 protected:
  Phase phase_ = kPhaseAttention;
  static bool profiling();

 public:

  // ---- kernels ----
  virtual void rmsnorm(float *y, const float *x, const float *w, int n, int d, float eps) = 0;
  // y[n][W.rows] = x[n][W.cols] . W^T (W: device rows, any stride)
  virtual void matmul(const Weight &W, const float *x, int n, float *y) = 0;
  virtual void rope(float *q, float *k, const int32_t *pos, int n, int n_head, int n_head_kv, int head_dim,
                    float freq_base) = 0;
  virtual void kv_store(const KvView &kv, int layer, const int32_t *pos, const int32_t *seq, int n, const float *k,
                        const float *v) = 0;
  // part: scratch for part_states partial softmax states per head (splits of the positions).
  virtual void attention(const KvView &kv, int layer, const int32_t *pos, const int32_t *seq, int n, const float *q,
                         int n_head, int n_head_kv, int head_dim, float *part, int part_states, float *out) = 0;
  virtual void add(float *x, const float *y, int64_t n) = 0;
  virtual void ffn_select(const FfnSelect &a) = 0;
  virtual void ffn_hot(const FfnHot &a) = 0;
  // x[n][d] += hot[n][d] + cold[n][d] (the sum first: the step's one merge)
  virtual void ffn_merge(float *x, const float *hot, const float *cold, int n, int d) = 0;
};

struct EmuOptions {
  uint64_t memory = 8ull << 30;  // the emulated device's memory
  int latency_us = 0;            // added before every operation
  int isa = 99;                  // CPU kernels' instruction-set cap (RS_ISA_BEST)
};

std::unique_ptr<Device> make_emu_device(const EmuOptions &o);
// Throws InvalidArgError when this build has no CUDA or the machine no GPU.
std::unique_ptr<Device> make_cuda_device(int ordinal);
// Usable CUDA devices (0 without CUDA in the build, a driver or a GPU).
int cuda_device_count();

}  // namespace rs

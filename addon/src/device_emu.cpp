// The emulated device: the hybrid runtime's device side run by the CPU kernels on a
// thread of its own, over memory of its own (allocated and accounted like a GPU's),
// with flags the host and "device" exchange exactly as with a real GPU. Optional delay
// before every operation. Its kernels are a one-thread CpuBackend's, so a computation
// done here gives the same bits as the same computation on the CPU side: at 0% and 100%
// of the FFN on the device a hybrid step equals the CPU-only step bit for bit.
//
// The kernels' own temporaries (the CPU backend's conversion and partial-sum buffers)
// are host memory outside the accounting, as a GPU kernel's registers and shared memory
// would be; every buffer the runtime allocates goes through alloc().
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backend_cpu.h"
#include "device.h"

namespace rs {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

class EmuDevice final : public Device {
 public:
  explicit EmuDevice(const EmuOptions &o)
      : opt_(o), cpu_(1, static_cast<rs_isa>(o.isa), 1), worker_([this] { run(); }) {}

  ~EmuDevice() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  const char *kind() const override { return "emu"; }
  std::string name() const override {
    return "emulated device (" + std::to_string(opt_.memory >> 20) + " MiB, " + std::to_string(opt_.latency_us) +
           " us per operation)";
  }
  uint64_t total_memory() const override { return opt_.memory; }
  uint64_t free_memory() const override { return opt_.memory - used_; }

  uint8_t *alloc(uint64_t bytes) override {
    if (bytes > free_memory())
      throw InvalidArgError("the emulated device cannot allocate " + std::to_string(bytes) + " bytes: " +
                            std::to_string(free_memory()) + " of its " + std::to_string(opt_.memory) + " are free");
    void *p = std::aligned_alloc(kDeviceAlign, device_piece(bytes > 0 ? bytes : 1));
    if (!p) throw std::bad_alloc();
    used_ += bytes;
    sizes_.push_back({static_cast<uint8_t *>(p), bytes});
    return static_cast<uint8_t *>(p);
  }
  void release(uint8_t *p) override {
    for (size_t i = 0; i < sizes_.size(); i++)
      if (sizes_[i].first == p) {
        {
          std::lock_guard<std::mutex> lk(x8_mu_);  // repacked copies of matrices that lived there
          for (auto it = x8_.begin(); it != x8_.end();)
            it = it->first >= p && it->first < p + sizes_[i].second ? x8_.erase(it) : std::next(it);
        }
        used_ -= sizes_[i].second;
        sizes_.erase(sizes_.begin() + static_cast<long>(i));
        std::free(p);
        return;
      }
  }
  HostBuffer host_alloc(size_t bytes) override {
    void *p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    return HostBuffer{static_cast<uint8_t *>(p), bytes};
  }
  void host_release(HostBuffer &b) override {
    std::free(b.host);
    b = HostBuffer{};
  }
  void upload(uint8_t *dst, const void *src, size_t bytes) override { std::memcpy(dst, src, bytes); }

  // ---- stream ----
  void copy_in(void *dst, const void *src, size_t bytes) override { enqueue([=] { std::memcpy(dst, src, bytes); }); }
  void copy_out(void *dst, const void *src, size_t bytes) override { enqueue([=] { std::memcpy(dst, src, bytes); }); }
  void copy(void *dst, const void *src, size_t bytes) override { enqueue([=] { std::memmove(dst, src, bytes); }); }
  void signal(HostFlag *f, const uint64_t *base, uint64_t k) override {
    enqueue([=] { raise(f, value(base, k)); });
  }
  void wait(const HostFlag *f, const uint64_t *base, uint64_t k) override {
    enqueue([=] {
      const uint64_t v = value(base, k);
      const auto t0 = Clock::now();
      std::unique_lock<std::mutex> lk(mu_);
      flag_cv_.wait(lk, [&] { return f->value.load(std::memory_order_acquire) >= v || aborting_; });
      wait_ms_ += ms_since(t0);
    }, /*is_wait=*/true);
  }

  // Recording keeps the operations' closures (their by-value arguments frozen, as a CUDA
  // graph keeps its kernels' arguments); a replay queues them again in order.
  bool record_begin() override {
    std::lock_guard<std::mutex> lk(mu_);
    recording_ = std::make_shared<std::vector<Op>>();
    return true;
  }
  Recording record_end() override {
    std::lock_guard<std::mutex> lk(mu_);
    Recording r = std::move(recording_);
    recording_.reset();
    return r;
  }
  void replay(const Recording &r) override {
    const auto &ops = *static_cast<const std::vector<Op> *>(r.get());
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (const Op &op : ops) queue_.push_back(op);
    }
    cv_.notify_one();
  }

  void host_signal(HostFlag *f, uint64_t v) override { raise(f, v); }
  void host_wait(const HostFlag *f, uint64_t v) override {
    std::unique_lock<std::mutex> lk(mu_);
    flag_cv_.wait(lk, [&] { return f->value.load(std::memory_order_acquire) >= v || !error_.empty(); });
    if (!error_.empty()) throw std::runtime_error("emulated device: " + error_);
  }
  void synchronize() override {
    std::unique_lock<std::mutex> lk(mu_);
    idle_cv_.wait(lk, [&] { return queue_.empty() && !running_; });
    if (!error_.empty()) {
      std::string e = error_;
      error_.clear();
      throw std::runtime_error("emulated device: " + e);
    }
  }
  void abort() override {
    std::unique_lock<std::mutex> lk(mu_);
    aborting_ = true;
    queue_.clear();
    flag_cv_.notify_all();
    idle_cv_.wait(lk, [&] { return !running_; });
    aborting_ = false;
    error_.clear();
  }
  DeviceTimes times() const override {
    std::lock_guard<std::mutex> lk(mu_);
    DeviceTimes t{busy_ms_, wait_ms_, {}};
    for (int p = 0; p < kPhases; p++) t.phase_ms[p] = phase_ms_[p];
    return t;
  }

  // ---- kernels ----
  void rmsnorm(float *y, const float *x, const float *w, int n, int d, float eps) override {
    enqueue([=] { cpu_.rmsnorm(x, w, n, d, eps, y); });
  }
  void matmul(const Weight &W, const float *x, int n, float *y) override {
    enqueue([=] { cpu_.matmul(repacked(W), x, n, y); });
  }
  void rope(float *q, float *k, const int32_t *pos, int n, int n_head, int n_head_kv, int head_dim,
            float freq_base) override {
    enqueue([=] { cpu_.rope(q, k, BatchView{n, pos, nullptr}, n_head, n_head_kv, head_dim, freq_base); });
  }
  void kv_store(const KvView &kv, int layer, const int32_t *pos, const int32_t *seq, int n, const float *k,
                const float *v) override {
    enqueue([=] { cpu_.kv_store(kv, layer, BatchView{n, pos, seq}, k, v); });
  }
  void attention(const KvView &kv, int layer, const int32_t *pos, const int32_t *seq, int n, const float *q,
                 int n_head, int n_head_kv, int head_dim, float *, int, float *out) override {
    enqueue([=] { cpu_.attention(kv, layer, BatchView{n, pos, seq}, q, n_head, n_head_kv, head_dim, out); });
  }
  void add(float *x, const float *y, int64_t n) override {
    enqueue([=] { cpu_.add(x, y, n); });
  }
  void ffn_select(const FfnSelect &a) override {
    enqueue([=] { select(a); });
  }
  void ffn_hot(const FfnHot &a) override {
    enqueue([=] {
      sparse::NeuronList list;
      list.blk = a.hot_list;
      list.n = a.counts[0];
      list.id_of = a.hot.hot_ids;
      list.mask = a.n == 1 ? nullptr : a.hot_mask;
      cpu_.ffn_blocks(a.hot.blocks, list, sparse::GateValues{a.gates, a.hot.n_hot}, a.act, a.xn, a.n, a.y);
    });
  }
  void ffn_merge(float *x, const float *hot, const float *cold, int n, int d) override {
    enqueue([=] {
      const size_t m = static_cast<size_t>(n) * d;
      for (size_t i = 0; i < m; i++) x[i] += hot[i] + cold[i];
    });
  }

 private:
  void enqueue(std::function<void()> op, bool is_wait = false) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (recording_) {
        recording_->push_back(Op{std::move(op), is_wait, phase_});
        return;
      }
      queue_.push_back(Op{std::move(op), is_wait, phase_});
    }
    cv_.notify_one();
  }
  static uint64_t value(const uint64_t *base, uint64_t k) {
    return (base ? __atomic_load_n(base, __ATOMIC_ACQUIRE) : 0) + k;
  }

  void raise(HostFlag *f, uint64_t v) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      f->value.store(v, std::memory_order_release);
    }
    flag_cv_.notify_all();
  }

  void run() {
    for (;;) {
      Op op;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
        if (stop_ && queue_.empty()) return;
        op = std::move(queue_.front());
        queue_.pop_front();
        running_ = true;
      }
      if (opt_.latency_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(opt_.latency_us));
      const auto t0 = Clock::now();
      std::string err;
      try {
        op.fn();
      } catch (const std::exception &e) {
        err = e.what();
      } catch (...) {
        err = "unknown error";
      }
      const double ms = ms_since(t0);
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (!op.is_wait) busy_ms_ += ms;
        if (profile_) phase_ms_[op.phase] += ms;
        running_ = false;
        if (!err.empty()) {
          error_ = err;
          queue_.clear();  // what follows depends on what failed
        }
      }
      flag_cv_.notify_all();
      idle_cv_.notify_all();
    }
  }

  // Scores (or hot gates), then each neuron's row mask, split by where it lives.
  void select(const FfnSelect &a) {
    const int n = a.n;
    const int64_t n_ff = a.hot.n_ff, d = a.hot.blocks.up.cols;
    std::vector<uint64_t> mask(static_cast<size_t>(n_ff), 0);
    if (a.mode == FfnMode::Predictor) {
      // scores = fc2 . relu(fc1 . resid) with the CPU's matmul kernels in the file's
      // types, as the CPU's predictor computes them, so both sides pick the same neurons.
      const int64_t rank = a.fc1.rows;
      cpu_.matmul(a.fc1, a.resid, n, a.z1);
      for (int64_t k = 0; k < static_cast<int64_t>(n) * rank; k++) a.z1[k] = a.z1[k] > 0.f ? a.z1[k] : 0.f;
      cpu_.matmul(a.fc2, a.z1, n, a.scores);
      for (int j = 0; j < n; j++)
        for (int64_t i = 0; i < n_ff; i++)
          if (a.scores[static_cast<size_t>(j) * n_ff + i] >= a.threshold) mask[static_cast<size_t>(i)] |= 1ull << j;
    } else {
      // Exact: the hot neurons' gates (the CPU computes its own neurons' gates).
      if (a.hot.n_hot > 0) {
        Weight g = a.hot.blocks.gate;
        g.rows = a.hot.n_hot;
        cpu_.matmul(g, a.xn, n, a.scores);
      }
      for (int j = 0; j < n; j++)
        for (int64_t s = 0; s < a.hot.n_hot; s++)
          if (a.scores[static_cast<size_t>(j) * a.hot.n_hot + s] > 0.f)
            mask[static_cast<size_t>(a.hot.hot_ids[s])] |= 1ull << j;
    }
    (void)d;
    int64_t nh = 0, nc = 0;
    uint64_t ph = 0, pc = 0;
    for (int64_t i = 0; i < n_ff; i++) {
      const uint64_t m = mask[static_cast<size_t>(i)];
      if (!m) continue;
      const int32_t s = a.hot.slot_of[i];
      if (s >= 0) {
        a.hot_list[nh] = s;
        a.hot_mask[nh++] = m;
        ph += static_cast<uint64_t>(__builtin_popcountll(m));
      } else if (a.cold_list) {
        a.cold_list[nc] = static_cast<int32_t>(i);
        a.cold_mask[nc++] = m;
        pc += static_cast<uint64_t>(__builtin_popcountll(m));
      }
    }
    a.counts[0] = nh;
    if (a.cold_count) *a.cold_count = nc;
    a.pairs[0] += ph;
    if (a.cold_list) a.pairs[1] += pc;  // in exact mode the host counts its own
  }

  // The CPU multiplies the matrices it repacked (Weight::x8_on_host) in their 8-row
  // layout, whose summation order differs from row by row: to give the CPU's bits, the
  // emulator repacks its own uploaded rows the same way, once per matrix (emulator
  // memory only: a real device keeps its own layouts).
  Weight repacked(const Weight &W) {
    if (!W.x8_on_host || W.x8) return W;
    std::lock_guard<std::mutex> lk(x8_mu_);
    auto it = x8_.find(W.data);
    if (it == x8_.end()) {
      std::vector<uint8_t> buf(W.row_bytes * static_cast<size_t>(W.rows));
      rs_q4_0x8_pack(W.data, W.stride, W.rows, W.cols, buf.data());
      it = x8_.emplace(W.data, std::move(buf)).first;
    }
    Weight d = W;
    d.x8 = it->second.data();
    return d;
  }

  struct Op {
    std::function<void()> fn;
    bool is_wait = false;
    Phase phase = kPhaseAttention;
  };

  EmuOptions opt_;
  CpuBackend cpu_;
  std::mutex x8_mu_;
  std::unordered_map<const uint8_t *, std::vector<uint8_t>> x8_;  // repacked(): device rows -> their x8 copy
  uint64_t used_ = 0;
  std::vector<std::pair<uint8_t *, uint64_t>> sizes_;
  mutable std::mutex mu_;
  std::condition_variable cv_, flag_cv_, idle_cv_;
  std::deque<Op> queue_;
  std::shared_ptr<std::vector<Op>> recording_;  // set between record_begin and record_end
  bool stop_ = false, running_ = false, aborting_ = false;
  std::string error_;
  double busy_ms_ = 0, wait_ms_ = 0;
  double phase_ms_[kPhases] = {};
  const bool profile_ = profiling();
  std::thread worker_;  // last: starts once everything above is built
};

}  // namespace

std::unique_ptr<Device> make_emu_device(const EmuOptions &o) { return std::make_unique<EmuDevice>(o); }

}  // namespace rs

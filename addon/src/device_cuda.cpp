// The CUDA device: kernels/cuda on one stream per context, host-visible flags in pinned,
// mapped memory, device memory from cudaMalloc. Nothing here waits on the whole device
// during a step: the host waits on flags the stream raises, the stream on flags the host
// raises (rs_cuda_wait), and synchronize() ends a step. Built with nvcc present, or
// against the CPU emulator (RS_CUDA_EMU) so CI runs this file end to end.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#ifdef RS_CUDA_EMU
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#define RS_SPIN_PAUSE() _mm_pause()
#else
#define RS_SPIN_PAUSE() std::this_thread::yield()
#endif

#include "device.h"
#include "rs_cuda.h"

namespace rs {

namespace {

std::string cuda_msg(const char *what, cudaError_t e) {
  return std::string(what) + ": CUDA error " + std::to_string(static_cast<int>(e)) + " (" + cudaGetErrorString(e) + ")";
}

rs_cuda_matrix matrix(const Weight &w) {
  return rs_cuda_matrix{static_cast<int>(w.type), w.data, w.rows, w.cols, w.stride};
}

rs_cuda_neurons neurons(const DeviceNeurons &h) {
  return rs_cuda_neurons{matrix(h.blocks.gate), matrix(h.blocks.up), matrix(h.blocks.down), h.n_hot, h.n_ff,
                         h.hot_ids, h.slot_of};
}

rs_cuda_kv kv_of(const KvView &kv) { return rs_cuda_kv{kv.k, kv.v, kv.n_seq, kv.n_ctx, kv.n_head_kv, kv.head_dim}; }

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(int ordinal) : ordinal_(ordinal) {
    check(cudaSetDevice(ordinal), "selecting the GPU");
    cudaDeviceProp p;
    check(cudaGetDeviceProperties(&p, ordinal), "querying the GPU");
    name_ = p.name;
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a stream");
    check(cudaEventCreateWithFlags(&ev0_, 0), "creating an event");
    check(cudaEventCreateWithFlags(&ev1_, 0), "creating an event");
    ctl_ = host_alloc(64);
    abort_ = reinterpret_cast<uint32_t *>(ctl_.host);
    wait_ns_ = reinterpret_cast<uint64_t *>(ctl_.host + 8);
  }
  ~CudaDevice() override {
    cudaStreamSynchronize(stream_);
    for (auto &m : marks_) cudaEventDestroy(m.first);
    host_release(ctl_);
    cudaEventDestroy(ev0_);
    cudaEventDestroy(ev1_);
    cudaStreamDestroy(stream_);
  }

  const char *kind() const override { return "cuda"; }
  std::string name() const override { return name_; }
  uint64_t total_memory() const override {
    size_t free_b = 0, total = 0;
    cudaMemGetInfo(&free_b, &total);
    return total;
  }
  uint64_t free_memory() const override {
    size_t free_b = 0, total = 0;
    cudaMemGetInfo(&free_b, &total);
    return free_b;
  }

  uint8_t *alloc(uint64_t bytes) override {
    void *p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes > 0 ? bytes : 1);
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw InvalidArgError("the GPU (" + name_ + ") cannot allocate " + std::to_string(bytes) + " bytes: " +
                            std::to_string(free_memory()) + " are free (" + cudaGetErrorString(e) + ")");
    }
    return static_cast<uint8_t *>(p);
  }
  void release(uint8_t *p) override { cudaFree(p); }
  HostBuffer host_alloc(size_t bytes) override {
    void *p = nullptr;
    check(cudaHostAlloc(&p, bytes > 0 ? bytes : 1, cudaHostAllocMapped | cudaHostAllocPortable),
          "allocating pinned host memory");
    void *dev = nullptr;
    check(cudaHostGetDevicePointer(&dev, p, 0), "mapping pinned host memory");
    // Unified addressing (every 64-bit platform CUDA supports): the device reaches pinned
    // memory at the host's own address, so host-visible pointers pass to kernels as they are.
    if (dev != p) throw std::runtime_error("pinned host memory is not at the same address on the GPU");
    std::memset(p, 0, bytes);
    return HostBuffer{static_cast<uint8_t *>(p), bytes};
  }
  void host_release(HostBuffer &b) override {
    if (b.host) cudaFreeHost(b.host);
    b = HostBuffer{};
  }
  void set_act_scratch(void *p, size_t) override { act_ = p; }
  void upload(uint8_t *dst, const void *src, size_t bytes) override {
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "uploading to the GPU");
  }

  // ---- stream ----
  // Copies by kernel, never cudaMemcpyAsync: the host writes the pinned source (or reads
  // the destination) while the stream runs, and a runtime copy enqueued behind a waiting
  // kernel was seen to block the host until that kernel ended (copy.cu).
  void copy_in(void *dst, const void *src, size_t bytes) override {
    open();
    Mark m(this);
    note(rs_cuda_copy(dst, src, bytes, stream_), "copy to the GPU");
  }
  void copy_out(void *dst, const void *src, size_t bytes) override {
    open();
    Mark m(this);
    note(rs_cuda_copy(dst, src, bytes, stream_), "copy from the GPU");
  }
  void copy(void *dst, const void *src, size_t bytes) override {
    open();
    Mark m(this);
    note(rs_cuda_copy(dst, src, bytes, stream_), "copy on the GPU");
  }
  void signal(HostFlag *f, const uint64_t *base, uint64_t k) override {
    open();
    Mark m(this);
    note(rs_cuda_signal(raw(f), base, k, stream_), "signal");
  }
  void wait(const HostFlag *f, const uint64_t *base, uint64_t k) override {
    open();
    Mark m(this);
    note(rs_cuda_wait(raw(f), base, k, abort_, wait_ns_, stream_), "wait");
  }

  // ---- recorded steps: CUDA graphs ----
  // Not while profiling or tracing (those time or print each operation as it is
  // enqueued), and not after a capture has failed once (then every step runs eagerly).
  bool record_begin() override {
    if (profile_ || trace_ || !graphs_ok_) return false;
    if (cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
      cudaGetLastError();
      graphs_ok_ = false;
      return false;
    }
    recording_ = true;
    capture_error_ = error_.empty() ? std::string() : error_;
    return true;
  }
  Recording record_end() override {
    recording_ = false;
    cudaGraph_t g = nullptr;
    const cudaError_t e = cudaStreamEndCapture(stream_, &g);
    cudaGraphExec_t exec = nullptr;
    const bool ok = e == cudaSuccess && g && error_ == capture_error_ && cudaGraphInstantiate(&exec, g, 0) == cudaSuccess;
    if (g) cudaGraphDestroy(g);
    if (!ok) {  // the step then runs eagerly; an enqueue error met while capturing is not the step's
      cudaGetLastError();
      error_ = capture_error_;
      graphs_ok_ = false;
      if (exec) cudaGraphExecDestroy(exec);
      std::fprintf(stderr, "relu-serve: recording a step as a CUDA graph failed (%s); running steps op by op\n",
                   e != cudaSuccess ? cudaGetErrorString(e) : "an operation failed to enqueue");
      return nullptr;
    }
    return Recording(exec, [](void *x) { cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(x)); });
  }
  void replay(const Recording &r) override {
    open();
    note(cudaGraphLaunch(static_cast<cudaGraphExec_t>(r.get()), stream_), "graph launch");
  }

  void host_signal(HostFlag *f, uint64_t v) override { f->value.store(v, std::memory_order_release); }
  void host_wait(const HostFlag *f, uint64_t v) override {
    // Spin (the CPU's workers are idle meanwhile anyway), now and then asking the stream
    // whether it failed, so a broken kernel ends the step instead of hanging it.
    if (trace_) std::fprintf(stderr, "[cuda] host_wait %p for %llu (now %llu), %d ops so far\n", static_cast<const void *>(f),
                             (unsigned long long)v, (unsigned long long)f->value.load(), ops_);
    const auto t0 = std::chrono::steady_clock::now();
    double reported = 0;
    for (uint64_t it = 0; f->value.load(std::memory_order_acquire) < v; it++) {
      RS_SPIN_PAUSE();
      if (it % 4096 == 4095) {
        const cudaError_t e = cudaStreamQuery(stream_);
        if (e != cudaSuccess && e != cudaErrorNotReady) throw std::runtime_error(cuda_msg("the GPU's stream", e));
        if (it > 1u << 20) std::this_thread::yield();
        if (trace_) {
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          if (s > reported + 1) {
            reported = s;
            std::fprintf(stderr, "[cuda]   still waiting after %.0f s: flag %llu < %llu, stream %d, error '%s'\n", s,
                         (unsigned long long)f->value.load(), (unsigned long long)v, static_cast<int>(e), error_.c_str());
          }
        }
      }
    }
    rethrow();
  }
  void synchronize() override {
    if (trace_) std::fprintf(stderr, "[cuda] synchronize (%d ops)\n", ops_);
    if (open_) {
      cudaEventRecord(ev1_, stream_);
      const cudaError_t e = cudaStreamSynchronize(stream_);
      open_ = false;
      if (e != cudaSuccess) note(e, "the step");
      float ms = 0;
      if (e == cudaSuccess && cudaEventElapsedTime(&ms, ev0_, ev1_) == cudaSuccess) {
        const double waited = static_cast<double>(*wait_ns_ - wait_seen_) / 1e6;
        wait_seen_ = *wait_ns_;
        {
          std::lock_guard<std::mutex> lk(times_mu_);
          wait_ms_ += waited;
          busy_ms_ += ms > waited ? ms - waited : 0.0;
        }
        if (profile_) collect_marks();
      }
      marks_used_ = 0;
    }
    rethrow();
  }
  void abort() override {
    *reinterpret_cast<volatile uint32_t *>(abort_) = 1;  // waits on the stream return at once
    cudaStreamSynchronize(stream_);
    cudaGetLastError();
    *reinterpret_cast<volatile uint32_t *>(abort_) = 0;
    wait_seen_ = *wait_ns_;
    open_ = false;
    marks_used_ = 0;
    error_.clear();
  }
  DeviceTimes times() const override {
    std::lock_guard<std::mutex> lk(times_mu_);
    DeviceTimes t{busy_ms_, wait_ms_, {}};
    for (int p = 0; p < kPhases; p++) t.phase_ms[p] = phase_ms_[p];
    return t;
  }

  // ---- kernels ----
  void rmsnorm(float *y, const float *x, const float *w, int n, int d, float eps) override {
    open();
    Mark m(this);
    note(rs_cuda_rmsnorm(y, x, w, n, d, eps, stream_), "rmsnorm");
  }
  void matmul(const Weight &W, const float *x, int n, float *y) override {
    open();
    Mark m(this);
    note(rs_cuda_matmul(matrix(W), x, n, y, act_, stream_), "matmul");
  }
  void rope(float *q, float *k, const int32_t *pos, int n, int n_head, int n_head_kv, int head_dim,
            float freq_base) override {
    open();
    Mark m(this);
    note(rs_cuda_rope(q, k, pos, n, n_head, n_head_kv, head_dim, freq_base, stream_), "rope");
  }
  void kv_store(const KvView &kv, int layer, const int32_t *pos, const int32_t *seq, int n, const float *k,
                const float *v) override {
    open();
    Mark m(this);
    note(rs_cuda_kv_store(kv_of(kv), layer, pos, seq, n, k, v, stream_), "kv_store");
  }
  void attention(const KvView &kv, int layer, const int32_t *pos, const int32_t *seq, int n, const float *q,
                 int n_head, int, int, float *part, int part_states, float *out) override {
    open();
    Mark m(this);
    note(rs_cuda_attention(kv_of(kv), layer, pos, seq, n, q, n_head, part, part_states, out, stream_), "attention");
  }
  void add(float *x, const float *y, int64_t n) override {
    open();
    Mark m(this);
    note(rs_cuda_add(x, y, n, stream_), "add");
  }
  void ffn_select(const FfnSelect &a) override {
    open();
    Mark m(this);
    if (a.mode == FfnMode::Predictor)
      note(rs_cuda_ffn_select_predictor(neurons(a.hot), matrix(a.fc1), matrix(a.fc2), a.threshold, a.n, a.resid, a.z1,
                                        a.nmask, a.hot_list, a.hot_mask, a.counts, a.cold_list, a.cold_mask,
                                        a.cold_count, a.pairs, act_, stream_),
           "ffn_select");
    else
      note(rs_cuda_ffn_select_exact(neurons(a.hot), a.n, a.xn, a.scores, a.nmask, a.hot_list, a.hot_mask, a.counts,
                                    a.pairs, act_, stream_),
           "ffn_select");
  }
  void ffn_hot(const FfnHot &a) override {
    open();
    Mark m(this);
    note(rs_cuda_ffn_hot(neurons(a.hot), a.hot_list, a.hot_mask, a.counts, a.gates, static_cast<int>(a.act), a.n, a.xn,
                         a.h, a.part, a.part_floats, a.y, act_, stream_),
         "ffn_hot");
  }
  void ffn_merge(float *x, const float *hot, const float *cold, int n, int d) override {
    open();
    Mark m(this);
    note(rs_cuda_ffn_merge(x, hot, cold, n, d, stream_), "ffn_merge");
  }

 private:
  // With profiling, an event after each operation: at synchronize, the time between
  // consecutive events goes to the phase the operation was enqueued in.
  struct Mark {
    CudaDevice *d;
    explicit Mark(CudaDevice *dev) : d(dev) {}
    ~Mark() {
      if (!d->profile_) return;
      if (d->marks_used_ == d->marks_.size()) {
        cudaEvent_t e;
        if (cudaEventCreateWithFlags(&e, 0) != cudaSuccess) return;
        d->marks_.push_back({e, kPhaseAttention});
      }
      d->marks_[d->marks_used_].second = d->phase_;
      cudaEventRecord(d->marks_[d->marks_used_++].first, d->stream_);
    }
  };
  void collect_marks() {
    cudaEvent_t prev = ev0_;
    std::lock_guard<std::mutex> lk(times_mu_);
    for (size_t i = 0; i < marks_used_; i++) {
      float ms = 0;
      if (cudaEventElapsedTime(&ms, prev, marks_[i].first) == cudaSuccess) phase_ms_[marks_[i].second] += ms;
      prev = marks_[i].first;
    }
    marks_used_ = 0;
  }
  static uint64_t *raw(const HostFlag *f) {
    static_assert(sizeof(HostFlag) == sizeof(uint64_t), "a flag is one u64 the GPU can write");
    return reinterpret_cast<uint64_t *>(const_cast<HostFlag *>(f));
  }
  void check(cudaError_t e, const char *what) {
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error(cuda_msg(what, e));
    }
  }
  // Enqueueing errors are kept and raised at the next wait or synchronize (the step fails).
  void note(int e, const char *what) {
    ops_++;
    if (trace_) std::fprintf(stderr, "[cuda] op %d %s -> %d\n", ops_, what, e);
    if (e != 0 && error_.empty()) error_ = cuda_msg(what, static_cast<cudaError_t>(e));
  }
  void rethrow() {
    if (error_.empty()) return;
    const std::string e = error_;
    error_.clear();
    throw std::runtime_error(e);
  }
  // The first operation after a synchronize starts the step's timing (a replay's first
  // operation is the replay: nothing is timed while recording).
  void open() {
    if (open_ || recording_) return;
    open_ = true;
    cudaEventRecord(ev0_, stream_);
  }

  int ordinal_;
  std::string name_;
  void *act_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ev0_ = nullptr, ev1_ = nullptr;
  HostBuffer ctl_;
  uint32_t *abort_ = nullptr;
  uint64_t *wait_ns_ = nullptr;
  uint64_t wait_seen_ = 0;
  bool open_ = false;
  bool recording_ = false, graphs_ok_ = true;
  std::string error_, capture_error_;
  mutable std::mutex times_mu_;
  double busy_ms_ = 0, wait_ms_ = 0;
  double phase_ms_[kPhases] = {};
  const bool profile_ = profiling();
  // RELU_SERVE_TRACE_DEVICE=1: every operation and wait on stderr (diagnosing a GPU run).
  const bool trace_ = [] {
    const char *e = std::getenv("RELU_SERVE_TRACE_DEVICE");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  int ops_ = 0;
  std::vector<std::pair<cudaEvent_t, Phase>> marks_;
  size_t marks_used_ = 0;
};

}  // namespace

int cuda_device_count() { return rs_cuda_device_count(); }

std::unique_ptr<Device> make_cuda_device(int ordinal) {
  const int n = rs_cuda_device_count();
  if (n == 0)
    throw InvalidArgError("device 'cuda': no CUDA device found (this build has CUDA, but the driver reports no GPU); "
                          "use --device cpu, or emu to try the hybrid runtime without a GPU");
  if (ordinal < 0 || ordinal >= n)
    throw InvalidArgError("CUDA device " + std::to_string(ordinal) + " does not exist (" + std::to_string(n) + " found)");
  return std::make_unique<CudaDevice>(ordinal);
}

}  // namespace rs

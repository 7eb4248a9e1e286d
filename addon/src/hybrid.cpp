// The hybrid step: attention, the predictor and the hot FFN neurons on the device; the
// cold neurons on the CPU at the same time; one merge per layer.
//
// The host enqueues the whole step on the device's stream first, then serves the
// device's requests in order. Per layer and group of up to 64 rows:
//   device: attention block; ffn_norm; select (predictor scores or hot gates, the split
//           into hot entries and cold entries, the cold ones written to host-visible
//           memory); copy xn out; signal READY; hot neurons into hot_y;
//           wait DONE; copy cold_y in; x += hot_y + cold_y
//   host:   wait READY; cold neurons into cold_y (exact mode: their gates first);
//           signal DONE
// So the CPU's cold neurons run while the device runs the hot ones, the transfers are
// the normed rows and the cold list down and one partial sum per row up, and nothing
// waits on the whole device. Every neuron is computed whole on one side; each side sums
// its neurons by chunks of ids in order (sparse::kChunk) and the merge adds the two in
// a fixed order, so results do not depend on timing or thread count. With every neuron
// on one side the sum is the CPU-only one, bit for bit (on the emulated device).
//
// A device that can record (CUDA graphs) gets each step shape that comes back recorded
// once and replayed as one launch afterwards: hundreds of kernel launches per token would
// otherwise cost more than a small model's kernels. Per-step values reach a replay from
// memory: the token rows, positions and sequences are copied in from staging, and the
// flags' values are counted from bases the host writes before each step.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "device_model.h"
#include "executor.h"

namespace rs {

using Clock = std::chrono::steady_clock;

namespace {

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string mib(uint64_t b) {
  char s[64];
  std::snprintf(s, sizeof s, "%.2f MiB", static_cast<double>(b) / 1048576.0);
  return s;
}

}  // namespace

class HybridExecutor final : public Executor {
 public:
  HybridExecutor(const Model &m, KvCache &cache, int n_threads, rs_isa isa, int n_batch, FfnMode mode,
                 const DeviceRequest &req);
  ~HybridExecutor() override;
  void decode(const int32_t *tokens, const BatchView &b, const uint8_t *want, float *logits,
              const ForwardOptions &opt) override;
  CpuBackend &cpu() override { return cpu_; }

  const DeviceReport *device_report() const override { return &report_; }
  HybridStats hybrid_stats() const override {
    std::lock_guard<std::mutex> lk(stats_mu_);
    return stats_;
  }

 private:
  void enqueue_step(int n, const std::vector<int> &out_rows, const ForwardOptions &opt);
  // Enqueues the step: replays its recording, or records it (its shape's second time), or
  // enqueues it op by op. Returns whether it ran from a recording.
  bool run_step(int n, const std::vector<int> &out_rows, const ForwardOptions &opt);
  void serve_host(int n, const std::vector<int> &out_rows, float *logits, double *host_ms);

  const Model &m_;
  KvCache &cache_;
  DeviceReport report_;
  int n_batch_;
  FfnMode mode_;
  CpuBackend cpu_;
  std::unique_ptr<Device> dev_;
  std::unique_ptr<DeviceModel> dm_;
  std::vector<std::vector<uint8_t>> is_hot_;  // per layer: 1 for the device's neurons (exact mode's host side)

  // Host-visible staging, one region.
  HostBuffer host_;
  struct {
    float *x_in, *xn, *cold_y, *logits;
    int32_t *pos, *seq, *cold_list;
    uint64_t *cold_mask, *pairs;
    int64_t *cold_count;
    HostFlag *ready, *done, *out_ready, *out_done;
    uint64_t *base;  // [2]: n_ready_ and n_out_ at the start of the step, read by the device's flags
  } st_{};
  uint64_t n_ready_ = 0, n_out_ = 0;  // signals so far (each step continues the count)

  // Recorded steps by shape (declared after dev_: released before the device).
  bool record_ = true;
  std::map<std::string, Device::Recording> recordings_;
  std::map<std::string, int> shapes_seen_;

  mutable std::mutex stats_mu_;
  HybridStats stats_;
};

HybridExecutor::HybridExecutor(const Model &m, KvCache &cache, int n_threads, rs_isa isa, int n_batch, FfnMode mode,
                               const DeviceRequest &req)
    : m_(m), cache_(cache), n_batch_(n_batch), mode_(mode), cpu_(n_threads, isa, cache.n_ctx) {
  const HParams &hp = m.hp();
  if (req.kind == "emu") dev_ = make_emu_device(req.emu);
  else if (req.kind == "cuda") dev_ = make_cuda_device(0);
  else throw InvalidArgError("unknown device '" + req.kind + "' (expected cpu, cuda, emu or auto)");
  report_.kind = dev_->kind();
  report_.name = dev_->name();
  report_.memory_total = dev_->total_memory();
  report_.memory_free = dev_->free_memory();

  const DeviceShape shape{cache.n_seq, cache.n_ctx, n_batch, mode == FfnMode::Predictor};
  VramPlan plan = plan_fixed(m, shape);
  Placement placement;
  if (req.has_hot) {
    placement.hot = req.hot;
    placement.source = req.hot_source.empty() ? "given" : req.hot_source;
  } else if (!req.placement_path.empty()) {
    placement = read_placement_file(req.placement_path, m, plan);
  }
  // The budget: given in bytes, else the one a placement file was solved for, else a
  // share of what the device has free.
  uint64_t budget = req.budget;
  report_.budget_from = "bytes";
  if (budget == 0 && placement.file_budget > 0) {
    budget = placement.file_budget;
    report_.budget_from = "placement file";
  } else if (budget == 0) {
    budget = static_cast<uint64_t>(req.budget_fraction * static_cast<double>(report_.memory_free));
    report_.budget_from = std::to_string(static_cast<int>(req.budget_fraction * 100 + 0.5)) + "% of free memory";
  }
  report_.budget = budget;
  if (budget > report_.memory_free)
    throw InvalidArgError("VRAM budget " + mib(budget) + " is more than the device's free memory (" +
                          mib(report_.memory_free) + " of " + mib(report_.memory_total) + ", " + report_.name + ")");
  if (budget < plan.fixed()) {
    std::string parts;
    for (const auto &p : plan.fixed_parts())
      if (p.second) parts += std::string(parts.empty() ? "" : ", ") + p.first + " " + mib(p.second);
    throw InvalidArgError("VRAM budget " + mib(budget) + " (" + std::to_string(budget) +
                          " bytes) is too small: the fixed part needs " + mib(plan.fixed()) + " (" +
                          std::to_string(plan.fixed()) + " bytes: " + parts + ", the KV cache for " +
                          std::to_string(cache.n_seq) + " x " + std::to_string(cache.n_ctx) +
                          " positions) before any FFN neuron; raise --vram-budget or lower --ctx-size, --parallel "
                          "or --batch-size");
  }
  const uint64_t capacity = budget - plan.fixed();
  if (!req.has_hot && req.placement_path.empty()) placement = uniform_placement(plan, hp.n_ff, capacity);
  if (placement.hot.size() != static_cast<size_t>(hp.n_layer))
    throw InvalidArgError("the placement covers " + std::to_string(placement.hot.size()) + " layers, the model has " +
                          std::to_string(hp.n_layer));
  std::vector<uint32_t> counts;
  for (size_t l = 0; l < placement.hot.size(); l++) {
    const auto &ids = placement.hot[l];
    for (size_t k = 0; k < ids.size(); k++)
      if (ids[k] < 0 || ids[k] >= hp.n_ff || (k > 0 && ids[k] <= ids[k - 1]))
        throw InvalidArgError("placement layer " + std::to_string(l) +
                              ": hot neuron ids must be ascending and below n_ff = " + std::to_string(hp.n_ff));
    counts.push_back(static_cast<uint32_t>(ids.size()));
  }
  const uint64_t ffn = ffn_bytes(plan, counts);
  if (ffn > capacity)
    throw InvalidArgError("the placement (" + placement.source + ") puts " + mib(ffn) + " (" + std::to_string(ffn) +
                          " bytes) of FFN neurons on the device, but the budget " + mib(budget) +
                          " leaves " + std::to_string(capacity) + " bytes after the fixed part (" + mib(plan.fixed()) +
                          "); raise --vram-budget or run relu-serve place for this budget");
  report_.placement_source = placement.source;
  report_.hot = placement.hot;
  dm_ = std::make_unique<DeviceModel>(*dev_, m, shape, std::move(plan), placement);
  report_.plan = dm_->plan;
  dev_->set_act_scratch(dm_->ws.act_q, static_cast<size_t>(n_batch) * ((hp.n_embd + 31) / 32) * 36);

  is_hot_.assign(static_cast<size_t>(hp.n_layer), std::vector<uint8_t>(static_cast<size_t>(hp.n_ff), 0));
  for (size_t l = 0; l < placement.hot.size(); l++)
    for (int32_t i : placement.hot[l]) is_hot_[l][static_cast<size_t>(i)] = 1;

  // Staging: every piece on its own cache lines.
  const size_t nb = static_cast<size_t>(n_batch), g = static_cast<size_t>(std::min(n_batch, kGroupRows));
  const size_t d = static_cast<size_t>(hp.n_embd), ff = static_cast<size_t>(hp.n_ff);
  const size_t sizes[] = {nb * d * 4, g * d * 4, g * d * 4, g * static_cast<size_t>(hp.n_vocab) * 4, nb * 4, nb * 4,
                          ff * 4,     ff * 8,    16 * static_cast<size_t>(hp.n_layer), 8, 64, 64, 64, 64, 16};
  size_t total = 0;
  for (size_t s : sizes) total += (s + 63) / 64 * 64;
  host_ = dev_->host_alloc(total);
  uint8_t *p = host_.host;
  auto next = [&](size_t i) {
    uint8_t *q = p;
    p += (sizes[i] + 63) / 64 * 64;
    return q;
  };
  st_.x_in = reinterpret_cast<float *>(next(0));
  st_.xn = reinterpret_cast<float *>(next(1));
  st_.cold_y = reinterpret_cast<float *>(next(2));
  st_.logits = reinterpret_cast<float *>(next(3));
  st_.pos = reinterpret_cast<int32_t *>(next(4));
  st_.seq = reinterpret_cast<int32_t *>(next(5));
  st_.cold_list = reinterpret_cast<int32_t *>(next(6));
  st_.cold_mask = reinterpret_cast<uint64_t *>(next(7));
  st_.pairs = reinterpret_cast<uint64_t *>(next(8));
  st_.cold_count = reinterpret_cast<int64_t *>(next(9));
  st_.ready = new (next(10)) HostFlag();
  st_.done = new (next(11)) HostFlag();
  st_.out_ready = new (next(12)) HostFlag();
  st_.out_done = new (next(13)) HostFlag();
  st_.base = reinterpret_cast<uint64_t *>(next(14));
  const char *g_env = std::getenv("RELU_SERVE_DEVICE_GRAPHS");
  record_ = !(g_env && std::strcmp(g_env, "0") == 0);
}

HybridExecutor::~HybridExecutor() {
  if (dev_) {
    try {
      dev_->synchronize();
    } catch (...) {
    }
    dm_.reset();
    dev_->host_release(host_);
  }
}

void HybridExecutor::enqueue_step(int n, const std::vector<int> &out_rows, const ForwardOptions &opt) {
  const HParams &hp = m_.hp();
  const int d = hp.n_embd;
  Device &dev = *dev_;
  const DeviceWorkspace &ws = dm_->ws;
  dev.phase(kPhaseTransferWait);
  dev.copy_in(ws.x, st_.x_in, static_cast<size_t>(n) * d * 4);
  dev.copy_in(ws.pos, st_.pos, static_cast<size_t>(n) * 4);
  dev.copy_in(ws.seq, st_.seq, static_cast<size_t>(n) * 4);
  uint64_t ready = 0;  // counted from st_.base[0]
  for (int il = 0; il < hp.n_layer; il++) {
    const DeviceLayer &D = dm_->layers[static_cast<size_t>(il)];
    dev.phase(kPhaseAttention);
    dev.rmsnorm(ws.xb, ws.x, D.attn_norm, n, d, hp.rms_eps);
    dev.matmul(D.wq, ws.xb, n, ws.q);
    dev.matmul(D.wk, ws.xb, n, ws.k);
    dev.matmul(D.wv, ws.xb, n, ws.v);
    dev.rope(ws.q, ws.k, ws.pos, n, hp.n_head, hp.n_head_kv, hp.head_dim, hp.rope_freq_base);
    dev.kv_store(dm_->kv, il, ws.pos, ws.seq, n, ws.k, ws.v);
    dev.attention(dm_->kv, il, ws.pos, ws.seq, n, ws.q, hp.n_head, hp.n_head_kv, hp.head_dim, ws.att_part,
                  ws.att_part_states, ws.att);
    dev.matmul(D.wo, ws.att, n, ws.xb);
    dev.add(ws.x, ws.xb, static_cast<int64_t>(n) * d);
    dev.rmsnorm(ws.xb, ws.x, D.ffn_norm, n, d, hp.rms_eps);
    for (int j0 = 0; j0 < n; j0 += kGroupRows) {
      const int m = std::min(kGroupRows, n - j0);
      float *x = ws.x + static_cast<size_t>(j0) * d, *xn = ws.xb + static_cast<size_t>(j0) * d;
      FfnSelect s;
      s.mode = mode_;
      s.threshold = opt.threshold;
      s.n = m;
      s.resid = x;
      s.xn = xn;
      s.fc1 = D.fc1;
      s.fc2 = D.fc2;
      s.z1 = ws.z1;
      s.scores = ws.scores;
      s.nmask = ws.nmask;
      s.hot = D.hot;
      s.hot_list = ws.hot_list;
      s.hot_mask = ws.hot_mask;
      s.counts = ws.counts;
      if (mode_ == FfnMode::Predictor) {
        s.cold_list = st_.cold_list;
        s.cold_mask = st_.cold_mask;
        s.cold_count = st_.cold_count;
      }
      s.pairs = st_.pairs + 2 * il;
      dev.phase(kPhasePredictor);
      dev.ffn_select(s);
      dev.phase(kPhaseTransferWait);
      dev.copy_out(st_.xn, xn, static_cast<size_t>(m) * d * 4);
      dev.signal(st_.ready, &st_.base[0], ++ready);
      FfnHot h;
      h.hot = D.hot;
      h.hot_list = ws.hot_list;
      h.hot_mask = ws.hot_mask;
      h.counts = ws.counts;
      h.gates = mode_ == FfnMode::Exact ? ws.scores : nullptr;
      h.act = m_.ffn_act();
      h.n = m;
      h.xn = xn;
      h.h = ws.hot_h;
      h.part = ws.hot_part;
      h.part_floats = ws.hot_part_floats;
      h.y = ws.hot_y;
      dev.phase(kPhaseHotFfn);
      dev.ffn_hot(h);
      dev.phase(kPhaseTransferWait);
      dev.wait(st_.done, &st_.base[0], ready);
      dev.copy_in(ws.cold_y, st_.cold_y, static_cast<size_t>(m) * d * 4);
      dev.phase(kPhaseMerge);
      dev.ffn_merge(x, ws.hot_y, ws.cold_y, m, d);
    }
  }
  // The output head for the wanted rows, up to 64 rows at a time.
  uint64_t out = 0;  // counted from st_.base[1]
  dev.phase(kPhaseOutput);
  for (size_t k0 = 0; k0 < out_rows.size(); k0 += kGroupRows) {
    const int m = static_cast<int>(std::min<size_t>(kGroupRows, out_rows.size() - k0));
    for (int k = 0; k < m; k++)
      dev.copy(ws.att + static_cast<size_t>(k) * d, ws.x + static_cast<size_t>(out_rows[k0 + k]) * d,
               static_cast<size_t>(d) * 4);
    dev.rmsnorm(ws.q, ws.att, dm_->output_norm, m, d, hp.rms_eps);
    dev.matmul(dm_->output, ws.q, m, ws.logits);
    dev.copy_out(st_.logits, ws.logits, static_cast<size_t>(m) * hp.n_vocab * 4);
    dev.signal(st_.out_ready, &st_.base[1], ++out);
    dev.wait(st_.out_done, &st_.base[1], out);
  }
}

namespace {

// What a recording freezes: the rows, which of them want logits, the threshold.
std::string step_shape(int n, const std::vector<int> &out_rows, float threshold) {
  std::string k(reinterpret_cast<const char *>(&n), sizeof n);
  k.append(reinterpret_cast<const char *>(&threshold), sizeof threshold);
  for (int r : out_rows) k.append(reinterpret_cast<const char *>(&r), sizeof r);
  return k;
}

// Record a shape the second time it is seen: a one-off shape (a prompt's chunk) would pay
// for the recording and never use it. Bounded tables: when full, they start over.
constexpr size_t kMaxRecordings = 32, kMaxShapesSeen = 256;
bool worth_recording(int times_seen) { return times_seen >= 2; }

}  // namespace

bool HybridExecutor::run_step(int n, const std::vector<int> &out_rows, const ForwardOptions &opt) {
  if (!record_) {
    enqueue_step(n, out_rows, opt);
    return false;
  }
  const std::string key = step_shape(n, out_rows, opt.threshold);
  auto it = recordings_.find(key);
  if (it == recordings_.end()) {
    if (shapes_seen_.size() >= kMaxShapesSeen) shapes_seen_.clear();
    if (!worth_recording(++shapes_seen_[key]) || !dev_->record_begin()) {
      enqueue_step(n, out_rows, opt);
      return false;
    }
    Device::Recording r;
    try {
      enqueue_step(n, out_rows, opt);
    } catch (...) {
      dev_->record_end();
      throw;
    }
    r = dev_->record_end();
    if (!r) {  // the device could not record: this step, and later ones, op by op
      record_ = false;
      enqueue_step(n, out_rows, opt);
      return false;
    }
    if (recordings_.size() >= kMaxRecordings) recordings_.clear();
    it = recordings_.emplace(key, std::move(r)).first;
    std::lock_guard<std::mutex> lk(stats_mu_);
    stats_.recordings++;
  }
  dev_->replay(it->second);
  return true;
}

void HybridExecutor::serve_host(int n, const std::vector<int> &out_rows, float *logits, double *host_ms) {
  const HParams &hp = m_.hp();
  Device &dev = *dev_;
  for (int il = 0; il < hp.n_layer; il++) {
    const Layer &L = m_.layers()[static_cast<size_t>(il)];
    for (int j0 = 0; j0 < n; j0 += kGroupRows) {
      const int m = std::min(kGroupRows, n - j0);
      dev.host_wait(st_.ready, ++n_ready_);
      const auto t0 = Clock::now();
      if (mode_ == FfnMode::Predictor) {
        sparse::NeuronList list;
        list.blk = st_.cold_list;
        list.n = *st_.cold_count;
        list.mask = m == 1 ? nullptr : st_.cold_mask;
        cpu_.ffn_blocks(L.packed, list, sparse::GateValues{}, m_.ffn_act(), st_.xn, m, st_.cold_y);
      } else {
        st_.pairs[2 * il + 1] += cpu_.ffn_cold_exact(L, is_hot_[static_cast<size_t>(il)].data(), m_.ffn_act(),
                                                     st_.xn, m, st_.cold_y);
      }
      *host_ms += ms_between(t0, Clock::now());
      dev.host_signal(st_.done, n_ready_);
    }
  }
  const size_t nv = static_cast<size_t>(hp.n_vocab);
  for (size_t k0 = 0; k0 < out_rows.size(); k0 += kGroupRows) {
    const size_t m = std::min<size_t>(kGroupRows, out_rows.size() - k0);
    dev.host_wait(st_.out_ready, ++n_out_);
    std::memcpy(logits + k0 * nv, st_.logits, m * nv * sizeof(float));
    dev.host_signal(st_.out_done, n_out_);
  }
}

void HybridExecutor::decode(const int32_t *tokens, const BatchView &b, const uint8_t *want, float *logits,
                            const ForwardOptions &opt) {
  if (opt.counts) throw InvalidArgError("activation counting runs on the CPU only (use --device cpu to profile)");
  const HParams &hp = m_.hp();
  const int n = b.n;
  const auto t0 = Clock::now();
  const DeviceTimes dt0 = dev_->times();
  const size_t np = 2 * static_cast<size_t>(hp.n_layer);
  std::vector<uint64_t> pairs0(st_.pairs, st_.pairs + np);
  cpu_.get_rows(m_.tok_embd(), tokens, n, st_.x_in);
  std::memcpy(st_.pos, b.pos, static_cast<size_t>(n) * 4);
  std::memcpy(st_.seq, b.seq, static_cast<size_t>(n) * 4);
  const uint64_t ready0 = n_ready_, out0 = n_out_;
  std::vector<int> out_rows;
  for (int j = 0; j < n; j++)
    if (want[j]) out_rows.push_back(j);
  __atomic_store_n(&st_.base[0], n_ready_, __ATOMIC_RELEASE);
  __atomic_store_n(&st_.base[1], n_out_, __ATOMIC_RELEASE);
  double host_ms = 0;
  bool replayed = false;
  try {
    replayed = run_step(n, out_rows, opt);
    serve_host(n, out_rows, logits, &host_ms);
    dev_->synchronize();
  } catch (...) {
    // Drop what is queued; the counters continue from the values this step would have
    // reached, so the next step's signals are new ones.
    dev_->abort();
    n_ready_ = ready0 + static_cast<uint64_t>(hp.n_layer) * static_cast<uint64_t>((n + kGroupRows - 1) / kGroupRows);
    n_out_ = out0 + (out_rows.size() + kGroupRows - 1) / kGroupRows;
    st_.ready->value.store(n_ready_);
    st_.done->value.store(n_ready_);
    st_.out_ready->value.store(n_out_);
    st_.out_done->value.store(n_out_);
    throw;
  }
  const DeviceTimes dt1 = dev_->times();
  const double wall = ms_between(t0, Clock::now());
  uint64_t dev_pairs = 0, host_pairs = 0;
  if (opt.stats) {
    opt.stats->last_pairs.assign(static_cast<size_t>(hp.n_layer), 0);
    opt.stats->last_rows = static_cast<uint64_t>(n);
    opt.stats->total_rows += static_cast<uint64_t>(n);
    opt.stats->sparse_steps++;
  }
  for (int il = 0; il < hp.n_layer; il++) {
    const uint64_t pd = st_.pairs[2 * il] - pairs0[2 * static_cast<size_t>(il)];
    const uint64_t ph = st_.pairs[2 * il + 1] - pairs0[2 * static_cast<size_t>(il) + 1];
    dev_pairs += pd;
    host_pairs += ph;
    if (opt.stats) {
      opt.stats->last_pairs[static_cast<size_t>(il)] = pd + ph;
      opt.stats->total_pairs[static_cast<size_t>(il)] += pd + ph;
    }
  }
  std::lock_guard<std::mutex> lk(stats_mu_);
  stats_.steps++;
  if (replayed) stats_.replayed_steps++;
  stats_.last_pairs_device = dev_pairs;
  stats_.last_pairs_host = host_pairs;
  stats_.last_device_busy_ms = dt1.busy_ms - dt0.busy_ms;
  stats_.last_device_wait_ms = dt1.wait_ms - dt0.wait_ms;
  stats_.last_host_ffn_ms = host_ms;
  stats_.last_wall_ms = wall;
  stats_.pairs_device += dev_pairs;
  stats_.pairs_host += host_pairs;
  stats_.device_busy_ms += stats_.last_device_busy_ms;
  stats_.device_wait_ms += stats_.last_device_wait_ms;
  stats_.host_ffn_ms += host_ms;
  stats_.wall_ms += wall;
  for (int p = 0; p < kPhases; p++) stats_.phase_ms[p] = dt1.phase_ms[p];
}

std::unique_ptr<Executor> make_hybrid_executor(const Model &m, KvCache &cache, int n_threads, rs_isa isa, int n_batch,
                                               FfnMode mode, const DeviceRequest &req) {
  return std::make_unique<HybridExecutor>(m, cache, n_threads, isa, n_batch, mode, req);
}

}  // namespace rs

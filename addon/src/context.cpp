#include "context.h"

#include "fault_guard.h"

#include <chrono>
#include <cmath>
#include <string>

namespace rs {

constexpr int kSparseMaxBatchLimit = RS_SPARSE_MAX_BATCH_LIMIT;

namespace {

// "cpu", "emu" or "cuda" from the requested device ("auto": cuda when a GPU is found).
std::string resolve_device(const rs_context_params &p) {
  std::string d = p.device && *p.device ? p.device : "cpu";
  if (d == "auto") d = cuda_device_count() > 0 ? "cuda" : "cpu";
  if (d != "cpu" && d != "emu" && d != "cuda")
    throw InvalidArgError("unknown device '" + d + "' (expected cpu, cuda, emu or auto)");
  return d;
}

}  // namespace

Context::Context(const Model &model, const rs_context_params &p)
    : model_(model),
      n_batch_(p.n_batch),
      use_ref_(p.backend && std::string(p.backend) == "ref"),
      device_(resolve_device(p)),
      // A device holds the K/V itself: the host keeps only the lengths.
      cache_(model.hp().n_layer, p.n_seq, p.n_ctx, model.hp().n_head_kv, model.hp().head_dim, device_ == "cpu") {
  if (p.backend && !use_ref_ && std::string(p.backend) != "cpu")
    throw InvalidArgError("unknown backend '" + std::string(p.backend) + "' (expected cpu or ref)");
  if (use_ref_ && device_ != "cpu") throw InvalidArgError("the reference backend runs on the CPU only");
  choose_ffn_mode(p);
  if (use_ref_) {
    ref_ = std::make_unique<RefForward>(model_, cache_);
  } else {
    int threads = p.n_threads > 0 ? p.n_threads : default_thread_count();
    rs_isa isa = static_cast<rs_isa>(p.isa);
    rs_isa best = rs_cpu_best_isa();
    if (isa == RS_ISA_BEST || isa > best) isa = best;
    if (device_ == "cpu") {
      exec_ = std::make_unique<CpuExecutor>(model_, cache_, threads, isa, n_batch_);
    } else {
      DeviceRequest req;
      req.kind = device_;
      req.budget = p.vram_budget;
      req.budget_fraction = p.vram_budget_fraction;
      if (!(req.budget_fraction > 0 && req.budget_fraction <= 1))
        throw InvalidArgError("vram_budget_fraction must be in (0, 1]");
      if (p.placement_path) req.placement_path = p.placement_path;
      if (p.hot_ids) {
        req.has_hot = true;
        for (int l = 0; l < model_.hp().n_layer; l++)
          req.hot.emplace_back(p.hot_ids[l], p.hot_ids[l] + p.hot_counts[l]);
        req.hot_source = p.hot_source ? p.hot_source : "given";
      }
      req.emu.memory = p.emu_memory ? p.emu_memory : req.emu.memory;
      req.emu.latency_us = p.emu_latency_us;
      req.emu.isa = isa;
      exec_ = make_hybrid_executor(model_, cache_, threads, isa, n_batch_, opt_.mode, req);
    }
  }
  sparsity_.last_pairs.assign(model.hp().n_layer, 0);
  sparsity_.total_pairs.assign(model.hp().n_layer, 0);
  snapshot_ = sparsity_;
}

void Context::choose_ffn_mode(const rs_context_params &p) {
  std::string mode = p.ffn_mode ? p.ffn_mode : "auto";
  const bool relu = model_.sparse_capable();
  const bool packed = !model_.layers().empty() && model_.layers()[0].sparse_ready();
  if (mode == "auto") {
    mode = !relu || !packed || use_ref_ ? "dense" : model_.has_predictors() ? "predictor" : "exact";
  }
  if (mode == "dense") {
    opt_.mode = FfnMode::Dense;
  } else if (mode == "exact" || mode == "predictor") {
    if (!relu)
      throw InvalidArgError("FFN mode '" + mode + "' needs a ReLU-type FFN, but this model's activation is " +
                            ffn_act_name(model_.ffn_act()));
    if (mode == "predictor" && !model_.has_predictors())
      throw InvalidArgError("FFN mode 'predictor' needs a PowerInfer file with predictors (blk.N.fc1/fc2)");
    if (!packed) throw InvalidArgError("the sparse FFN needs the repacked layout (the model was loaded with no_repack)");
    if (use_ref_) throw InvalidArgError("the reference backend computes the FFN densely only");
    opt_.mode = mode == "exact" ? FfnMode::Exact : FfnMode::Predictor;
  } else {
    throw InvalidArgError("unknown FFN mode '" + mode + "' (expected auto, dense, exact or predictor)");
  }
  if (device_ != "cpu") {
    // The hybrid runtime splits a ReLU FFN by neurons; dense mode would compute every
    // neuron, which for a ReLU FFN gives exactly what exact mode gives.
    if (!relu || !packed)
      throw InvalidArgError("device '" + device_ + "' splits ReLU-type FFNs between the device and the CPU, but this "
                            "model's FFN activation is " + ffn_act_name(model_.ffn_act()) +
                            (relu ? " and it was loaded without the repacked layout" : "") + "; use --device cpu");
    if (opt_.mode == FfnMode::Dense)
      throw InvalidArgError("FFN mode 'dense' runs on the CPU only; on device '" + device_ +
                            "' use exact (the same results for a ReLU FFN) or predictor");
  }
  opt_.threshold = std::isnan(p.sparse_threshold) ? model_.sparse_threshold() : p.sparse_threshold;
  if (p.sparse_max_batch < 0 || p.sparse_max_batch > kSparseMaxBatchLimit)
    throw InvalidArgError("sparse_max_batch = " + std::to_string(p.sparse_max_batch) + " is outside [0, " +
                          std::to_string(kSparseMaxBatchLimit) + "]");
  // Default crossover, measured with `relu-serve bench --batch-sizes` (1b Q4_0, 2
  // threads, one sequence's rows per step; README "Sparse inference"): on PowerInfer
  // files the sparse path beat their dense path at every size from 1 to 512 rows (their
  // dense down projection is the transposed matrix), so every size runs sparse there; on
  // a plain ReLU file whose gate is positive for half the neurons dense won from 1 row,
  // and real ReLU models (~10% active) gain only on small steps, so 8 there.
  opt_.sparse_max_batch = p.sparse_max_batch > 0 ? p.sparse_max_batch : model_.has_predictors() ? kSparseMaxBatchLimit : 8;
}

const char *Context::mode_name() const {
  switch (opt_.mode) {
    case FfnMode::Exact: return "exact";
    case FfnMode::Predictor: return "predictor";
    default: return "dense";
  }
}

void Context::decode(int n, const int32_t *tokens, const int32_t *pos, const int32_t *seq, const uint8_t *want,
                     float *logits) {
  const HParams &hp = model_.hp();
  // A read of this model's mapping faulted earlier (its file was truncated): the file is
  // gone from under the weights, so no decode may read them again (fault_guard.h).
  if (model_.file().bytes().faulted()) throw ModelFileError(fault::kFaultedMessage);
  if (n < 1 || n > n_batch_)
    throw InvalidArgError("batch of " + std::to_string(n) + " tokens; this context takes 1 to " +
                          std::to_string(n_batch_) + " per decode");
  std::vector<int> next(cache_.length);
  for (int j = 0; j < n; j++) {
    if (tokens[j] < 0 || tokens[j] >= hp.n_vocab)
      throw InvalidArgError("token " + std::to_string(tokens[j]) + " at batch row " + std::to_string(j) +
                            " is outside the vocabulary [0, " + std::to_string(hp.n_vocab) + ")");
    if (seq[j] < 0 || seq[j] >= cache_.n_seq)
      throw InvalidArgError("sequence id " + std::to_string(seq[j]) + " at batch row " + std::to_string(j) +
                            " is outside [0, " + std::to_string(cache_.n_seq) + ")");
    int &len = next[seq[j]];
    if (pos[j] != len)
      throw InvalidArgError("position " + std::to_string(pos[j]) + " at batch row " + std::to_string(j) +
                            " of sequence " + std::to_string(seq[j]) + " must be " + std::to_string(len) +
                            " (positions of a sequence are contiguous)");
    if (pos[j] >= cache_.n_ctx)
      throw InvalidArgError("sequence " + std::to_string(seq[j]) + " is full: position " + std::to_string(pos[j]) +
                            " is beyond the context size " + std::to_string(cache_.n_ctx));
    len++;
  }
  auto t0 = std::chrono::steady_clock::now();
  if (use_ref_) {
    if (counting_) throw InvalidArgError("activation counting needs the cpu backend");
    // The reference pass reads the mapping on this thread, outside the pool's guarded
    // tasks: guarded on its own (fault_guard.h).
    if (!guarded_reads([&] { ref_->decode(n, tokens, pos, seq, want, logits); }))
      throw ModelFileError(fault::kFaultedMessage);
  } else {
    BatchView b{n, pos, seq};
    ForwardOptions o = opt_;
    o.counts = counting_ ? &counts_ : nullptr;
    o.stats = &sparsity_;
    exec_->decode(tokens, b, want, logits, o);
  }
  cache_.length = next;
  {
    std::lock_guard<std::mutex> lk(snap_mu_);
    snapshot_ = sparsity_;
  }
  total_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  calls_++;
  tokens_ += n;
}

void Context::truncate(int seq, int p0) {
  if (seq < 0 || seq >= cache_.n_seq)
    throw InvalidArgError("sequence id " + std::to_string(seq) + " is outside [0, " + std::to_string(cache_.n_seq) + ")");
  if (p0 < 0) throw InvalidArgError("truncate position must be >= 0");
  if (p0 < cache_.length[seq]) cache_.length[seq] = p0;
}

int Context::seq_length(int seq) const {
  if (seq < 0 || seq >= cache_.n_seq) return -1;
  return cache_.length[seq];
}

void Context::set_counting(bool on) {
  if (on && device_ != "cpu") throw InvalidArgError("activation counting runs on the CPU only (use --device cpu to profile)");
  if (on && counts_.counts.empty()) reset_counts();
  counting_ = on;
}

void Context::reset_counts() {
  counts_.counts.assign(model_.hp().n_layer, std::vector<uint32_t>(model_.hp().n_ff, 0));
  counts_.tp.assign(model_.hp().n_layer, 0);
  counts_.fp.assign(model_.hp().n_layer, 0);
  counts_.fn.assign(model_.hp().n_layer, 0);
  counts_.rows = 0;
  counts_.cap_x.assign(model_.hp().n_layer, {});
  counts_.cap_mask.assign(model_.hp().n_layer, {});
}

void Context::set_capture(bool on) {
  if (counts_.counts.empty()) reset_counts();
  counts_.capture = on;
}

rs_context_stats Context::stats() const {
  rs_context_stats s{};
  s.t_total_ms = total_ms_;
  s.n_decode_calls = calls_;
  s.n_tokens = tokens_;
  s.n_threads = exec_ ? exec_->cpu().n_threads() : 1;
  s.isa = exec_ ? rs_isa_name(exec_->cpu().isa()) : "scalar";
  s.backend = use_ref_ ? "ref" : "cpu";
  return s;
}

KvCache::KvCache(int n_layer_, int n_seq_, int n_ctx_, int n_head_kv_, int head_dim_, bool own_memory)
    : KvView(n_layer_, n_seq_, n_ctx_, n_head_kv_, head_dim_), length(n_seq_, 0) {
  if (!own_memory) return;
  k_mem.reset(static_cast<uint16_t *>(std::calloc(elements(), sizeof(uint16_t))));
  v_mem.reset(static_cast<uint16_t *>(std::calloc(elements(), sizeof(uint16_t))));
  if (!k_mem || !v_mem) throw std::bad_alloc();
  k = k_mem.get();
  v = v_mem.get();
}

}  // namespace rs

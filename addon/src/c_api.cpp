// The C ABI: every entry point catches every exception and turns it into a status and
// a message, so nothing thrown inside the engine can cross into Node (or abort it).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>

#include "bandwidth.h"
#include "context.h"
#include "device.h"
#include "fault_guard.h"
#include "relu_serve.h"

struct rs_model {
  std::unique_ptr<rs::Model> m;
};
struct rs_context {
  std::unique_ptr<rs::Context> c;
};

namespace {

void set_err(rs_error *err, const std::string &msg) {
  if (!err) return;
  std::snprintf(err->message, sizeof err->message, "%s", msg.c_str());
}

template <typename F>
rs_status guarded(rs_error *err, F &&f) {
  try {
    f();
    return RS_OK;
  } catch (const rs::FormatError &e) {
    set_err(err, e.what());
    return RS_ERR_FORMAT;
  } catch (const rs::UnsupportedError &e) {
    set_err(err, e.what());
    return RS_ERR_UNSUPPORTED;
  } catch (const rs::InvalidArgError &e) {
    set_err(err, e.what());
    return RS_ERR_INVALID_ARG;
  } catch (const rs::ModelFileError &e) {
    set_err(err, e.what());
    return RS_ERR_MODEL_FILE;
  } catch (const rs::IoError &e) {
    set_err(err, e.what());
    return RS_ERR_IO;
  } catch (const std::bad_alloc &) {
    set_err(err, "out of memory");
    return RS_ERR_NO_MEMORY;
  } catch (const std::exception &e) {
    set_err(err, e.what());
    return RS_ERR_INTERNAL;
  } catch (...) {
    set_err(err, "unknown internal error");
    return RS_ERR_INTERNAL;
  }
}

uint64_t physical_memory() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

}  // namespace

extern "C" {

void rs_model_params_default(rs_model_params *p) {
  p->ffn_activation = nullptr;
  p->no_mmap = 0;
  p->no_repack = 0;
  p->down_int8 = 0;
}

rs_status rs_model_load(const char *path, const rs_model_params *params, rs_model **out, rs_error *err) {
  *out = nullptr;
  return guarded(err, [&] {
    if (!path) throw rs::InvalidArgError("model path is null");
    rs_model_params p;
    rs_model_params_default(&p);
    if (params) p = *params;
    auto file = std::make_unique<rs::GgufFile>(rs::FileBytes::open(path, !p.no_mmap), path);
    auto m = std::make_unique<rs::Model>(std::move(file), p);
    *out = new rs_model{std::move(m)};
  });
}

void rs_model_free(rs_model *model) { delete model; }

void rs_model_get_info(const rs_model *model, rs_model_info *info) {
  const rs::Model &m = *model->m;
  const rs::HParams &h = m.hp();
  info->arch = h.arch.c_str();
  info->ffn_act = rs::ffn_act_name(m.ffn_act());
  info->ffn_act_from = m.ffn_act_from().c_str();
  info->is_powerinfer = m.file().is_powerinfer();
  info->gguf_version = static_cast<int>(m.file().version());
  info->n_vocab = h.n_vocab;
  info->n_embd = h.n_embd;
  info->n_ff = h.n_ff;
  info->n_layer = h.n_layer;
  info->n_head = h.n_head;
  info->n_head_kv = h.n_head_kv;
  info->n_ctx_train = h.n_ctx_train;
  info->rope_freq_base = h.rope_freq_base;
  info->rms_eps = h.rms_eps;
  info->tied_output = m.tied_output();
  info->n_params = m.n_params();
  info->file_bytes = m.file().file_size();
  info->file_resident_bytes = m.file().bytes().resident_bytes();
  info->bytes_per_token = m.bytes_per_token();
  info->non_ffn_bytes = m.non_ffn_bytes_per_token();
  info->neuron_bytes = m.neuron_bytes(0);
  info->predictor_bytes = 0;
  for (int l = 0; l < h.n_layer; l++) info->predictor_bytes += m.predictor_bytes(l);
  info->has_predictors = m.has_predictors();
  info->sparse_capable = m.sparse_capable();
  info->sparse_packed = m.layers()[0].sparse_ready();
  info->sparse_threshold = m.sparse_threshold();
  info->repack_ms = m.repack_ms();
  info->x8_bytes = m.x8_bytes();
}

int64_t rs_model_meta_count(const rs_model *model) { return static_cast<int64_t>(model->m->meta().size()); }

rs_status rs_model_meta_get(const rs_model *model, int64_t i, rs_meta_kv *kv) {
  if (i < 0 || i >= rs_model_meta_count(model)) return RS_ERR_INVALID_ARG;
  *kv = model->m->meta()[static_cast<size_t>(i)];
  return RS_OK;
}

int64_t rs_model_tensor_count(const rs_model *model) {
  return static_cast<int64_t>(model->m->file().tensors().size());
}

rs_status rs_model_tensor_get(const rs_model *model, int64_t i, rs_tensor_info *info) {
  if (i < 0 || i >= rs_model_tensor_count(model)) return RS_ERR_INVALID_ARG;
  const rs::GgufTensor &t = model->m->file().tensors()[static_cast<size_t>(i)];
  info->name = t.name.c_str();
  info->type = t.type;
  const rs_type_traits *tr = rs_type_get_traits(t.type);
  info->type_name = tr && tr->name ? tr->name : "unknown";
  info->n_dims = t.n_dims;
  for (int d = 0; d < 4; d++) info->ne[d] = t.ne[d];
  info->n_bytes = t.n_bytes;
  info->offset = t.offset;
  return RS_OK;
}

void rs_context_params_default(rs_context_params *p) {
  p->n_seq = 1;
  p->n_ctx = 2048;
  p->n_threads = 0;
  p->n_batch = 512;
  p->isa = RS_ISA_BEST;
  p->backend = "cpu";
  p->ffn_mode = "auto";
  p->sparse_threshold = std::nanf("");
  p->sparse_max_batch = 0;
  p->device = "cpu";
  p->vram_budget = 0;
  p->vram_budget_fraction = 0.9;
  p->placement_path = nullptr;
  p->hot_ids = nullptr;
  p->hot_counts = nullptr;
  p->hot_source = nullptr;
  p->emu_memory = 0;
  p->emu_latency_us = 0;
}

rs_status rs_context_new(rs_model *model, const rs_context_params *params, rs_context **out, rs_error *err) {
  *out = nullptr;
  return guarded(err, [&] {
    if (!model) throw rs::InvalidArgError("model is null");
    rs_context_params p;
    rs_context_params_default(&p);
    if (params) p = *params;
    auto check = [](const char *what, int v, int lo, int hi) {
      if (v < lo || v > hi)
        throw rs::InvalidArgError(std::string(what) + " = " + std::to_string(v) + " is outside [" +
                                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
    };
    check("n_seq", p.n_seq, 1, 1024);
    check("n_ctx", p.n_ctx, 1, 1 << 22);
    check("n_batch", p.n_batch, 1, 1 << 16);
    check("n_threads", p.n_threads, 0, 1024);
    const rs::HParams &h = model->m->hp();
    check("emu_latency_us", p.emu_latency_us, 0, 1000000);
    if (p.hot_ids && !p.hot_counts) throw rs::InvalidArgError("hot_ids needs hot_counts");
    double kv_bytes = 4.0 * h.n_layer * h.kv_dim() * static_cast<double>(p.n_seq) * p.n_ctx;
    uint64_t ram = physical_memory();
    if (ram && kv_bytes > 0.9 * static_cast<double>(ram))
      throw rs::InvalidArgError("the KV cache for " + std::to_string(p.n_seq) + " sequences x " +
                                std::to_string(p.n_ctx) + " positions needs " +
                                std::to_string(static_cast<uint64_t>(kv_bytes / (1 << 20))) +
                                " MiB, more than this machine's memory (" + std::to_string(ram >> 20) +
                                " MiB); lower the context size or the number of sequences");
    *out = new rs_context{std::make_unique<rs::Context>(*model->m, p)};
  });
}

void rs_context_free(rs_context *ctx) { delete ctx; }

rs_status rs_decode(rs_context *ctx, int n, const int32_t *tokens, const int32_t *pos, const int32_t *seq,
                    const uint8_t *want, float *logits_out, rs_error *err) {
  return guarded(err, [&] { ctx->c->decode(n, tokens, pos, seq, want, logits_out); });
}

rs_status rs_seq_truncate(rs_context *ctx, int seq, int p0, rs_error *err) {
  return guarded(err, [&] { ctx->c->truncate(seq, p0); });
}

int rs_seq_length(const rs_context *ctx, int seq) { return ctx->c->seq_length(seq); }

rs_status rs_context_set_activation_counting(rs_context *ctx, int enable, rs_error *err) {
  return guarded(err, [&] { ctx->c->set_counting(enable != 0); });
}

rs_status rs_context_get_activation_counts(const rs_context *ctx, int layer, uint32_t *counts, uint64_t *n_rows,
                                           rs_error *err) {
  return guarded(err, [&] {
    const rs::ActivationCounts *c = ctx->c->counts();
    const rs::HParams &h = ctx->c->model().hp();
    if (layer < 0 || layer >= h.n_layer)
      throw rs::InvalidArgError("layer " + std::to_string(layer) + " is outside [0, " + std::to_string(h.n_layer) + ")");
    if (!c) throw rs::InvalidArgError("activation counting is off for this context");
    std::memcpy(counts, c->counts[layer].data(), sizeof(uint32_t) * h.n_ff);
    if (n_rows) *n_rows = c->rows;
  });
}

void rs_context_reset_activation_counts(rs_context *ctx) { ctx->c->reset_counts(); }

rs_status rs_context_set_activation_capture(rs_context *ctx, int enable, rs_error *err) {
  return guarded(err, [&] { ctx->c->set_capture(enable != 0); });
}

rs_status rs_context_get_activation_capture(const rs_context *ctx, int layer, const float **x,
                                            const uint8_t **mask, uint64_t *n_rows, rs_error *err) {
  return guarded(err, [&] {
    const rs::ActivationCounts &c = ctx->c->captured();
    if (layer < 0 || layer >= static_cast<int>(c.cap_x.size()))
      throw rs::InvalidArgError("layer " + std::to_string(layer) + " has no capture");
    const size_t d = static_cast<size_t>(ctx->c->model().hp().n_embd);
    *x = c.cap_x[layer].data();
    *mask = c.cap_mask[layer].data();
    *n_rows = c.cap_x[layer].size() / d;
  });
}

rs_status rs_context_get_predictor_quality(const rs_context *ctx, int layer, uint64_t *tp, uint64_t *fp,
                                           uint64_t *fn, rs_error *err) {
  return guarded(err, [&] {
    const rs::ActivationCounts *c = ctx->c->counts();
    if (!c) throw rs::InvalidArgError("activation counting is off for this context");
    if (layer < 0 || layer >= static_cast<int>(c->tp.size()))
      throw rs::InvalidArgError("layer " + std::to_string(layer) + " is out of range");
    *tp = c->tp[layer];
    *fp = c->fp[layer];
    *fn = c->fn[layer];
  });
}

void rs_context_get_sparsity(const rs_context *ctx, rs_sparsity_info *info, uint64_t *last_pairs,
                             uint64_t *total_pairs) {
  const rs::SparsityStats s = ctx->c->sparsity();
  info->ffn_mode = ctx->c->mode_name();
  info->threshold = ctx->c->options().threshold;
  info->sparse_max_batch = ctx->c->options().sparse_max_batch;
  info->last_rows = s.last_rows;
  info->total_rows = s.total_rows;
  info->sparse_steps = s.sparse_steps;
  info->dense_steps = s.dense_steps;
  info->attention_ms = s.attention_ms;
  info->select_ms = s.select_ms;
  info->ffn_ms = s.ffn_ms;
  info->output_ms = s.output_ms;
  for (size_t l = 0; l < s.last_pairs.size(); l++) {
    if (last_pairs) last_pairs[l] = s.last_pairs[l];
    if (total_pairs) total_pairs[l] = s.total_pairs[l];
  }
}

void rs_context_get_stats(const rs_context *ctx, rs_context_stats *stats) { *stats = ctx->c->stats(); }

void rs_context_get_device_info(const rs_context *ctx, rs_device_info *info, uint32_t *hot_per_layer) {
  *info = rs_device_info{};
  const rs::Context &c = *ctx->c;
  info->device = c.device().c_str();
  info->name = "CPU";
  info->budget_from = "";
  info->placement_source = "";
  const rs::DeviceReport *r = c.device_report();
  const int n_layer = c.model().hp().n_layer;
  if (hot_per_layer)
    for (int l = 0; l < n_layer; l++) hot_per_layer[l] = r ? r->plan.hot[static_cast<size_t>(l)] : 0;
  if (!r) return;
  info->name = r->name.c_str();
  info->memory_total = r->memory_total;
  info->memory_free = r->memory_free;
  info->budget = r->budget;
  info->budget_from = r->budget_from.c_str();
  const rs::VramPlan &p = r->plan;
  info->attention = p.attention;
  info->predictors = p.predictors;
  info->norms = p.norms;
  info->output = p.output;
  info->kv_cache = p.kv_cache;
  info->index = p.index;
  info->workspace = p.workspace;
  info->ffn = p.ffn;
  info->ffn_all = p.ffn_all;
  info->used = p.total();
  info->placement_source = r->placement_source.c_str();
}

rs_status rs_context_get_hot_neurons(const rs_context *ctx, int layer, int32_t *ids, rs_error *err) {
  return guarded(err, [&] {
    const rs::DeviceReport *r = ctx->c->device_report();
    if (layer < 0 || layer >= ctx->c->model().hp().n_layer) throw rs::InvalidArgError("layer out of range");
    if (!r) return;  // the CPU holds no hot neurons
    const std::vector<int32_t> &h = r->hot[static_cast<size_t>(layer)];
    std::copy(h.begin(), h.end(), ids);
  });
}

void rs_context_get_hybrid_stats(const rs_context *ctx, rs_hybrid_stats *stats) {
  const rs::HybridStats h = ctx->c->hybrid_stats();
  stats->steps = h.steps;
  stats->pairs_device = h.pairs_device;
  stats->pairs_host = h.pairs_host;
  stats->device_busy_ms = h.device_busy_ms;
  stats->device_wait_ms = h.device_wait_ms;
  stats->host_ffn_ms = h.host_ffn_ms;
  stats->wall_ms = h.wall_ms;
  stats->last_pairs_device = h.last_pairs_device;
  stats->last_pairs_host = h.last_pairs_host;
  stats->last_device_busy_ms = h.last_device_busy_ms;
  stats->last_device_wait_ms = h.last_device_wait_ms;
  stats->last_host_ffn_ms = h.last_host_ffn_ms;
  stats->last_wall_ms = h.last_wall_ms;
  stats->attention_ms = h.phase_ms[rs::kPhaseAttention];
  stats->predictor_ms = h.phase_ms[rs::kPhasePredictor];
  stats->hot_ffn_ms = h.phase_ms[rs::kPhaseHotFfn];
  stats->transfer_wait_ms = h.phase_ms[rs::kPhaseTransferWait];
  stats->merge_ms = h.phase_ms[rs::kPhaseMerge];
  stats->output_ms = h.phase_ms[rs::kPhaseOutput];
  stats->replayed_steps = h.replayed_steps;
  stats->recordings = h.recordings;
}

int rs_cuda_devices(void) { return rs::cuda_device_count(); }

rs_status rs_device_memory(const char *device, uint64_t emu_memory, uint64_t *total, uint64_t *free_bytes,
                           rs_error *err) {
  return guarded(err, [&] {
    const std::string d = device ? device : "";
    std::unique_ptr<rs::Device> dev;
    if (d == "emu") {
      rs::EmuOptions o;
      if (emu_memory) o.memory = emu_memory;
      dev = rs::make_emu_device(o);
    } else if (d == "cuda") {
      dev = rs::make_cuda_device(0);
    } else {
      throw rs::InvalidArgError("device '" + d + "' has no memory of its own (expected cuda or emu)");
    }
    *total = dev->total_memory();
    *free_bytes = dev->free_memory();
  });
}

rs_bandwidth_params rs_bandwidth_default_params(void) {
  const rs::BandwidthOptions d;
  return {d.max_threads, d.only_threads, d.bytes, d.reps, d.patterns, d.pages, d.isas};
}

rs_status rs_measure_read_bandwidth(const rs_bandwidth_params *params, rs_bandwidth_row *rows, int max_rows,
                                    int *n_rows, rs_error *err) {
  return guarded(err, [&] {
    if (!params || !rows || !n_rows) throw rs::InvalidArgError("rs_measure_read_bandwidth: null argument");
    rs::BandwidthOptions o;
    o.max_threads = params->max_threads;
    o.only_threads = params->only_threads;
    o.bytes = params->bytes;
    o.reps = params->reps;
    o.patterns = params->patterns;
    o.pages = params->pages;
    o.isas = params->isas;
    const std::vector<rs::BandwidthRow> got = rs::probe_read_bandwidth(o);
    if (static_cast<int>(got.size()) > max_rows)
      throw rs::InvalidArgError("rs_measure_read_bandwidth: " + std::to_string(got.size()) + " rows, room for " +
                                std::to_string(max_rows));
    for (size_t i = 0; i < got.size(); i++)
      rows[i] = {got[i].pattern,      rs_read_pattern_name(got[i].pattern), rs_isa_name(got[i].isa), got[i].threads,
                 got[i].huge_pages,   got[i].best,                          got[i].median};
    *n_rows = static_cast<int>(got.size());
  });
}

}  // extern "C"

// Model loading: hyper-parameters from metadata, every tensor checked for presence,
// shape and type before anything is computed with it.
#include "model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

namespace rs {

const char *ffn_act_name(rs_act a) {
  switch (a) {
    case RS_ACT_SWIGLU: return "swiglu";
    case RS_ACT_RELU_GLU: return "relu_glu";
    case RS_ACT_DRELU: return "drelu";
  }
  return "?";
}

namespace {

std::string shape_str(const GgufTensor &t) {
  std::string s = "[";
  for (int d = 0; d < t.n_dims; d++) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

std::string lower(std::string s) {
  for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char *type_name(int type) {
  const rs_type_traits *tr = rs_type_get_traits(type);
  return tr && tr->name ? tr->name : "unknown";
}

}  // namespace

Model::Model(std::unique_ptr<GgufFile> file, const rs_model_params &params) : file_(std::move(file)) {
  read_hparams();
  choose_activation(params);

  const HParams &h = hp_;
  tok_embd_ = weight("token_embd.weight", h.n_embd, -1, true);
  hp_.n_vocab = static_cast<int>(tok_embd_.rows);
  if (hp_.n_vocab < 4 || hp_.n_vocab > (1 << 22))
    throw FormatError("token_embd.weight has an absurd vocabulary size " + std::to_string(hp_.n_vocab));
  if (const GgufValue *toks = file_->find("tokenizer.ggml.tokens")) {
    if (toks->type != RS_META_ARRAY || toks->elem_type != RS_META_STRING)
      throw FormatError("tokenizer.ggml.tokens should be an array of strings");
    if (toks->n != static_cast<uint64_t>(hp_.n_vocab))
      throw FormatError("tokenizer.ggml.tokens has " + std::to_string(toks->n) +
                        " entries but token_embd.weight has " + std::to_string(hp_.n_vocab) + " rows");
  }
  output_norm_ = vector_f32("output_norm.weight", h.n_embd);
  output_ = weight("output.weight", h.n_embd, hp_.n_vocab, false);
  if (!output_) {
    output_ = tok_embd_;
    tied_ = true;
  }

  const int kvd = h.kv_dim();
  layers_.resize(h.n_layer);
  for (int i = 0; i < h.n_layer; i++) {
    Layer &L = layers_[i];
    std::string p = "blk." + std::to_string(i) + ".";
    L.attn_norm = vector_f32(p + "attn_norm.weight", h.n_embd);
    L.ffn_norm = vector_f32(p + "ffn_norm.weight", h.n_embd);
    L.wq = weight(p + "attn_q.weight", h.n_embd, h.n_embd, true);
    L.wk = weight(p + "attn_k.weight", h.n_embd, kvd, true);
    L.wv = weight(p + "attn_v.weight", h.n_embd, kvd, true);
    L.wo = weight(p + "attn_output.weight", h.n_embd, h.n_embd, true);
    L.gate = weight(p + "ffn_gate.weight", h.n_embd, h.n_ff, true);
    L.up = weight(p + "ffn_up.weight", h.n_embd, h.n_ff, true);
    L.down = weight(p + "ffn_down.weight", h.n_ff, h.n_embd, false);
    L.down_t = weight(p + "ffn_down_t.weight", h.n_embd, h.n_ff, false);
    if (!L.down && !L.down_t)
      throw FormatError("missing tensor '" + p + "ffn_down.weight' (nor is there a PowerInfer '" + p +
                        "ffn_down_t.weight')");
    // Predictors: shapes {n_embd, r} and {r, n_ff}; r is free per layer.
    if (const GgufTensor *f1 = file_->find_tensor(p + "fc1.weight")) {
      if (f1->ne[1] < 1 || f1->ne[1] > 65536)
        throw FormatError("tensor '" + p + "fc1.weight' has an absurd predictor rank " + std::to_string(f1->ne[1]));
      L.fc1 = weight(p + "fc1.weight", h.n_embd, f1->ne[1], true);
      L.fc2 = weight(p + "fc2.weight", L.fc1.rows, h.n_ff, true);
    } else if (file_->find_tensor(p + "fc2.weight")) {
      throw FormatError("tensor '" + p + "fc2.weight' has no matching '" + p + "fc1.weight'");
    }
  }
  for (const Layer &L : layers_) has_predictors_ = has_predictors_ || L.fc1;
  if (has_predictors_)
    for (int i = 0; i < h.n_layer; i++)
      if (!layers_[i].fc1)
        throw FormatError("layer " + std::to_string(i) + " has no predictor (blk." + std::to_string(i) +
                          ".fc1.weight) although other layers do");
  double thr = 0;
  if (file_->get_f64("powerinfer.sparse_threshold", &thr)) {
    if (!std::isfinite(thr)) throw FormatError("powerinfer.sparse_threshold is not finite");
    sparse_threshold_ = static_cast<float>(thr);
  }

  // Size accounting: what one decoded token reads (all matrices but the embedding table,
  // of which it reads one row).
  auto add = [&](const Weight &w, bool per_token) {
    if (!w) return;
    n_params_ += static_cast<uint64_t>(w.rows * w.cols);
    if (per_token) bytes_per_token_ += w.row_bytes * w.rows;
  };
  add(tok_embd_, false);
  if (!tied_) add(output_, true);
  else bytes_per_token_ += output_.row_bytes * output_.rows;
  for (const Layer &L : layers_)
    for (const Weight *w : {&L.wq, &L.wk, &L.wv, &L.wo}) add(*w, true);
  non_ffn_bytes_ = bytes_per_token_;
  for (const Layer &L : layers_) {
    for (const Weight *w : {&L.gate, &L.up}) add(*w, true);
    add(L.down ? L.down : L.down_t, true);
  }
  build_meta();
  // SiLU is never exactly zero: only ReLU-type FFNs can skip neurons.
  sparse_capable_ = act_ != RS_ACT_SWIGLU;
  heads_digest_ = rs::tensor_heads_digest(*file_);
  if (sparse_capable_ && !params.no_repack) repack_ffn(params.down_int8 != 0);
  // Dense steps stream these either way; without the sparse layout that includes the FFN
  // (no_repack is the dense-only load: its dense products take the fastest layout too).
  repack_dense();
}

void Model::read_hparams() {
  const GgufFile &f = *file_;
  std::string arch;
  if (!f.get_string("general.architecture", &arch))
    throw FormatError("missing metadata key 'general.architecture'");
  if (arch != "llama" && arch != "bamboo")
    throw UnsupportedError("architecture '" + arch + "' is not supported (supported: llama, bamboo)");
  hp_.arch = arch;
  auto req = [&](const char *suffix, int lo, int hi) {
    std::string key = arch + "." + suffix;
    uint64_t v;
    if (!f.get_u64(key, &v)) throw FormatError("missing metadata key '" + key + "'");
    if (v < static_cast<uint64_t>(lo) || v > static_cast<uint64_t>(hi))
      throw FormatError("metadata key '" + key + "' = " + std::to_string(v) + " is outside [" +
                        std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int>(v);
  };
  hp_.n_embd = req("embedding_length", 1, 1 << 17);
  hp_.n_ff = req("feed_forward_length", 1, 1 << 20);
  hp_.n_layer = req("block_count", 1, 1024);
  hp_.n_head = req("attention.head_count", 1, 1024);
  uint64_t v;
  // Checked as u64 before narrowing: 2^32 + 2 must not pass as 2.
  hp_.n_head_kv = hp_.n_head;
  if (f.get_u64(arch + ".attention.head_count_kv", &v)) {
    if (v < 1 || v > static_cast<uint64_t>(hp_.n_head))
      throw FormatError("metadata key '" + arch + ".attention.head_count_kv' = " + std::to_string(v) +
                        " is outside [1, head_count " + std::to_string(hp_.n_head) + "]");
    hp_.n_head_kv = static_cast<int>(v);
  }
  hp_.n_ctx_train = f.get_u64(arch + ".context_length", &v) ? static_cast<int>(std::min<uint64_t>(v, 1 << 24)) : 2048;
  double d;
  if (f.get_f64(arch + ".rope.freq_base", &d)) hp_.rope_freq_base = static_cast<float>(d);
  if (f.get_f64(arch + ".attention.layer_norm_rms_epsilon", &d)) hp_.rms_eps = static_cast<float>(d);
  // inf (or a double beyond float range) would make every rotation angle NaN.
  if (!(hp_.rope_freq_base > 0) || !std::isfinite(hp_.rope_freq_base))
    throw FormatError(arch + ".rope.freq_base must be a positive finite number");
  if (!(hp_.rms_eps > 0 && hp_.rms_eps < 1)) throw FormatError(arch + ".attention.layer_norm_rms_epsilon must be in (0, 1)");
  if (hp_.n_embd % hp_.n_head != 0)
    throw FormatError("embedding_length " + std::to_string(hp_.n_embd) + " is not a multiple of head_count " +
                      std::to_string(hp_.n_head));
  if (hp_.n_head_kv < 1 || hp_.n_head % hp_.n_head_kv != 0)
    throw FormatError("head_count " + std::to_string(hp_.n_head) + " is not a multiple of head_count_kv " +
                      std::to_string(hp_.n_head_kv));
  hp_.head_dim = hp_.n_embd / hp_.n_head;
  if (hp_.head_dim % 2 != 0) throw FormatError("head dimension " + std::to_string(hp_.head_dim) + " is odd");
  if (f.get_u64(arch + ".rope.dimension_count", &v) && v != static_cast<uint64_t>(hp_.head_dim))
    throw UnsupportedError(arch + ".rope.dimension_count = " + std::to_string(v) +
                           " differs from the head dimension " + std::to_string(hp_.head_dim) +
                           " (partial rotary embeddings are not supported)");
}

void Model::choose_activation(const rs_model_params &params) {
  auto parse = [](const std::string &s, rs_act *a) {
    if (s == "swiglu" || s == "silu") *a = RS_ACT_SWIGLU;
    else if (s == "relu_glu" || s == "relu") *a = RS_ACT_RELU_GLU;
    else if (s == "drelu") *a = RS_ACT_DRELU;
    else return false;
    return true;
  };
  std::string flag = params.ffn_activation ? params.ffn_activation : "auto";
  if (flag != "auto" && !flag.empty()) {
    if (!parse(flag, &act_))
      throw InvalidArgError("unknown FFN activation '" + flag + "' (expected auto, swiglu, relu_glu or drelu)");
    act_from_ = "flag";
    return;
  }
  std::string key;
  if (file_->get_string("relu_serve.ffn_activation", &key)) {
    if (!parse(key, &act_)) throw FormatError("relu_serve.ffn_activation has unknown value '" + key + "'");
    act_from_ = "file key relu_serve.ffn_activation";
    return;
  }
  if (hp_.arch == "bamboo") { act_ = RS_ACT_DRELU; act_from_ = "architecture"; return; }
  if (file_->is_powerinfer()) { act_ = RS_ACT_RELU_GLU; act_from_ = "powerinfer magic"; return; }
  std::string name;
  file_->get_string("general.name", &name);
  std::string base = file_->path();
  base = base.substr(base.find_last_of('/') == std::string::npos ? 0 : base.find_last_of('/') + 1);
  std::string hay = lower(name + " " + base);
  if (hay.find("relu") != std::string::npos || hay.find("prosparse") != std::string::npos) {
    act_ = RS_ACT_RELU_GLU;
    act_from_ = "model name";
    return;
  }
  act_ = RS_ACT_SWIGLU;
  act_from_ = "default";
}

Weight Model::weight(const std::string &name, int64_t cols, int64_t rows, bool required) {
  const GgufTensor *t = file_->find_tensor(name);
  if (!t) {
    if (required) throw FormatError("missing tensor '" + name + "'");
    return Weight{};
  }
  bool two_d = t->ne[2] == 1 && t->ne[3] == 1;
  if (!two_d || t->ne[0] != cols || (rows >= 0 && t->ne[1] != rows))
    throw FormatError("tensor '" + name + "' has shape " + shape_str(*t) + ", expected [" + std::to_string(cols) +
                      ", " + (rows >= 0 ? std::to_string(rows) : std::string("n_vocab")) + "]");
  const rs_type_traits *tr = rs_type_get_traits(t->type);
  if (!tr || !tr->supported)
    throw UnsupportedError("tensor '" + name + "' has type " + type_name(t->type) + " (id " +
                           std::to_string(t->type) +
                           "), which relu-serve does not support (supported: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)");
  Weight w;
  w.t = t;
  w.type = static_cast<rs_type>(t->type);
  w.cols = t->ne[0];
  w.rows = t->ne[1];
  w.row_bytes = rs_row_size(w.type, w.cols);
  w.stride = w.row_bytes;
  w.data = t->data;
  return w;
}

std::vector<float> Model::vector_f32(const std::string &name, int64_t n) {
  const GgufTensor *t = file_->find_tensor(name);
  if (!t) throw FormatError("missing tensor '" + name + "'");
  if (t->n_elements() != n || t->ne[0] != n)
    throw FormatError("tensor '" + name + "' has shape " + shape_str(*t) + ", expected [" + std::to_string(n) + "]");
  std::vector<float> out(static_cast<size_t>(n));
  if (t->type == RS_TYPE_F32) {
    std::memcpy(out.data(), t->data, n * sizeof(float));
  } else if (t->type == RS_TYPE_F16 || t->type == RS_TYPE_BF16) {
    for (int64_t k = 0; k < n; k++) {
      uint16_t h;
      std::memcpy(&h, t->data + 2 * k, 2);
      out[k] = t->type == RS_TYPE_F16 ? rs_fp16_to_fp32(h) : rs_bf16_to_fp32(h);
    }
  } else {
    throw UnsupportedError("tensor '" + name + "' has type " + type_name(t->type) + "; norm weights must be f32, f16 or bf16");
  }
  return out;
}

void Model::build_meta() {
  // Recursively mirror GgufValue into the C ABI struct; arrays of arrays get storage here.
  struct Conv {
    Model *m;
    rs_meta_kv operator()(std::string_view key, const GgufValue &v) {
      rs_meta_kv kv{};
      kv.key = rs_str{key.data(), key.size()};
      kv.type = v.type;
      kv.elem_type = v.elem_type;
      kv.n = v.n;
      if (v.type == RS_META_STRING) kv.v.str = rs_str{v.str.data(), v.str.size()};
      else if (v.type == RS_META_F32 || v.type == RS_META_F64) kv.v.f = v.num.f;
      else if (v.type == RS_META_I8 || v.type == RS_META_I16 || v.type == RS_META_I32 || v.type == RS_META_I64) kv.v.i = v.num.i;
      else kv.v.u = v.num.u;
      kv.data = v.array_data;
      kv.strs = v.strs.empty() ? nullptr : v.strs.data();
      if (!v.items.empty()) {
        m->meta_items_.emplace_back();
        std::vector<rs_meta_kv> &store = m->meta_items_.back();
        store.reserve(v.items.size());
        for (const GgufValue &it : v.items) store.push_back((*this)(std::string_view(), it));
        kv.items = store.data();
      }
      return kv;
    }
  } conv{this};
  meta_.reserve(file_->kvs().size());
  for (const GgufKV &kv : file_->kvs()) meta_.push_back(conv(kv.key, kv.value));
}

}  // namespace rs

// A loaded model: hyper-parameters and weight views into the GGUF file.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gguf.h"
#include "rs_kernels.h"

namespace rs {

// A 2-D weight matrix: `rows` rows of `cols` elements, row-major in the file
// (GGUF ne = {cols, rows}).
struct Weight {
  const GgufTensor *t = nullptr;
  rs_type type = RS_TYPE_F32;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  const uint8_t *data = nullptr;
  const uint8_t *row(int64_t r) const { return data + r * row_bytes; }
  explicit operator bool() const { return data != nullptr; }
};

struct Layer {
  std::vector<float> attn_norm, ffn_norm;  // [n_embd]
  Weight wq, wk, wv, wo;                   // [n_embd x n_embd], [kv_dim x n_embd] x2, [n_embd x n_embd]
  Weight gate, up;                         // [n_ff x n_embd]
  Weight down;                             // [n_embd x n_ff]  (dense GGUF)
  Weight down_t;                           // [n_ff x n_embd]  (PowerInfer: row i = neuron i's output)
  Weight fc1, fc2;                         // PowerInfer predictor (loaded, used by the sparse path)
};

struct HParams {
  std::string arch;
  int n_vocab = 0, n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0;
  int n_ctx_train = 0, head_dim = 0;
  float rope_freq_base = 10000.f, rms_eps = 1e-5f;
  int kv_dim() const { return n_head_kv * head_dim; }
};

class Model {
 public:
  Model(std::unique_ptr<GgufFile> file, const rs_model_params &params);

  const GgufFile &file() const { return *file_; }
  const HParams &hp() const { return hp_; }
  rs_act ffn_act() const { return act_; }
  const std::string &ffn_act_from() const { return act_from_; }
  const std::vector<Layer> &layers() const { return layers_; }
  const Weight &tok_embd() const { return tok_embd_; }
  const Weight &output() const { return output_; }
  const std::vector<float> &output_norm() const { return output_norm_; }
  bool tied_output() const { return tied_; }
  uint64_t n_params() const { return n_params_; }
  uint64_t bytes_per_token() const { return bytes_per_token_; }
  // Metadata in C-ABI form, built once at load.
  const std::vector<rs_meta_kv> &meta() const { return meta_; }

 private:
  Weight weight(const std::string &name, int64_t cols, int64_t rows, bool required);
  std::vector<float> vector_f32(const std::string &name, int64_t n);
  void read_hparams();
  void choose_activation(const rs_model_params &params);
  void build_meta();

  std::unique_ptr<GgufFile> file_;
  HParams hp_;
  rs_act act_ = RS_ACT_SWIGLU;
  std::string act_from_;
  std::vector<Layer> layers_;
  Weight tok_embd_, output_;
  std::vector<float> output_norm_;
  bool tied_ = false;
  uint64_t n_params_ = 0, bytes_per_token_ = 0;
  std::vector<rs_meta_kv> meta_;
  std::deque<std::vector<rs_meta_kv>> meta_items_;  // storage for arrays of arrays
};

const char *ffn_act_name(rs_act a);

}  // namespace rs

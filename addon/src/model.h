// A loaded model: hyper-parameters and weight views into the GGUF file.
#pragma once

#include <array>
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
  size_t stride = 0;  // bytes from one row to the next: row_bytes, or more in a packed layout
  const uint8_t *data = nullptr;
  // The same rows repacked for the dense product (Q4_0: rs_q4_0x8_pack), or null. The
  // plain rows above stay valid (the file's mapping) for every other reader.
  const uint8_t *x8 = nullptr;
  // The host repacked this matrix (x8 set there). A device copy keeps the flag but not
  // the pointer: the emulated device repacks its own uploaded rows the same way, so it
  // computes the CPU's bits from device memory (device_emu.cpp).
  bool x8_on_host = false;
  // --no-mmap: the private copy's plain rows were given back once repacked (x8 is the
  // only copy). The dense product reads x8; a reader of plain rows (a device upload, the
  // reference forward) gets them with unpack_x8() instead of row().
  bool plain_discarded = false;
  const uint8_t *row(int64_t r) const { return data + r * stride; }
  explicit operator bool() const { return data != nullptr; }
};

// FFN neurons stored one block per neuron, block b holding neuron rows [gate | up | down]
// (gate optional). The views' row(b) is the row of block b (stride = the block size).
// The sparse FFN kernels work over any such set of blocks: a layer's whole FFN on the
// CPU (PackedFfn), or the hot neurons a device holds (hybrid runtime).
struct NeuronBlocks {
  bool has_gate = false;
  // down rows in the split Q4_0 layout, summed by rs_axpy_q4_0s_i8 (rs_model_params.down_int8)
  bool down_split = false;
  Weight gate, up, down;  // gate empty unless has_gate
};

// The FFN of one layer repacked for sparse access: neuron i's rows stored together in
// one block, so an active neuron costs one contiguous read instead of three scattered
// ones. PowerInfer files: [gate_i | up_i | down_t_i], all in the file's types. Plain
// ReLU files (exact mode, gate computed densely from its own matrix): [up_i | down_i],
// with down_i the i-th column of ffn_down, transposed into a row (f16; f32 for f32
// files, so exact mode loses nothing there). A layer with a predictor but a plain
// ffn_down: [gate_i | up_i | down_i] (the predictor path reads the gate per neuron).
//
// Only the sparse path reads these views; the dense path keeps reading the file's own
// matrices, whose contiguous rows suit matrix products best.
struct PackedFfn : NeuronBlocks {
  size_t block = 0;  // bytes per neuron
  std::unique_ptr<uint8_t, void (*)(void *)> mem{nullptr, nullptr};
};

struct Layer {
  std::vector<float> attn_norm, ffn_norm;  // [n_embd]
  Weight wq, wk, wv, wo;                   // [n_embd x n_embd], [kv_dim x n_embd] x2, [n_embd x n_embd]
  Weight gate, up;                         // [n_ff x n_embd]
  Weight down;                             // [n_embd x n_ff]  (dense GGUF)
  Weight down_t;                           // [n_ff x n_embd]  (PowerInfer: row i = neuron i's output)
  Weight fc1, fc2;                         // PowerInfer predictor: logits = fc2 . relu(fc1 . x)
  PackedFfn packed;                        // the sparse path's layout (ReLU models)
  bool sparse_ready() const { return static_cast<bool>(packed.up); }
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
  Model(const Model &) = delete;

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
  bool has_predictors() const { return has_predictors_; }
  bool sparse_capable() const { return sparse_capable_; }
  float sparse_threshold() const { return sparse_threshold_; }
  double repack_ms() const { return repack_ms_; }
  uint64_t x8_bytes() const { return x8_bytes_; }
  // Bytes of one neuron's FFN rows (gate+up+down) and of a layer's predictor.
  uint64_t neuron_bytes(int layer) const;
  uint64_t predictor_bytes(int layer) const;
  // Weight bytes a one-token decode reads outside the FFN matrices (attention, output).
  uint64_t non_ffn_bytes_per_token() const { return non_ffn_bytes_; }
  // Metadata in C-ABI form, built once at load.
  const std::vector<rs_meta_kv> &meta() const { return meta_; }
  // SHA-256 over the first 4 KiB of every tensor as the file has them, taken before any
  // repacking (a --no-mmap load gives some of those bytes back): model_fingerprint_hex.
  const std::array<uint8_t, 32> &tensor_heads_digest() const { return heads_digest_; }

 private:
  Weight weight(const std::string &name, int64_t cols, int64_t rows, bool required);
  std::vector<float> vector_f32(const std::string &name, int64_t n);
  void read_hparams();
  void choose_activation(const rs_model_params &params);
  void build_meta();
  void repack_ffn(bool down_int8);
  void repack_dense();

  std::unique_ptr<GgufFile> file_;
  HParams hp_;
  rs_act act_ = RS_ACT_SWIGLU;
  std::string act_from_;
  std::vector<Layer> layers_;
  Weight tok_embd_, output_;
  std::vector<float> output_norm_;
  bool tied_ = false;
  uint64_t n_params_ = 0, bytes_per_token_ = 0, non_ffn_bytes_ = 0;
  bool has_predictors_ = false, sparse_capable_ = false;
  float sparse_threshold_ = 0.f;
  double repack_ms_ = 0;
  uint64_t x8_bytes_ = 0;  // plain-row bytes of the matrices repack_dense packed
  std::unique_ptr<uint8_t, void (*)(void *)> dense_mem_{nullptr, std::free};  // the arena of repack_dense's copies
  std::vector<rs_meta_kv> meta_;
  std::array<uint8_t, 32> heads_digest_{};
  std::deque<std::vector<rs_meta_kv>> meta_items_;  // storage for arrays of arrays
};

const char *ffn_act_name(rs_act a);

// See Model::tensor_heads_digest (defined in vram_plan.cpp, with the fingerprint).
std::array<uint8_t, 32> tensor_heads_digest(const GgufFile &f);

// The plain rows of a repacked matrix, rebuilt from its x8 layout (the exact inverse of
// rs_q4_0x8_pack): w.rows * w.row_bytes bytes into dst.
void unpack_x8(const Weight &w, uint8_t *dst);
// The plain rows of w: a view of them, or (plain_discarded) a copy in `scratch`.
const uint8_t *plain_rows(const Weight &w, std::vector<uint8_t> &scratch);

}  // namespace rs

// What make-model writes, in C++: the options, the shapes, the metadata and the tensor
// plan of a synthetic model (server/gguf/synthetic-model.ts) or of a PowerInfer sparse
// one (synthetic-sparse.ts, synthetic-sparse-design.ts), and each tensor row's floats.
// Same arguments -> the same bytes as the TypeScript generator.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "gguf_out.h"
#include "js_math.h"
#include "quantize.h"

namespace mm {

// A request the generator refuses (bad or unsupported options): exit status 2.
struct Refusal : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// make-model's options (server/cli/make-model.ts MakeModelOptions).
struct Options {
  std::string arch = "llama";  // llama | bamboo
  std::string size = "tiny";   // tiny | small | 1b | 7b
  std::string type = "f16";    // f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k
  uint64_t seed = 0;
  std::string out;
  std::optional<int64_t> vocab_size;
  bool relu = false;
  bool tied = false;
  bool sparse = false;
  std::optional<double> sparsity;
  std::optional<std::string> predictor;
  std::optional<int64_t> predictor_rank;
  std::optional<double> threshold;
};

struct Shape {
  int64_t n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
};

// How a tensor's rows are made (one per fill function of the TS plans).
enum class Fill {
  kUniform,  // dense models: uniform in [lo, hi)
  // sparse models (synthetic-sparse.ts planSparse)
  kTokenEmbd, kNormNoConst, kDownT, kGate, kUp, kFfnNorm, kReadNonConst, kWriteF, kOutput, kFc1, kFc2,
};

struct Tensor {
  std::string name;
  std::vector<int64_t> dims;  // ggml ne order
  const TypeInfo *type;
  int layer;  // -1: not a layer's
  Fill fill;
  double lo = 0, hi = 0;  // kUniform's range
};

class SparseDesign;  // synthetic.cpp

// A whole file: header fields, metadata and tensors; rows are produced on demand.
class ModelSpec {
 public:
  ModelSpec(const Options &o, const Vocab &fixture);  // throws Refusal
  ~ModelSpec();

  std::string magic;                      // "GGUF" or "PWRI"
  uint64_t n_kv = 0;                      // key/values in `kv`
  ByteBuilder kv;                         // the encoded key/values, in make-model's order
  std::vector<Tensor> tensors;            // in file order; tensor i draws from Rng(seed, i + 1)
  uint64_t seed = 0;

  // The header: magic, version 3, counts, key/values, tensor infos, padding. offsets[i] is
  // tensor i's offset in the data section.
  std::vector<uint8_t> header(std::vector<int64_t> &offsets) const;

  // Row `row` of tensor `index` (ne0 floats) into o; rng is that tensor's stream, which
  // rows consume in order.
  void fill_row(size_t index, Rng &rng, int64_t row, float *o) const;

 private:
  std::unique_ptr<SparseDesign> sparse_;
};

}  // namespace mm

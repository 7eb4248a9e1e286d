// The plans of synthetic-model.ts and synthetic-sparse.ts and the per-layer design of
// synthetic-sparse-design.ts, ported expression by expression: every double operation is
// the TS one in the TS order, values go to float exactly where the TS stores them into a
// Float32Array, and integers that JS multiplies as doubles are multiplied as doubles
// here too (a -1 * 0 must stay -0, which f16 and f32 tensors keep).
#include "synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mm {

namespace {

constexpr int kConstDims = 32;  // CONST_DIMS
constexpr double kPMax = 0.97;  // P_MAX
constexpr double kPMin = 1e-4;  // P_MIN
constexpr double kLn2 = 0.69314718055994530942;  // Math.LN2

struct SizeShape {
  const char *name;
  Shape shape;  // n_vocab 0: the fixture's size
};

// synthetic-model.ts SHAPES.
const SizeShape kSizes[] = {
    {"tiny", {64, 192, 2, 4, 2, 0, 2048}},
    {"small", {256, 768, 4, 8, 4, 0, 2048}},
    {"1b", {2048, 8192, 16, 32, 8, 32000, 4096}},
    {"7b", {4096, 14336, 32, 32, 8, 32000, 32768}},
};

const TypeInfo *type_named(const char *name) { return weight_type(name); }

// synthetic-model.ts matrixType / outputType.
const TypeInfo *matrix_type(const TypeInfo *want, int64_t ne0) {
  if (ne0 % want->block == 0) return want;
  const TypeInfo *q8 = type_named("q8_0");
  return ne0 % q8->block == 0 ? q8 : type_named("f16");
}
const TypeInfo *output_type(const TypeInfo *want, int64_t ne0) {
  const std::string n = want->name;
  if (n == "q4_0" || n == "q4_k" || n == "q5_k") return matrix_type(type_named("q6_k"), ne0);
  return matrix_type(want, ne0);
}

bool ends_with(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A JS number that is an integer, as String(n) prints it.
std::string int_str(double v) { return std::to_string(static_cast<long long>(v)); }

// synthetic-model.ts baseMetadata (the keys every synthetic model carries).
void base_metadata(ByteBuilder &kv, uint64_t &n, const Options &o, const Shape &s, const Vocab &v,
                   const std::string &name) {
  const TypeInfo *want = weight_type(o.type);
  const std::string &a = o.arch;
  kv.kv_str("general.architecture", a);
  kv.kv_str("general.name", name);
  kv.kv_u32("general.file_type", static_cast<uint32_t>(want->file_type));
  n += 3;
  if (want->block > 1) {
    kv.kv_u32("general.quantization_version", 2);
    n++;
  }
  kv.kv_u32(a + ".vocab_size", static_cast<uint32_t>(s.n_vocab));
  kv.kv_u32(a + ".context_length", static_cast<uint32_t>(s.n_ctx));
  kv.kv_u32(a + ".embedding_length", static_cast<uint32_t>(s.n_embd));
  kv.kv_u32(a + ".feed_forward_length", static_cast<uint32_t>(s.n_ff));
  kv.kv_u32(a + ".block_count", static_cast<uint32_t>(s.n_layer));
  kv.kv_u32(a + ".attention.head_count", static_cast<uint32_t>(s.n_head));
  kv.kv_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  kv.kv_f32(a + ".rope.freq_base", 10000);                  // ROPE_BASE
  kv.kv_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5);  // RMS_EPS
  kv.kv_u32(a + ".rope.dimension_count", static_cast<uint32_t>(s.n_embd / s.n_head));
  n += 10;
  // tokenizerMetadata
  kv.kv_str("tokenizer.ggml.model", "llama");
  kv.str("tokenizer.ggml.tokens");
  kv.u32(kArray);
  kv.u32(kString);
  kv.u64(v.pieces.size());
  for (const std::string &p : v.pieces) kv.str(p);
  kv.str("tokenizer.ggml.scores");
  kv.u32(kArray);
  kv.u32(kF32);
  kv.u64(v.scores.size());
  for (double x : v.scores) kv.f32(x);
  kv.str("tokenizer.ggml.token_type");
  kv.u32(kArray);
  kv.u32(kI32);
  kv.u64(v.types.size());
  for (int32_t t : v.types) kv.i32(t);
  kv.kv_u32("tokenizer.ggml.bos_token_id", 1);
  kv.kv_u32("tokenizer.ggml.eos_token_id", 2);
  kv.kv_u32("tokenizer.ggml.unknown_token_id", 0);
  kv.kv_bool("tokenizer.ggml.add_bos_token", true);
  kv.kv_bool("tokenizer.ggml.add_eos_token", false);
  kv.kv_bool("tokenizer.ggml.add_space_prefix", true);
  n += 10;
}

// synthetic-sparse-design.ts probit (Acklam), with the portable log.
double probit(double p) {
  if (!(p > 0 && p < 1)) throw std::runtime_error("probit: p must be in (0, 1)");
  const double a[] = {-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2,
                      1.38357751867269e2,   -3.066479806614716e1, 2.506628277459239};
  const double b[] = {-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1,
                      -1.328068155288572e1};
  const double c[] = {-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838,
                      -2.549732539343734,    4.374664141464968,     2.938163982698783};
  const double d[] = {7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416};
  const double lo = 0.02425;
  if (p < lo) {
    const double q = std::sqrt(-2 * fd_log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -probit(1 - p);
  const double q = p - 0.5;
  const double r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

// powerLawProbabilities: p_r = clamp(A r^-alpha, P_MIN, P_MAX), A bisected to mean 1 - sparsity.
std::vector<double> power_law_probabilities(int64_t n_ff, double sparsity, double alpha) {
  const double target = 1 - sparsity;
  std::vector<double> p(n_ff), shape(n_ff);
  for (int64_t r = 0; r < n_ff; r++) shape[r] = fd_pow(static_cast<double>(r + 1), -alpha);
  auto fill = [&](double A) {
    double s = 0;
    for (int64_t r = 0; r < n_ff; r++) {
      p[r] = std::min(kPMax, std::max(kPMin, A * shape[r]));
      s += p[r];
    }
    return s / static_cast<double>(n_ff);
  };
  double lo = 0, hi = 1;
  while (fill(hi) < target) {
    // Every neuron at P_MAX: the mean cannot grow (a target just below P_MAX, by rounding).
    if (hi * shape[n_ff - 1] >= kPMax) throw Refusal("the mean firing rate 1 - sparsity needs neurons above P_MAX = 0.97");
    hi *= 2;
  }
  for (int it = 0; it < 100; it++) {
    const double mid = (lo + hi) / 2;
    if (fill(mid) < target) lo = mid;
    else hi = mid;
  }
  fill(hi);
  return p;
}

// biasDigits: spread a sum over 31 digits in [-(R-1), R-1] as evenly as possible.
void bias_digits(int sum, int R, int32_t out[kConstDims - 1]) {
  const int n = kConstDims - 1;
  const int base = sum / n;  // C++ integer division truncates, as Math.trunc(sum / n)
  int rest = sum - base * n;
  for (int j = 0; j < n; j++) {
    int v = base;
    if (rest > 0) {
      v++;
      rest--;
    } else if (rest < 0) {
      v--;
      rest++;
    }
    out[j] = v;
    if (std::abs(v) > R - 1) throw std::runtime_error("bias sum does not fit 31 digits");
  }
}

struct LayerDesign {
  std::vector<float> ffn_norm;
  std::vector<int32_t> group;
  std::vector<int8_t> sign;
  std::vector<int32_t> bias_int;
  std::vector<double> spread;
  std::vector<int8_t> dirs;  // k x nS
  std::vector<double> group_spread;
};

}  // namespace

// Everything planSparse's fill functions share: the resolved parameters, the geometry and
// each layer's design (synthetic-sparse-design.ts layerDesign).
class SparseDesign {
 public:
  // resolveSparseParams + geometry; throws Refusal like the TS throws RangeError.
  SparseDesign(const Options &o, const Shape &s, const TypeInfo *gate_type, uint64_t seed) {
    D = s.n_embd;
    F = s.n_ff;
    bamboo = o.arch == "bamboo";
    sparsity = o.sparsity.value_or(0.9);
    if (!(sparsity > 0 && sparsity < 1)) throw Refusal("--sparsity must be in (0, 1), got " + std::to_string(sparsity));
    if (1 - sparsity >= kPMax)
      throw Refusal("--sparsity must be above 0.03 (no neuron fires for more than 97% of tokens), got " +
                    std::to_string(sparsity));
    mode = o.predictor.value_or("exact");
    if (mode != "exact" && mode != "lowrank") throw Refusal("--predictor must be exact or lowrank, got \"" + mode + "\"");
    const double rank_d = o.predictor_rank ? static_cast<double>(*o.predictor_rank)
                                           : std::max(17.0, static_cast<double>(D) / 4);
    if (rank_d != std::trunc(rank_d) || rank_d < 3 || rank_d > static_cast<double>(D))
      throw Refusal("--predictor-rank must be an integer in [3, n_embd = " + std::to_string(D) + "], got " +
                    std::to_string(rank_d));
    rank = static_cast<int64_t>(rank_d);
    alpha = 1.5;
    hidden_noise = 0.1;
    const bool kquant = ends_with(gate_type->name, "_k");
    threshold = o.threshold.value_or(mode == "lowrank" ? -0.1 : kquant ? -0.25 : -0.05);
    if (!std::isfinite(threshold)) throw Refusal("--threshold must be a number");

    // geometry()
    if (D < 64 || D % 32 != 0) throw Refusal("--sparse needs n_embd to be a multiple of 32 and at least 64");
    nS = (D - kConstDims) >> 1;
    f0 = kConstDims + nS;
    // predictorLayout(): bias unit 0, "+" units at gap + t, "-" units at gap + half + t.
    gap = rank >= 96 ? 32 : 1;
    half = (rank - gap) / (2 * gap) * gap;  // Math.floor of a positive quotient
    k = half;
    pred_file_type = gap == 32;
    const std::string g = gate_type->name;
    R = g == "q4_0" || ends_with(g, "_k") ? 8 : 127;
    const double spread1 = static_cast<double>(nS) * R * R / 3;
    u = std::ldexp(1.0, static_cast<int>(js_round(fd_log(1 / std::sqrt(spread1)) / kLn2)));
    c = -8 * std::sqrt(static_cast<double>(D - kConstDims) / 8192);

    const double n_active = std::max(1.0, (1 - sparsity) * static_cast<double>(F));
    const double h_sq = bamboo ? 15 : 0.5;
    down_std = std::sqrt(0.05 / (n_active * h_sq));

    const std::vector<double> by_rank = power_law_probabilities(F, sparsity, alpha);  // the same for every layer
    for (int64_t l = 0; l < s.n_layer; l++) layers.push_back(layer_design(by_rank, seed, static_cast<int>(l)));
  }

  void fill(Fill kind, int layer, Rng &rng, int64_t row, float *o) const;

  int64_t D, F, nS, f0, k, rank, gap, half;
  bool pred_file_type;
  int R;
  double u, c, sparsity, alpha, hidden_noise, threshold, down_std;
  std::string mode;
  bool bamboo;
  std::vector<LayerDesign> layers;

 private:
  static void uniform_std(Rng &rng, float *o, int64_t n, double std) {
    rng.fill_uniform(o, n, -std * std::sqrt(3.0), std * std::sqrt(3.0));
  }

  LayerDesign layer_design(const std::vector<double> &by_rank, uint64_t seed, int layer) const {
    Rng rng(seed, 0x5ba75e00ull + static_cast<uint64_t>(layer));
    LayerDesign d;
    // 1 on CONST and S (fc1 carries it and must stay on the gate's lattice), [0.9, 1.1) on F.
    d.ffn_norm.assign(D, 1.0f);
    rng.fill_uniform(d.ffn_norm.data() + kConstDims, D - kConstDims, 0.9, 1.1);
    std::fill(d.ffn_norm.begin(), d.ffn_norm.begin() + f0, 1.0f);

    // Group directions: integers in [-R, R) or [-R, R], one -R per 32-block.
    d.dirs.assign(k * nS, 0);
    d.group_spread.assign(k, 0);
    const uint32_t span = R == 8 ? 16 : 255;
    for (int64_t t = 0; t < k; t++) {
      int8_t *row = d.dirs.data() + t * nS;
      for (int64_t j = 0; j < nS; j++) row[j] = static_cast<int8_t>(static_cast<int>(rng.next_u32() % span) - R);
      for (int64_t b0 = kConstDims; b0 < f0; b0 += 32) {
        const int64_t len = std::min<int64_t>(32, f0 - b0);
        row[b0 - kConstDims + rng.next_u32() % static_cast<uint32_t>(len)] = static_cast<int8_t>(-R);
      }
      double ss = 0;
      for (int64_t j = 0; j < nS; j++) {
        const double w = static_cast<double>(row[j]) * u * d.ffn_norm[kConstDims + j];
        ss += w * w;
      }
      d.group_spread[t] = std::sqrt(ss);
    }

    // Popularity ranks shuffled over neurons (Fisher-Yates).
    std::vector<int32_t> perm(F);
    for (int64_t i = 0; i < F; i++) perm[i] = static_cast<int32_t>(i);
    for (int64_t i = F - 1; i > 0; i--) {
      const uint32_t j = rng.next_u32() % static_cast<uint32_t>(i + 1);
      std::swap(perm[i], perm[j]);
    }
    d.group.resize(F);
    d.sign.resize(F);
    d.bias_int.resize(F);
    d.spread.resize(F);
    const double noise = mode == "lowrank" ? hidden_noise : 0;
    const double max_sum = (kConstDims - 1) * (R - 1);  // maxDigitSum
    for (int64_t i = 0; i < F; i++) {
      const double prob = by_rank[perm[i]];
      d.group[i] = static_cast<int32_t>(rng.next_u32() % static_cast<uint32_t>(k));
      d.sign[i] = (rng.next_u32() & 1) ? 1 : -1;
      d.spread[i] = d.group_spread[d.group[i]] * std::sqrt(1 + noise * noise);
      const double want = (d.spread[i] * probit(prob)) / (u * c);
      const double sum = js_round(want) + R;
      d.bias_int[i] = static_cast<int32_t>(std::max(-max_sum, std::min(max_sum, sum)) - R);
    }
    return d;
  }
};

void SparseDesign::fill(Fill kind, int layer, Rng &rng, int64_t row, float *o) const {
  switch (kind) {
    case Fill::kTokenEmbd:
      rng.fill_uniform(o, D, -std::sqrt(3.0), std::sqrt(3.0));
      std::fill(o, o + kConstDims, static_cast<float>(c));
      return;
    case Fill::kNormNoConst:  // attention and the head must not see the bias dims
      rng.fill_uniform(o, D, 0.9, 1.1);
      std::fill(o, o + kConstDims, 0.0f);
      return;
    case Fill::kReadNonConst:
      uniform_std(rng, o, D, 1 / std::sqrt(static_cast<double>(D - kConstDims)));
      std::fill(o, o + kConstDims, 0.0f);
      return;
    case Fill::kWriteF:  // attn_output writes only F (rows < f0 draw nothing)
      if (row < f0) std::fill(o, o + D, 0.0f);
      else uniform_std(rng, o, D, 0.5 / std::sqrt(static_cast<double>(D)));
      return;
    case Fill::kOutput: uniform_std(rng, o, D, 1 / std::sqrt(static_cast<double>(D))); return;
    case Fill::kDownT:
      uniform_std(rng, o, D, down_std);
      std::fill(o, o + f0, 0.0f);
      return;
    case Fill::kUp:
      uniform_std(rng, o, D, 1 / std::sqrt(static_cast<double>(D - kConstDims)));
      std::fill(o, o + kConstDims, bamboo ? static_cast<float>(6 / (kConstDims * c)) : 0.0f);
      return;
    case Fill::kFfnNorm: std::copy(layers[layer].ffn_norm.begin(), layers[layer].ffn_norm.end(), o); return;
    case Fill::kGate: {
      const LayerDesign &d = layers[layer];
      std::fill(o, o + D, 0.0f);
      o[0] = static_cast<float>(-R * u);
      int32_t digits[kConstDims - 1];
      bias_digits(d.bias_int[row] + R, R, digits);
      for (int j = 1; j < kConstDims; j++) o[j] = static_cast<float>(digits[j - 1] * u);
      const int32_t t = d.group[row];
      const double sg = d.sign[row];
      const int8_t *dir = d.dirs.data() + t * nS;
      for (int64_t j = 0; j < nS; j++) o[kConstDims + j] = static_cast<float>(sg * dir[j] * u);
      if (mode == "lowrank" && hidden_noise > 0) {
        // The private part, drawn into F space as scratch and cleared after.
        float *w = o + f0;
        uniform_std(rng, w, nS, 1);
        double ss = 0;
        for (int64_t j = 0; j < nS; j++) {
          const double v = static_cast<double>(w[j]) * d.ffn_norm[kConstDims + j];
          ss += v * v;
        }
        const double scale = (hidden_noise * d.group_spread[t]) / std::sqrt(ss);
        for (int64_t j = 0; j < nS; j++) o[kConstDims + j] = static_cast<float>(o[kConstDims + j] + w[j] * scale);
        std::fill(w, w + nS, 0.0f);
      }
      return;
    }
    case Fill::kFc1: {
      const LayerDesign &d = layers[layer];
      std::fill(o, o + D, 0.0f);
      if (row == 0) {
        o[0] = -1;  // relu(-c) = |c|: a constant unit carrying the biases
        return;
      }
      const bool minus = row >= gap + half;
      const int64_t t = row - gap - (minus ? half : 0);
      if (row < gap || t >= k) return;  // an unused unit: a zero row
      const double sg = minus ? -1 : 1;
      for (int64_t j = 0; j < nS; j++)
        o[kConstDims + j] = static_cast<float>(sg * d.dirs[t * nS + j] * u * d.ffn_norm[kConstDims + j]);
      return;
    }
    case Fill::kFc2: {
      const LayerDesign &d = layers[layer];
      std::fill(o, o + rank, 0.0f);
      const int32_t t = d.group[row];
      const double inv = 1 / d.spread[row];
      const double sg = d.sign[row];
      o[gap + t] = static_cast<float>(sg * inv);
      o[gap + half + t] = static_cast<float>(-sg * inv);
      o[0] = static_cast<float>(-u * d.bias_int[row] * inv);
      return;
    }
    case Fill::kUniform: break;  // dense models' fill, not a sparse one
  }
}

ModelSpec::~ModelSpec() = default;

ModelSpec::ModelSpec(const Options &o, const Vocab &fixture) {
  // makeModel's checks, then syntheticModelSpec's / sparseModelSpec's.
  if (o.arch != "llama" && o.arch != "bamboo")
    throw Refusal("--arch: unknown architecture \"" + o.arch + "\" (expected llama, bamboo)");
  const SizeShape *size = nullptr;
  for (const SizeShape &s : kSizes)
    if (o.size == s.name) size = &s;
  if (!size) throw Refusal("--size: unknown size \"" + o.size + "\" (expected tiny, small, 1b, 7b)");
  const TypeInfo *want = weight_type(o.type);
  if (!want)
    throw Refusal("--type: unknown weight type \"" + o.type + "\" (expected f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)");
  if (o.out.empty()) throw Refusal("--out: an output file is required");
  if (!o.sparse && (o.sparsity || o.predictor || o.predictor_rank || o.threshold))
    throw Refusal("--sparsity, --predictor, --predictor-rank and --threshold need --sparse");
  if (o.sparse && o.tied) throw Refusal("--sparse models have their own output.weight; drop --tied");

  seed = o.seed;
  Shape s = size->shape;
  s.n_vocab = o.vocab_size ? *o.vocab_size : s.n_vocab ? s.n_vocab : static_cast<int64_t>(fixture.pieces.size());
  const int64_t min = min_vocab_size(fixture);
  if (s.n_vocab < min)
    throw Refusal("vocabulary size " + std::to_string(s.n_vocab) + " is too small: at least " + std::to_string(min) +
                  " (special and byte tokens)");
  const Vocab vocab = synthetic_vocab(fixture, s.n_vocab);
  const int64_t D = s.n_embd, kv_dim = D / s.n_head * s.n_head_kv;
  const TypeInfo *f32 = type_named("f32");
  auto add = [&](const std::string &name, std::vector<int64_t> dims, const TypeInfo *type, int layer, Fill fill,
                 double lo = 0, double hi = 0) { tensors.push_back({name, std::move(dims), type, layer, fill, lo, hi}); };

  if (!o.sparse) {
    // synthetic-model.ts planTensors: uniform weights, std 1/sqrt(fan_in) for matrices.
    magic = "GGUF";
    const std::string family = o.arch == "bamboo" ? "Bamboo" : o.relu ? "ReluLLaMA" : "LLaMA";
    base_metadata(kv, n_kv, o, s, vocab, "synthetic-" + family + "-" + o.size + "-" + o.type);
    auto matrix = [&](const std::string &name, int64_t ne0, int64_t ne1, const TypeInfo *type) {
      const double u = std::sqrt(3 / static_cast<double>(ne0));
      add(name, {ne0, ne1}, type, -1, Fill::kUniform, -u, u);
    };
    auto norm = [&](const std::string &name) { add(name, {D}, f32, -1, Fill::kUniform, 0.9, 1.1); };
    add("token_embd.weight", {D, s.n_vocab}, matrix_type(want, D), -1, Fill::kUniform, -std::sqrt(3.0), std::sqrt(3.0));
    for (int64_t l = 0; l < s.n_layer; l++) {
      const std::string b = "blk." + std::to_string(l) + ".";
      norm(b + "attn_norm.weight");
      matrix(b + "attn_q.weight", D, D, matrix_type(want, D));
      matrix(b + "attn_k.weight", D, kv_dim, matrix_type(want, D));
      matrix(b + "attn_v.weight", D, kv_dim, matrix_type(want, D));
      matrix(b + "attn_output.weight", D, D, matrix_type(want, D));
      norm(b + "ffn_norm.weight");
      matrix(b + "ffn_gate.weight", D, s.n_ff, matrix_type(want, D));
      matrix(b + "ffn_up.weight", D, s.n_ff, matrix_type(want, D));
      matrix(b + "ffn_down.weight", s.n_ff, D, matrix_type(want, s.n_ff));
    }
    norm("output_norm.weight");
    if (!o.tied) matrix("output.weight", D, s.n_vocab, output_type(want, D));
    return;
  }

  // synthetic-sparse.ts sparseModelSpec / planSparse.
  magic = "PWRI";
  const TypeInfo *gate_type = matrix_type(want, D);
  sparse_ = std::make_unique<SparseDesign>(o, s, gate_type, seed);
  const SparseDesign &p = *sparse_;
  const std::string family = o.arch == "bamboo" ? "Bamboo" : "ReluLLaMA";
  base_metadata(kv, n_kv, o, s, vocab,
                "synthetic-" + family + "-" + o.size + "-" + o.type + "-sparse" + int_str(js_round(p.sparsity * 100)) +
                    "-" + p.mode);
  kv.kv_f32("powerinfer.sparse_threshold", p.threshold);
  kv.kv_f32("relu_serve.synthetic.sparsity", p.sparsity);
  kv.kv_f32("relu_serve.synthetic.alpha", p.alpha);
  kv.kv_str("relu_serve.synthetic.predictor", p.mode);
  n_kv += 4;

  // PowerInfer-shaped predictors take the file's type; narrow ones stay f16 (f32 files: f32).
  auto pred_type = [&](int64_t ne0) {
    return p.pred_file_type ? matrix_type(want, ne0) : want == f32 ? f32 : type_named("f16");
  };
  const TypeInfo *mt = matrix_type(want, D);
  add("token_embd.weight", {D, s.n_vocab}, mt, -1, Fill::kTokenEmbd);
  for (int l = 0; l < static_cast<int>(s.n_layer); l++) {
    const std::string b = "blk." + std::to_string(l) + ".";
    // Published PowerInfer files list a layer's tensors in this order.
    add(b + "attn_norm.weight", {D}, f32, l, Fill::kNormNoConst);
    add(b + "ffn_down_t.weight", {D, s.n_ff}, mt, l, Fill::kDownT);
    add(b + "ffn_gate.weight", {D, s.n_ff}, mt, l, Fill::kGate);
    add(b + "ffn_up.weight", {D, s.n_ff}, mt, l, Fill::kUp);
    add(b + "ffn_norm.weight", {D}, f32, l, Fill::kFfnNorm);
    add(b + "attn_k.weight", {D, kv_dim}, mt, l, Fill::kReadNonConst);
    add(b + "attn_output.weight", {D, D}, mt, l, Fill::kWriteF);
    add(b + "attn_q.weight", {D, D}, mt, l, Fill::kReadNonConst);
    add(b + "attn_v.weight", {D, kv_dim}, mt, l, Fill::kReadNonConst);
  }
  add("output_norm.weight", {D}, f32, -1, Fill::kNormNoConst);
  add("output.weight", {D, s.n_vocab}, output_type(want, D), -1, Fill::kOutput);
  for (int l = 0; l < static_cast<int>(s.n_layer); l++) {
    add("blk." + std::to_string(l) + ".fc1.weight", {D, p.rank}, pred_type(D), l, Fill::kFc1);
    add("blk." + std::to_string(l) + ".fc2.weight", {p.rank, s.n_ff}, pred_type(p.rank), l, Fill::kFc2);
  }
}

std::vector<uint8_t> ModelSpec::header(std::vector<int64_t> &offsets) const {
  ByteBuilder h;
  h.bytes(magic.data(), 4);
  h.u32(3);
  h.u64(tensors.size());
  h.u64(n_kv);
  h.bytes(kv.data().data(), kv.data().size());
  offsets.assign(tensors.size(), 0);
  int64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); i++) {
    const Tensor &t = tensors[i];
    int64_t rows = 1;
    for (size_t d = 1; d < t.dims.size(); d++) rows *= t.dims[d];
    offsets[i] = offset;
    h.str(t.name);
    h.u32(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) h.u64(static_cast<uint64_t>(d));
    h.u32(static_cast<uint32_t>(t.type->id));
    h.u64(static_cast<uint64_t>(offset));
    offset = align_up(offset + row_bytes(*t.type, t.dims[0]) * rows, kAlignment);
  }
  h.pad_to(kAlignment);
  return h.data();
}

void ModelSpec::fill_row(size_t index, Rng &rng, int64_t row, float *o) const {
  const Tensor &t = tensors[index];
  if (t.fill == Fill::kUniform) rng.fill_uniform(o, t.dims[0], t.lo, t.hi);
  else sparse_->fill(t.fill, t.layer, rng, row, o);
}

}  // namespace mm

// relu-serve-cuda-check: every CUDA op (kernels/cuda) against a CPU reference, with the
// edge cases: sizes off the kernels' tiles, no active neuron, every neuron active, hot
// counts off the block size, scores exactly at the threshold, one and many rows. Built
// with the CUDA device (nvcc, or the CPU emulator: RS_CUDA_EMU). Exit status 0: all
// match; 1: a mismatch or CUDA error; 2: no CUDA device. `--json FILE` also writes the
// results. References: the plain CPU kernels (kernels/ref) and double-precision sums.
#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef RS_CUDA_EMU
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#endif

#include "rs_cuda.h"
#include "rs_kernels.h"

namespace {

struct Results {
  int checks = 0, fails = 0;
  std::string json;
  void add(const std::string &name, bool ok, const std::string &detail) {
    checks++;
    if (!ok) fails++;
    std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s", json.empty() ? "" : ",\n");
    json += std::string(buf) + "  {\"op\":\"" + name + "\",\"ok\":" + (ok ? "true" : "false") + ",\"detail\":\"" + detail + "\"}";
  }
};
Results R;

uint64_t g_rng = 0x9e3779b97f4a7c15ull;
float rnd() {  // uniform in [-1, 1)
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return static_cast<float>((g_rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
std::vector<float> rnd_vec(size_t n, float scale = 1.f) {
  std::vector<float> v(n);
  for (float &x : v) x = rnd() * scale;
  return v;
}

// Device buffers that free themselves.
template <typename T>
struct Dev {
  T *p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    if (cudaMalloc(reinterpret_cast<void **>(&p), std::max<size_t>(1, n) * sizeof(T)) != cudaSuccess) throw std::runtime_error("cudaMalloc failed");
    cudaMemset(p, 0, std::max<size_t>(1, n) * sizeof(T));
  }
  explicit Dev(const std::vector<T> &v) : Dev(v.size()) { cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice); }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
};

bool ran(int e, const char *what) {
  const cudaError_t s = static_cast<cudaError_t>(e == 0 ? cudaDeviceSynchronize() : e);
  if (s != cudaSuccess) R.add(what, false, std::string("CUDA error ") + std::to_string(static_cast<int>(s)) + " " + cudaGetErrorString(s));
  return s == cudaSuccess;
}

std::string fmt(const char *f, double a, double b = 0, double c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c);
  return buf;
}

// Weights of `type`: rows x cols random values quantised by the CPU's quantiser, and
// their dequantised values (the reference sees exactly what the GPU reads).
struct Weights {
  rs_type type;
  int64_t rows, cols;
  size_t stride;
  std::vector<uint8_t> bytes;
  std::vector<float> deq;
};
Weights make_weights(rs_type type, int64_t rows, int64_t cols, float scale = 1.f) {
  Weights w{type, rows, cols, rs_row_size(type, cols), {}, {}};
  w.bytes.resize(w.stride * rows);
  w.deq.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; r++) {
    std::vector<float> v = rnd_vec(static_cast<size_t>(cols), scale);
    rs_quantize_row(type, v.data(), w.bytes.data() + r * w.stride, cols);
    rs_ref_to_float(type, w.bytes.data() + r * w.stride, w.deq.data() + r * cols, cols);
  }
  return w;
}

// Scratch for activations quantised by the matrix kernels: 36 bytes per 32 values.
size_t act_bytes(int n, int64_t cols) { return static_cast<size_t>(n) * static_cast<size_t>(cols / 32 + 1) * 36; }

// What the CPU computes for one weight row and one row of x: x in the type's vec-dot
// format (quantised for quantised weights), the reference dot product.
double cpu_dot(const Weights &w, int64_t r, const float *x) {
  const rs_type vt = rs_type_get_traits(w.type)->vec_dot_type;
  std::vector<uint8_t> a(rs_row_size(vt, w.cols));
  rs_ref_from_float(vt, x, a.data(), w.cols);
  return rs_ref_vec_dot(w.type, w.cols, w.bytes.data() + r * w.stride, a.data());
}

void check_matmul(rs_type type, int64_t rows, int64_t cols, int n) {
  Weights w = make_weights(type, rows, cols);
  std::vector<float> x = rnd_vec(static_cast<size_t>(n * cols));
  Dev<uint8_t> dw(w.bytes), act(act_bytes(n, cols));
  Dev<float> dx(x), dy(static_cast<size_t>(n * rows));
  const std::string name = std::string("matmul ") + rs_type_get_traits(type)->name + " " + std::to_string(rows) + "x" +
                           std::to_string(cols) + " n=" + std::to_string(n);
  if (!ran(rs_cuda_matmul(rs_cuda_matrix{type, dw.p, rows, cols, w.stride}, dx.p, n, dy.p, act.p, nullptr), name.c_str())) return;
  const std::vector<float> y = dy.get();
  // A few rows: the CPU's own products (x quantised as the CPU does), up to the order of
  // the f32 sums. The tensor cores (16+ rows): f16 operands against exact products.
  const bool tc = n >= 16 && type != RS_TYPE_F32 && type != RS_TYPE_BF16;
  const double tol = tc ? 2e-3 : 2e-6;
  double worst = 0;
  for (int j = 0; j < n; j++)
    for (int64_t r = 0; r < rows; r++) {
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < cols; c++) {
        const double p = static_cast<double>(w.deq[r * cols + c]) * x[j * cols + c];
        ref += p;
        mag += std::fabs(p);
      }
      if (!tc) ref = cpu_dot(w, r, x.data() + j * cols);
      worst = std::max(worst, std::fabs(y[j * rows + r] - ref) / (mag + 1e-12));
    }
  R.add(name, worst <= tol, fmt("max error %.2e of the sum of |terms| (tolerance %.0e)", worst, tol));
}

void check_rmsnorm() {
  for (int d : {4096, 100}) {
    const int rows = 3;
    std::vector<float> x = rnd_vec(static_cast<size_t>(rows * d), 3.f), w = rnd_vec(static_cast<size_t>(d));
    Dev<float> dx(x), dw(w), dy(static_cast<size_t>(rows * d));
    const std::string name = "rmsnorm d=" + std::to_string(d);
    if (!ran(rs_cuda_rmsnorm(dy.p, dx.p, dw.p, rows, d, 1e-5f, nullptr), name.c_str())) continue;
    std::vector<float> y = dy.get(), ref(static_cast<size_t>(d));
    double worst = 0;
    for (int r = 0; r < rows; r++) {
      rs_ref_rmsnorm(ref.data(), x.data() + r * d, w.data(), d, 1e-5f);
      for (int i = 0; i < d; i++) worst = std::max(worst, std::fabs(y[r * d + i] - ref[i]) / (1.0 + std::fabs(ref[i])));
    }
    R.add(name, worst <= 1e-5, fmt("max error %.2e", worst));
  }
}

void check_rope() {
  const int n = 3, n_head = 8, n_head_kv = 2, hd = 64;
  std::vector<float> q = rnd_vec(static_cast<size_t>(n * n_head * hd)), k = rnd_vec(static_cast<size_t>(n * n_head_kv * hd));
  std::vector<int32_t> pos = {0, 7, 4000};
  Dev<float> dq(q), dk(k);
  Dev<int32_t> dp(pos);
  if (!ran(rs_cuda_rope(dq.p, dk.p, dp.p, n, n_head, n_head_kv, hd, 10000.f, nullptr), "rope")) return;
  std::vector<float> gq = dq.get(), gk = dk.get();
  double worst = 0;
  for (int j = 0; j < n; j++) {
    rs_ref_rope(q.data() + j * n_head * hd, n_head, hd, pos[j], 10000.f);
    rs_ref_rope(k.data() + j * n_head_kv * hd, n_head_kv, hd, pos[j], 10000.f);
  }
  for (size_t i = 0; i < q.size(); i++) worst = std::max(worst, static_cast<double>(std::fabs(gq[i] - q[i])));
  for (size_t i = 0; i < k.size(); i++) worst = std::max(worst, static_cast<double>(std::fabs(gk[i] - k[i])));
  R.add("rope (pairs 2i, 2i+1; positions 0, 7, 4000)", worst <= 1e-5, fmt("max error %.2e", worst));
}

// kv_store, then attention over it, against rs_ref_attention_gqa.
void check_attention(int n_head, int n_head_kv, int hd, std::vector<int32_t> lens) {
  const int n_seq = static_cast<int>(lens.size()), n_layer = 2, layer = 1;
  int n_ctx = 0;
  for (int l : lens) n_ctx = std::max(n_ctx, l);
  rs_cuda_kv kv{nullptr, nullptr, n_seq, n_ctx, n_head_kv, hd};
  const size_t cells = static_cast<size_t>(n_layer) * n_seq * n_head_kv * n_ctx * hd;
  Dev<uint16_t> K(cells), V(cells);
  kv.k = K.p;
  kv.v = V.p;
  // Every position of every sequence stored through kv_store, rows of all sequences at once.
  std::vector<int32_t> pos, seq;
  for (int s = 0; s < n_seq; s++)
    for (int t = 0; t < lens[s]; t++) {
      pos.push_back(t);
      seq.push_back(s);
    }
  const int rows = static_cast<int>(pos.size()), kvd = n_head_kv * hd;
  std::vector<float> k = rnd_vec(static_cast<size_t>(rows) * kvd), v = rnd_vec(static_cast<size_t>(rows) * kvd);
  Dev<float> dk(k), dv(v);
  Dev<int32_t> dpos(pos), dseq(seq);
  const std::string name = "kv_store+attention heads " + std::to_string(n_head) + "/" + std::to_string(n_head_kv) +
                           " hd " + std::to_string(hd) + " lengths " + std::to_string(lens.front()) + ".." + std::to_string(lens.back());
  if (!ran(rs_cuda_kv_store(kv, layer, dpos.p, dseq.p, rows, dk.p, dv.p, nullptr), name.c_str())) return;
  std::vector<uint16_t> hk = K.get(), hv = V.get();
  bool stored = true;
  for (int r = 0; r < rows && stored; r++)
    for (int c = 0; c < kvd; c++) {
      const size_t at = ((static_cast<size_t>(layer) * n_seq + seq[r]) * n_head_kv + c / hd) * n_ctx * hd +
                        static_cast<size_t>(pos[r]) * hd + c % hd;
      if (hk[at] != rs_fp32_to_fp16(k[r * kvd + c]) || hv[at] != rs_fp32_to_fp16(v[r * kvd + c])) stored = false;
    }
  R.add("kv_store (f16, round to nearest even, by-head layout)", stored, "");
  // One query row per sequence at its last position (decode), plus every position of the
  // first sequence (prefill).
  std::vector<int32_t> qpos, qseq;
  for (int s = 0; s < n_seq; s++) {
    qpos.push_back(lens[s] - 1);
    qseq.push_back(s);
  }
  for (int t = 0; t < lens[0]; t++) {
    qpos.push_back(t);
    qseq.push_back(0);
  }
  const int nq = static_cast<int>(qpos.size());
  std::vector<float> q = rnd_vec(static_cast<size_t>(nq) * n_head * hd);
  Dev<float> dq(q), dout(static_cast<size_t>(nq) * n_head * hd);
  Dev<int32_t> dqp(qpos), dqs(qseq);
  const int part_states = 64 * 16;
  Dev<float> part(static_cast<size_t>(part_states) * n_head * (hd + 2));
  if (!ran(rs_cuda_attention(kv, layer, dqp.p, dqs.p, nq, dq.p, n_head, part.p, part_states, dout.p, nullptr), name.c_str())) return;
  std::vector<float> out = dout.get(), ref(static_cast<size_t>(n_head / n_head_kv * hd)), scratch(static_cast<size_t>(n_head) * n_ctx);
  const int group = n_head / n_head_kv;
  double worst = 0;
  for (int j = 0; j < nq; j++)
    for (int h = 0; h < n_head_kv; h++) {
      const size_t head0 = ((static_cast<size_t>(layer) * n_seq + qseq[j]) * n_head_kv + h) * n_ctx * hd;
      rs_ref_attention_gqa(ref.data(), q.data() + (static_cast<size_t>(j) * n_head + h * group) * hd, group, hk.data() + head0,
                           hv.data() + head0, qpos[j] + 1, hd, static_cast<size_t>(hd), 1.0f / std::sqrt(static_cast<float>(hd)),
                           scratch.data());
      for (int i = 0; i < group * hd; i++)
        worst = std::max(worst, static_cast<double>(std::fabs(out[(static_cast<size_t>(j) * n_head + h * group) * hd + i] - ref[i])));
    }
  R.add(name, worst <= 2e-4, fmt("max error %.2e", worst));
}

// The hybrid FFN ops over a random layer: n_ff neurons, the first `n_hot` of a random
// choice on the device, blocks [gate | up | down] of `type`.
struct Layer {
  rs_type type;
  int64_t d, n_ff, n_hot;
  std::vector<int32_t> hot_ids, slot_of;
  Weights gate, up, down;  // all n_ff neurons (down as rows: neuron i's output)
  std::vector<uint8_t> blocks;
  size_t gb, ub, db;
};
Layer make_layer(rs_type type, int64_t d, int64_t n_ff, int64_t n_hot) {
  Layer L{type, d, n_ff, n_hot, {}, std::vector<int32_t>(static_cast<size_t>(n_ff), -1),
          make_weights(type, n_ff, d), make_weights(type, n_ff, d), make_weights(type, n_ff, d, 0.2f), {}, 0, 0, 0};
  std::vector<int32_t> all(static_cast<size_t>(n_ff));
  for (int64_t i = 0; i < n_ff; i++) all[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  for (int64_t i = n_ff - 1; i > 0; i--) {  // a random choice of hot neurons
    rnd();
    std::swap(all[static_cast<size_t>(i)], all[static_cast<size_t>((g_rng >> 11) % static_cast<uint64_t>(i + 1))]);
  }
  L.hot_ids.assign(all.begin(), all.begin() + n_hot);
  std::sort(L.hot_ids.begin(), L.hot_ids.end());
  for (int64_t s = 0; s < n_hot; s++) L.slot_of[static_cast<size_t>(L.hot_ids[static_cast<size_t>(s)])] = static_cast<int32_t>(s);
  L.gb = L.gate.stride;
  L.ub = L.up.stride;
  L.db = L.down.stride;
  const size_t block = L.gb + L.ub + L.db;
  L.blocks.resize(block * static_cast<size_t>(std::max<int64_t>(n_hot, 1)));
  for (int64_t s = 0; s < n_hot; s++) {
    const int32_t i = L.hot_ids[static_cast<size_t>(s)];
    std::memcpy(&L.blocks[s * block], &L.gate.bytes[i * L.gb], L.gb);
    std::memcpy(&L.blocks[s * block + L.gb], &L.up.bytes[i * L.ub], L.ub);
    std::memcpy(&L.blocks[s * block + L.gb + L.ub], &L.down.bytes[i * L.db], L.db);
  }
  return L;
}

float activate(int act, float g, float u) {
  if (g <= 0.f) return 0.f;
  if (act == 2) return u > 0.f ? g * u : 0.f;
  return g * u;
}

// Predictor select and the hot FFN on one layer, n rows. `thr`: the threshold; `zero`:
// neurons whose fc2 row is all zeros, so their score is exactly 0.
void check_ffn(const char *label, rs_type type, int64_t d, int64_t n_ff, int64_t n_hot, int n, float thr, int act) {
  Layer L = make_layer(type, d, n_ff, n_hot);
  const int64_t rank = 32;
  Weights fc1 = make_weights(RS_TYPE_F16, rank, d), fc2 = make_weights(RS_TYPE_F16, n_ff, rank);
  // Every 7th neuron's fc2 row is zero: its score is exactly 0 on both sides.
  for (int64_t i = 0; i < n_ff; i += 7) {
    std::memset(&fc2.bytes[i * fc2.stride], 0, fc2.stride);
    std::fill(fc2.deq.begin() + i * rank, fc2.deq.begin() + (i + 1) * rank, 0.f);
  }
  std::vector<float> resid = rnd_vec(static_cast<size_t>(n * d)), xn = rnd_vec(static_cast<size_t>(n * d));
  Dev<uint8_t> dblocks(L.blocks), dfc1(fc1.bytes), dfc2(fc2.bytes), actq(act_bytes(n, d));
  Dev<int32_t> dids(L.hot_ids.empty() ? std::vector<int32_t>{0} : L.hot_ids), dslot(L.slot_of);
  Dev<float> dresid(resid), dxn(xn), z1(static_cast<size_t>(n * rank)), gates(static_cast<size_t>(n * std::max<int64_t>(n_ff, 1)));
  Dev<uint64_t> nmask(static_cast<size_t>(n_ff)), hot_mask(static_cast<size_t>(n_ff));
  Dev<int32_t> hot_list(static_cast<size_t>(n_ff));
  Dev<int64_t> counts(8);
  std::vector<int32_t> cold_list(static_cast<size_t>(n_ff));
  std::vector<uint64_t> cold_mask(static_cast<size_t>(n_ff));
  int64_t *cold_count = nullptr;
  uint64_t *pairs = nullptr;
  cudaHostAlloc(reinterpret_cast<void **>(&cold_count), 64, cudaHostAllocMapped);
  cudaHostAlloc(reinterpret_cast<void **>(&pairs), 64, cudaHostAllocMapped);
  pairs[0] = pairs[1] = 0;
  Dev<int32_t> dcold(static_cast<size_t>(n_ff));
  Dev<uint64_t> dcoldm(static_cast<size_t>(n_ff));
  const size_t block = L.gb + L.ub + L.db;
  rs_cuda_neurons hot{{type, dblocks.p, n_hot, d, block}, {type, dblocks.p + L.gb, n_hot, d, block},
                      {type, dblocks.p + L.gb + L.ub, n_hot, d, block}, n_hot, n_ff, dids.p, dslot.p};
  const std::string name = std::string("ffn ") + label + " " + rs_type_get_traits(type)->name + " n_ff " +
                           std::to_string(n_ff) + " hot " + std::to_string(n_hot) + " rows " + std::to_string(n);
  if (!ran(rs_cuda_ffn_select_predictor(hot, rs_cuda_matrix{RS_TYPE_F16, dfc1.p, rank, d, fc1.stride},
                                        rs_cuda_matrix{RS_TYPE_F16, dfc2.p, n_ff, rank, fc2.stride}, thr, n, dresid.p, z1.p,
                                        nmask.p, hot_list.p, hot_mask.p, counts.p, dcold.p, dcoldm.p, cold_count, pairs, actq.p,
                                        nullptr),
           name.c_str()))
    return;
  // Reference masks: scores in double; a score within rounding of the threshold may go
  // either way (but an exact 0 against a threshold of 0 must count: >=).
  std::vector<uint64_t> want(static_cast<size_t>(n_ff), 0), unsure(static_cast<size_t>(n_ff), 0);
  for (int j = 0; j < n; j++) {
    std::vector<double> z(static_cast<size_t>(rank));
    for (int64_t r = 0; r < rank; r++) {
      double s = 0;
      for (int64_t c = 0; c < d; c++) s += static_cast<double>(fc1.deq[r * d + c]) * resid[j * d + c];
      z[static_cast<size_t>(r)] = s > 0 ? s : 0;
    }
    for (int64_t i = 0; i < n_ff; i++) {
      double s = 0, mag = 0;
      for (int64_t r = 0; r < rank; r++) {
        s += fc2.deq[i * rank + r] * z[static_cast<size_t>(r)];
        mag += std::fabs(fc2.deq[i * rank + r] * z[static_cast<size_t>(r)]);
      }
      if (s >= thr) want[static_cast<size_t>(i)] |= 1ull << j;
      // 16 rows and more take fc1 on the tensor cores in f16: a wider band of doubt.
      if (mag > 0 && std::fabs(s - thr) <= (n >= 16 ? 1e-2 : 1e-5) * mag) unsure[static_cast<size_t>(i)] |= 1ull << j;
    }
  }
  const std::vector<uint64_t> got = nmask.get();
  bool masks = true;
  for (int64_t i = 0; i < n_ff; i++)
    if ((got[static_cast<size_t>(i)] ^ want[static_cast<size_t>(i)]) & ~unsure[static_cast<size_t>(i)]) masks = false;
  // Lists: in neuron order, split by slot, with their masks; counts and pairs agree.
  const std::vector<int64_t> cnt = counts.get();
  const std::vector<int32_t> hl = hot_list.get(), cl = dcold.get();
  const std::vector<uint64_t> hm = hot_mask.get(), cm = dcoldm.get();
  bool lists = true;
  int64_t eh = 0, ec = 0;
  uint64_t ph = 0, pc = 0;
  for (int64_t i = 0; i < n_ff; i++) {
    const uint64_t m = got[static_cast<size_t>(i)];
    if (!m) continue;
    const int32_t s = L.slot_of[static_cast<size_t>(i)];
    if (s >= 0) {
      lists = lists && eh < cnt[0] && hl[static_cast<size_t>(eh)] == s && hm[static_cast<size_t>(eh)] == m;
      eh++;
      ph += static_cast<uint64_t>(__builtin_popcountll(m));
    } else {
      lists = lists && ec < *cold_count && cl[static_cast<size_t>(ec)] == i && cm[static_cast<size_t>(ec)] == m;
      ec++;
      pc += static_cast<uint64_t>(__builtin_popcountll(m));
    }
  }
  lists = lists && cnt[0] == eh && *cold_count == ec && pairs[0] == ph && pairs[1] == pc;
  R.add(name + ": predictor masks", masks, "");
  R.add(name + ": hot and cold lists in neuron order", lists,
        fmt("hot entries %.0f, cold entries %.0f", static_cast<double>(eh), static_cast<double>(ec)));

  // The hot half, twice (the same bits both times), against a double-precision sum.
  const int64_t part_floats = 64 * 28 * d;
  Dev<float> h(static_cast<size_t>(n_ff * n)), part(static_cast<size_t>(part_floats)), y1(static_cast<size_t>(n * d)),
      y2(static_cast<size_t>(n * d));
  if (!ran(rs_cuda_ffn_hot(hot, hot_list.p, hot_mask.p, counts.p, nullptr, act, n, dxn.p, h.p, part.p, part_floats, y1.p, actq.p,
                           nullptr),
           name.c_str()) ||
      !ran(rs_cuda_ffn_hot(hot, hot_list.p, hot_mask.p, counts.p, nullptr, act, n, dxn.p, h.p, part.p, part_floats, y2.p, actq.p,
                           nullptr),
           name.c_str()))
    return;
  const std::vector<float> g1 = y1.get(), g2 = y2.get();
  double worst = 0;
  for (int j = 0; j < n; j++) {
    std::vector<double> ref(static_cast<size_t>(d), 0.0), mag(static_cast<size_t>(d), 0.0);
    for (int64_t e = 0; e < eh; e++) {
      if (!((hm[static_cast<size_t>(e)] >> j) & 1)) continue;
      const int32_t i = L.hot_ids[static_cast<size_t>(hl[static_cast<size_t>(e)])];
      // h as the CPU computes it (xn quantised for quantised weights), then the down rows.
      const double g = cpu_dot(L.gate, i, xn.data() + j * d), u = cpu_dot(L.up, i, xn.data() + j * d);
      const double hv = activate(act, static_cast<float>(g), static_cast<float>(u));
      for (int64_t c = 0; c < d; c++) {
        ref[static_cast<size_t>(c)] += hv * L.down.deq[i * d + c];
        mag[static_cast<size_t>(c)] += std::fabs(hv * L.down.deq[i * d + c]);
      }
    }
    for (int64_t c = 0; c < d; c++)
      worst = std::max(worst, std::fabs(g1[j * d + c] - ref[static_cast<size_t>(c)]) / (mag[static_cast<size_t>(c)] + 1e-6));
  }
  R.add(name + ": hot FFN", worst <= 2e-6, fmt("max error %.2e of the sum of |terms|", worst));
  R.add(name + ": hot FFN twice, same bits", std::memcmp(g1.data(), g2.data(), g1.size() * 4) == 0, "");
  cudaFreeHost(cold_count);
  cudaFreeHost(pairs);
}

// Exact mode's select: the hot gates and the positive ones.
void check_select_exact(rs_type type, int64_t d, int64_t n_ff, int64_t n_hot, int n) {
  Layer L = make_layer(type, d, n_ff, n_hot);
  std::vector<float> xn = rnd_vec(static_cast<size_t>(n * d));
  const size_t block = L.gb + L.ub + L.db;
  Dev<uint8_t> dblocks(L.blocks), act(act_bytes(n, d));
  Dev<int32_t> dids(L.hot_ids.empty() ? std::vector<int32_t>{0} : L.hot_ids), dslot(L.slot_of);
  Dev<float> dxn(xn), gates(static_cast<size_t>(n * std::max<int64_t>(n_hot, 1)));
  Dev<uint64_t> nmask(static_cast<size_t>(n_ff)), hot_mask(static_cast<size_t>(n_ff));
  Dev<int32_t> hot_list(static_cast<size_t>(n_ff));
  Dev<int64_t> counts(8);
  uint64_t *pairs = nullptr;
  cudaHostAlloc(reinterpret_cast<void **>(&pairs), 64, cudaHostAllocMapped);
  pairs[0] = pairs[1] = 0;
  rs_cuda_neurons hot{{type, dblocks.p, n_hot, d, block}, {type, dblocks.p + L.gb, n_hot, d, block},
                      {type, dblocks.p + L.gb + L.ub, n_hot, d, block}, n_hot, n_ff, dids.p, dslot.p};
  const std::string name = std::string("ffn select exact ") + rs_type_get_traits(type)->name + " hot " + std::to_string(n_hot) +
                           " rows " + std::to_string(n);
  if (!ran(rs_cuda_ffn_select_exact(hot, n, dxn.p, gates.p, nmask.p, hot_list.p, hot_mask.p, counts.p, pairs, act.p, nullptr),
           name.c_str()))
    return;
  const std::vector<float> g = gates.get();
  const std::vector<int64_t> cnt = counts.get();
  const std::vector<int32_t> hl = hot_list.get();
  const std::vector<uint64_t> hm = hot_mask.get();
  bool ok = true;
  int64_t e = 0;
  for (int64_t s = 0; s < n_hot; s++) {
    uint64_t m = 0;
    for (int j = 0; j < n; j++)
      if (g[static_cast<size_t>(j * n_hot + s)] > 0.f) m |= 1ull << j;
    if (!m) continue;
    ok = ok && e < cnt[0] && hl[static_cast<size_t>(e)] == s && hm[static_cast<size_t>(e)] == m;
    e++;
  }
  ok = ok && cnt[0] == e;
  // The gates as the CPU computes them (x quantised for quantised weights).
  double worst = 0;
  for (int j = 0; j < n; j++)
    for (int64_t s = 0; s < n_hot; s++) {
      const int64_t i = L.hot_ids[static_cast<size_t>(s)];
      double mag = 0;
      for (int64_t c = 0; c < d; c++) mag += std::fabs(static_cast<double>(L.gate.deq[i * d + c]) * xn[j * d + c]);
      const double ref = cpu_dot(L.gate, i, xn.data() + j * d);
      worst = std::max(worst, std::fabs(g[static_cast<size_t>(j * n_hot + s)] - ref) / (mag + 1e-12));
    }
  R.add(name, ok && worst <= 2e-6, fmt("gate error %.2e, %.0f entries", worst, static_cast<double>(e)));
  cudaFreeHost(pairs);
}

void check_merge_add() {
  const int n = 3, d = 1000;
  std::vector<float> x = rnd_vec(n * d), h = rnd_vec(n * d), c = rnd_vec(n * d);
  Dev<float> dx(x), dh(h), dc(c), dx2(x);
  bool ok = ran(rs_cuda_ffn_merge(dx.p, dh.p, dc.p, n, d, nullptr), "ffn_merge") && ran(rs_cuda_add(dx2.p, dh.p, n * d, nullptr), "add");
  if (!ok) return;
  const std::vector<float> g = dx.get(), g2 = dx2.get();
  for (int i = 0; i < n * d; i++) {
    ok = ok && g[i] == x[i] + (h[i] + c[i]);
    ok = ok && g2[i] == x[i] + h[i];
  }
  R.add("ffn_merge x += (hot + cold), add x += y: exact", ok, "");
}

// The stream holds later work until the host raises a flag, then records the wait.
void check_flags() {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  uint64_t *mem = nullptr;
  cudaHostAlloc(reinterpret_cast<void **>(&mem), 64, cudaHostAllocMapped);
  std::memset(mem, 0, 64);
  uint64_t *host_flag = mem, *dev_flag = mem + 1, *wait_ns = mem + 2;
  uint32_t *abort = reinterpret_cast<uint32_t *>(mem + 3);
  Dev<float> buf(1);
  const float one = 1.f;
  // Behind the wait: a copy by kernel from host-visible memory that the host writes only
  // after enqueueing it (as the hybrid step does with the CPU's partial sums).
  float *staged = reinterpret_cast<float *>(mem + 4);
  *staged = -1.f;
  rs_cuda_wait(host_flag, nullptr, 5, abort, wait_ns, s);
  rs_cuda_copy(buf.p, staged, 4, s);
  rs_cuda_signal(dev_flag, nullptr, 9, s);
  *staged = one;
  // The stream must be held: give it time, and check it has not signalled.
  const uint64_t t0 = static_cast<uint64_t>(std::clock());
  while (static_cast<uint64_t>(std::clock()) - t0 < CLOCKS_PER_SEC / 20) {
  }
  const bool held = __atomic_load_n(dev_flag, __ATOMIC_ACQUIRE) == 0;
  __atomic_store_n(host_flag, 5, __ATOMIC_RELEASE);
  const cudaError_t e = cudaStreamSynchronize(s);
  const bool ok = held && e == cudaSuccess && __atomic_load_n(dev_flag, __ATOMIC_ACQUIRE) == 9 && *wait_ns > 0;
  R.add("wait holds the stream until the host's flag, signal raises the GPU's", ok,
        fmt("held %.0f, waited %.0f ns", held ? 1.0 : 0.0, static_cast<double>(*wait_ns)));
  R.add("a copy behind the wait reads the host's data as it is when the copy runs", buf.get()[0] == one, "");
  cudaFreeHost(mem);
  cudaStreamDestroy(s);
}

// A step recorded once as a CUDA graph and replayed: the flags' values come from *base
// as it is when each replay runs (a value frozen at capture would let the wait pass at
// once from the second step on, or never), and the copy behind the wait reads the host's
// data of that step.
void check_graph_replay() {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  uint64_t *mem = nullptr;
  cudaHostAlloc(reinterpret_cast<void **>(&mem), 64, cudaHostAllocMapped);
  std::memset(mem, 0, 64);
  uint64_t *host_flag = mem, *dev_flag = mem + 1, *wait_ns = mem + 2, *base = mem + 4;
  uint32_t *abort = reinterpret_cast<uint32_t *>(mem + 3);
  float *staged = reinterpret_cast<float *>(mem + 5);
  Dev<float> buf(1);
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool ok = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
  rs_cuda_wait(host_flag, base, 1, abort, wait_ns, s);
  rs_cuda_copy(buf.p, staged, 4, s);
  rs_cuda_signal(dev_flag, base, 2, s);
  ok = ok && cudaStreamEndCapture(s, &g) == cudaSuccess && cudaGraphInstantiate(&exec, g, 0) == cudaSuccess;
  std::string detail;
  for (int step = 0; ok && step < 3; step++) {
    const uint64_t b = 10 * static_cast<uint64_t>(step + 1);
    *base = b;
    *staged = static_cast<float>(step);
    ok = cudaGraphLaunch(exec, s) == cudaSuccess;
    const uint64_t t0 = static_cast<uint64_t>(std::clock());
    while (static_cast<uint64_t>(std::clock()) - t0 < CLOCKS_PER_SEC / 50) {
    }
    const bool held = __atomic_load_n(dev_flag, __ATOMIC_ACQUIRE) < b + 2;
    __atomic_store_n(host_flag, b + 1, __ATOMIC_RELEASE);
    ok = ok && cudaStreamSynchronize(s) == cudaSuccess;
    const uint64_t raised = __atomic_load_n(dev_flag, __ATOMIC_ACQUIRE);
    const float got = buf.get()[0];
    ok = ok && held && raised == b + 2 && got == static_cast<float>(step);
    detail += "step " + std::to_string(step) + fmt(": held %.0f, flag %.0f, copied %.0f; ", held ? 1.0 : 0.0,
                                                   static_cast<double>(raised), static_cast<double>(got));
  }
  R.add("a recorded step (graph) replays its waits and signals from the base of each step", ok, detail);
  if (exec) cudaGraphExecDestroy(exec);
  if (g) cudaGraphDestroy(g);
  cudaFreeHost(mem);
  cudaStreamDestroy(s);
}

// Speeds for the report: the read bandwidth (the limit), the tensor cores on a prompt-sized
// product, and the hot FFN's bytes per second at a Bamboo-7B layer shape.
std::string g_perf;
double time_ms(const std::function<int()> &f, int reps) {
  cudaEvent_t a, b;
  cudaEventCreateWithFlags(&a, 0);
  cudaEventCreateWithFlags(&b, 0);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    cudaEventRecord(a, nullptr);
    if (f() != 0) break;
    cudaEventRecord(b, nullptr);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    best = std::min(best, static_cast<double>(ms));
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return best;
}

void perf() {
  double gbs = 0;
  if (rs_cuda_read_bandwidth(size_t(2) << 30, 10, &gbs) != 0) {
    R.add("read bandwidth", false, "CUDA error");
    return;
  }
  std::printf("perf read bandwidth: %.0f GB/s\n", gbs);
  char buf[512];
  std::snprintf(buf, sizeof buf, "\"read_gb_per_s\":%.1f", gbs);
  g_perf = buf;
  // Prompt-sized products on the tensor cores: 512 rows x 4096 x 4096 (F16 and Q4_0 weights).
  for (rs_type t : {RS_TYPE_F16, RS_TYPE_Q4_0}) {
    const int64_t rows = 4096, cols = 4096;
    const int n = 512;
    std::vector<uint8_t> w(rs_row_size(t, cols) * rows);
    std::vector<float> src(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; r++) {
      for (float &v : src) v = rnd();
      rs_quantize_row(t, src.data(), w.data() + r * rs_row_size(t, cols), cols);
    }
    Dev<uint8_t> dw(w);
    Dev<float> dx(rnd_vec(static_cast<size_t>(n) * cols)), dy(static_cast<size_t>(n) * rows);
    Dev<uint8_t> act(act_bytes(n, cols));
    const rs_cuda_matrix m{t, dw.p, rows, cols, rs_row_size(t, cols)};
    const double ms = time_ms([&] { return rs_cuda_matmul(m, dx.p, n, dy.p, act.p, nullptr); }, 10);
    const double tflops = 2.0 * n * rows * cols / (ms * 1e9);
    std::printf("perf matmul %s 512x4096x4096: %.3f ms, %.1f TFLOP/s\n", rs_type_get_traits(t)->name, ms, tflops);
    std::snprintf(buf, sizeof buf, ",\"matmul_%s_512x4096x4096_tflops\":%.2f", rs_type_get_traits(t)->name, tflops);
    g_perf += buf;
    // Decode: one row, the weight read once: bytes/s.
    const double ms1 = time_ms([&] { return rs_cuda_matmul(m, dx.p, 1, dy.p, act.p, nullptr); }, 20);
    const double gb1 = static_cast<double>(w.size()) / (ms1 * 1e6);
    std::printf("perf matvec %s 4096x4096: %.3f ms, %.0f GB/s (%.0f%% of the read bandwidth)\n", rs_type_get_traits(t)->name,
                ms1, gb1, 100 * gb1 / gbs);
    std::snprintf(buf, sizeof buf, ",\"matvec_%s_4096x4096_gb_per_s\":%.1f", rs_type_get_traits(t)->name, gb1);
    g_perf += buf;
  }
  // The hot FFN at Bamboo-7B's layer shape (n_embd 4096, n_ff 14336, Q4_0), every neuron
  // hot, 12% of them active for one row: bytes of the active blocks read per second.
  {
    const int64_t d = 4096, n_ff = 14336;
    const size_t rb = rs_row_size(RS_TYPE_Q4_0, d), block = 3 * rb;
    std::vector<uint8_t> blocks(block * static_cast<size_t>(n_ff));
    std::vector<float> src(static_cast<size_t>(d));
    for (int64_t i = 0; i < n_ff * 3; i++) {
      for (float &v : src) v = rnd() * 0.1f;
      rs_quantize_row(RS_TYPE_Q4_0, src.data(), blocks.data() + static_cast<size_t>(i) * rb, d);
    }
    std::vector<int32_t> ids(static_cast<size_t>(n_ff)), list;
    std::vector<uint64_t> masks;
    for (int64_t i = 0; i < n_ff; i++) {
      ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
      if ((g_rng >> 20) % 100 < 12) {
        list.push_back(static_cast<int32_t>(i));
        masks.push_back(1);
      }
      rnd();
    }
    std::vector<int64_t> counts = {static_cast<int64_t>(list.size()), 0, 0, 0, 0, 0, 0, 0};
    Dev<uint8_t> db(blocks);
    Dev<int32_t> dids(ids), dlist(list);
    Dev<uint64_t> dmask(masks);
    Dev<int64_t> dcounts(counts);
    Dev<float> xn(rnd_vec(static_cast<size_t>(d))), h(static_cast<size_t>(n_ff)), y(static_cast<size_t>(d));
    const int64_t part_floats = 64 * 28 * d;
    Dev<float> part(static_cast<size_t>(part_floats));
    Dev<uint8_t> actq(act_bytes(1, d));
    const rs_cuda_neurons hot{{RS_TYPE_Q4_0, db.p, n_ff, d, block}, {RS_TYPE_Q4_0, db.p + rb, n_ff, d, block},
                              {RS_TYPE_Q4_0, db.p + 2 * rb, n_ff, d, block}, n_ff, n_ff, dids.p, dids.p};
    const double ms = time_ms([&] {
      return rs_cuda_ffn_hot(hot, dlist.p, dmask.p, dcounts.p, nullptr, 2, 1, xn.p, h.p, part.p, part_floats, y.p, actq.p, nullptr);
    }, 20);
    const double gb = static_cast<double>(list.size() * block) / (ms * 1e6);
    std::printf("perf hot FFN 7b layer, %zu of %lld active: %.3f ms, %.0f GB/s of active blocks (%.0f%% of the read bandwidth)\n",
                list.size(), static_cast<long long>(n_ff), ms, gb, 100 * gb / gbs);
    std::snprintf(buf, sizeof buf, ",\"hot_ffn_7b_layer_ms\":%.4f,\"hot_ffn_7b_layer_gb_per_s\":%.1f", ms, gb);
    g_perf += buf;
  }
}

}  // namespace

int main(int argc, char **argv) {
  std::string json_path;
  bool quick = false;
  for (int i = 1; i < argc; i++) {
    if (std::string(argv[i]) == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (std::string(argv[i]) == "--quick") quick = true;  // fewer and smaller cases (the CPU emulator)
  }
  const int n_dev = rs_cuda_device_count();
  if (n_dev == 0) {
    std::printf("no CUDA device\n");
    return 2;
  }
  char name[256] = "";
  size_t mem = 0;
  rs_cuda_device_info(0, name, sizeof name, &mem);
  std::printf("device 0: %s, %.1f GiB\n", name, mem / 1073741824.0);
  try {
    check_rmsnorm();
    check_rope();
    check_merge_add();
    check_flags();
    check_graph_replay();
    const rs_type types[] = {RS_TYPE_F32, RS_TYPE_F16, RS_TYPE_BF16, RS_TYPE_Q8_0, RS_TYPE_Q4_0, RS_TYPE_Q4_K, RS_TYPE_Q5_K, RS_TYPE_Q6_K};
    for (rs_type t : types) {
      const int64_t cols = rs_type_get_traits(t)->block_size >= 256 ? 512 : 96;
      for (int n : {1, 3, 9, 70}) {
        if (quick && n == 70 && t != RS_TYPE_Q4_0 && t != RS_TYPE_F16) continue;
        check_matmul(t, quick ? 37 : 100, cols, n);
      }
    }
    if (!quick) check_matmul(RS_TYPE_Q4_0, 4096, 4096, 1);
    check_attention(8, 2, 64, {1, 5, 40});
    check_attention(4, 4, 16, {3, 17});
    check_attention(8, 4, 32, {4, 9});
    if (!quick) check_attention(32, 8, 128, {1000, 1, 300});
    // The hybrid FFN: no active neuron, all active, a hot count off every block size, one
    // row and 64, scores exactly at the threshold (0), dReLU and ReLU-gated.
    check_ffn("none active", RS_TYPE_Q4_0, 64, 300, 37, 1, 1e30f, 1);
    check_ffn("all active", RS_TYPE_Q4_0, 64, 300, 300, 3, -1e30f, 1);
    check_ffn("threshold 0", RS_TYPE_Q4_0, 64, 300, 37, 1, 0.f, 2);
    check_ffn("threshold 0", RS_TYPE_F16, 64, 513, 129, 5, 0.f, 1);
    check_ffn("no hot neuron", RS_TYPE_Q8_0, 64, 200, 0, 2, 0.f, 1);
    if (!quick) check_ffn("64 rows", RS_TYPE_Q4_0, 256, 2048, 777, 64, 0.f, 2);
    check_select_exact(RS_TYPE_Q4_0, 64, 300, 37, 1);
    check_select_exact(RS_TYPE_F16, 64, 300, 300, 9);
    check_select_exact(RS_TYPE_F32, 32, 100, 0, 2);
    if (!quick) perf();
  } catch (const std::exception &e) {
    R.add("setup", false, e.what());
  }
  std::printf("%d checks, %d failed: %s\n", R.checks, R.fails, R.fails ? "FAILED" : "every CUDA op matches the CPU reference");
  if (!json_path.empty()) {
    if (FILE *f = std::fopen(json_path.c_str(), "w")) {
      std::fprintf(f, "{\"device\":\"%s\",\"checks\":%d,\"fails\":%d,\"perf\":{%s},\"results\":[\n%s\n]}\n", name, R.checks,
                   R.fails, g_perf.c_str(), R.json.c_str());
      std::fclose(f);
    }
  }
  return R.fails ? 1 : 0;
}

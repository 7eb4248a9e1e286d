#include "predictor_train.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "thread_pool.h"

namespace rs {

namespace {

// Slices per batch: fixed, so the summation order (and the result) does not depend on
// how many threads run them.
constexpr int kSlices = 8;

// splitmix64: a small, portable generator, so the same seed gives the same weights on
// every machine and compiler (std::normal_distribution does not promise that).
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  double normal() { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); }
};

// Eight partial sums: the compiler keeps them in one vector register.
inline float dot(const float *a, const float *b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
  float s = 0;
  for (; i < n; i++) s += a[i] * b[i];
  return s + ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

inline void axpy(float *y, float a, const float *x, int n) {
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

inline double softplus(double v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); }

struct Adam {
  std::vector<float> m, v;
  explicit Adam(size_t n) : m(n, 0.f), v(n, 0.f) {}
};

}  // namespace

PredictorWeights train_predictor(const PredictorSamples &data, const PredictorTrainOptions &opt) {
  const int d = data.n_embd, F = data.n_ff, R = opt.rank;
  if (d <= 0 || F <= 0 || R <= 0) throw std::invalid_argument("predictor training needs n_embd, n_ff and rank > 0");
  if (data.rows < 2) throw std::invalid_argument("predictor training needs at least 2 rows");
  if (opt.epochs <= 0 || opt.batch <= 0 || !(opt.lr > 0)) throw std::invalid_argument("epochs, batch and lr must be > 0");
  const size_t mb = (static_cast<size_t>(F) + 7) / 8;
  ThreadPool pool(opt.threads > 0 ? opt.threads : default_thread_count());

  PredictorWeights w;
  w.rank = R;
  w.n_embd = d;
  w.n_ff = F;
  w.fc1.resize(static_cast<size_t>(R) * d);
  w.fc2.resize(static_cast<size_t>(F) * R);
  // Inputs scaled per dimension to unit RMS while training (a residual stream has a few
  // dimensions far larger than the rest, which would otherwise dominate the first steps);
  // the scale is folded into fc1 at the end. Scaling only, no centring: centring would
  // need a bias, which the predictor does not have.
  std::vector<double> ss(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < data.rows; r++)
    for (int j = 0; j < d; j++) {
      const double v = data.x[static_cast<size_t>(r) * d + j];
      ss[static_cast<size_t>(j)] += v * v;
    }
  std::vector<float> inv(static_cast<size_t>(d));
  for (int j = 0; j < d; j++) {
    const double rms = std::sqrt(ss[static_cast<size_t>(j)] / static_cast<double>(data.rows));
    inv[static_cast<size_t>(j)] = rms > 1e-12 ? static_cast<float>(1.0 / rms) : 0.f;
  }
  std::vector<float> xs(static_cast<size_t>(data.rows) * d);
  for (int64_t r = 0; r < data.rows; r++)
    for (int j = 0; j < d; j++)
      xs[static_cast<size_t>(r) * d + j] = data.x[static_cast<size_t>(r) * d + j] * inv[static_cast<size_t>(j)];
  Rng rng{opt.seed};
  for (float &v : w.fc1) v = static_cast<float>(rng.normal() / std::sqrt(static_cast<double>(d)));
  for (float &v : w.fc2) v = static_cast<float>(rng.normal() / std::sqrt(static_cast<double>(R)));

  const size_t n1 = w.fc1.size(), n2 = w.fc2.size();
  std::vector<std::vector<float>> g1(kSlices, std::vector<float>(n1)), g2(kSlices, std::vector<float>(n2));
  std::vector<double> loss_part(kSlices);
  // Per slice scratch: hidden pre-activations, their gradient.
  std::vector<std::vector<float>> z(kSlices, std::vector<float>(R)), dz(kSlices, std::vector<float>(R));
  Adam a1(n1), a2(n2);
  std::vector<int64_t> order(static_cast<size_t>(data.rows));
  for (int64_t i = 0; i < data.rows; i++) order[static_cast<size_t>(i)] = i;

  const int64_t steps_per_epoch = (data.rows + opt.batch - 1) / opt.batch;
  const int64_t total_steps = steps_per_epoch * opt.epochs;
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  int64_t step = 0;
  for (int ep = 0; ep < opt.epochs; ep++) {
    for (int64_t i = data.rows - 1; i > 0; i--)  // Fisher-Yates with our generator
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.next() % static_cast<uint64_t>(i + 1))]);
    double ep_loss = 0;
    for (int64_t b0 = 0; b0 < data.rows; b0 += opt.batch) {
      const int64_t b1r = std::min<int64_t>(data.rows, b0 + opt.batch);
      const int64_t B = b1r - b0;
      const float inv = 1.f / static_cast<float>(B * F);
      pool.run(kSlices, [&](int s, int) {
        std::fill(g1[s].begin(), g1[s].end(), 0.f);
        std::fill(g2[s].begin(), g2[s].end(), 0.f);
        double loss = 0;
        float *zs = z[s].data(), *dzs = dz[s].data();
        for (int64_t r = b0 + s; r < b1r; r += kSlices) {
          const int64_t row = order[static_cast<size_t>(r)];
          const float *x = xs.data() + static_cast<size_t>(row) * d;
          const uint8_t *m = data.mask + static_cast<size_t>(row) * mb;
          for (int k = 0; k < R; k++) {
            zs[k] = std::max(0.f, dot(w.fc1.data() + static_cast<size_t>(k) * d, x, d));
            dzs[k] = 0.f;
          }
          for (int i = 0; i < F; i++) {
            const float *f2 = w.fc2.data() + static_cast<size_t>(i) * R;
            const float logit = dot(zs, f2, R) - opt.margin;
            const bool y = (m[i >> 3] >> (i & 7)) & 1;
            const float wt = y ? opt.pos_weight : 1.f;
            loss += wt * softplus(y ? -logit : logit);
            const float p = 1.f / (1.f + std::exp(-logit));
            const float g = wt * (p - (y ? 1.f : 0.f)) * inv;
            axpy(g2[s].data() + static_cast<size_t>(i) * R, g, zs, R);
            axpy(dzs, g, f2, R);
          }
          for (int k = 0; k < R; k++)
            if (zs[k] > 0.f && dzs[k] != 0.f) axpy(g1[s].data() + static_cast<size_t>(k) * d, dzs[k], x, d);
        }
        loss_part[s] = loss;
      });
      for (int s = 0; s < kSlices; s++) ep_loss += loss_part[s];
      step++;
      // Linear decay to a tenth of the rate over the run.
      const float lr = opt.lr * (1.f - 0.9f * static_cast<float>(step - 1) / static_cast<float>(total_steps));
      const float c1 = 1.f - std::pow(b1, static_cast<float>(step)), c2 = 1.f - std::pow(b2, static_cast<float>(step));
      auto update = [&](std::vector<float> &p, std::vector<std::vector<float>> &g, Adam &a, size_t lo, size_t hi) {
        for (size_t k = lo; k < hi; k++) {
          float gk = 0;
          for (int s = 0; s < kSlices; s++) gk += g[s][k];
          a.m[k] = b1 * a.m[k] + (1 - b1) * gk;
          a.v[k] = b2 * a.v[k] + (1 - b2) * gk * gk;
          p[k] -= lr * (a.m[k] / c1) / (std::sqrt(a.v[k] / c2) + eps);
        }
      };
      const int chunks = 16;
      pool.run(2 * chunks, [&](int t, int) {
        const bool first = t < chunks;
        const size_t n = first ? n1 : n2, c = first ? t : t - chunks;
        const size_t lo = n * c / chunks, hi = n * (c + 1) / chunks;
        if (first) update(w.fc1, g1, a1, lo, hi);
        else update(w.fc2, g2, a2, lo, hi);
      });
    }
    w.epoch_loss.push_back(ep_loss / static_cast<double>(data.rows * F));
  }
  for (int k = 0; k < R; k++)
    for (int j = 0; j < d; j++) w.fc1[static_cast<size_t>(k) * d + j] *= inv[static_cast<size_t>(j)];
  return w;
}

void predictor_logits(const PredictorWeights &w, const float *x, int64_t rows, float *out, int threads) {
  const int d = w.n_embd, F = w.n_ff, R = w.rank;
  ThreadPool pool(threads > 0 ? threads : default_thread_count());
  const int64_t per = 16;
  const int tasks = static_cast<int>((rows + per - 1) / per);
  std::vector<std::vector<float>> h(static_cast<size_t>(pool.size()), std::vector<float>(R));
  pool.run(tasks, [&](int t, int th) {
    float *hs = h[static_cast<size_t>(th)].data();
    for (int64_t r = t * per; r < std::min(rows, (t + 1) * per); r++) {
      const float *xr = x + static_cast<size_t>(r) * d;
      for (int k = 0; k < R; k++) hs[k] = std::max(0.f, dot(w.fc1.data() + static_cast<size_t>(k) * d, xr, d));
      for (int i = 0; i < F; i++) out[static_cast<size_t>(r) * F + i] = dot(hs, w.fc2.data() + static_cast<size_t>(i) * R, R);
    }
  });
}

}  // namespace rs

// N-API benchmarks of the CPU kernels: memory read rate, vec_dot streaming, gemm
// throughput and the decode-batch cost (benchBatch). One thread, synchronous; for
// tools and opt-in tests, not the server. Typed in server/engine/native-kernels.ts.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "napi_kernel_args.h"
#include "rs_kernels.h"

namespace {

using namespace rs_napi_kernels;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// streamRead(buffer, isa?, pattern?) -> { checksum: bigint, gbPerS }
Value StreamRead(const CallbackInfo &info) {
  need_args(info, 1, "streamRead(buffer, isa?, pattern?)");
  Bytes b = bytes_arg(info, 0, "buffer");
  const int isa = info.Length() > 1 && !info[1].IsUndefined() ? isa_arg(info, 1, false) : static_cast<int>(RS_ISA_BEST);
  const auto pattern = static_cast<rs_read_pattern>(
      info.Length() > 2 ? int_arg(info, 2, "pattern", 0, RS_READ_PATTERN_COUNT - 1) : RS_READ_PLAIN);
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t sum = fk_of(isa)->stream_read(b.data, b.size, pattern);
  const double s = seconds_since(t0);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("checksum", Napi::BigInt::New(info.Env(), sum));
  o.Set("gbPerS", s > 0 ? static_cast<double>(b.size) / s / 1e9 : 0.0);
  return o;
}

constexpr size_t kMinBenchBytes = size_t(48) << 20; // past the 32 MiB L3, so DRAM is measured

// A weight matrix of `rows` rows made by quantising random rows (content does not
// change the speed; the size does).
std::vector<uint8_t> bench_matrix(Env env, rs_type type, int64_t rows, int64_t n, size_t min_bytes) {
  const size_t rs = rs_row_size(type, n);
  const size_t bytes = rs * static_cast<size_t>(rows);
  if (bytes < min_bytes)
    fail(env, "benchmark matrix is " + std::to_string(bytes >> 20) + " MiB; use rows * rowSize >= " +
                  std::to_string(min_bytes >> 20) + " MiB so it measures memory, not cache");
  if (bytes > (size_t(4) << 30)) fail(env, "benchmark matrix over 4 GiB");
  std::vector<uint8_t> m(bytes);
  std::vector<float> x(static_cast<size_t>(n));
  uint32_t s = 12345;
  const int64_t distinct = std::min<int64_t>(rows, 16);
  for (int64_t r = 0; r < distinct; r++) {
    for (auto &v : x) {
      s = s * 1664525u + 1013904223u;
      v = static_cast<float>(static_cast<int32_t>(s >> 8) - (1 << 23)) / (1 << 23);
    }
    rs_quantize_row(type, x.data(), m.data() + r * rs, n);
  }
  for (int64_t r = distinct; r < rows; r++) std::memcpy(m.data() + r * rs, m.data() + (r % distinct) * rs, rs);
  return m;
}

// benchVecDot(type, isa, rows, n, iters) -> { gbPerS, gflops, bytes, seconds } (best pass)
Value BenchVecDot(const CallbackInfo &info) {
  need_args(info, 5, "benchVecDot(type, isa, rows, n, iters)");
  const rs_type_traits *t = weight_type(info, 0);
  const int isa = isa_arg(info, 1, false);
  const int64_t rows = int_arg(info, 2, "rows", 1, 1 << 26);
  const int64_t n = int_arg(info, 3, "n", 1, 1 << 24);
  const int iters = static_cast<int>(int_arg(info, 4, "iters", 1, 1000));
  check_n(info.Env(), t, n);
  const rs_type type = type_id(t);
  std::vector<uint8_t> m = bench_matrix(info.Env(), type, rows, n, kMinBenchBytes);
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(type, static_cast<rs_isa>(isa));
  std::vector<float> x(static_cast<size_t>(n), 0.5f);
  Activations a = convert_rows(type, t, isa, x.data(), n, 1);
  const size_t rs = rs_row_size(type, n);
  std::vector<float> y(static_cast<size_t>(rows));
  double best = 1e30;
  for (int it = 0; it < iters; it++) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < rows; r++) k->vec_dot(n, &y[r], m.data() + r * rs, a.data.data());
    best = std::min(best, seconds_since(t0));
  }
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("bytes", static_cast<double>(m.size()));
  o.Set("seconds", best);
  o.Set("gbPerS", static_cast<double>(m.size()) / best / 1e9);
  o.Set("gflops", 2.0 * static_cast<double>(rows) * static_cast<double>(n) / best / 1e9);
  return o;
}

// benchGemm(type, isa, rows, n, nc, iters) -> { gflops, seconds } (best pass); the
// matrix may be any size (prompt processing is compute-bound by design).
Value BenchGemm(const CallbackInfo &info) {
  need_args(info, 6, "benchGemm(type, isa, rows, n, nc, iters)");
  const rs_type_traits *t = weight_type(info, 0);
  const int isa = isa_arg(info, 1, false);
  const int64_t rows = int_arg(info, 2, "rows", 1, 1 << 20);
  const int64_t n = int_arg(info, 3, "n", 1, 1 << 20);
  const int64_t nc = int_arg(info, 4, "nc", 1, 4096);
  const int iters = static_cast<int>(int_arg(info, 5, "iters", 1, 1000));
  check_n(info.Env(), t, n);
  const rs_type type = type_id(t);
  std::vector<uint8_t> m = bench_matrix(info.Env(), type, rows, n, 0);
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(type, static_cast<rs_isa>(isa));
  std::vector<float> x(static_cast<size_t>(n * nc));
  for (size_t i = 0; i < x.size(); i++) x[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
  Activations a = convert_rows(type, t, isa, x.data(), n, nc);
  const size_t rs = rs_row_size(type, n);
  std::vector<float> y(static_cast<size_t>(rows * nc));
  double best = 1e30;
  for (int it = 0; it < iters; it++) {
    const auto t0 = std::chrono::steady_clock::now();
    // the engine's shape: a slice of 64 weight rows against all nc activation rows
    for (int64_t r0 = 0; r0 < rows; r0 += 64)
      k->gemm(n, static_cast<int>(std::min<int64_t>(64, rows - r0)), static_cast<int>(nc), m.data() + r0 * rs, rs,
              a.data.data(), a.stride, y.data() + r0, static_cast<size_t>(rows));
    best = std::min(best, seconds_since(t0));
  }
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("seconds", best);
  o.Set("gflops", 2.0 * static_cast<double>(rows) * static_cast<double>(n) * static_cast<double>(nc) / best / 1e9);
  return o;
}

// benchBatch(type, isa, rows, n, ncs, iters) -> { bytes, vecDotSeconds, gemmSeconds[] }
// The decode-batch question: what does one weight matrix cost against nc activation
// rows, next to vec_dot over it for one? One thread; the engine's call shape (gemm on
// 32-row chunks, addon/src/backend_cpu.cpp); a matrix past the L3 so weights come from
// memory. Each pass runs vec_dot once, then gemm at every nc, and each figure is the
// best over `iters` passes: interleaving keeps a noisy neighbour from favouring one.
Value BenchBatch(const CallbackInfo &info) {
  need_args(info, 6, "benchBatch(type, isa, rows, n, ncs, iters)");
  const rs_type_traits *t = weight_type(info, 0);
  const int isa = isa_arg(info, 1, false);
  const int64_t rows = int_arg(info, 2, "rows", 1, 1 << 26);
  const int64_t n = int_arg(info, 3, "n", 1, 1 << 24);
  if (!info[4].IsArray()) fail(info.Env(), "ncs must be an array of activation row counts");
  Napi::Array arr = info[4].As<Napi::Array>();
  if (arr.Length() == 0 || arr.Length() > 64) fail(info.Env(), "ncs must have 1 .. 64 entries");
  std::vector<int> ncs;
  int64_t max_nc = 1;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsNumber()) fail(info.Env(), "ncs[" + std::to_string(i) + "] must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 1 && d <= 1024) || d != static_cast<double>(static_cast<int>(d)))
      fail(info.Env(), "ncs[" + std::to_string(i) + "] must be an integer in [1, 1024]");
    ncs.push_back(static_cast<int>(d));
    max_nc = std::max<int64_t>(max_nc, ncs.back());
  }
  const int iters = static_cast<int>(int_arg(info, 5, "iters", 1, 1000));
  check_n(info.Env(), t, n);
  const rs_type type = type_id(t);
  std::vector<uint8_t> m = bench_matrix(info.Env(), type, rows, n, kMinBenchBytes);
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(type, static_cast<rs_isa>(isa));
  std::vector<float> x(static_cast<size_t>(n * max_nc));
  for (size_t i = 0; i < x.size(); i++) x[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
  Activations a = convert_rows(type, t, isa, x.data(), n, max_nc);
  const size_t rs = rs_row_size(type, n);
  std::vector<float> y(static_cast<size_t>(rows * max_nc));
  double best_dot = 1e30;
  std::vector<double> best(ncs.size(), 1e30);
  for (int it = 0; it < iters; it++) {
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < rows; r++) k->vec_dot(n, &y[r], m.data() + r * rs, a.data.data());
    best_dot = std::min(best_dot, seconds_since(t0));
    for (size_t i = 0; i < ncs.size(); i++) {
      t0 = std::chrono::steady_clock::now();
      for (int64_t r0 = 0; r0 < rows; r0 += 32)
        k->gemm(n, static_cast<int>(std::min<int64_t>(32, rows - r0)), ncs[i], m.data() + r0 * rs, rs, a.data.data(),
                a.stride, y.data() + r0, static_cast<size_t>(rows));
      best[i] = std::min(best[i], seconds_since(t0));
    }
  }
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("bytes", static_cast<double>(m.size()));
  o.Set("vecDotSeconds", best_dot);
  Napi::Array g = Napi::Array::New(info.Env(), ncs.size());
  for (size_t i = 0; i < ncs.size(); i++) g.Set(static_cast<uint32_t>(i), best[i]);
  o.Set("gemmSeconds", g);
  return o;
}

}  // namespace

// Adds the benchmark functions to the `kernels` object (called by CreateKernelBindings).
void AddKernelBenchBindings(Napi::Env env, Napi::Object o) {
#define add(name, fn) o.Set(name, Napi::Function::New(env, Guard<fn>, name))
  add("streamRead", StreamRead);
  add("benchVecDot", BenchVecDot);
  add("benchGemm", BenchGemm);
  add("benchBatch", BenchBatch);
#undef add
}

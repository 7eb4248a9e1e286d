// N-API bindings of the CPU kernels, for tests and the model writer (tools/make-model
// quantises through quantize()): types, quantisation, matmul and float kernels. The
// benchmarks are in napi_kernel_bench.cc, the argument checks in napi_kernel_args.h.
// All calls are synchronous: they are used by tests and tools, not by the server.
#include "napi_kernels.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "napi_kernel_args.h"
#include "rs_kernels.h"

// Defined in napi_kernel_bench.cc. Weak, so that an addon linked without that file
// (a build list that has not caught up with it) still loads, just without the
// benchmark functions, instead of failing on an undefined symbol.
void AddKernelBenchBindings(Napi::Env env, Napi::Object o) __attribute__((weak));

namespace {

using namespace rs_napi_kernels;

// ---------- types ----------

Value TypeTraits(const CallbackInfo &info) {
  need_args(info, 1, "typeTraits(type)");
  const rs_type_traits *t = rs_type_get_traits(static_cast<int>(int_arg(info, 0, "type", -1000000, 1000000)));
  if (t->name == nullptr) return info.Env().Null();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("name", t->name);
  o.Set("blockSize", t->block_size);
  o.Set("typeSize", static_cast<double>(t->type_size));
  o.Set("vecDotType", static_cast<int>(t->vec_dot_type));
  o.Set("supported", t->supported != 0);
  return o;
}

Value RowSize(const CallbackInfo &info) {
  need_args(info, 2, "rowSize(type, n)");
  const rs_type_traits *t = traits_of(info.Env(), int_arg(info, 0, "type", 0, 1000));
  const int64_t n = int_arg(info, 1, "n", 0, int64_t(1) << 50);
  if (n % t->block_size != 0) check_n(info.Env(), t, n);
  return Napi::Number::New(info.Env(), static_cast<double>(rs_row_size(type_id(t), n)));
}

Value BestIsa(const CallbackInfo &info) { return Napi::String::New(info.Env(), rs_isa_name(rs_cpu_best_isa())); }

Value AvailableIsas(const CallbackInfo &info) {
  Napi::Array a = Napi::Array::New(info.Env());
  for (int i = 0; i <= static_cast<int>(rs_cpu_best_isa()); i++) a.Set(i, rs_isa_name(static_cast<rs_isa>(i)));
  return a;
}

// ---------- quantisation ----------

// Blocks are independent, so a long input is cut at block boundaries and quantised on
// a few threads (make-model writes 7B-shaped files through this).
void quantize_parallel(rs_type type, const rs_type_traits *t, const float *src, uint8_t *dst, int64_t n) {
  const int64_t nblocks = n / t->block_size;
  unsigned hw = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  const int64_t per = std::max<int64_t>(1, (nblocks + hw - 1) / hw);
  if (n < (1 << 20) || hw == 1) {
    rs_quantize_row(type, src, dst, n);
    return;
  }
  std::vector<std::thread> threads;
  int64_t done = 0; // blocks handed to threads; the rest is done here if a thread cannot start
  try {
    for (int64_t b0 = 0; b0 < nblocks; b0 += per) {
      const int64_t nb = std::min(per, nblocks - b0);
      threads.emplace_back([=] {
        rs_quantize_row(type, src + b0 * t->block_size, dst + b0 * t->type_size, nb * t->block_size);
      });
      done = b0 + nb;
    }
  } catch (const std::system_error &) {
  }
  for (auto &th : threads) th.join();
  if (done < nblocks)
    rs_quantize_row(type, src + done * t->block_size, dst + done * t->type_size, (nblocks - done) * t->block_size);
}

Value Quantize(const CallbackInfo &info) {
  need_args(info, 2, "quantize(type, Float32Array)");
  const rs_type_traits *t = weight_type(info, 0);
  auto x = f32_arg(info, 1, "data");
  const int64_t n = static_cast<int64_t>(x.ElementLength());
  check_n(info.Env(), t, n);
  const rs_type type = type_id(t);
  auto out = Napi::Buffer<uint8_t>::New(info.Env(), rs_row_size(type, n));
  quantize_parallel(type, t, x.Data(), out.Data(), n);
  return out;
}

Value Dequantize(const CallbackInfo &info) {
  need_args(info, 3, "dequantize(type, Buffer, n)");
  const rs_type_traits *t = weight_type(info, 0);
  Bytes b = bytes_arg(info, 1, "data");
  const int64_t n = int_arg(info, 2, "n", 1, int64_t(1) << 40);
  check_n(info.Env(), t, n);
  const rs_type type = type_id(t);
  if (b.size != rs_row_size(type, n))
    fail(info.Env(), std::string("data is ") + std::to_string(b.size) + " bytes; " + std::to_string(n) + " " +
                         t->name + " elements take " + std::to_string(rs_row_size(type, n)));
  auto out = new_f32(info.Env(), static_cast<size_t>(n));
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(type, RS_ISA_BEST);
  k->to_float(b.data, out.Data(), n);
  return out;
}

// from_float of the weight type's vec-dot format: fromFloat(type, isa|'ref', x)
Value FromFloat(const CallbackInfo &info) {
  need_args(info, 3, "fromFloat(type, isa, Float32Array)");
  const rs_type_traits *t = weight_type(info, 0);
  const int isa = isa_arg(info, 1, true);
  auto x = f32_arg(info, 2, "data");
  const int64_t n = static_cast<int64_t>(x.ElementLength());
  const rs_type_traits *vt = rs_type_get_traits(t->vec_dot_type);
  check_n(info.Env(), vt, n);
  auto out = Napi::Buffer<uint8_t>::New(info.Env(), rs_row_size(t->vec_dot_type, n));
  if (isa < 0) rs_ref_from_float(t->vec_dot_type, x.Data(), out.Data(), n);
  else rs_cpu_matmul_kernels(type_id(t), static_cast<rs_isa>(isa))->from_float(x.Data(), out.Data(), n);
  return out;
}

// ---------- matmul ----------

Value VecDot(const CallbackInfo &info) {
  need_args(info, 5, "vecDot(type, isa, w, x, n)");
  const rs_type_traits *t = weight_type(info, 0);
  const int isa = isa_arg(info, 1, true);
  Bytes w = bytes_arg(info, 2, "w");
  auto x = f32_arg(info, 3, "x");
  const int64_t n = int_arg(info, 4, "n", 1, int64_t(1) << 40);
  check_n(info.Env(), t, n);
  const rs_type type = type_id(t);
  check_weights(info.Env(), t, type, w, 1, n);
  if (static_cast<int64_t>(x.ElementLength()) != n)
    fail(info.Env(), "x has " + std::to_string(x.ElementLength()) + " elements, expected n = " + std::to_string(n));
  Activations a = convert_rows(type, t, isa, x.Data(), n, 1);
  float out = 0.0f;
  if (isa < 0) out = rs_ref_vec_dot(type, n, w.data, a.data.data());
  else rs_cpu_matmul_kernels(type, static_cast<rs_isa>(isa))->vec_dot(n, &out, w.data, a.data.data());
  return Napi::Number::New(info.Env(), out);
}

// matmul(type, isa, w, rows, n, x, nc, useGemm) -> out[c * rows + r]
Value Matmul(const CallbackInfo &info) {
  need_args(info, 8, "matmul(type, isa, w, rows, n, x, nc, useGemm)");
  const rs_type_traits *t = weight_type(info, 0);
  const int isa = isa_arg(info, 1, true);
  Bytes w = bytes_arg(info, 2, "w");
  const int64_t rows = int_arg(info, 3, "rows", 1, 1 << 30);
  const int64_t n = int_arg(info, 4, "n", 1, int64_t(1) << 40);
  auto x = f32_arg(info, 5, "x");
  const int64_t nc = int_arg(info, 6, "nc", 1, 1 << 20);
  const bool use_gemm = info[7].ToBoolean().Value();
  check_n(info.Env(), t, n);
  const rs_type type = type_id(t);
  check_weights(info.Env(), t, type, w, rows, n);
  if (static_cast<int64_t>(x.ElementLength()) != n * nc)
    fail(info.Env(), "x has " + std::to_string(x.ElementLength()) + " elements, expected nc * n = " + std::to_string(n * nc));
  Activations a = convert_rows(type, t, isa, x.Data(), n, nc);
  auto out = new_f32(info.Env(), static_cast<size_t>(rows * nc));
  float *o = out.Data();
  const size_t ws = rs_row_size(type, n);
  if (isa < 0) {
    for (int64_t c = 0; c < nc; c++)
      for (int64_t r = 0; r < rows; r++)
        o[c * rows + r] = rs_ref_vec_dot(type, n, w.data + r * ws, a.data.data() + c * a.stride);
  } else {
    const rs_matmul_kernels *k = rs_cpu_matmul_kernels(type, static_cast<rs_isa>(isa));
    if (use_gemm) {
      k->gemm(n, static_cast<int>(rows), static_cast<int>(nc), w.data, ws, a.data.data(), a.stride, o,
              static_cast<size_t>(rows));
    } else {
      for (int64_t c = 0; c < nc; c++)
        for (int64_t r = 0; r < rows; r++) k->vec_dot(n, &o[c * rows + r], w.data + r * ws, a.data.data() + c * a.stride);
    }
  }
  return out;
}

// ---------- float kernels ----------

int int_len(Env env, size_t n, const char *name) {
  if (n == 0 || n > (size_t(1) << 30)) fail(env, std::string(name) + " must have 1 .. 2^30 elements");
  return static_cast<int>(n);
}

Value Rmsnorm(const CallbackInfo &info) {
  need_args(info, 4, "rmsnorm(isa, x, w, eps)");
  const int isa = isa_arg(info, 0, true);
  auto x = f32_arg(info, 1, "x");
  auto w = f32_arg(info, 2, "w");
  const float eps = static_cast<float>(num_arg(info, 3, "eps"));
  const int n = int_len(info.Env(), x.ElementLength(), "x");
  if (w.ElementLength() != x.ElementLength()) fail(info.Env(), "w must have as many elements as x");
  auto y = new_f32(info.Env(), static_cast<size_t>(n));
  if (isa < 0) rs_ref_rmsnorm(y.Data(), x.Data(), w.Data(), n, eps);
  else fk_of(isa)->rmsnorm(y.Data(), x.Data(), w.Data(), n, eps);
  return y;
}

Value Rope(const CallbackInfo &info) {
  need_args(info, 6, "rope(isa, x, nHead, headDim, pos, freqBase)");
  const int isa = isa_arg(info, 0, true);
  auto x = f32_arg(info, 1, "x");
  const int n_head = static_cast<int>(int_arg(info, 2, "nHead", 1, 1 << 16));
  const int head_dim = static_cast<int>(int_arg(info, 3, "headDim", 2, 1 << 16));
  const int pos = static_cast<int>(int_arg(info, 4, "pos", 0, 1 << 30));
  const float base = static_cast<float>(num_arg(info, 5, "freqBase"));
  if (head_dim % 2 != 0) fail(info.Env(), "headDim must be even");
  if (x.ElementLength() != static_cast<size_t>(n_head) * head_dim)
    fail(info.Env(), "x must have nHead * headDim elements");
  auto y = new_f32(info.Env(), x.ElementLength());
  std::memcpy(y.Data(), x.Data(), x.ElementLength() * sizeof(float));
  if (isa < 0) rs_ref_rope(y.Data(), n_head, head_dim, pos, base);
  else fk_of(isa)->rope(y.Data(), n_head, head_dim, pos, base);
  return y;
}

Value Softmax(const CallbackInfo &info) {
  need_args(info, 2, "softmax(isa, x)");
  const int isa = isa_arg(info, 0, true);
  auto x = f32_arg(info, 1, "x");
  const int n = int_len(info.Env(), x.ElementLength(), "x");
  auto y = new_f32(info.Env(), static_cast<size_t>(n));
  std::memcpy(y.Data(), x.Data(), static_cast<size_t>(n) * sizeof(float));
  if (isa < 0) rs_ref_softmax(y.Data(), n);
  else fk_of(isa)->softmax(y.Data(), n);
  return y;
}

Value FfnAct(const CallbackInfo &info) {
  need_args(info, 4, "ffnAct(isa, act, gate, up)");
  const int isa = isa_arg(info, 0, true);
  if (!info[1].IsString()) fail(info.Env(), "act must be a string");
  const std::string s = info[1].As<Napi::String>().Utf8Value();
  rs_act act;
  if (s == "swiglu") act = RS_ACT_SWIGLU;
  else if (s == "relu_glu") act = RS_ACT_RELU_GLU;
  else if (s == "drelu") act = RS_ACT_DRELU;
  else fail(info.Env(), "unknown activation \"" + s + "\" (swiglu, relu_glu, drelu)");
  auto g = f32_arg(info, 2, "gate");
  auto u = f32_arg(info, 3, "up");
  const int n = int_len(info.Env(), g.ElementLength(), "gate");
  if (u.ElementLength() != g.ElementLength()) fail(info.Env(), "up must have as many elements as gate");
  auto h = new_f32(info.Env(), static_cast<size_t>(n));
  if (isa < 0) rs_ref_ffn_act(act, h.Data(), g.Data(), u.Data(), n);
  else fk_of(isa)->ffn_act(act, h.Data(), g.Data(), u.Data(), n);
  return h;
}

// attentionHead(isa, q, k, v, tLen, headDim, rowStride, scale); k, v: f16 bits
Value AttentionHead(const CallbackInfo &info) {
  need_args(info, 8, "attentionHead(isa, q, k, v, tLen, headDim, rowStride, scale)");
  const int isa = isa_arg(info, 0, true);
  auto q = f32_arg(info, 1, "q");
  auto k = u16_arg(info, 2, "k");
  auto v = u16_arg(info, 3, "v");
  const int t_len = static_cast<int>(int_arg(info, 4, "tLen", 1, 1 << 24));
  const int head_dim = static_cast<int>(int_arg(info, 5, "headDim", 1, 1 << 16));
  const int64_t stride = int_arg(info, 6, "rowStride", head_dim, 1 << 24);
  const float scale = static_cast<float>(num_arg(info, 7, "scale"));
  if (q.ElementLength() != static_cast<size_t>(head_dim)) fail(info.Env(), "q must have headDim elements");
  const size_t need = static_cast<size_t>(t_len - 1) * stride + head_dim;
  if (k.ElementLength() < need || v.ElementLength() < need)
    fail(info.Env(), "k and v need (tLen - 1) * rowStride + headDim = " + std::to_string(need) + " elements");
  auto out = new_f32(info.Env(), static_cast<size_t>(head_dim));
  std::vector<float> scratch(static_cast<size_t>(t_len));
  if (isa < 0)
    rs_ref_attention_head(out.Data(), q.Data(), k.Data(), v.Data(), t_len, head_dim, stride, scale, scratch.data());
  else
    rs_attention_head_with(fk_of(isa), out.Data(), q.Data(), k.Data(), v.Data(), t_len, head_dim, stride, scale,
                           scratch.data());
  return out;
}

Value DotF32F16(const CallbackInfo &info) {
  need_args(info, 3, "dotF32F16(isa, a, b)");
  const int isa = isa_arg(info, 0, false);
  auto a = f32_arg(info, 1, "a");
  auto b = u16_arg(info, 2, "b");
  const int n = int_len(info.Env(), a.ElementLength(), "a");
  if (b.ElementLength() != a.ElementLength()) fail(info.Env(), "b must have as many elements as a");
  return Napi::Number::New(info.Env(), fk_of(isa)->dot_f32_f16(a.Data(), b.Data(), n));
}

Value DotF32(const CallbackInfo &info) {
  need_args(info, 3, "dotF32(isa, a, b)");
  const int isa = isa_arg(info, 0, false);
  auto a = f32_arg(info, 1, "a");
  auto b = f32_arg(info, 2, "b");
  const int n = int_len(info.Env(), a.ElementLength(), "a");
  if (b.ElementLength() != a.ElementLength()) fail(info.Env(), "b must have as many elements as a");
  return Napi::Number::New(info.Env(), fk_of(isa)->dot_f32(a.Data(), b.Data(), n));
}

// axpyF16(isa, y, a, x) -> new y + a * x
Value AxpyF16(const CallbackInfo &info) {
  need_args(info, 4, "axpyF16(isa, y, a, x)");
  const int isa = isa_arg(info, 0, false);
  auto y = f32_arg(info, 1, "y");
  const float a = static_cast<float>(num_arg(info, 2, "a"));
  auto x = u16_arg(info, 3, "x");
  const int n = int_len(info.Env(), y.ElementLength(), "y");
  if (x.ElementLength() != y.ElementLength()) fail(info.Env(), "x must have as many elements as y");
  auto out = new_f32(info.Env(), static_cast<size_t>(n));
  std::memcpy(out.Data(), y.Data(), static_cast<size_t>(n) * sizeof(float));
  fk_of(isa)->axpy_f16(out.Data(), a, x.Data(), n);
  return out;
}

// f32ToF16(isa|'ref', x) -> Uint16Array of f16 bits
Value F32ToF16(const CallbackInfo &info) {
  need_args(info, 2, "f32ToF16(isa, x)");
  const int isa = isa_arg(info, 0, true);
  auto x = f32_arg(info, 1, "x");
  const int n = int_len(info.Env(), x.ElementLength(), "x");
  auto out = Napi::Uint16Array::New(info.Env(), static_cast<size_t>(n));
  if (isa < 0) {
    for (int i = 0; i < n; i++) out.Data()[i] = rs_fp32_to_fp16(x.Data()[i]);
  } else {
    fk_of(isa)->f32_to_f16_row(x.Data(), out.Data(), n);
  }
  return out;
}

}  // namespace

Napi::Object CreateKernelBindings(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
#define add(name, fn) o.Set(name, Napi::Function::New(env, Guard<fn>, name))
  add("typeTraits", TypeTraits);
  add("rowSize", RowSize);
  add("bestIsa", BestIsa);
  add("availableIsas", AvailableIsas);
  add("quantize", Quantize);
  add("dequantize", Dequantize);
  add("fromFloat", FromFloat);
  add("vecDot", VecDot);
  add("matmul", Matmul);
  add("rmsnorm", Rmsnorm);
  add("rope", Rope);
  add("softmax", Softmax);
  add("ffnAct", FfnAct);
  add("attentionHead", AttentionHead);
  add("dotF32", DotF32);
  add("dotF32F16", DotF32F16);
  add("axpyF16", AxpyF16);
  add("f32ToF16", F32ToF16);
#undef add
  if (AddKernelBenchBindings != nullptr) AddKernelBenchBindings(env, o);
  return o;
}

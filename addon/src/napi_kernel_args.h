// Argument checking and conversion shared by the kernel bindings (napi_kernels.cc,
// napi_kernel_bench.cc): every entry validates its arguments and throws a JS Error
// naming the problem; nothing may crash Node. Guard<> turns other C++ exceptions into
// JS Errors.
#pragma once

#include <napi.h>

#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "rs_kernels.h"

namespace rs_napi_kernels {

using Napi::CallbackInfo;
using Napi::Env;
using Napi::Value;

[[noreturn]] inline void fail(Env env, const std::string &msg) { throw Napi::Error::New(env, msg); }

inline void need_args(const CallbackInfo &info, size_t n, const char *usage) {
  if (info.Length() < n) fail(info.Env(), std::string("expected ") + usage);
}

inline int64_t int_arg(const CallbackInfo &info, size_t i, const char *name, int64_t lo, int64_t hi) {
  if (!info[i].IsNumber()) fail(info.Env(), std::string(name) + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d)))
    fail(info.Env(), std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "], got " + info[i].ToString().Utf8Value());
  return static_cast<int64_t>(d);
}

inline double num_arg(const CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsNumber()) fail(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

inline Napi::Float32Array f32_arg(const CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail(info.Env(), std::string(name) + " must be a Float32Array");
  return info[i].As<Napi::Float32Array>();
}

inline Napi::Uint16Array u16_arg(const CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array)
    fail(info.Env(), std::string(name) + " must be a Uint16Array (f16 bits)");
  return info[i].As<Napi::Uint16Array>();
}

// Bytes of a Buffer / Uint8Array / any ArrayBuffer view.
struct Bytes {
  const uint8_t *data;
  size_t size;
};
inline Bytes bytes_arg(const CallbackInfo &info, size_t i, const char *name) {
  if (info[i].IsTypedArray()) {
    auto t = info[i].As<Napi::TypedArray>();
    return {static_cast<const uint8_t *>(t.ArrayBuffer().Data()) + t.ByteOffset(), t.ByteLength()};
  }
  if (info[i].IsDataView()) {
    auto d = info[i].As<Napi::DataView>();
    return {static_cast<const uint8_t *>(d.ArrayBuffer().Data()) + d.ByteOffset(), d.ByteLength()};
  }
  fail(info.Env(), std::string(name) + " must be a Buffer or typed array");
}

inline const rs_type_traits *traits_of(Env env, int64_t type) {
  const rs_type_traits *t = rs_type_get_traits(static_cast<int>(type));
  if (t->name == nullptr) fail(env, "unknown type id " + std::to_string(type));
  return t;
}

// A supported weight type, or a thrown Error naming the type.
inline const rs_type_traits *weight_type(const CallbackInfo &info, size_t i) {
  const int64_t type = int_arg(info, i, "type", 0, 1000);
  const rs_type_traits *t = traits_of(info.Env(), type);
  if (!t->supported) fail(info.Env(), std::string("type ") + t->name + " (" + std::to_string(type) + ") is not a supported weight type");
  return t;
}

inline rs_type type_id(const rs_type_traits *t) {
  for (int i = 0; i < RS_TYPE_COUNT; i++)
    if (rs_type_get_traits(i) == t) return static_cast<rs_type>(i);
  return RS_TYPE_Q8_0X;
}

inline void check_n(Env env, const rs_type_traits *t, int64_t n) {
  if (n <= 0 || n % t->block_size != 0)
    fail(env, "n = " + std::to_string(n) + " is not a positive multiple of the " + t->name +
                  " block size " + std::to_string(t->block_size));
}

// ISA selector: "scalar" | "avx2" | "avx512" | "best", and "ref" where allowed.
// Returns -1 for "ref". An ISA above what this CPU has is refused rather than quietly
// replaced, so a test never believes it checked code it did not run.
inline int isa_arg(const CallbackInfo &info, size_t i, bool allow_ref) {
  if (!info[i].IsString()) fail(info.Env(), "isa must be a string");
  const std::string s = info[i].As<Napi::String>().Utf8Value();
  rs_isa isa;
  if (s == "ref" && allow_ref) return -1;
  if (s == "scalar") isa = RS_ISA_SCALAR;
  else if (s == "avx2") isa = RS_ISA_AVX2;
  else if (s == "avx512") isa = RS_ISA_AVX512;
  else if (s == "best") isa = RS_ISA_BEST;
  else fail(info.Env(), "unknown isa \"" + s + "\" (scalar, avx2, avx512, best" + (allow_ref ? ", ref)" : ")"));
  if (isa != RS_ISA_BEST && isa > rs_cpu_best_isa())
    fail(info.Env(), "isa " + s + " is not available on this CPU (best: " + rs_isa_name(rs_cpu_best_isa()) + ")");
  return static_cast<int>(isa);
}

inline Napi::Float32Array new_f32(Env env, size_t n) { return Napi::Float32Array::New(env, n); }

// The float-kernel table of an ISA from isa_arg (not "ref").
inline const rs_float_kernels *fk_of(int isa) { return rs_cpu_float_kernels(static_cast<rs_isa>(isa)); }

// Activation rows converted to the weight type's vec-dot format, by the given ISA's
// from_float or (isa < 0) the reference.
struct Activations {
  std::vector<uint8_t> data;
  size_t stride;
};

inline Activations convert_rows(rs_type type, const rs_type_traits *t, int isa, const float *x, int64_t n, int64_t nc) {
  Activations a;
  a.stride = rs_row_size(t->vec_dot_type, n);
  a.data.resize(a.stride * static_cast<size_t>(nc));
  for (int64_t c = 0; c < nc; c++) {
    if (isa < 0) rs_ref_from_float(t->vec_dot_type, x + c * n, a.data.data() + c * a.stride, n);
    else rs_cpu_matmul_kernels(type, static_cast<rs_isa>(isa))->from_float(x + c * n, a.data.data() + c * a.stride, n);
  }
  return a;
}

inline void check_weights(Env env, const rs_type_traits *t, rs_type type, const Bytes &w, int64_t rows, int64_t n) {
  const size_t want = rs_row_size(type, n) * static_cast<size_t>(rows);
  if (w.size != want)
    fail(env, "weights are " + std::to_string(w.size) + " bytes; " + std::to_string(rows) + " rows of " +
                  std::to_string(n) + " " + t->name + " elements take " + std::to_string(want));
}

// Turns C++ exceptions other than Napi::Error (allocation failures, thread creation)
// into JS Errors: node-addon-api only converts Napi::Error, anything else would
// terminate the process.
template <Value (*F)(const CallbackInfo &)>
Value Guard(const CallbackInfo &info) {
  try {
    return F(info);
  } catch (const Napi::Error &) {
    throw;
  } catch (const std::bad_alloc &) {
    throw Napi::Error::New(info.Env(), "out of memory");
  } catch (const std::exception &e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

}  // namespace rs_napi_kernels

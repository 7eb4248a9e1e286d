// N-API classes over the C ABI: Model (metadata, tensors, info) and Context (decode).
// Blocking calls (load, context creation, decode) run through PromiseWorker.
#include "napi_model.h"

#include <cstring>
#include <memory>

#include "rs_kernels.h"

namespace rs_napi {

namespace {

Napi::Value meta_value(Napi::Env env, const rs_meta_kv &kv);

Napi::Value meta_number(Napi::Env env, rs_meta_type t, const uint8_t *p) {
  // Array elements are packed and maybe unaligned: copy before reading.
  switch (t) {
    case RS_META_U8: return Napi::Number::New(env, p[0]);
    case RS_META_I8: return Napi::Number::New(env, static_cast<int8_t>(p[0]));
    case RS_META_BOOL: return Napi::Boolean::New(env, p[0] != 0);
    case RS_META_U16: { uint16_t v; std::memcpy(&v, p, 2); return Napi::Number::New(env, v); }
    case RS_META_I16: { int16_t v; std::memcpy(&v, p, 2); return Napi::Number::New(env, v); }
    case RS_META_U32: { uint32_t v; std::memcpy(&v, p, 4); return Napi::Number::New(env, v); }
    case RS_META_I32: { int32_t v; std::memcpy(&v, p, 4); return Napi::Number::New(env, v); }
    case RS_META_F32: { float v; std::memcpy(&v, p, 4); return Napi::Number::New(env, v); }
    case RS_META_F64: { double v; std::memcpy(&v, p, 8); return Napi::Number::New(env, v); }
    case RS_META_U64: {
      uint64_t v; std::memcpy(&v, p, 8);
      if (v <= (1ull << 53)) return Napi::Number::New(env, static_cast<double>(v));
      return Napi::BigInt::New(env, v);
    }
    case RS_META_I64: {
      int64_t v; std::memcpy(&v, p, 8);
      if (v <= (1ll << 53) && v >= -(1ll << 53)) return Napi::Number::New(env, static_cast<double>(v));
      return Napi::BigInt::New(env, v);
    }
    default: return env.Undefined();
  }
}

size_t elem_size(rs_meta_type t) {
  switch (t) {
    case RS_META_U8: case RS_META_I8: case RS_META_BOOL: return 1;
    case RS_META_U16: case RS_META_I16: return 2;
    case RS_META_U32: case RS_META_I32: case RS_META_F32: return 4;
    default: return 8;
  }
}

Napi::Value meta_value(Napi::Env env, const rs_meta_kv &kv) {
  if (kv.type == RS_META_STRING) return Napi::String::New(env, kv.v.str.data, kv.v.str.len);
  if (kv.type != RS_META_ARRAY) {
    uint8_t raw[8];
    switch (kv.type) {
      case RS_META_F32: case RS_META_F64: return Napi::Number::New(env, kv.v.f);
      case RS_META_BOOL: return Napi::Boolean::New(env, kv.v.u != 0);
      case RS_META_I8: case RS_META_I16: case RS_META_I32: case RS_META_I64:
        std::memcpy(raw, &kv.v.i, 8);
        return meta_number(env, RS_META_I64, raw);
      default:
        std::memcpy(raw, &kv.v.u, 8);
        return meta_number(env, RS_META_U64, raw);
    }
  }
  Napi::Array arr = Napi::Array::New(env, kv.n);
  for (uint64_t k = 0; k < kv.n; k++) {
    if (kv.elem_type == RS_META_STRING) arr.Set(k, Napi::String::New(env, kv.strs[k].data, kv.strs[k].len));
    else if (kv.elem_type == RS_META_ARRAY) arr.Set(k, meta_value(env, kv.items[k]));
    else arr.Set(k, meta_number(env, kv.elem_type, static_cast<const uint8_t *>(kv.data) + k * elem_size(kv.elem_type)));
  }
  return arr;
}

int opt_int(const Napi::Object &o, const char *key, int def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int>(d)))
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an integer");
  return static_cast<int>(d);
}

std::string opt_string(const Napi::Object &o, const char *key, const std::string &def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

}  // namespace

Napi::Error make_error(Napi::Env env, rs_status status, const std::string &message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, status_code(status)));
  return e;
}

const char *status_code(rs_status s) {
  switch (s) {
    case RS_OK: return "RS_OK";
    case RS_ERR_IO: return "RS_ERR_IO";
    case RS_ERR_FORMAT: return "RS_ERR_FORMAT";
    case RS_ERR_UNSUPPORTED: return "RS_ERR_UNSUPPORTED";
    case RS_ERR_INVALID_ARG: return "RS_ERR_INVALID_ARG";
    case RS_ERR_NO_MEMORY: return "RS_ERR_NO_MEMORY";
    case RS_ERR_MODEL_FILE: return "RS_ERR_MODEL_FILE";
    default: return "RS_ERR_INTERNAL";
  }
}

// ---------------- Model ----------------

Napi::Function ModelWrap::Init(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {InstanceMethod("info", &ModelWrap::Info), InstanceMethod("metadata", &ModelWrap::Metadata),
                      InstanceMethod("tensors", &ModelWrap::Tensors),
                      InstanceMethod("createContext", &ModelWrap::CreateContext),
                      InstanceMethod("dispose", &ModelWrap::Dispose)});
}

ModelWrap::ModelWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "NativeModel is created by loadModel()");
  model_ = info[0].As<Napi::External<rs_model>>().Data();
}

ModelWrap::~ModelWrap() { rs_model_free(model_); }

rs_model *ModelWrap::get(Napi::Env env) const {
  if (!model_) throw Napi::Error::New(env, "model has been disposed");
  return model_;
}

Napi::Value ModelWrap::Load(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "loadModel(path, options?)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  std::string act = opt_string(opts, "ffnActivation", "auto");
  bool no_mmap = opts.Get("noMmap").ToBoolean();
  bool no_repack = opts.Get("noRepack").ToBoolean();
  bool down_int8 = opts.Get("downInt8").ToBoolean();
  return PromiseWorker<rs_model *>::Start(
      env,
      [path, act, no_mmap, no_repack, down_int8]() {
        rs_model_params p;
        rs_model_params_default(&p);
        p.ffn_activation = act.c_str();
        p.no_mmap = no_mmap;
        p.no_repack = no_repack;
        p.down_int8 = down_int8;
        rs_model *m = nullptr;
        rs_error err{};
        check(rs_model_load(path.c_str(), &p, &m, &err), err);
        return m;
      },
      [](Napi::Env env, rs_model *&m) -> Napi::Value {
        Napi::FunctionReference &ctor = Instance(env)->model_ctor;
        rs_model *owned = m;
        m = nullptr;
        return ctor.New({Napi::External<rs_model>::New(env, owned)});
      });
}

Napi::Value ModelWrap::Info(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_model_info mi;
  rs_model_get_info(get(env), &mi);
  Napi::Object o = Napi::Object::New(env);
  o.Set("arch", mi.arch);
  o.Set("ffnActivation", mi.ffn_act);
  o.Set("ffnActivationFrom", mi.ffn_act_from);
  o.Set("isPowerInfer", Napi::Boolean::New(env, mi.is_powerinfer));
  o.Set("ggufVersion", mi.gguf_version);
  o.Set("nVocab", mi.n_vocab);
  o.Set("nEmbd", mi.n_embd);
  o.Set("nFf", mi.n_ff);
  o.Set("nLayer", mi.n_layer);
  o.Set("nHead", mi.n_head);
  o.Set("nHeadKv", mi.n_head_kv);
  o.Set("nCtxTrain", mi.n_ctx_train);
  o.Set("ropeFreqBase", mi.rope_freq_base);
  o.Set("rmsEps", mi.rms_eps);
  o.Set("tiedOutput", Napi::Boolean::New(env, mi.tied_output));
  o.Set("nParams", static_cast<double>(mi.n_params));
  o.Set("fileBytes", static_cast<double>(mi.file_bytes));
  o.Set("bytesPerToken", static_cast<double>(mi.bytes_per_token));
  o.Set("nonFfnBytesPerToken", static_cast<double>(mi.non_ffn_bytes));
  o.Set("neuronBytes", static_cast<double>(mi.neuron_bytes));
  o.Set("predictorBytes", static_cast<double>(mi.predictor_bytes));
  o.Set("hasPredictors", Napi::Boolean::New(env, mi.has_predictors));
  o.Set("sparseCapable", Napi::Boolean::New(env, mi.sparse_capable));
  o.Set("sparsePacked", Napi::Boolean::New(env, mi.sparse_packed));
  o.Set("sparseThreshold", mi.sparse_threshold);
  o.Set("repackMs", mi.repack_ms);
  o.Set("x8Bytes", static_cast<double>(mi.x8_bytes));
  o.Set("fileResidentBytes", static_cast<double>(mi.file_resident_bytes));
  return o;
}

Napi::Value ModelWrap::Metadata(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_model *m = get(env);
  int64_t n = rs_model_meta_count(m);
  Napi::Array out = Napi::Array::New(env, n);
  for (int64_t i = 0; i < n; i++) {
    rs_meta_kv kv;
    rs_model_meta_get(m, i, &kv);
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::String::New(env, kv.key.data, kv.key.len));
    pair.Set(1u, meta_value(env, kv));
    out.Set(i, pair);
  }
  return out;
}

Napi::Value ModelWrap::Tensors(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_model *m = get(env);
  int64_t n = rs_model_tensor_count(m);
  Napi::Array out = Napi::Array::New(env, n);
  for (int64_t i = 0; i < n; i++) {
    rs_tensor_info t;
    rs_model_tensor_get(m, i, &t);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    o.Set("type", t.type);
    o.Set("typeName", t.type_name);
    Napi::Array shape = Napi::Array::New(env, t.n_dims);
    for (int d = 0; d < t.n_dims; d++) shape.Set(d, static_cast<double>(t.ne[d]));
    o.Set("shape", shape);
    o.Set("bytes", static_cast<double>(t.n_bytes));
    o.Set("offset", static_cast<double>(t.offset));
    out.Set(i, o);
  }
  return out;
}

Napi::Value ModelWrap::CreateContext(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_model *m = get(env);
  Napi::Object opts = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  rs_context_params p;
  rs_context_params_default(&p);
  p.n_seq = opt_int(opts, "nSeq", p.n_seq);
  p.n_ctx = opt_int(opts, "nCtx", p.n_ctx);
  p.n_threads = opt_int(opts, "threads", p.n_threads);
  p.n_batch = opt_int(opts, "nBatch", p.n_batch);
  std::string isa = opt_string(opts, "isa", "best");
  if (isa == "scalar") p.isa = RS_ISA_SCALAR;
  else if (isa == "avx2") p.isa = RS_ISA_AVX2;
  else if (isa == "avx512") p.isa = RS_ISA_AVX512;
  else if (isa == "best") p.isa = RS_ISA_BEST;
  else throw Napi::TypeError::New(env, "isa must be scalar, avx2, avx512 or best");
  auto backend = std::make_shared<std::string>(opt_string(opts, "backend", "cpu"));
  auto ffn_mode = std::make_shared<std::string>(opt_string(opts, "ffnMode", "auto"));
  Napi::Value thr = opts.Get("sparseThreshold");
  if (!thr.IsUndefined() && !thr.IsNull()) {
    if (!thr.IsNumber()) throw Napi::TypeError::New(env, "sparseThreshold must be a number");
    p.sparse_threshold = thr.As<Napi::Number>().FloatValue();
  }
  p.sparse_max_batch = opt_int(opts, "sparseMaxBatch", 0);
  // The hybrid runtime.
  auto device = std::make_shared<std::string>(opt_string(opts, "device", "cpu"));
  auto placement = std::make_shared<std::string>(opt_string(opts, "placement", ""));
  auto hot_source = std::make_shared<std::string>(opt_string(opts, "hotSource", ""));
  Napi::Value vb = opts.Get("vramBudget");
  if (!vb.IsUndefined() && !vb.IsNull()) {
    if (!vb.IsNumber() || vb.As<Napi::Number>().DoubleValue() < 0)
      throw Napi::TypeError::New(env, "vramBudget must be a number of bytes >= 0");
    p.vram_budget = static_cast<uint64_t>(vb.As<Napi::Number>().DoubleValue());
  }
  Napi::Value vf = opts.Get("vramBudgetFraction");
  if (!vf.IsUndefined() && !vf.IsNull()) {
    if (!vf.IsNumber()) throw Napi::TypeError::New(env, "vramBudgetFraction must be a number");
    p.vram_budget_fraction = vf.As<Napi::Number>().DoubleValue();
  }
  Napi::Value em = opts.Get("emuMemory");
  if (!em.IsUndefined() && !em.IsNull()) {
    if (!em.IsNumber() || em.As<Napi::Number>().DoubleValue() < 0)
      throw Napi::TypeError::New(env, "emuMemory must be a number of bytes >= 0");
    p.emu_memory = static_cast<uint64_t>(em.As<Napi::Number>().DoubleValue());
  }
  p.emu_latency_us = opt_int(opts, "emuLatencyUs", 0);
  // hotNeurons: one Int32Array of ascending neuron ids per layer.
  auto hot = std::make_shared<std::vector<std::vector<int32_t>>>();
  Napi::Value hv = opts.Get("hotNeurons");
  const bool has_hot = !hv.IsUndefined() && !hv.IsNull();
  if (has_hot) {
    if (!hv.IsArray()) throw Napi::TypeError::New(env, "hotNeurons must be an array of Int32Array (one per layer)");
    Napi::Array a = hv.As<Napi::Array>();
    for (uint32_t l = 0; l < a.Length(); l++) {
      Napi::Value e = a.Get(l);
      if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        throw Napi::TypeError::New(env, "hotNeurons[" + std::to_string(l) + "] must be an Int32Array");
      Napi::Int32Array ia = e.As<Napi::Int32Array>();
      hot->emplace_back(ia.Data(), ia.Data() + ia.ElementLength());
    }
    rs_model_info mi;
    rs_model_get_info(m, &mi);
    if (hot->size() != static_cast<size_t>(mi.n_layer))
      throw Napi::RangeError::New(env, "hotNeurons has " + std::to_string(hot->size()) + " layers, the model " +
                                           std::to_string(mi.n_layer));
  }
  // napi_value handles die with this call's scope: the completion callback reaches the
  // model object through a persistent reference instead.
  auto self = std::make_shared<Napi::ObjectReference>(Napi::Persistent(Value()));
  std::shared_ptr<int> live = live_contexts_;
  (*live)++;  // held while the context is being created
  return PromiseWorker<rs_context *>::Start(
      env,
      [m, p, backend, ffn_mode, device, placement, hot_source, hot, has_hot]() mutable {
        p.backend = backend->c_str();
        p.ffn_mode = ffn_mode->c_str();
        p.device = device->c_str();
        p.placement_path = placement->empty() ? nullptr : placement->c_str();
        std::vector<const int32_t *> ids;
        std::vector<uint32_t> counts;
        if (has_hot) {
          for (const auto &v : *hot) {
            ids.push_back(v.data());
            counts.push_back(static_cast<uint32_t>(v.size()));
          }
          p.hot_ids = ids.data();
          p.hot_counts = counts.data();
          p.hot_source = hot_source->c_str();
        }
        rs_context *c = nullptr;
        rs_error err{};
        check(rs_context_new(m, &p, &c, &err), err);
        return c;
      },
      [self, live](Napi::Env env, rs_context *&c) -> Napi::Value {
        rs_context *owned = c;
        c = nullptr;
        return Instance(env)->context_ctor.New(
            {Napi::External<rs_context>::New(env, owned), self->Value(),
             Napi::External<std::shared_ptr<int>>::New(env, new std::shared_ptr<int>(live),
                                                        [](Napi::Env, std::shared_ptr<int> *p) { delete p; })});
      },
      {}, [live, self]() { (*live)--; });
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo &info) {
  if (*live_contexts_ > 0)
    throw Napi::Error::New(info.Env(), "cannot dispose a model while " + std::to_string(*live_contexts_) +
                                           " of its contexts are alive; dispose them first");
  rs_model_free(model_);
  model_ = nullptr;
  return info.Env().Undefined();
}

}  // namespace rs_napi

// NativeContext: decode runs on a worker thread; while it runs, every other call on
// the same context is refused (the engine context is single-caller by contract).
#include <cstring>
#include <vector>

#include "napi_model.h"

namespace rs_napi {

namespace {

struct DecodeJob {
  std::vector<int32_t> tokens, pos, seq;
  std::vector<uint8_t> want;
  std::vector<float> logits;
};

template <typename T>
std::vector<T> copy_typed(Napi::Env env, const Napi::Value &v, napi_typedarray_type type, const char *what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(env, std::string(what) + " must be a typed array of the right kind");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  std::vector<T> out(ta.ElementLength());
  if (!out.empty())
    std::memcpy(out.data(), static_cast<uint8_t *>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), ta.ByteLength());
  return out;
}

}  // namespace

Napi::Function ContextWrap::Init(Napi::Env env) {
  return DefineClass(env, "NativeContext",
                     {InstanceMethod("decode", &ContextWrap::Decode), InstanceMethod("truncate", &ContextWrap::Truncate),
                      InstanceMethod("seqLength", &ContextWrap::SeqLength), InstanceMethod("stats", &ContextWrap::Stats),
                      InstanceMethod("sparsity", &ContextWrap::Sparsity),
                      InstanceMethod("device", &ContextWrap::Device),
                      InstanceMethod("hybridStats", &ContextWrap::HybridStats),
                      InstanceMethod("setActivationCounting", &ContextWrap::SetActivationCounting),
                      InstanceMethod("activationCounts", &ContextWrap::ActivationCounts),
                      InstanceMethod("resetActivationCounts", &ContextWrap::ResetActivationCounts),
                      InstanceMethod("setActivationCapture", &ContextWrap::SetActivationCapture),
                      InstanceMethod("activationCapture", &ContextWrap::ActivationCapture),
                      InstanceMethod("dispose", &ContextWrap::Dispose)});
}

ContextWrap::ContextWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<ContextWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsExternal() || !info[1].IsObject() || !info[2].IsExternal())
    throw Napi::TypeError::New(env, "NativeContext is created by NativeModel.createContext()");
  ctx_ = info[0].As<Napi::External<rs_context>>().Data();
  Napi::Object model_obj = info[1].As<Napi::Object>();
  model_ = Napi::Persistent(model_obj);
  live_ = *info[2].As<Napi::External<std::shared_ptr<int>>>().Data();
  (*live_)++;
  rs_model_info mi;
  rs_model_get_info(ModelWrap::Unwrap(model_obj)->raw(), &mi);
  n_vocab_ = mi.n_vocab;
  n_layer_ = mi.n_layer;
  n_ff_ = mi.n_ff;
  n_embd_ = mi.n_embd;
}

ContextWrap::~ContextWrap() { release(); }

void ContextWrap::release() {
  if (!ctx_) return;
  rs_context_free(ctx_);
  ctx_ = nullptr;
  (*live_)--;
  model_.Reset();
}

rs_context *ContextWrap::get(Napi::Env env, const char *what) const {
  if (!ctx_) throw Napi::Error::New(env, std::string(what) + ": context has been disposed");
  if (busy_) throw Napi::Error::New(env, std::string(what) + ": a decode is already running on this context");
  return ctx_;
}

Napi::Value ContextWrap::Decode(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_context *ctx = get(env, "decode");
  if (info.Length() != 4) throw Napi::TypeError::New(env, "decode(tokens, positions, seqIds, wantLogits)");
  auto job = std::make_shared<DecodeJob>();
  job->tokens = copy_typed<int32_t>(env, info[0], napi_int32_array, "tokens");
  job->pos = copy_typed<int32_t>(env, info[1], napi_int32_array, "positions");
  job->seq = copy_typed<int32_t>(env, info[2], napi_int32_array, "seqIds");
  job->want = copy_typed<uint8_t>(env, info[3], napi_uint8_array, "wantLogits");
  size_t n = job->tokens.size();
  if (job->pos.size() != n || job->seq.size() != n || job->want.size() != n)
    throw Napi::RangeError::New(env, "decode: tokens, positions, seqIds and wantLogits must have the same length");
  size_t n_out = 0;
  for (uint8_t w : job->want) n_out += w != 0;
  int n_vocab = n_vocab_;
  busy_ = true;
  return PromiseWorker<std::shared_ptr<DecodeJob>>::Start(
      env,
      [ctx, job, n_out, n_vocab]() {
        job->logits.resize(n_out * static_cast<size_t>(n_vocab));
        rs_error err{};
        check(rs_decode(ctx, static_cast<int>(job->tokens.size()), job->tokens.data(), job->pos.data(),
                        job->seq.data(), job->want.data(), job->logits.data(), &err),
              err);
        return job;
      },
      [](Napi::Env env, std::shared_ptr<DecodeJob> &j) -> Napi::Value {
        Napi::Float32Array out = Napi::Float32Array::New(env, j->logits.size());
        if (!j->logits.empty()) std::memcpy(out.Data(), j->logits.data(), j->logits.size() * sizeof(float));
        return out;
      },
      {Value()}, [this]() { busy_ = false; });
}

Napi::Value ContextWrap::Truncate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_context *ctx = get(env, "truncate");
  if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "truncate(seq, p0)");
  rs_error err{};
  rs_status s = rs_seq_truncate(ctx, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), &err);
  if (s != RS_OK) throw make_error(env, s, err.message);
  return env.Undefined();
}

Napi::Value ContextWrap::SeqLength(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_context *ctx = get(env, "seqLength");
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "seqLength(seq)");
  int n = rs_seq_length(ctx, info[0].As<Napi::Number>().Int32Value());
  if (n < 0) throw Napi::RangeError::New(env, "seqLength: sequence id out of range");
  return Napi::Number::New(env, n);
}

Napi::Value ContextWrap::Stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!ctx_) throw Napi::Error::New(env, "stats: context has been disposed");
  rs_context_stats st;
  rs_context_get_stats(ctx_, &st);  // plain counters: safe to read while a decode runs
  Napi::Object o = Napi::Object::New(env);
  o.Set("totalMs", st.t_total_ms);
  o.Set("decodeCalls", static_cast<double>(st.n_decode_calls));
  o.Set("tokens", static_cast<double>(st.n_tokens));
  o.Set("threads", st.n_threads);
  o.Set("isa", st.isa);
  o.Set("backend", st.backend);
  return o;
}

Napi::Value ContextWrap::Sparsity(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!ctx_) throw Napi::Error::New(env, "sparsity: context has been disposed");
  rs_context *ctx = ctx_;  // reads a snapshot: allowed while a decode runs
  rs_sparsity_info si;
  std::vector<uint64_t> last(n_layer_), total(n_layer_);
  rs_context_get_sparsity(ctx, &si, last.data(), total.data());
  Napi::Object o = Napi::Object::New(env);
  o.Set("ffnMode", si.ffn_mode);
  o.Set("threshold", si.threshold);
  o.Set("sparseMaxBatch", si.sparse_max_batch);
  o.Set("lastRows", static_cast<double>(si.last_rows));
  o.Set("totalRows", static_cast<double>(si.total_rows));
  o.Set("sparseSteps", static_cast<double>(si.sparse_steps));
  o.Set("denseSteps", static_cast<double>(si.dense_steps));
  Napi::Object ph = Napi::Object::New(env);
  ph.Set("attention", si.attention_ms);
  ph.Set("select", si.select_ms);
  ph.Set("ffn", si.ffn_ms);
  ph.Set("output", si.output_ms);
  o.Set("phaseMs", ph);
  // Ratios of neurons computed: pairs / (rows x n_ff).
  Napi::Array l = Napi::Array::New(env, n_layer_), t = Napi::Array::New(env, n_layer_);
  for (int i = 0; i < n_layer_; i++) {
    l.Set(i, si.last_rows ? static_cast<double>(last[i]) / (static_cast<double>(si.last_rows) * n_ff_) : 0.0);
    t.Set(i, si.total_rows ? static_cast<double>(total[i]) / (static_cast<double>(si.total_rows) * n_ff_) : 0.0);
  }
  o.Set("lastActiveRatio", l);
  o.Set("avgActiveRatio", t);
  return o;
}

Napi::Value ContextWrap::Device(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!ctx_) throw Napi::Error::New(env, "device: context has been disposed");
  rs_device_info di;
  std::vector<uint32_t> hot(static_cast<size_t>(n_layer_));
  rs_context_get_device_info(ctx_, &di, hot.data());  // fixed at creation: safe while a decode runs
  Napi::Object o = Napi::Object::New(env);
  o.Set("device", di.device);
  o.Set("name", di.name);
  o.Set("memoryTotal", static_cast<double>(di.memory_total));
  o.Set("memoryFree", static_cast<double>(di.memory_free));
  o.Set("budget", static_cast<double>(di.budget));
  o.Set("budgetFrom", di.budget_from);
  Napi::Object bytes = Napi::Object::New(env);
  bytes.Set("attention", static_cast<double>(di.attention));
  bytes.Set("predictors", static_cast<double>(di.predictors));
  bytes.Set("norms", static_cast<double>(di.norms));
  bytes.Set("output", static_cast<double>(di.output));
  bytes.Set("kvCache", static_cast<double>(di.kv_cache));
  bytes.Set("index", static_cast<double>(di.index));
  bytes.Set("workspace", static_cast<double>(di.workspace));
  bytes.Set("ffn", static_cast<double>(di.ffn));
  o.Set("bytes", bytes);
  o.Set("used", static_cast<double>(di.used));
  o.Set("ffnAll", static_cast<double>(di.ffn_all));
  Napi::Array h = Napi::Array::New(env, hot.size());
  for (size_t l = 0; l < hot.size(); l++) h.Set(static_cast<uint32_t>(l), hot[l]);
  o.Set("hotNeurons", h);
  Napi::Array ids = Napi::Array::New(env, hot.size());
  for (size_t l = 0; l < hot.size(); l++) {
    Napi::Int32Array a = Napi::Int32Array::New(env, hot[l]);
    rs_error err{};
    rs_status st = rs_context_get_hot_neurons(ctx_, static_cast<int>(l), a.Data(), &err);
    if (st != RS_OK) throw make_error(env, st, err.message);
    ids.Set(static_cast<uint32_t>(l), a);
  }
  o.Set("hotNeuronIds", ids);
  o.Set("placementSource", di.placement_source);
  return o;
}

Napi::Value ContextWrap::HybridStats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!ctx_) throw Napi::Error::New(env, "hybridStats: context has been disposed");
  rs_hybrid_stats s;
  rs_context_get_hybrid_stats(ctx_, &s);  // a locked copy: safe while a decode runs
  Napi::Object o = Napi::Object::New(env);
  o.Set("steps", static_cast<double>(s.steps));
  o.Set("neuronsDevice", static_cast<double>(s.pairs_device));
  o.Set("neuronsHost", static_cast<double>(s.pairs_host));
  o.Set("deviceBusyMs", s.device_busy_ms);
  o.Set("deviceWaitMs", s.device_wait_ms);
  o.Set("hostFfnMs", s.host_ffn_ms);
  o.Set("wallMs", s.wall_ms);
  o.Set("replayedSteps", static_cast<double>(s.replayed_steps));
  o.Set("recordings", static_cast<double>(s.recordings));
  Napi::Object last = Napi::Object::New(env);
  last.Set("neuronsDevice", static_cast<double>(s.last_pairs_device));
  last.Set("neuronsHost", static_cast<double>(s.last_pairs_host));
  last.Set("deviceBusyMs", s.last_device_busy_ms);
  last.Set("deviceWaitMs", s.last_device_wait_ms);
  last.Set("hostFfnMs", s.last_host_ffn_ms);
  last.Set("wallMs", s.last_wall_ms);
  o.Set("last", last);
  return o;
}

Napi::Value ContextWrap::SetActivationCounting(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_context *ctx = get(env, "setActivationCounting");
  rs_error err{};
  rs_status s = rs_context_set_activation_counting(ctx, info.Length() > 0 && info[0].ToBoolean(), &err);
  if (s != RS_OK) throw make_error(env, s, err.message);
  return env.Undefined();
}

Napi::Value ContextWrap::ActivationCounts(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_context *ctx = get(env, "activationCounts");
  Napi::Array layers = Napi::Array::New(env, n_layer_);
  uint64_t rows = 0;
  for (int l = 0; l < n_layer_; l++) {
    Napi::Uint32Array a = Napi::Uint32Array::New(env, n_ff_);
    rs_error err{};
    rs_status s = rs_context_get_activation_counts(ctx, l, a.Data(), &rows, &err);
    if (s != RS_OK) throw make_error(env, s, err.message);
    layers.Set(l, a);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("rows", static_cast<double>(rows));
  o.Set("layers", layers);
  Napi::Array pred = Napi::Array::New(env, n_layer_);
  for (int l = 0; l < n_layer_; l++) {
    uint64_t tp = 0, fp = 0, fn = 0;
    rs_error err{};
    rs_status s = rs_context_get_predictor_quality(ctx, l, &tp, &fp, &fn, &err);
    if (s != RS_OK) throw make_error(env, s, err.message);
    Napi::Object q = Napi::Object::New(env);
    q.Set("truePositive", static_cast<double>(tp));
    q.Set("falsePositive", static_cast<double>(fp));
    q.Set("falseNegative", static_cast<double>(fn));
    pred.Set(l, q);
  }
  o.Set("predictor", pred);
  return o;
}

Napi::Value ContextWrap::ResetActivationCounts(const Napi::CallbackInfo &info) {
  rs_context_reset_activation_counts(get(info.Env(), "resetActivationCounts"));
  return info.Env().Undefined();
}

Napi::Value ContextWrap::SetActivationCapture(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_context *ctx = get(env, "setActivationCapture");
  rs_error err{};
  rs_status s = rs_context_set_activation_capture(ctx, info.Length() > 0 && info[0].ToBoolean(), &err);
  if (s != RS_OK) throw make_error(env, s, err.message);
  return env.Undefined();
}

// Copies of the capture per layer: { rows, layers: [{ x: Float32Array, mask: Uint8Array }] }.
Napi::Value ContextWrap::ActivationCapture(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  rs_context *ctx = get(env, "activationCapture");
  Napi::Array layers = Napi::Array::New(env, n_layer_);
  uint64_t rows = 0;
  const size_t mb = (static_cast<size_t>(n_ff_) + 7) / 8;
  for (int l = 0; l < n_layer_; l++) {
    const float *x = nullptr;
    const uint8_t *m = nullptr;
    rs_error err{};
    rs_status s = rs_context_get_activation_capture(ctx, l, &x, &m, &rows, &err);
    if (s != RS_OK) throw make_error(env, s, err.message);
    Napi::Object o = Napi::Object::New(env);
    Napi::Float32Array xa = Napi::Float32Array::New(env, static_cast<size_t>(rows) * n_embd_);
    if (rows) std::memcpy(xa.Data(), x, static_cast<size_t>(rows) * n_embd_ * sizeof(float));
    Napi::Uint8Array ma = Napi::Uint8Array::New(env, static_cast<size_t>(rows) * mb);
    if (rows) std::memcpy(ma.Data(), m, static_cast<size_t>(rows) * mb);
    o.Set("x", xa);
    o.Set("mask", ma);
    layers.Set(l, o);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("rows", static_cast<double>(rows));
  o.Set("layers", layers);
  return o;
}

Napi::Value ContextWrap::Dispose(const Napi::CallbackInfo &info) {
  if (busy_) throw Napi::Error::New(info.Env(), "dispose: a decode is still running on this context");
  release();
  return info.Env().Undefined();
}

}  // namespace rs_napi

// Predictor training for train-predictor: trainPredictor() and predictorLogits(), both
// promises run off the event loop. The typed arrays they read stay alive (and must stay
// unchanged) until the promise settles.
#include <napi.h>

#include <memory>
#include <string>

#include "napi_async.h"
#include "napi_train.h"
#include "predictor_train.h"

namespace rs_napi {

namespace {

template <typename A>
A typed(Napi::Env env, const Napi::Value &v, napi_typedarray_type t, const char *what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != t)
    throw Napi::TypeError::New(env, std::string(what) + " must be a typed array of the right kind");
  return v.As<A>();
}

int int_opt(const Napi::Object &o, const char *key, int fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

float float_opt(const Napi::Object &o, const char *key, float fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().FloatValue() : fallback;
}

// Rejects inputs whose sizes disagree before any native code reads them.
void check_sizes(Napi::Env env, size_t x_len, size_t mask_len, int64_t rows, int n_embd, int n_ff) {
  if (rows < 0 || n_embd <= 0 || n_ff <= 0) throw Napi::RangeError::New(env, "rows, nEmbd and nFf must be positive");
  if (x_len != static_cast<size_t>(rows) * n_embd) throw Napi::RangeError::New(env, "x must hold rows x nEmbd floats");
  if (mask_len != static_cast<size_t>(rows) * ((n_ff + 7) / 8))
    throw Napi::RangeError::New(env, "mask must hold rows x ceil(nFf / 8) bytes");
}

Napi::Object weights_object(Napi::Env env, const rs::PredictorWeights &w) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Float32Array f1 = Napi::Float32Array::New(env, w.fc1.size());
  std::copy(w.fc1.begin(), w.fc1.end(), f1.Data());
  Napi::Float32Array f2 = Napi::Float32Array::New(env, w.fc2.size());
  std::copy(w.fc2.begin(), w.fc2.end(), f2.Data());
  Napi::Array loss = Napi::Array::New(env, w.epoch_loss.size());
  for (size_t i = 0; i < w.epoch_loss.size(); i++) loss.Set(static_cast<uint32_t>(i), w.epoch_loss[i]);
  o.Set("rank", w.rank);
  o.Set("fc1", f1);
  o.Set("fc2", f2);
  o.Set("epochLoss", loss);
  return o;
}

// trainPredictor(x, mask, nEmbd, nFf, { rank, epochs, batch, lr, posWeight, margin, seed, threads })
Napi::Value TrainPredictor(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5 || !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsObject())
    throw Napi::TypeError::New(env, "trainPredictor(x, mask, nEmbd, nFf, options)");
  Napi::Float32Array x = typed<Napi::Float32Array>(env, info[0], napi_float32_array, "x");
  Napi::Uint8Array mask = typed<Napi::Uint8Array>(env, info[1], napi_uint8_array, "mask");
  const int d = info[2].As<Napi::Number>().Int32Value(), F = info[3].As<Napi::Number>().Int32Value();
  const int64_t rows = d > 0 ? static_cast<int64_t>(x.ElementLength() / static_cast<size_t>(d)) : 0;
  check_sizes(env, x.ElementLength(), mask.ElementLength(), rows, d, F);
  Napi::Object o = info[4].As<Napi::Object>();
  rs::PredictorTrainOptions opt;
  opt.rank = int_opt(o, "rank", opt.rank);
  opt.epochs = int_opt(o, "epochs", opt.epochs);
  opt.batch = int_opt(o, "batch", opt.batch);
  opt.lr = float_opt(o, "lr", opt.lr);
  opt.pos_weight = float_opt(o, "posWeight", opt.pos_weight);
  opt.margin = float_opt(o, "margin", opt.margin);
  opt.seed = static_cast<uint64_t>(int_opt(o, "seed", 1));
  opt.threads = int_opt(o, "threads", 0);
  rs::PredictorSamples s{x.Data(), mask.Data(), rows, d, F};
  return PromiseWorker<std::shared_ptr<rs::PredictorWeights>>::Start(
      env,
      [s, opt]() {
        try {
          return std::make_shared<rs::PredictorWeights>(rs::train_predictor(s, opt));
        } catch (const std::invalid_argument &e) {
          throw EngineError(RS_ERR_INVALID_ARG, e.what());
        }
      },
      [](Napi::Env env, std::shared_ptr<rs::PredictorWeights> &w) -> Napi::Value { return weights_object(env, *w); },
      {x, mask});
}

// predictorLogits(fc1, fc2, rank, x, nEmbd, nFf, threads) -> Float32Array rows x nFf
Napi::Value PredictorLogits(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7) throw Napi::TypeError::New(env, "predictorLogits(fc1, fc2, rank, x, nEmbd, nFf, threads)");
  Napi::Float32Array f1 = typed<Napi::Float32Array>(env, info[0], napi_float32_array, "fc1");
  Napi::Float32Array f2 = typed<Napi::Float32Array>(env, info[1], napi_float32_array, "fc2");
  Napi::Float32Array x = typed<Napi::Float32Array>(env, info[3], napi_float32_array, "x");
  const int R = info[2].As<Napi::Number>().Int32Value(), d = info[4].As<Napi::Number>().Int32Value(),
            F = info[5].As<Napi::Number>().Int32Value(), threads = info[6].As<Napi::Number>().Int32Value();
  if (R <= 0 || d <= 0 || F <= 0 || f1.ElementLength() != static_cast<size_t>(R) * d ||
      f2.ElementLength() != static_cast<size_t>(F) * R || x.ElementLength() % static_cast<size_t>(d) != 0)
    throw Napi::RangeError::New(env, "predictorLogits: fc1 must be rank x nEmbd, fc2 nFf x rank, x rows x nEmbd");
  auto w = std::make_shared<rs::PredictorWeights>();
  w->rank = R;
  w->n_embd = d;
  w->n_ff = F;
  w->fc1.assign(f1.Data(), f1.Data() + f1.ElementLength());
  w->fc2.assign(f2.Data(), f2.Data() + f2.ElementLength());
  const int64_t rows = static_cast<int64_t>(x.ElementLength() / static_cast<size_t>(d));
  const float *xp = x.Data();
  return PromiseWorker<std::shared_ptr<std::vector<float>>>::Start(
      env,
      [w, xp, rows, threads]() {
        auto out = std::make_shared<std::vector<float>>(static_cast<size_t>(rows) * w->n_ff);
        rs::predictor_logits(*w, xp, rows, out->data(), threads);
        return out;
      },
      [](Napi::Env env, std::shared_ptr<std::vector<float>> &out) -> Napi::Value {
        Napi::Float32Array a = Napi::Float32Array::New(env, out->size());
        std::copy(out->begin(), out->end(), a.Data());
        return a;
      },
      {x});
}

}  // namespace

Napi::Object CreateTrainBindings(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("trainPredictor", Napi::Function::New(env, TrainPredictor, "trainPredictor"));
  o.Set("predictorLogits", Napi::Function::New(env, PredictorLogits, "predictorLogits"));
  return o;
}

}  // namespace rs_napi

// JS classes of the addon. server/engine/binding.ts describes this surface in TypeScript.
#pragma once

#include <napi.h>

#include <memory>

#include "napi_async.h"
#include "relu_serve.h"

namespace rs_napi {

// Per-environment data: the class constructors (no globals, worker-thread safe).
struct AddonData {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference context_ctor;
};
inline AddonData *Instance(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Value Load(const Napi::CallbackInfo &info);  // loadModel(path, opts) -> Promise<NativeModel>
  explicit ModelWrap(const Napi::CallbackInfo &info);
  ~ModelWrap() override;
  rs_model *raw() const { return model_; }

 private:
  rs_model *get(Napi::Env env) const;
  Napi::Value Info(const Napi::CallbackInfo &info);
  Napi::Value Metadata(const Napi::CallbackInfo &info);
  Napi::Value Tensors(const Napi::CallbackInfo &info);
  Napi::Value CreateContext(const Napi::CallbackInfo &info);
  Napi::Value Dispose(const Napi::CallbackInfo &info);

  rs_model *model_ = nullptr;
  // Contexts alive or being created; shared with them so no destructor order matters.
  std::shared_ptr<int> live_contexts_ = std::make_shared<int>(0);
};

class ContextWrap : public Napi::ObjectWrap<ContextWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ContextWrap(const Napi::CallbackInfo &info);
  ~ContextWrap() override;

 private:
  rs_context *get(Napi::Env env, const char *what) const;  // throws if disposed or busy
  void release();
  Napi::Value Decode(const Napi::CallbackInfo &info);
  Napi::Value Truncate(const Napi::CallbackInfo &info);
  Napi::Value SeqLength(const Napi::CallbackInfo &info);
  Napi::Value Stats(const Napi::CallbackInfo &info);
  Napi::Value Sparsity(const Napi::CallbackInfo &info);
  Napi::Value Device(const Napi::CallbackInfo &info);
  Napi::Value HybridStats(const Napi::CallbackInfo &info);
  Napi::Value SetActivationCounting(const Napi::CallbackInfo &info);
  Napi::Value ActivationCounts(const Napi::CallbackInfo &info);
  Napi::Value ResetActivationCounts(const Napi::CallbackInfo &info);
  Napi::Value SetActivationCapture(const Napi::CallbackInfo &info);
  Napi::Value ActivationCapture(const Napi::CallbackInfo &info);
  Napi::Value Dispose(const Napi::CallbackInfo &info);

  rs_context *ctx_ = nullptr;
  Napi::ObjectReference model_;  // keeps the model alive while this context lives
  std::shared_ptr<int> live_;
  int n_vocab_ = 0, n_layer_ = 0, n_ff_ = 0, n_embd_ = 0;
  bool busy_ = false;  // a decode is running on a worker thread
};

}  // namespace rs_napi

// Module entry: registers the classes and functions of the addon. Loaded only by
// server/engine/binding.ts.
#include <napi.h>

#include "napi_kernels.h"
#include "napi_model.h"

namespace rs_napi {

// measureBandwidth(threads, megabytes, iters) -> Promise<number GB/s>
Napi::Value MeasureBandwidth(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "measureBandwidth(threads, megabytes, iters)");
  int threads = info[0].As<Napi::Number>().Int32Value();
  uint64_t bytes = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()) << 20;
  int iters = info[2].As<Napi::Number>().Int32Value();
  return PromiseWorker<double>::Start(
      env,
      [threads, bytes, iters]() {
        double gbs = 0;
        rs_error err{};
        check(rs_measure_read_bandwidth(threads, bytes, iters, &gbs, &err), err);
        return gbs;
      },
      [](Napi::Env env, double &gbs) -> Napi::Value { return Napi::Number::New(env, gbs); });
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  auto *data = new AddonData();
  data->model_ctor = Napi::Persistent(ModelWrap::Init(env));
  data->context_ctor = Napi::Persistent(ContextWrap::Init(env));
  env.SetInstanceData<AddonData>(data);
  exports.Set("loadModel", Napi::Function::New(env, ModelWrap::Load, "loadModel"));
  exports.Set("kernels", CreateKernelBindings(env));
  exports.Set("measureBandwidth", Napi::Function::New(env, MeasureBandwidth, "measureBandwidth"));
#ifdef RS_HAVE_CUDA
  exports.Set("cudaCompiled", Napi::Boolean::New(env, true));
#else
  exports.Set("cudaCompiled", Napi::Boolean::New(env, false));
#endif
  return exports;
}

}  // namespace rs_napi

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return rs_napi::InitModule(env, exports); }

NODE_API_MODULE(relu_serve, Init)

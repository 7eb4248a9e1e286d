// Module entry: registers the classes and functions of the addon. Loaded only by
// server/engine/binding.ts.
#include <napi.h>

#include "napi_kernels.h"
#include "napi_model.h"

namespace rs_napi {

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  auto *data = new AddonData();
  data->model_ctor = Napi::Persistent(ModelWrap::Init(env));
  data->context_ctor = Napi::Persistent(ContextWrap::Init(env));
  env.SetInstanceData<AddonData>(data);
  exports.Set("loadModel", Napi::Function::New(env, ModelWrap::Load, "loadModel"));
  exports.Set("kernels", CreateKernelBindings(env));
#ifdef RS_HAVE_CUDA
  exports.Set("cudaCompiled", Napi::Boolean::New(env, true));
#else
  exports.Set("cudaCompiled", Napi::Boolean::New(env, false));
#endif
  return exports;
}

}  // namespace rs_napi

NODE_API_MODULE(relu_serve, rs_napi::InitModule)

// Module entry: registers the classes and functions of the addon. Loaded only by
// server/engine/binding.ts.
#include <napi.h>

#include <vector>

#include "napi_kernels.h"
#include "napi_model.h"
#include "napi_train.h"
#ifdef RS_HAVE_CUDA
#include "rs_cuda.h"
#endif

namespace rs_napi {

// measureBandwidth(maxThreads, onlyThreads, megabytes, reps, patterns, pages, isas)
//   -> Promise<[{ pattern, isa, threads, hugePages, best, median }]> (GB/s; rs_bandwidth_params)
Napi::Value MeasureBandwidth(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7)
    throw Napi::TypeError::New(env, "measureBandwidth(maxThreads, onlyThreads, megabytes, reps, patterns, pages, isas)");
  for (size_t i = 0; i < 7; i++)
    if (!info[i].IsNumber()) throw Napi::TypeError::New(env, "measureBandwidth: every argument is a number");
  rs_bandwidth_params p = rs_bandwidth_default_params();
  p.max_threads = info[0].As<Napi::Number>().Int32Value();
  p.only_threads = info[1].As<Napi::Number>().Int32Value();
  p.bytes = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()) << 20;
  p.reps = info[3].As<Napi::Number>().Int32Value();
  p.patterns = info[4].As<Napi::Number>().Uint32Value();
  p.pages = info[5].As<Napi::Number>().Uint32Value();
  p.isas = info[6].As<Napi::Number>().Uint32Value();
  using Rows = std::vector<rs_bandwidth_row>;
  return PromiseWorker<Rows>::Start(
      env,
      [p]() {
        Rows rows(RS_BANDWIDTH_MAX_ROWS);
        int n = 0;
        rs_error err{};
        check(rs_measure_read_bandwidth(&p, rows.data(), RS_BANDWIDTH_MAX_ROWS, &n, &err), err);
        rows.resize(static_cast<size_t>(n));
        return rows;
      },
      [](Napi::Env env, Rows &rows) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, rows.size());
        for (size_t i = 0; i < rows.size(); i++) {
          Napi::Object o = Napi::Object::New(env);
          o.Set("pattern", rows[i].pattern_name);
          o.Set("isa", rows[i].isa_name);
          o.Set("threads", rows[i].threads);
          o.Set("hugePages", Napi::Boolean::New(env, rows[i].huge_pages != 0));
          o.Set("best", rows[i].best_gb_per_s);
          o.Set("median", rows[i].median_gb_per_s);
          out.Set(static_cast<uint32_t>(i), o);
        }
        return out;
      });
}

// cuda: { compiled, devices() } - whether a GPU is used is decided at run time; devices()
// is 0 on a machine without a driver or GPU.
Napi::Object CudaBindings(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
#ifdef RS_HAVE_CUDA
  o.Set("compiled", Napi::Boolean::New(env, true));
  o.Set("devices", Napi::Function::New(env, [](const Napi::CallbackInfo &info) -> Napi::Value {
          return Napi::Number::New(info.Env(), rs_cuda_devices());
        }));
#else
  o.Set("compiled", Napi::Boolean::New(env, false));
  o.Set("devices", Napi::Function::New(env, [](const Napi::CallbackInfo &info) -> Napi::Value {
          return Napi::Number::New(info.Env(), 0);
        }));
#endif
  return o;
}

// deviceMemory(device, emuMemory) -> Promise<{ total, free }> (bytes)
Napi::Value DeviceMemory(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "deviceMemory(device, emuMemory)");
  const std::string device = info[0].As<Napi::String>().Utf8Value();
  const uint64_t emu = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  struct Mem {
    uint64_t total = 0, free = 0;
  };
  return PromiseWorker<Mem>::Start(
      env,
      [device, emu]() {
        Mem m;
        rs_error err{};
        check(rs_device_memory(device.c_str(), emu, &m.total, &m.free, &err), err);
        return m;
      },
      [](Napi::Env env, Mem &m) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("total", static_cast<double>(m.total));
        o.Set("free", static_cast<double>(m.free));
        return o;
      });
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  auto *data = new AddonData();
  data->model_ctor = Napi::Persistent(ModelWrap::Init(env));
  data->context_ctor = Napi::Persistent(ContextWrap::Init(env));
  env.SetInstanceData<AddonData>(data);
  exports.Set("loadModel", Napi::Function::New(env, ModelWrap::Load, "loadModel"));
  exports.Set("kernels", CreateKernelBindings(env));
  exports.Set("measureBandwidth", Napi::Function::New(env, MeasureBandwidth, "measureBandwidth"));
  exports.Set("cuda", CudaBindings(env));
  exports.Set("deviceMemory", Napi::Function::New(env, DeviceMemory, "deviceMemory"));
  exports.Set("training", CreateTrainBindings(env));
  return exports;
}

}  // namespace rs_napi

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return rs_napi::InitModule(env, exports); }

NODE_API_MODULE(relu_serve, Init)

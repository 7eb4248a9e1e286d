#pragma once

#include <napi.h>

namespace rs_napi {

// { trainPredictor, predictorLogits }: see napi_train.cc.
Napi::Object CreateTrainBindings(Napi::Env env);

}  // namespace rs_napi

// JS test and benchmark surface over the CPU kernels (kernels/include/rs_kernels.h):
// exported as `kernels` by the module init and typed in server/engine/native-kernels.ts.
#pragma once

#include <napi.h>

Napi::Object CreateKernelBindings(Napi::Env env);

// What the device implementations share.
#include <cstdlib>
#include <cstring>

#include "device.h"

namespace rs {

const char *phase_name(int phase) {
  static const char *names[kPhases] = {"attention", "predictor", "hot_ffn", "transfer_wait", "merge", "output"};
  return phase >= 0 && phase < kPhases ? names[phase] : "?";
}

bool Device::profiling() {
  const char *e = std::getenv("RELU_SERVE_PROFILE_DEVICE");
  return e && std::strcmp(e, "0") != 0 && *e;
}

}  // namespace rs

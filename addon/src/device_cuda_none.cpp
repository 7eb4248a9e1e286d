// The CUDA device in a build without CUDA (nvcc was not found when the addon was built).
#include "device.h"

namespace rs {

int cuda_device_count() { return 0; }

std::unique_ptr<Device> make_cuda_device(int) {
  throw InvalidArgError(
      "device 'cuda' is not available: this build of relu-serve has no CUDA support (nvcc was not found when it "
      "was built); rebuild on a machine with the CUDA toolkit, or use --device cpu (or emu)");
}

}  // namespace rs

// Memory read bandwidth of this machine (the C ABI wrapper is rs_measure_read_bandwidth).
#pragma once

#include <cstdint>

namespace rs {

// GB/s: n_threads threads (0: all cores) streaming disjoint slices of a `bytes`-byte
// buffer, median of `iters` passes. Throws InvalidArgError / std::bad_alloc.
double measure_read_bandwidth(int n_threads, uint64_t bytes, int iters);

}  // namespace rs

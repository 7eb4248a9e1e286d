// This machine's memory read bandwidth: the limit every decode figure is judged against
// (the C ABI wrapper is rs_measure_read_bandwidth).
#pragma once

#include <cstdint>
#include <vector>

#include "rs_kernels.h"

namespace rs {

struct BandwidthOptions {
  int max_threads = 0;            // thread counts 1, 2, 4, ... up to this and this (0: all cores)
  int only_threads = 0;           // > 0: just this thread count
  uint64_t bytes = 1ull << 30;    // buffer read per pass (at least 64 MiB: far past the caches)
  int reps = 5;                   // passes per configuration
  uint32_t patterns = (1u << RS_READ_PATTERN_COUNT) - 1;  // bit p: rs_read_pattern p
  uint32_t pages = 3;             // bit 0: ordinary pages, bit 1: transparent huge pages
  uint32_t isas = ~0u;            // bit i: rs_isa i (only the vector ISAs this CPU has are tried)
};

// One configuration's passes, in GB/s (1e9 bytes/s).
struct BandwidthRow {
  rs_read_pattern pattern;
  rs_isa isa;
  int threads;
  bool huge_pages;
  double best;    // the fastest pass
  double median;  // the middle pass
};

// Times every configuration the options allow. Throws InvalidArgError / std::bad_alloc.
std::vector<BandwidthRow> probe_read_bandwidth(const BandwidthOptions &o);

}  // namespace rs

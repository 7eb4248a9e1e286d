// This machine's memory read bandwidth, measured as the best sustained read rate any read
// loop we can write reaches: several read patterns (rs_read_pattern), each vector ISA,
// 1..n threads, ordinary and huge pages, best pass of several. A figure judged against a
// limit lower than the real one flatters it, so the probe errs towards the highest rate.
//
// Method: one buffer far larger than the caches is touched first (no page faults in the
// timing); each configuration then runs `reps` passes, each reading the whole buffer
// once, split into one contiguous slice per thread. The threads are the probe's own (the
// caller is thread 0); they start on a shared flag and each records when it finished,
// so a pass is timed from the flag to the last thread's end and nothing else runs.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "bandwidth.h"
#include "gguf.h"
#include "thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define RS_BW_PAUSE() _mm_pause()
#else
#define RS_BW_PAUSE() std::this_thread::yield()
#endif

namespace rs {
namespace {

using Clock = std::chrono::steady_clock;

struct Buffer {
  uint8_t *p = nullptr;
  uint64_t bytes = 0;
  ~Buffer() { std::free(p); }
};

// A buffer on 2 MiB boundaries, with transparent huge pages asked for or refused, every
// page touched.
void make_buffer(Buffer &b, uint64_t bytes, bool huge) {
  const uint64_t align = 2ull << 20;
  bytes = (bytes + align - 1) / align * align;
  b.p = static_cast<uint8_t *>(std::aligned_alloc(align, bytes));
  if (!b.p) throw std::bad_alloc();
  b.bytes = bytes;
#ifdef MADV_HUGEPAGE
  madvise(b.p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#else
  (void)huge;
#endif
  for (uint64_t i = 0; i < bytes; i += 4096) b.p[i] = static_cast<uint8_t>(i >> 12);
}

// The thread counts to try: 1, 2, 4, ... below max, then max.
std::vector<int> thread_counts(const BandwidthOptions &o) {
  if (o.only_threads > 0) return {o.only_threads};
  const int max = o.max_threads > 0 ? o.max_threads : default_thread_count();
  std::vector<int> out;
  for (int t = 1; t < max; t *= 2) out.push_back(t);
  out.push_back(max);
  return out;
}

// The vector ISAs this CPU has (scalar only where there is none).
std::vector<rs_isa> isas_to_try(uint32_t mask) {
  const rs_isa best = rs_cpu_best_isa();
  std::vector<rs_isa> out;
  for (rs_isa i : {RS_ISA_AVX2, RS_ISA_AVX512})
    if (i <= best && (mask >> i & 1)) out.push_back(i);
  if (out.empty()) out.push_back(RS_ISA_SCALAR);
  return out;
}

// `reps` timed passes of n threads over the buffer; GB/s per pass.
std::vector<double> time_passes(const Buffer &buf, const rs_float_kernels *fk, rs_read_pattern pattern, int n,
                                int reps) {
  const uint64_t slice = buf.bytes / n / 4096 * 4096;
  std::atomic<int> go{0};         // pass number the threads may start
  std::atomic<int> finished{0};   // threads done with the current pass
  std::vector<Clock::time_point> ends(n);
  std::vector<uint64_t> sink(n, 0);
  auto read = [&](int t) {
    sink[t] += fk->stream_read(buf.p + t * slice, slice, pattern);
    ends[t] = Clock::now();
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < n; t++)
    threads.emplace_back([&, t] {
      for (int pass = 1; pass <= reps; pass++) {
        while (go.load(std::memory_order_acquire) < pass) RS_BW_PAUSE();
        read(t);
        finished.fetch_add(1, std::memory_order_acq_rel);
      }
    });
  std::vector<double> out;
  for (int pass = 1; pass <= reps; pass++) {
    finished.store(0, std::memory_order_relaxed);
    const Clock::time_point t0 = Clock::now();
    go.store(pass, std::memory_order_release);
    read(0);
    // Spinning here would take a core from a late thread: yield instead.
    while (finished.load(std::memory_order_acquire) < n - 1) std::this_thread::yield();
    const Clock::time_point end = *std::max_element(ends.begin(), ends.end());
    const double s = std::chrono::duration<double>(end - t0).count();
    out.push_back(static_cast<double>(slice) * n / s / 1e9);
  }
  for (std::thread &t : threads) t.join();
  volatile uint64_t keep = 0;
  for (uint64_t v : sink) keep = keep + v;
  (void)keep;
  return out;
}

}  // namespace

std::vector<BandwidthRow> probe_read_bandwidth(const BandwidthOptions &o) {
  if (o.bytes < (64ull << 20)) throw InvalidArgError("bandwidth buffer must be at least 64 MiB");
  if (o.bytes > (64ull << 30)) throw InvalidArgError("bandwidth buffer must be at most 64 GiB");
  if (o.reps < 1 || o.reps > 100) throw InvalidArgError("bandwidth repetitions must be in [1, 100]");
  if (o.max_threads < 0 || o.max_threads > 1024 || o.only_threads < 0 || o.only_threads > 1024)
    throw InvalidArgError("bandwidth thread count must be in [0, 1024]");
  if ((o.patterns & ((1u << RS_READ_PATTERN_COUNT) - 1)) == 0) throw InvalidArgError("no read pattern selected");
  if ((o.pages & 3) == 0) throw InvalidArgError("no page kind selected");
  if ((o.isas & ((1u << (RS_ISA_AVX512 + 1)) - 1)) == 0) throw InvalidArgError("no ISA selected");
  std::vector<BandwidthRow> rows;
  for (bool huge : {false, true}) {
    if (!(o.pages >> (huge ? 1 : 0) & 1)) continue;
    Buffer buf;
    make_buffer(buf, o.bytes, huge);
    for (rs_isa isa : isas_to_try(o.isas)) {
      const rs_float_kernels *fk = rs_cpu_float_kernels(isa);
      for (int n : thread_counts(o))
        for (int p = 0; p < RS_READ_PATTERN_COUNT; p++) {
          if (!(o.patterns >> p & 1)) continue;
          std::vector<double> passes = time_passes(buf, fk, static_cast<rs_read_pattern>(p), n, o.reps);
          std::sort(passes.begin(), passes.end());
          rows.push_back({static_cast<rs_read_pattern>(p), fk->isa, n, huge, passes.back(), passes[passes.size() / 2]});
        }
    }
  }
  return rows;
}

}  // namespace rs

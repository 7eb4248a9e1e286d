// The emulator's runtime (see cuda_emu.h): blocks of fibers, streams on worker threads,
// memory, events and graphs.
//
// Fibers: each OS thread keeps a pool of them, each started once with makecontext (whose
// swapcontext saves the signal mask: a system call) and switched from then on with
// _setjmp/_longjmp, which save only registers. A fiber runs one thread of one block at a
// time and then waits to be given the next.
#undef _FORTIFY_SOURCE  // its longjmp check refuses jumps between stacks, which is the point here
#include "cuda_emu.h"

#include <setjmp.h>
#include <ucontext.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace rs_emu {

namespace {

constexpr size_t kStack = 64 << 10;

struct Fiber {
  ucontext_t start;  // used once, to enter fiber_main on the fiber's own stack
  jmp_buf jb;
  ThreadState st;
  std::vector<char> stack;
  bool done = true;
  std::function<bool()> waiting;  // the condition a suspended fiber waits for
};

struct Warp {
  uint64_t gen = 0;
  unsigned arrived = 0, alive = 0, ballot = 0;
  alignas(16) unsigned char slot[32][16];
};

struct Block {
  std::vector<std::unique_ptr<Fiber>> fibers;  // the pool: fibers never move once started
  std::vector<Warp> warps;
  int live = 0;
  uint64_t bar_gen = 0;
  int bar_arrived = 0;
  const std::function<void()> *kernel = nullptr;
};

thread_local Block *t_block = nullptr;
thread_local Fiber *t_fiber = nullptr;
thread_local jmp_buf t_sched;
thread_local ucontext_t t_sched_uc;

// Back to the scheduler, to be resumed where we left off.
void to_scheduler() {
  if (_setjmp(t_fiber->jb) == 0) _longjmp(t_sched, 1);
}

void fiber_main() {
  for (;;) {
    to_scheduler();  // parked until given a thread of a block
    (*t_block->kernel)();
    t_fiber->done = true;
  }
}

void yield_until(std::function<bool()> cond) {
  t_fiber->waiting = std::move(cond);
  to_scheduler();
}

// Runs fiber f until it suspends or finishes its thread.
void resume(Fiber &f) {
  t_fiber = &f;
  if (_setjmp(t_sched) == 0) _longjmp(f.jb, 1);
}

Fiber &pooled(Block &b, unsigned i) {
  while (b.fibers.size() <= i) {
    auto f = std::make_unique<Fiber>();
    f->stack.assign(kStack, 0);
    getcontext(&f->start);
    f->start.uc_stack.ss_sp = f->stack.data();
    f->start.uc_stack.ss_size = kStack;
    f->start.uc_link = nullptr;
    makecontext(&f->start, fiber_main, 0);
    // Enter fiber_main once: it parks at to_scheduler, which jumps back to t_sched here.
    t_fiber = f.get();
    if (_setjmp(t_sched) == 0) swapcontext(&t_sched_uc, &f->start);
    b.fibers.push_back(std::move(f));
  }
  return *b.fibers[i];
}

void run_block(Block &b, const dim3 &grid, const dim3 &bidx, const dim3 &block) {
  const unsigned n = block.x * block.y * block.z;
  if (n == 0 || n > 1024) throw std::runtime_error("emulated launch: " + std::to_string(n) + " threads per block");
  b.warps.assign((n + 31) / 32, Warp{});
  b.live = static_cast<int>(n);
  b.bar_gen = 0;
  b.bar_arrived = 0;
  for (unsigned i = 0; i < n; i++) {
    Fiber &f = pooled(b, i);
    f.done = false;
    f.waiting = nullptr;
    f.st.thread_idx = dim3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
    f.st.block_idx = bidx;
    f.st.block_dim = block;
    f.st.grid_dim = grid;
    f.st.linear = i;
    f.st.lane = i % 32;
    f.st.warp = i / 32;
    b.warps[i / 32].alive |= 1u << (i % 32);
  }
  t_block = &b;
  for (;;) {
    bool progress = false, all_done = true;
    for (unsigned i = 0; i < n; i++) {
      Fiber &f = *b.fibers[i];
      if (f.done) continue;
      all_done = false;
      if (f.waiting && !f.waiting()) continue;
      f.waiting = nullptr;
      resume(f);
      progress = true;
      if (f.done) {
        b.live--;
        b.warps[i / 32].alive &= ~(1u << (i % 32));
        // An exited thread no longer holds back a block barrier.
        if (b.bar_arrived > 0 && b.bar_arrived == b.live) {
          b.bar_arrived = 0;
          b.bar_gen++;
        }
      }
    }
    if (all_done) break;
    if (!progress) {
      b.fibers.clear();  // they are stuck mid-kernel: never resume them
      t_block = nullptr;
      throw std::runtime_error("emulated kernel deadlocked: a barrier that not every thread reaches");
    }
  }
  t_block = nullptr;
  t_fiber = nullptr;
}

void warp_barrier(Warp &w, unsigned mask, unsigned lane) {
  const uint64_t g = w.gen;
  w.arrived |= 1u << lane;
  auto complete = [&w, mask] {
    const unsigned need = mask & w.alive;
    return (w.arrived & need) == need;
  };
  if (complete()) {
    w.arrived = 0;
    w.gen++;
    return;
  }
  yield_until([&w, g, complete] {
    if (w.gen != g) return true;
    if (!complete()) return false;
    w.arrived = 0;
    w.gen++;
    return true;
  });
}

}  // namespace

ThreadState *current() { return &t_fiber->st; }

void syncthreads() {
  Block &b = *t_block;
  const uint64_t g = b.bar_gen;
  if (++b.bar_arrived == b.live) {
    b.bar_arrived = 0;
    b.bar_gen++;
    return;
  }
  yield_until([&b, g] { return b.bar_gen != g; });
}

void warp_exchange(unsigned mask, const void *value, size_t size, int src_lane, void *out) {
  Warp &w = t_block->warps[t_fiber->st.warp];
  const unsigned lane = t_fiber->st.lane;
  std::memcpy(w.slot[lane], value, size);
  warp_barrier(w, mask, lane);  // everyone has deposited
  std::memcpy(out, w.slot[src_lane & 31], size);
  warp_barrier(w, mask, lane);  // everyone has read
}

unsigned warp_ballot(unsigned mask, bool pred) {
  Warp &w = t_block->warps[t_fiber->st.warp];
  const unsigned lane = t_fiber->st.lane;
  if (pred) __atomic_fetch_or(&w.ballot, 1u << lane, __ATOMIC_RELAXED);
  warp_barrier(w, mask, lane);
  const unsigned r = w.ballot & mask;
  warp_barrier(w, mask, lane);
  w.ballot = 0;  // every lane clears it after everyone has read; harmless repeats
  warp_barrier(w, mask, lane);
  return r;
}

uint64_t globaltimer_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

void nanosleep_yield() { std::this_thread::yield(); }

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) {
        man <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {  // round to nearest even
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t man = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (man ? 0x200 : 0));
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    man |= 0x800000;
    const int shift = 14 - exp;
    uint32_t h = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (h & 1))) h++;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(exp) << 10) | (man >> 13);
  const uint32_t rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return static_cast<uint16_t>(sign | h);
}

namespace {

void run_grid(const dim3 &grid, const dim3 &block, const std::function<void()> &kernel) {
  thread_local Block b;  // fibers' stacks are reused between launches
  b.kernel = &kernel;
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) run_block(b, grid, dim3(x, y, z), block);
}

thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t fail(cudaError_t e) {
  t_last_error = e;
  return e;
}

}  // namespace

}  // namespace rs_emu

// ---------------------------------------------------------------- streams, events, graphs

struct rs_emu_graph {
  std::vector<std::function<void()>> ops;
};

struct rs_emu_stream {
  std::mutex mu;
  std::condition_variable cv, idle_cv;
  std::deque<std::function<void()>> queue;
  bool stop = false, running = false;
  cudaError_t error = cudaSuccess;
  rs_emu_graph *capture = nullptr;
  std::thread worker;

  rs_emu_stream() : worker([this] { loop(); }) {}
  ~rs_emu_stream() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    cv.notify_all();
    worker.join();
  }
  void push(std::function<void()> op) {
    std::lock_guard<std::mutex> lk(mu);
    if (capture) {
      capture->ops.push_back(std::move(op));
      return;
    }
    queue.push_back(std::move(op));
    cv.notify_all();
  }
  void loop() {
    for (;;) {
      std::function<void()> op;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;
        op = std::move(queue.front());
        queue.pop_front();
        running = true;
      }
      try {
        if (error == cudaSuccess) op();
      } catch (const std::exception &e) {
        std::fprintf(stderr, "CUDA emulator: %s\n", e.what());
        error = cudaErrorInvalidValue;
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        running = false;
      }
      idle_cv.notify_all();
    }
  }
  cudaError_t sync() {
    std::unique_lock<std::mutex> lk(mu);
    idle_cv.wait(lk, [&] { return queue.empty() && !running; });
    return error;
  }
};

struct rs_emu_event {
  std::atomic<bool> done{true};
  std::chrono::steady_clock::time_point t;
};

namespace {

// The null stream runs everything at once on the calling thread.
void on_stream(cudaStream_t s, std::function<void()> op) {
  if (!s) op();
  else s->push(std::move(op));
}

struct Memory {
  std::mutex mu;
  std::map<void *, size_t> blocks;
  size_t used = 0;
  size_t total() const {
    const char *e = std::getenv("RS_CUDA_EMU_MEMORY_MIB");
    return (e ? static_cast<size_t>(std::atoll(e)) : 4096) << 20;
  }
};
Memory &memory() {
  static Memory m;
  return m;
}

}  // namespace

void rs_emu::launch(cudaStream_t s, dim3 grid, dim3 block, std::function<void()> kernel) {
  on_stream(s, [grid, block, k = std::move(kernel)] { run_grid(grid, block, k); });
}

cudaError_t cudaGetDeviceCount(int *n) {
  const char *e = std::getenv("RS_CUDA_EMU_DEVICES");
  *n = e ? std::atoi(e) : 1;
  return *n > 0 ? cudaSuccess : rs_emu::fail(cudaErrorNoDevice);
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "CUDA emulator (CPU)");
  p->totalGlobalMem = memory().total();
  p->multiProcessorCount = 4;
  p->major = 9;
  p->minor = 0;
  p->sharedMemPerBlockOptin = 227 << 10;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetLastError() {
  const cudaError_t e = rs_emu::t_last_error;
  rs_emu::t_last_error = cudaSuccess;
  return e;
}
const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory (emulated device)";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected (emulator)";
    case cudaErrorNotReady: return "device not ready";
    default: return "invalid argument (emulator)";
  }
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  Memory &m = memory();
  std::lock_guard<std::mutex> lk(m.mu);
  *total = m.total();
  *free_bytes = *total - m.used;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t bytes) {
  Memory &m = memory();
  std::lock_guard<std::mutex> lk(m.mu);
  if (m.used + bytes > m.total()) return rs_emu::fail(cudaErrorMemoryAllocation);
  *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  if (!*p) return rs_emu::fail(cudaErrorMemoryAllocation);
  m.blocks[*p] = bytes;
  m.used += bytes;
  return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
  if (!p) return cudaSuccess;
  Memory &m = memory();
  std::lock_guard<std::mutex> lk(m.mu);
  auto it = m.blocks.find(p);
  if (it == m.blocks.end()) return rs_emu::fail(cudaErrorInvalidValue);
  m.used -= it->second;
  m.blocks.erase(it);
  std::free(p);
  return cudaSuccess;
}
namespace {
// Pinned host allocations, to tell when a copy touches one.
struct Pinned {
  std::mutex mu;
  std::map<uintptr_t, size_t> ranges;
  bool contains(const void *p) {
    std::lock_guard<std::mutex> lk(mu);
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    auto it = ranges.upper_bound(a);
    if (it == ranges.begin()) return false;
    --it;
    return a < it->first + it->second;
  }
};
Pinned &pinned() {
  static Pinned p;
  return p;
}
}  // namespace

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned) {
  *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  if (!*p) return rs_emu::fail(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lk(pinned().mu);
  pinned().ranges[reinterpret_cast<uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
  {
    std::lock_guard<std::mutex> lk(pinned().mu);
    pinned().ranges.erase(reinterpret_cast<uintptr_t>(p));
  }
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaHostGetDevicePointer(void **dev, void *host, unsigned) {
  *dev = host;  // one address space, as with unified addressing on a GPU
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind) {
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind, cudaStream_t s) {
  // As seen on an H200: a copy to or from pinned host memory did not return to the host
  // before the stream's earlier work had finished. Kept here, so that a design relying on
  // such a copy being queued (behind a kernel that waits for the host) deadlocks in CI too.
  if (s && (pinned().contains(dst) || pinned().contains(src))) s->sync();
  on_stream(s, [=] { std::memmove(dst, src, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s) {
  on_stream(s, [=] { std::memset(dst, value, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemset(void *dst, int value, size_t bytes) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
  *s = new rs_emu_stream();
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) { return s ? s->sync() : cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t s) {
  if (!s) return cudaSuccess;
  std::lock_guard<std::mutex> lk(s->mu);
  if (s->error != cudaSuccess) return s->error;
  return s->queue.empty() && !s->running ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
  *e = new rs_emu_event();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  e->done = false;
  on_stream(s, [e] {
    e->t = std::chrono::steady_clock::now();
    e->done = true;
  });
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  while (!e->done) std::this_thread::yield();
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (!s) return rs_emu::fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lk(s->mu);
  s->capture = new rs_emu_graph();
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
  std::lock_guard<std::mutex> lk(s->mu);
  *g = s->capture;
  s->capture = nullptr;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long) {
  *exec = new rs_emu_graph(*g);
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  for (const auto &op : exec->ops) on_stream(s, op);
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}

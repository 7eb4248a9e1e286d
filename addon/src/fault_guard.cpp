// The SIGBUS side of fault_guard.h. The handler only does async-signal-safe things:
// lock-free atomic loads and stores, a thread-local pointer read, siglongjmp, and
// sigaction/raise when the fault is not ours.
#include "fault_guard.h"

#include <signal.h>

#include <atomic>
#include <mutex>

namespace rs {
namespace fault {

const char *const kFaultedMessage =
    "the model file changed on disk while the engine read it (a read of the memory-mapped file faulted: "
    "truncated in place?); this model can no longer be served: restart to load the file again "
    "(--no-mmap keeps a private copy that the file's changes cannot reach)";

namespace {

// A fixed table, so the handler never allocates or locks. begin == 0 marks a free slot;
// a slot is filled end-first, so a handler that sees begin set also sees its end.
constexpr int kSlots = 64;
struct Slot {
  std::atomic<uintptr_t> begin{0}, end{0};
  std::atomic<bool> faulted{false};
};
Slot g_slots[kSlots];
std::atomic<uint64_t> g_recovered{0};
std::mutex g_register_mu;  // registration only; never taken by the handler
struct sigaction g_previous;
std::once_flag g_installed;

thread_local Recovery *t_recovery = nullptr;

void chain(int sig, siginfo_t *si, void *uc) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, si, uc);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    return g_previous.sa_handler(sig);
  }
  // Nobody else wanted it: the default action (the process dies, as without us).
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);
}

void on_sigbus(int sig, siginfo_t *si, void *uc) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(si->si_addr);
  for (Slot &s : g_slots) {
    const uintptr_t b = s.begin.load(std::memory_order_acquire);
    if (b == 0 || a < b || a >= s.end.load(std::memory_order_relaxed)) continue;
    // Ours. The thread-local is only read for faults inside our mappings, which only
    // threads that entered a guarded region (and so touched it already) should make.
    Recovery *r = t_recovery;
    if (!r) break;
    s.faulted.store(true, std::memory_order_release);
    g_recovered.fetch_add(1, std::memory_order_relaxed);
    siglongjmp(r->jb, 1);
  }
  chain(sig, si, uc);
}

void install() {
  struct sigaction sa = {};
  sa.sa_sigaction = on_sigbus;
  // SA_NODEFER: SIGBUS stays unblocked in the handler, so a thread that jumps out of it
  // can fault (and recover) again; SA_ONSTACK: use an alternate stack if one is set.
  sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &g_previous);
}

}  // namespace

int register_mapping(const void *p, size_t n) {
  std::call_once(g_installed, install);
  std::lock_guard<std::mutex> lk(g_register_mu);
  for (int i = 0; i < kSlots; i++) {
    Slot &s = g_slots[i];
    if (s.begin.load(std::memory_order_relaxed) != 0) continue;
    s.faulted.store(false, std::memory_order_relaxed);
    s.end.store(reinterpret_cast<uintptr_t>(p) + n, std::memory_order_relaxed);
    s.begin.store(reinterpret_cast<uintptr_t>(p), std::memory_order_release);
    return i;
  }
  return -1;
}

void unregister_mapping(int handle) {
  if (handle < 0 || handle >= kSlots) return;
  std::lock_guard<std::mutex> lk(g_register_mu);
  g_slots[handle].begin.store(0, std::memory_order_release);
}

bool faulted(int handle) {
  return handle >= 0 && handle < kSlots && g_slots[handle].faulted.load(std::memory_order_acquire);
}

uint64_t recovered_faults() { return g_recovered.load(std::memory_order_relaxed); }

Recovery *current() { return t_recovery; }
void set_current(Recovery *r) { t_recovery = r; }

}  // namespace fault
}  // namespace rs

// Survives a model file truncated while the engine reads its mapping. A read of a page
// past the new end of a mapped file raises SIGBUS, which by default kills Node. The
// engine's reads of the mapping happen in "guarded" regions (each thread pool task, the
// embedding lookup); a SIGBUS handler that finds the faulting address inside one of our
// mappings and a guarded region on the faulting thread marks that mapping faulted and
// jumps back to the region's start (siglongjmp), which reports the failure as an
// ordinary C++ exception (ModelFileError) once the thread pool's job is over. Any other
// SIGBUS goes to the handler that was installed before ours (Node's, or the default).
//
// What a jump skips: the destructors of the objects the faulting task had alive (a
// leak, once per faulted model) — the kernels hold no locks, and the model is refused
// from then on (Model decodes check FileBytes::faulted()), so nothing reads the
// half-written state again. README "Hardening", configs/README "Model file changes".
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace rs {

// A model's file changed under the engine: a read of its mapping faulted.
struct ModelFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace fault {

// Message of the ModelFileError thrown when a guarded read faulted.
extern const char *const kFaultedMessage;

// Registers [p, p + n) as a mapping whose SIGBUS faults are recoverable (installs the
// handler on first use); returns a handle for faulted() and unregister_mapping(), or
// -1 when the table is full (that mapping's faults are then not recovered).
int register_mapping(const void *p, size_t n);
void unregister_mapping(int handle);
// Whether a guarded read of this mapping has faulted (sticky).
bool faulted(int handle);
// Total recovered faults in this process (tests, logs).
uint64_t recovered_faults();

struct Recovery {
  sigjmp_buf jb;
  Recovery *prev;
};
Recovery *current();
void set_current(Recovery *r);

}  // namespace fault

// Runs f(); returns false (instead of dying) if it faulted on a registered mapping.
// The signal mask is not saved (sigsetjmp(.., 0): no system call per region); the
// handler runs with SA_NODEFER, so SIGBUS is not left blocked after the jump.
template <typename F>
bool guarded_reads(F &&f) {
  fault::Recovery r;
  r.prev = fault::current();
  fault::set_current(&r);
  if (sigsetjmp(r.jb, 0) != 0) {
    fault::set_current(r.prev);
    return false;
  }
  try {
    f();
  } catch (...) {  // an exception leaves the region too: the next fault must not jump here
    fault::set_current(r.prev);
    throw;
  }
  fault::set_current(r.prev);
  return true;
}

}  // namespace rs

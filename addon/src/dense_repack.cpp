// Load-time repacking of the matrices the dense product reads into the layout of the
// fastest kernel for their type (today: Q4_0 eight rows at a time, rs_q4_0x8_pack),
// where this CPU's best kernel table has one. Why: the row-at-a-time Q4_0 dot is
// compute-bound on AVX2 well below memory speed; the interleaved kernel is not (see
// kernels/cpu/avx2_q4_0x8.c). The plain rows stay mapped, so every other reader (the
// reference forward, the device upload, ISAs without the kernel) is unchanged.
#include <sys/mman.h>

#include <chrono>
#include <cstdlib>
#include <new>

#include "model.h"
#include "thread_pool.h"

namespace rs {

namespace {

bool packable(const Weight &w) {
  if (!w || w.type != RS_TYPE_Q4_0 || w.rows % 8 != 0 || w.stride != w.row_bytes) return false;
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(w.type, RS_ISA_BEST);
  return k && k->gemm_x8;
}

}  // namespace

void Model::repack_dense() {
  auto t0 = std::chrono::steady_clock::now();
  // What dense steps read as whole matrices: attention and the output always, the
  // predictors (PowerInfer's Q4_0 files have Q4_0 fc1/fc2: a dense product every step of
  // predictor mode, measured 13% of a 1b file's decode time with plain rows), and the
  // FFN of models without a sparse layout. The FFN of sparse models keeps the file's
  // rows: their sparse blocks are a copy already, a third copy would cost more memory
  // than dense steps on a sparse model are worth, and exact mode's hot gates (computed
  // row by row on a device) must equal the CPU's gate product bit for bit.
  std::vector<Weight *> todo;
  auto want = [&](Weight &w) {
    if (packable(w)) todo.push_back(&w);
  };
  want(output_);
  for (Layer &L : layers_) {
    for (Weight *w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.fc1, &L.fc2}) want(*w);
    if (!L.packed.up)
      for (Weight *w : {&L.gate, &L.up, &L.down}) want(*w);
  }
  if (todo.empty()) return;
  dense_mem_.clear();
  for (size_t i = 0; i < todo.size(); i++) dense_mem_.emplace_back(nullptr, std::free);
  std::vector<char> failed(todo.size(), 0);
  ThreadPool pool(default_thread_count());
  const FileBytes &fb = file_->bytes();
  pool.run(static_cast<int>(todo.size()), [&](int i, int) {
    Weight &w = *todo[i];
    const size_t bytes = w.row_bytes * static_cast<size_t>(w.rows);
    void *mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!mem) {
      failed[i] = 1;
      return;
    }
    rs_q4_0x8_pack(w.data, w.stride, w.rows, w.cols, mem);
    dense_mem_[i].reset(static_cast<uint8_t *>(mem));
    w.x8 = static_cast<const uint8_t *>(mem);
    w.x8_on_host = true;
    // The file's pages of this matrix leave this process's memory (they stay mapped and
    // come back from the page cache if a plain-row reader touches them): otherwise the
    // matrix would be resident twice.
    fb.release(w.data, bytes);
  });
  for (char f : failed)
    if (f) throw std::bad_alloc();
  repack_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace rs

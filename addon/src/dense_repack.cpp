// Load-time copies of the matrices the dense product streams, into one huge-page arena:
// Q4_0 ones in the layout of the fastest kernel for their type (eight rows at a time,
// rs_q4_0x8_pack) where this CPU's best kernel table has one, the others (F16, BF16,
// F32, Q8_0, K-quants) as they are. Why: the row-at-a-time Q4_0 dot is compute-bound on
// AVX2 well below memory speed, the interleaved kernel is not (kernels/cpu/
// avx2_q4_0x8.c); and 2 MiB pages spare every matrix a TLB miss and a prefetcher restart
// per 4 KiB. The file's rows of a copied matrix leave this process (a mapped file's pages
// come back from the page cache if read; a private copy's, --no-mmap, are given back for
// good: FileBytes::discard), unless another Weight shares them (a tied output is the
// token embedding, read row by row). The few readers of a discarded x8 matrix's plain
// rows rebuild them from x8 (plain_rows: the device upload, the reference forward).
#include <sys/mman.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "model.h"
#include "thread_pool.h"

namespace rs {

namespace {

bool packable(const Weight &w) {
  if (!w || w.type != RS_TYPE_Q4_0 || w.rows % 8 != 0 || w.stride != w.row_bytes) return false;
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(w.type, RS_ISA_BEST);
  return k && k->gemm_x8;
}

constexpr int64_t kQk = 32;            // elements per Q4_0 block
constexpr size_t kBlock = 18;          // bytes per Q4_0 block: f16 scale + 16 bytes of nibbles
constexpr size_t kX8Block = 16 + 128;  // one block of 8 rows in the x8 layout (rs_kernels.h)

}  // namespace

void unpack_x8(const Weight &w, uint8_t *dst) {
  if (!w.x8 || w.type != RS_TYPE_Q4_0) throw std::logic_error("unpack_x8: not a repacked Q4_0 matrix");
  const int64_t nb = w.cols / kQk;
  for (int64_t g = 0; g < w.rows / 8; g++)
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t *o = w.x8 + static_cast<size_t>(g * nb + b) * kX8Block;
      for (int r = 0; r < 8; r++) {
        uint8_t *blk = dst + static_cast<size_t>(8 * g + r) * w.row_bytes + static_cast<size_t>(b) * kBlock;
        std::memcpy(blk, o + 2 * r, 2);
        for (int k = 0; k < 4; k++) std::memcpy(blk + 2 + 4 * k, o + 16 + 32 * k + 4 * r, 4);
      }
    }
}

const uint8_t *plain_rows(const Weight &w, std::vector<uint8_t> &scratch) {
  if (!w.plain_discarded) return w.data;
  scratch.resize(w.row_bytes * static_cast<size_t>(w.rows));
  unpack_x8(w, scratch.data());
  return scratch.data();
}

void Model::repack_dense() {
  auto t0 = std::chrono::steady_clock::now();
  // What dense steps read as whole matrices: attention and the output always, the
  // predictors (PowerInfer's Q4_0 files have Q4_0 fc1/fc2: a dense product every step of
  // predictor mode, measured 13% of a 1b file's decode time with plain rows), and the
  // FFN of models without a sparse layout. The FFN of sparse models keeps the file's
  // rows: their sparse blocks are a copy already, a third copy would cost more memory
  // than dense steps on a sparse model are worth, and exact mode's hot gates (computed
  // row by row on a device) must equal the CPU's gate product bit for bit.
  // Q4_0 matrices go into the x8 layout; the others (F16, BF16, F32, Q8_0, K-quants) are
  // copied as they are, for the huge pages alone (below).
  std::vector<Weight *> todo;
  std::vector<char> as_x8;
  // A tied output is the token embedding, also read row by row (get_rows): its rows stay
  // where they are, and only an x8 copy is worth holding beside them.
  auto shared = [&](const Weight &w) { return tied_ && w.data == tok_embd_.data; };
  auto want = [&](Weight &w, bool x8_ok) {
    if (!w || w.stride != w.row_bytes || (shared(w) && !packable(w))) return;
    todo.push_back(&w);
    as_x8.push_back(x8_ok && packable(w));
  };
  want(output_, true);
  for (Layer &L : layers_) {
    for (Weight *w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.fc1, &L.fc2}) want(*w, true);
    if (!L.packed.up)
      for (Weight *w : {&L.gate, &L.up, &L.down}) want(*w, true);
    // Exact mode's gate product, when the blocks hold no gate (a plain ReLU file): the
    // gate is read in full every step. Plain rows: the hybrid runtime multiplies it
    // skipping its hot rows (matmul_rows), which the x8 layout cannot.
    else if (!L.packed.has_gate)
      want(L.gate, false);
  }
  if (todo.empty()) return;
  // One arena for every matrix dense steps stream, 2 MiB-aligned and advised as huge
  // pages: with the file's 4 KiB pages each page is a TLB miss and a restart for the
  // hardware prefetcher (measured, 1b Q4_0 predictor mode: attention 3.6 -> 3.0 ms and
  // the predictor 1.7 -> 1.45 ms per token with the x8 matrices on huge pages).
  constexpr size_t kHugePage = 2u << 20;
  std::vector<size_t> offset(todo.size() + 1, 0);
  for (size_t i = 0; i < todo.size(); i++)
    offset[i + 1] = offset[i] + (todo[i]->row_bytes * static_cast<size_t>(todo[i]->rows) + 63) / 64 * 64;
  const size_t arena = (offset.back() + kHugePage - 1) / kHugePage * kHugePage;
  void *mem = std::aligned_alloc(kHugePage, arena);
  if (!mem) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  madvise(mem, arena, MADV_HUGEPAGE);  // a hint: without THP support it changes nothing
#endif
  dense_mem_.reset(static_cast<uint8_t *>(mem));
  uint8_t *base = dense_mem_.get();
  ThreadPool pool(default_thread_count());
  const FileBytes &fb = file_->bytes();
  pool.run(static_cast<int>(todo.size()), [&](int i, int) {
    Weight &w = *todo[i];
    const size_t bytes = w.row_bytes * static_cast<size_t>(w.rows);
    uint8_t *dst = base + offset[i];
    const uint8_t *src = w.data;
    if (as_x8[i]) {
      rs_q4_0x8_pack(src, w.stride, w.rows, w.cols, dst);
      w.x8 = dst;
      w.x8_on_host = true;
    } else {
      std::memcpy(dst, src, bytes);
      w.data = dst;
    }
    // Otherwise the matrix would be resident twice. A mapped file's pages leave this
    // process's memory (they come back from the page cache if a plain-row reader of an x8
    // matrix touches them); a private copy's are given back for good (an x8 matrix's
    // few plain-row readers then rebuild them: plain_rows). A copied matrix has no reader
    // of the file's rows left.
    if (shared(w)) return;
    if (fb.discard(src, bytes)) w.plain_discarded = as_x8[i];
    else fb.release(src, bytes);
  });
  for (size_t i = 0; i < todo.size(); i++)
    if (as_x8[i]) x8_bytes_ += todo[i]->row_bytes * static_cast<uint64_t>(todo[i]->rows);
  repack_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace rs

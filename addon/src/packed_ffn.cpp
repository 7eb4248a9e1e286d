// Load-time repacking of ReLU FFNs into the per-neuron block layout (see PackedFfn).
// Why: in a sparse step every active neuron is a random jump; with gate, up and down in
// three matrices that is three cold 1-2 KB reads per neuron, which defeats the hardware
// prefetcher. One block per neuron turns it into one sequential read.
#include <sys/mman.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "model.h"
#include "rs_sparse.h"
#include "thread_pool.h"

namespace rs {

namespace {

constexpr size_t kAlign = 64;               // blocks start on cache lines
constexpr size_t kHugePage = 2u << 20;      // x86-64 transparent huge page

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

Weight view(const Weight &like, rs_type type, int64_t rows, int64_t cols, const uint8_t *data, size_t stride) {
  Weight w;
  w.t = like.t;
  w.type = type;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = rs_row_size(type, cols);
  w.stride = stride;
  w.data = data;
  return w;
}

// Copies row i of `src` to offset `off` of block i.
void copy_rows(const Weight &src, uint8_t *base, size_t block, size_t off) {
  for (int64_t i = 0; i < src.rows; i++) std::memcpy(base + i * block + off, src.row(i), src.row_bytes);
}

// Writes the transpose of `down` ([n_embd rows x n_ff cols]) as one row per neuron at
// offset `off` of each block, in f16 or f32. Works on 64 output rows at a time so the
// scattered writes land in whole cache lines.
void transpose_down(const Weight &down, rs_type out_type, uint8_t *base, size_t block, size_t off) {
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(down.type, RS_ISA_BEST);
  const int64_t n_out = down.rows, n_ff = down.cols;
  const int64_t tile = 64;
  std::vector<float> buf(static_cast<size_t>(tile * n_ff));
  for (int64_t o0 = 0; o0 < n_out; o0 += tile) {
    const int64_t m = std::min(tile, n_out - o0);
    for (int64_t r = 0; r < m; r++) k->to_float(down.row(o0 + r), buf.data() + r * n_ff, n_ff);
    float col[64];
    for (int64_t i = 0; i < n_ff; i++) {
      uint8_t *dst = base + i * block + off;
      for (int64_t r = 0; r < m; r++) col[r] = buf[r * n_ff + i];
      if (out_type == RS_TYPE_F32) std::memcpy(reinterpret_cast<float *>(dst) + o0, col, m * sizeof(float));
      else rs_f32_to_f16_row(col, reinterpret_cast<uint16_t *>(dst) + o0, static_cast<int>(m));
    }
  }
}

}  // namespace

void Model::repack_ffn(bool down_int8) {
  auto t0 = std::chrono::steady_clock::now();
  const HParams &h = hp_;
  ThreadPool pool(default_thread_count());
  std::vector<std::string> errors(layers_.size());
  pool.run(static_cast<int>(layers_.size()), [&](int il, int) {
    Layer &L = layers_[il];
    PackedFfn &P = L.packed;
    const bool pwri = static_cast<bool>(L.down_t);
    // The predictor path reads each active neuron's gate from its block, so a layer with
    // a predictor keeps its gate there whichever down layout the file has (a predictor
    // file with a plain ffn_down had no gate in its blocks and crashed in predictor mode).
    const bool with_gate = pwri || static_cast<bool>(L.fc2);
    // Exact mode keeps f32 files exact; other types become f16 (not quantised again).
    const rs_type dt = pwri ? L.down_t.type : (L.down.type == RS_TYPE_F32 ? RS_TYPE_F32 : RS_TYPE_F16);
    const size_t down_bytes = rs_row_size(dt, h.n_embd);
    const size_t gate_off = 0;
    const size_t up_off = with_gate ? L.gate.row_bytes : 0;
    const size_t down_off = up_off + L.up.row_bytes;
    P.has_gate = with_gate;
    P.block = round_up(down_off + down_bytes, kAlign);
    const size_t total = P.block * static_cast<size_t>(h.n_ff);
    // 2 MiB-aligned and advised as huge pages: each active neuron is a random jump, and
    // with 4 KiB pages nearly every one also costs a page-table walk (measured: the
    // gate/up phase ~115 -> ~89 us per layer, +12% tokens/s, 1b Q4_0).
    const size_t bytes = round_up(total, kHugePage);
    void *mem = std::aligned_alloc(kHugePage, bytes);
    if (!mem) {
      errors[il] = "out of memory repacking layer " + std::to_string(il);
      return;
    }
#ifdef MADV_HUGEPAGE
    madvise(mem, bytes, MADV_HUGEPAGE);  // a hint: without THP support it changes nothing
#endif
    P.mem = std::unique_ptr<uint8_t, void (*)(void *)>(static_cast<uint8_t *>(mem), std::free);
    uint8_t *base = P.mem.get();
    if (with_gate) copy_rows(L.gate, base, P.block, gate_off);
    copy_rows(L.up, base, P.block, up_off);
    if (pwri) copy_rows(L.down_t, base, P.block, down_off);
    else transpose_down(L.down, dt, base, P.block, down_off);
    P.down_split = down_int8 && dt == RS_TYPE_Q4_0;
    if (P.down_split) {  // reorder each down row in place (rs_sparse.h: split layout)
      std::vector<uint8_t> tmp(down_bytes);
      for (int64_t i = 0; i < h.n_ff; i++) {
        uint8_t *row = base + i * P.block + down_off;
        rs_q4_0_split_row(row, tmp.data(), h.n_embd / 32);
        std::memcpy(row, tmp.data(), down_bytes);
      }
    }
    // The copied matrices' file pages leave this process's memory now: the sparse path
    // reads the blocks, so keeping both would hold the FFN twice (a 7b Q4_0 file peaked
    // at 1.67x its size). Only dense steps read them again, from the page cache. A
    // plain file's gate stays: exact mode reads it densely every step.
    const FileBytes &fb = file_->bytes();
    for (const Weight *w : {with_gate ? &L.gate : nullptr, &L.up, pwri ? &L.down_t : &L.down})
      if (w && *w) fb.release(w->data, w->stride * static_cast<uint64_t>(w->rows - 1) + w->row_bytes);
    if (with_gate) P.gate = view(L.gate, L.gate.type, h.n_ff, h.n_embd, base + gate_off, P.block);
    P.up = view(L.up, L.up.type, h.n_ff, h.n_embd, base + up_off, P.block);
    P.down = view(pwri ? L.down_t : L.up, dt, h.n_ff, h.n_embd, base + down_off, P.block);
  });
  for (const std::string &e : errors)
    if (!e.empty()) throw std::bad_alloc();
  repack_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t Model::neuron_bytes(int layer) const {
  // What one active neuron costs to read in a sparse step: its gate, up and down rows
  // (the down row as packed; unpacked, a 1/n_ff share of the down matrix).
  const Layer &L = layers_[layer];
  const uint64_t down = L.packed.down ? L.packed.down.row_bytes
                        : L.down_t ? L.down_t.row_bytes
                                   : L.down.row_bytes * L.down.rows / L.down.cols;
  return L.gate.row_bytes + L.up.row_bytes + down;
}

uint64_t Model::predictor_bytes(int layer) const {
  const Layer &L = layers_[layer];
  if (!L.fc1) return 0;
  // Read in the file's types and layout (backend_cpu_sparse.cpp): the file's bytes.
  return L.fc1.row_bytes * L.fc1.rows + L.fc2.row_bytes * L.fc2.rows;
}

}  // namespace rs

#include "device_model.h"

#include <algorithm>
#include <cstring>

#include "fault_guard.h"

#include "rs_sparse.h"

namespace rs {

namespace {

// Hands out consecutive device pieces of one allocation.
class Carver {
 public:
  Carver(uint8_t *base, uint64_t size) : base_(base), size_(size) {}
  uint8_t *take(uint64_t bytes) {
    const uint64_t n = device_piece(bytes);
    if (off_ + n > size_) throw std::logic_error("device layout exceeds its plan");
    uint8_t *p = base_ + off_;
    off_ += n;
    return p;
  }
  uint64_t used() const { return off_; }

 private:
  uint8_t *base_;
  uint64_t size_, off_ = 0;
};

// Uploads from the model file's mapping go through a host staging buffer filled in a
// guarded region (fault_guard.h): a file truncated under the engine faults there, in our
// code, and becomes a ModelFileError, never inside the device's copy routine (a jump out
// of a driver's memcpy could leave it holding its locks).
void upload_from_file(Device &dev, uint8_t *dst, const uint8_t *src, uint64_t bytes) {
  constexpr uint64_t kPiece = 16ull << 20;
  std::vector<uint8_t> stage(static_cast<size_t>(std::min(bytes, kPiece)));
  for (uint64_t off = 0; off < bytes; off += kPiece) {
    const size_t n = static_cast<size_t>(std::min(kPiece, bytes - off));
    if (!guarded_reads([&] { std::memcpy(stage.data(), src + off, n); })) throw ModelFileError(fault::kFaultedMessage);
    dev.upload(dst + off, stage.data(), n);
  }
}

Weight put_weight(Device &dev, Carver &c, const Weight &w) {
  Weight d = w;
  const uint64_t bytes = w.row_bytes * static_cast<uint64_t>(w.rows);
  uint8_t *p = c.take(bytes);
  if (w.plain_discarded) {  // --no-mmap: the host keeps only the repacked rows
    std::vector<uint8_t> rows;
    dev.upload(p, plain_rows(w, rows), bytes);
  } else if (w.stride == w.row_bytes) {
    upload_from_file(dev, p, w.data, bytes);
  } else {
    for (int64_t r = 0; r < w.rows; r++) upload_from_file(dev, p + r * w.row_bytes, w.row(r), w.row_bytes);
  }
  d.data = p;
  d.stride = w.row_bytes;
  d.x8 = nullptr;  // a host pointer; the device has the rows (x8_on_host says how the host multiplies)
  d.plain_discarded = false;
  return d;
}

const float *put_floats(Device &dev, Carver &c, const std::vector<float> &v) {
  uint8_t *p = c.take(v.size() * sizeof(float));
  dev.upload(p, v.data(), v.size() * sizeof(float));
  return reinterpret_cast<const float *>(p);
}

template <typename T>
T *take(Carver &c, uint64_t bytes) {
  return reinterpret_cast<T *>(c.take(bytes));
}

}  // namespace

DeviceModel::DeviceModel(Device &dev, const Model &m, const DeviceShape &shape, VramPlan p, const Placement &placement)
    : plan(std::move(p)), dev_(dev) {
  const HParams &hp = m.hp();
  plan.hot.clear();
  for (const auto &ids : placement.hot) plan.hot.push_back(static_cast<uint32_t>(ids.size()));
  plan.ffn = ffn_bytes(plan, plan.hot);
  const uint64_t total = plan.total();
  arena_ = dev.alloc(total);
  try {
    Carver c(arena_, total);
    layers.resize(static_cast<size_t>(hp.n_layer));
    // PowerInfer's order: attention of every layer, predictors, norms, output, KV cache...
    for (int l = 0; l < hp.n_layer; l++) {
      const Layer &L = m.layers()[static_cast<size_t>(l)];
      DeviceLayer &D = layers[static_cast<size_t>(l)];
      D.wq = put_weight(dev, c, L.wq);
      D.wk = put_weight(dev, c, L.wk);
      D.wv = put_weight(dev, c, L.wv);
      D.wo = put_weight(dev, c, L.wo);
    }
    if (shape.predictors)
      for (int l = 0; l < hp.n_layer; l++) {
        const Layer &L = m.layers()[static_cast<size_t>(l)];
        layers[static_cast<size_t>(l)].fc1 = put_weight(dev, c, L.fc1);
        layers[static_cast<size_t>(l)].fc2 = put_weight(dev, c, L.fc2);
      }
    for (int l = 0; l < hp.n_layer; l++) {
      const Layer &L = m.layers()[static_cast<size_t>(l)];
      layers[static_cast<size_t>(l)].attn_norm = put_floats(dev, c, L.attn_norm);
      layers[static_cast<size_t>(l)].ffn_norm = put_floats(dev, c, L.ffn_norm);
    }
    output_norm = put_floats(dev, c, m.output_norm());
    output = put_weight(dev, c, m.output());
    kv = KvView(hp.n_layer, shape.n_seq, shape.n_ctx, hp.n_head_kv, hp.head_dim);
    kv.k = take<uint16_t>(c, kv.elements() * sizeof(uint16_t));
    kv.v = take<uint16_t>(c, kv.elements() * sizeof(uint16_t));
    // ... then ours: the neuron index and the working buffers ...
    for (int l = 0; l < hp.n_layer; l++) {
      DeviceNeurons &H = layers[static_cast<size_t>(l)].hot;
      const std::vector<int32_t> &ids = placement.hot[static_cast<size_t>(l)];
      std::vector<int32_t> slot_of(static_cast<size_t>(hp.n_ff), -1), hot_ids(static_cast<size_t>(hp.n_ff), -1);
      for (size_t s = 0; s < ids.size(); s++) {
        slot_of[static_cast<size_t>(ids[s])] = static_cast<int32_t>(s);
        hot_ids[s] = ids[s];
      }
      int32_t *so = take<int32_t>(c, slot_of.size() * 4), *hi = take<int32_t>(c, hot_ids.size() * 4);
      dev.upload(reinterpret_cast<uint8_t *>(so), slot_of.data(), slot_of.size() * 4);
      dev.upload(reinterpret_cast<uint8_t *>(hi), hot_ids.data(), hot_ids.size() * 4);
      H.slot_of = so;
      H.hot_ids = hi;
      H.n_hot = static_cast<int64_t>(ids.size());
      H.n_ff = hp.n_ff;
    }
    int64_t max_rank = 0;
    if (shape.predictors)
      for (const Layer &L : m.layers()) max_rank = std::max<int64_t>(max_rank, L.fc1.rows);
    std::vector<uint8_t *> parts;
    const auto layout = workspace_parts(hp, shape, max_rank);
    for (const auto &part : layout) parts.push_back(c.take(part.second));
    size_t i = 0;
    ws.x = reinterpret_cast<float *>(parts[i++]);
    ws.xb = reinterpret_cast<float *>(parts[i++]);
    ws.q = reinterpret_cast<float *>(parts[i++]);
    ws.k = reinterpret_cast<float *>(parts[i++]);
    ws.v = reinterpret_cast<float *>(parts[i++]);
    ws.att = reinterpret_cast<float *>(parts[i++]);
    ws.pos = reinterpret_cast<int32_t *>(parts[i++]);
    ws.seq = reinterpret_cast<int32_t *>(parts[i++]);
    ws.act_q = parts[i++];
    ws.z1 = reinterpret_cast<float *>(parts[i++]);
    ws.scores = reinterpret_cast<float *>(parts[i++]);
    ws.nmask = reinterpret_cast<uint64_t *>(parts[i++]);
    ws.hot_list = reinterpret_cast<int32_t *>(parts[i++]);
    ws.hot_mask = reinterpret_cast<uint64_t *>(parts[i++]);
    ws.counts = reinterpret_cast<int64_t *>(parts[i++]);
    ws.hot_h = reinterpret_cast<float *>(parts[i++]);
    ws.hot_part_floats = static_cast<int64_t>(layout[i].second / sizeof(float));
    ws.hot_part = reinterpret_cast<float *>(parts[i++]);
    ws.hot_y = reinterpret_cast<float *>(parts[i++]);
    ws.cold_y = reinterpret_cast<float *>(parts[i++]);
    ws.logits = reinterpret_cast<float *>(parts[i++]);
    ws.att_part = reinterpret_cast<float *>(parts[i++]);
    ws.att_part_states = std::min(shape.n_batch, kGroupRows) * kAttentionSplits;
    if (i != layout.size()) throw std::logic_error("device workspace layout out of step with workspace_parts");
    // ... then the hot neurons, layer by layer, each a block [gate | up | down] in the
    // file's types (plain files: the gate row from the file's matrix, the down row as
    // repacked), slots in ascending neuron order.
    for (int l = 0; l < hp.n_layer; l++) {
      const Layer &L = m.layers()[static_cast<size_t>(l)];
      const PackedFfn &P = L.packed;
      DeviceNeurons &H = layers[static_cast<size_t>(l)].hot;
      const std::vector<int32_t> &ids = placement.hot[static_cast<size_t>(l)];
      const Weight &gate = P.has_gate ? P.gate : L.gate;
      const size_t gb = gate.row_bytes, ub = P.up.row_bytes, db = P.down.row_bytes, block = gb + ub + db;
      std::vector<uint8_t> host(block * ids.size());
      // Rows of the file's mapping (a gate matrix kept as in the file): guarded as above.
      if (!guarded_reads([&] {
            for (size_t s = 0; s < ids.size(); s++) {
              uint8_t *b = host.data() + s * block;
              std::memcpy(b, gate.row(ids[s]), gb);
              std::memcpy(b + gb, P.up.row(ids[s]), ub);
              // Devices read plain Q4_0 rows (and sum them in f32): undo the CPU's split layout.
              if (P.down_split) rs_q4_0_unsplit_row(P.down.row(ids[s]), b + gb + ub, P.down.cols / 32);
              else std::memcpy(b + gb + ub, P.down.row(ids[s]), db);
            }
          }))
        throw ModelFileError(fault::kFaultedMessage);
      uint8_t *base = c.take(host.size());
      if (!host.empty()) dev.upload(base, host.data(), host.size());
      auto view = [&](const Weight &like, size_t off) {
        Weight w = like;
        w.rows = H.n_hot;
        w.data = base + off;
        w.stride = block;
        return w;
      };
      H.blocks.has_gate = true;
      H.blocks.gate = view(gate, 0);
      H.blocks.up = view(P.up, gb);
      H.blocks.down = view(P.down, gb + ub);
    }
    if (c.used() != total) throw std::logic_error("device layout differs from its plan");
  } catch (...) {
    dev.release(arena_);
    throw;
  }
}

DeviceModel::~DeviceModel() { dev_.release(arena_); }

}  // namespace rs

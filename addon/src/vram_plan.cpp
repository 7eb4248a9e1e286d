#include "vram_plan.h"

#include <algorithm>
#include <cstring>

#include "checksums.h"
#include "device.h"
#include "sparse_ffn_common.h"

namespace rs {

std::vector<std::pair<const char *, uint64_t>> VramPlan::fixed_parts() const {
  return {{"attention", attention}, {"predictors", predictors}, {"norms", norms},         {"output", output},
          {"kv_cache", kv_cache},   {"index", index},           {"workspace", workspace}};
}

std::vector<std::pair<const char *, uint64_t>> workspace_parts(const HParams &hp, const DeviceShape &s,
                                                                int64_t max_rank) {
  const uint64_t nb = static_cast<uint64_t>(s.n_batch), g = std::min<uint64_t>(nb, kGroupRows);
  const uint64_t d = static_cast<uint64_t>(hp.n_embd), kv = static_cast<uint64_t>(hp.kv_dim());
  const uint64_t ff = static_cast<uint64_t>(hp.n_ff), nv = static_cast<uint64_t>(hp.n_vocab);
  const uint64_t chunks = (ff + sparse::kChunk - 1) / sparse::kChunk;
  const uint64_t heads = static_cast<uint64_t>(hp.n_head), hd = static_cast<uint64_t>(hp.head_dim);
  const uint64_t f = sizeof(float);
  return {
      {"x", nb * d * f},  // residual stream
      {"xb", nb * d * f},  // normed input of a block, FFN input
      {"q", nb * d * f},
      {"k", nb * kv * f},
      {"v", nb * kv * f},
      {"att", nb * d * f},  // attention output, block outputs
      {"pos", nb * 4},
      {"seq", nb * 4},
      {"act_q", nb * ((d + 31) / 32) * 36},  // activations quantised for the matrix kernels (32 values: 36 bytes)
      {"z1", g * static_cast<uint64_t>(max_rank) * f},  // predictor hidden layer
      {"scores", g * ff * f},                            // predictor scores / hot gates
      {"nmask", ff * 8},                                // each neuron's row mask
      {"hot_list", ff * 4},
      {"hot_mask", ff * 8},
      {"counts", 64},
      {"hot_h", ff * g * f},                            // the hot entries' activations
      {"hot_part", g * chunks * d * f},  // the hot half's partial sums
      {"hot_y", g * d * f},
      {"cold_y", g * d * f},  // the host's half, copied in
      {"logits", g * nv * f},  // the output head, 64 rows at a time
      {"att_part", g * kAttentionSplits * heads * (hd + 2) * f},  // attention's softmax states per split
  };
}

namespace {

uint64_t weight_piece(const Weight &w) { return w ? device_piece(w.row_bytes * static_cast<uint64_t>(w.rows)) : 0; }

}  // namespace

VramPlan plan_fixed(const Model &m, const DeviceShape &s) {
  const HParams &hp = m.hp();
  VramPlan p;
  int64_t max_rank = 0;
  for (const Layer &L : m.layers()) {
    for (const Weight *w : {&L.wq, &L.wk, &L.wv, &L.wo}) p.attention += weight_piece(*w);
    if (s.predictors) {
      p.predictors += weight_piece(L.fc1) + weight_piece(L.fc2);
      max_rank = std::max<int64_t>(max_rank, L.fc1.rows);
    }
    p.norms += 2 * device_piece(static_cast<uint64_t>(hp.n_embd) * sizeof(float));
    // A hot neuron's block: its gate row (plain files: from the file's gate matrix, which
    // their packed layout leaves out), up row and down row as packed.
    const PackedFfn &B = L.packed;
    p.neuron_cost.push_back((B.has_gate ? B.gate : L.gate).row_bytes + B.up.row_bytes + B.down.row_bytes);
    p.ffn_all += device_piece(p.neuron_cost.back() * static_cast<uint64_t>(hp.n_ff));
    p.index += 2 * device_piece(static_cast<uint64_t>(hp.n_ff) * sizeof(int32_t));
  }
  p.norms += device_piece(static_cast<uint64_t>(hp.n_embd) * sizeof(float));  // output_norm
  p.output = weight_piece(m.output());
  const KvView kv(hp.n_layer, s.n_seq, s.n_ctx, hp.n_head_kv, hp.head_dim);
  p.kv_cache = 2 * device_piece(kv.elements() * sizeof(uint16_t));
  for (const auto &part : workspace_parts(hp, s, max_rank)) p.workspace += device_piece(part.second);
  return p;
}

uint64_t ffn_bytes(const VramPlan &p, const std::vector<uint32_t> &count) {
  uint64_t b = 0;
  for (size_t l = 0; l < count.size(); l++) b += device_piece(p.neuron_cost[l] * count[l]);
  return b;
}

Placement uniform_placement(const VramPlan &plan, int64_t n_ff, uint64_t capacity) {
  const size_t n_layer = plan.neuron_cost.size();
  auto fits = [&](int64_t k) { return ffn_bytes(plan, std::vector<uint32_t>(n_layer, static_cast<uint32_t>(k))) <= capacity; };
  int64_t lo = 0, hi = n_ff;  // fits(lo) holds
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  Placement p;
  p.hot.assign(n_layer, {});
  for (auto &ids : p.hot)
    for (int64_t j = 0; j < lo; j++) ids.push_back(static_cast<int32_t>(j * n_ff / lo));
  p.source = "uniform: no activation statistics, " + std::to_string(lo) + " of " + std::to_string(n_ff) +
             " neurons per layer at evenly spaced ids (profile the model and pass --stats or --placement "
             "for a placement by measured activity)";
  return p;
}

std::array<uint8_t, 32> tensor_heads_digest(const GgufFile &f) {
  Sha256 content;
  for (const GgufTensor &t : f.tensors()) content.update(t.data, std::min<uint64_t>(4096, t.n_bytes));
  return content.digest();
}

std::string model_fingerprint_hex(const Model &m) {
  const GgufFile &f = m.file();
  const HParams &hp = m.hp();
  const std::array<uint8_t, 32> &cd = m.tensor_heads_digest();
  Sha256 h;
  h.update("relu-serve model identity v1\narch=" + hp.arch + "\nn_layer=" + std::to_string(hp.n_layer) +
           "\nn_ff=" + std::to_string(hp.n_ff) + "\nn_embd=" + std::to_string(hp.n_embd) +
           "\nn_head=" + std::to_string(hp.n_head) + "\nn_head_kv=" + std::to_string(hp.n_head_kv) +
           "\nn_vocab=" + std::to_string(hp.n_vocab) + "\n");
  std::string name;
  if (f.find("general.name") && f.find("general.name")->type == RS_META_STRING && f.get_string("general.name", &name) &&
      !name.empty())
    h.update("general.name=" + name + "\n");
  h.update("content=" + hex(cd.data(), cd.size()) + "\n");
  std::vector<const GgufTensor *> sorted;
  for (const GgufTensor &t : f.tensors()) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const GgufTensor *a, const GgufTensor *b) { return a->name < b->name; });
  for (const GgufTensor *t : sorted) {
    std::string shape;
    for (int dd = 0; dd < t->n_dims; dd++) shape += (dd ? "x" : "") + std::to_string(t->ne[dd]);
    h.update(t->name + "\t" + std::to_string(t->type) + "\t" + shape + "\t" + std::to_string(t->n_bytes) + "\n");
  }
  const std::array<uint8_t, 32> d = h.digest();
  return hex(d.data(), d.size());
}

}  // namespace rs

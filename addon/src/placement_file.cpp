// Placement files, read by the engine itself (relu-serve-native has no Node):
//   .rspl: ours, written by `relu-serve place` (layout in server/profiler/placement-format.ts);
//   .generated.gpuidx: PowerInfer's, a GGUF with per layer blk.{i}.gpu_idx (n_ff I32
//   flags, 1 = on the GPU) and blk.{i}.gpu_bucket (the GPU ids, ascending).
#include <cstring>
#include <fstream>
#include <iterator>

#include "checksums.h"
#include "vram_plan.h"

namespace rs {

namespace {

class Bytes {
 public:
  Bytes(const std::vector<uint8_t> &b, size_t end, std::string what) : b_(b), end_(end), what_(std::move(what)) {}
  template <typename T>
  T read(const char *reading) {
    need(sizeof(T), reading);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));  // little-endian hosts only (x86-64, arm64)
    pos_ += sizeof(T);
    return v;
  }
  std::string str(const char *reading) {
    const uint32_t n = read<uint32_t>(reading);
    if (n > (1u << 16)) throw FormatError(what_ + ": " + reading + " length " + std::to_string(n) + " is implausible");
    need(n, reading);
    std::string s(reinterpret_cast<const char *>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void skip(size_t n, const char *reading) {
    need(n, reading);
    pos_ += n;
  }
  const uint8_t *here() const { return b_.data() + pos_; }
  size_t left() const { return end_ - pos_; }

 private:
  void need(size_t n, const char *reading) {
    if (n > end_ - pos_)
      throw FormatError(what_ + ": truncated reading " + reading + " (needs " + std::to_string(n) + " bytes at offset " +
                        std::to_string(pos_) + ", file has " + std::to_string(end_ + 4) + ")");
  }
  const std::vector<uint8_t> &b_;
  size_t end_, pos_ = 0;
  std::string what_;
};

void check_ids(const std::vector<int32_t> &ids, int64_t n_ff, const std::string &where) {
  for (size_t k = 0; k < ids.size(); k++) {
    if (ids[k] < 0 || ids[k] >= n_ff)
      throw FormatError(where + ": neuron id " + std::to_string(ids[k]) + " is not below n_ff = " + std::to_string(n_ff));
    if (k > 0 && ids[k] <= ids[k - 1]) throw FormatError(where + ": neuron ids are not strictly ascending");
  }
}

Placement read_rspl(const std::vector<uint8_t> &buf, const std::string &what, const Model &m, const VramPlan &plan) {
  const HParams &hp = m.hp();
  if (buf.size() < 12) throw FormatError(what + ": too short to be a relu-serve placement file");
  uint32_t version;
  std::memcpy(&version, buf.data() + 4, 4);
  if (version != 1)
    throw FormatError(what + ": placement file version " + std::to_string(version) +
                      " is not supported (this relu-serve reads version 1)");
  uint32_t stored;
  std::memcpy(&stored, buf.data() + buf.size() - 4, 4);
  const uint32_t actual = crc32(buf.data(), buf.size() - 4);
  if (stored != actual) throw FormatError(what + ": checksum mismatch: the file is truncated or corrupt");
  Bytes r(buf, buf.size() - 4, what);
  r.skip(8, "magic and version");
  if (const uint32_t flags = r.read<uint32_t>("flags"); flags != 0)
    throw FormatError(what + ": unknown flags " + std::to_string(flags));
  const uint32_t n_layer = r.read<uint32_t>("layer count");
  Placement p;
  p.file_budget = r.read<uint64_t>("budget");
  r.skip(6 * 8, "context size, sequences, fixed and FFN bytes, activation counts");
  const std::string hash = hex(r.here(), 32);
  r.skip(32, "model fingerprint");
  const std::string name = r.str("model name"), arch = r.str("architecture");
  const std::string mine = model_fingerprint_hex(m);
  if (hash != mine)
    throw InvalidArgError(what + " was made for a different model: it is for \"" + name + "\" (" + arch +
                          ", fingerprint " + hash.substr(0, 16) + "...) but this model's fingerprint is " +
                          mine.substr(0, 16) + "...; run relu-serve place for this model");
  if (n_layer != static_cast<uint32_t>(hp.n_layer))
    throw FormatError(what + ": " + std::to_string(n_layer) + " layers, the model has " + std::to_string(hp.n_layer));
  for (uint32_t l = 0; l < n_layer; l++) {
    const std::string where = what + ": layer " + std::to_string(l);
    const uint32_t n_ff = r.read<uint32_t>("n_ff"), k = r.read<uint32_t>("GPU neuron count");
    const uint32_t cost = r.read<uint32_t>("bytes per neuron");
    if (n_ff != static_cast<uint32_t>(hp.n_ff))
      throw FormatError(where + " has n_ff " + std::to_string(n_ff) + ", the model " + std::to_string(hp.n_ff));
    if (k > n_ff) throw FormatError(where + " places " + std::to_string(k) + " of only " + std::to_string(n_ff) + " neurons");
    if (cost != plan.neuron_cost[l])
      throw InvalidArgError(where + " costs " + std::to_string(cost) + " bytes per neuron, but this runtime stores " +
                            std::to_string(plan.neuron_cost[l]) + " per hot neuron of this model; run relu-serve place again");
    std::vector<int32_t> ids(k);
    for (uint32_t j = 0; j < k; j++) ids[j] = static_cast<int32_t>(r.read<uint32_t>("neuron ids"));
    check_ids(ids, hp.n_ff, where);
    p.hot.push_back(std::move(ids));
  }
  if (r.left() != 0) throw FormatError(what + ": " + std::to_string(r.left()) + " unexpected bytes at the end");
  return p;
}

Placement read_gpuidx(const std::string &path, const std::string &what, const Model &m) {
  const HParams &hp = m.hp();
  GgufFile f(FileBytes::open(path, false), path);
  std::string arch;
  if (!f.get_string("general.architecture", &arch) || arch != "generic.gpu_index")
    throw FormatError(what + ": not a PowerInfer GPU index (general.architecture is '" + arch +
                      "', expected 'generic.gpu_index')");
  uint64_t n_layer = 0;
  if (!f.get_u64("generic.gpu_index.block_count", &n_layer))
    throw FormatError(what + ": missing key generic.gpu_index.block_count");
  if (n_layer != static_cast<uint64_t>(hp.n_layer))
    throw InvalidArgError(what + " covers " + std::to_string(n_layer) + " layers, the model has " +
                          std::to_string(hp.n_layer));
  Placement p;
  for (int l = 0; l < hp.n_layer; l++) {
    const std::string name = "blk." + std::to_string(l) + ".gpu_idx";
    const GgufTensor *t = f.find_tensor(name);
    if (!t) throw FormatError(what + ": missing tensor " + name);
    if (t->type != RS_TYPE_I32 || t->n_elements() != hp.n_ff)
      throw InvalidArgError(what + ": " + name + " should be " + std::to_string(hp.n_ff) +
                            " I32 flags (one per FFN neuron of this model), has " + std::to_string(t->n_elements()));
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < hp.n_ff; i++) {
      int32_t v;
      std::memcpy(&v, t->data + 4 * i, 4);
      if (v != 0 && v != 1) throw FormatError(what + ": " + name + "[" + std::to_string(i) + "] = " + std::to_string(v) + " is not 0 or 1");
      if (v) ids.push_back(static_cast<int32_t>(i));
    }
    // The bucket, where present, must list the same neurons.
    const std::string bname = "blk." + std::to_string(l) + ".gpu_bucket";
    if (const GgufTensor *b = f.find_tensor(bname)) {
      bool same = b->type == RS_TYPE_I32 && b->n_elements() == static_cast<int64_t>(ids.size());
      for (size_t k = 0; same && k < ids.size(); k++) {
        int32_t v;
        std::memcpy(&v, b->data + 4 * k, 4);
        same = v == ids[k];
      }
      if (!same) throw FormatError(what + ": " + bname + " does not list the neurons " + name + " flags");
    }
    p.hot.push_back(std::move(ids));
  }
  return p;
}

}  // namespace

Placement read_placement_file(const std::string &path, const Model &m, const VramPlan &plan) {
  const std::string what = "placement file " + path;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open " + what);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (buf.size() < 4) throw FormatError(what + ": too short to be a placement file");
  Placement p;
  if (std::memcmp(buf.data(), "RSPL", 4) == 0) {
    p = read_rspl(buf, what, m, plan);
  } else if (std::memcmp(buf.data(), "PWRI", 4) == 0 || std::memcmp(buf.data(), "GGUF", 4) == 0) {
    p = read_gpuidx(path, what, m);
  } else {
    throw FormatError(what + ": neither a relu-serve placement (RSPL) nor a PowerInfer .gpuidx (PWRI)");
  }
  p.source = "file " + path;
  return p;
}

}  // namespace rs

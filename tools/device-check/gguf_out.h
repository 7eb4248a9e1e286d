// The GGUF header as server/gguf/encoder.ts and writer.ts lay it out (little-endian:
// magic, version, counts, key/values, tensor infos, zero padding to the alignment), and
// the tokenizer vocabulary of synthetic models (server/gguf/synthetic-vocab.ts).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mm {

// GGUF metadata value type ids (gguf_type).
enum GgufValueType : uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9 };

constexpr int64_t kAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT; make-model never sets another

inline int64_t align_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }

// Growable little-endian byte buffer (encoder.ts ByteBuilder).
class ByteBuilder {
 public:
  void u8(uint8_t v) { b_.push_back(v); }
  void u32(uint32_t v) { le(v, 4); }
  void i32(int32_t v) { le(static_cast<uint32_t>(v), 4); }
  void u64(uint64_t v) { le(v, 8); }
  // A JS number written with writeFloatLE: rounded to float, nearest even.
  void f32(double v);
  void bytes(const void *p, size_t n);
  // GGUF string: u64 byte length, then the UTF-8 bytes.
  void str(const std::string &s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(int64_t alignment) {
    while (static_cast<int64_t>(b_.size()) % alignment != 0) b_.push_back(0);
  }

  // Key/values: the key, the value's type id, the value.
  void kv_u32(const std::string &k, uint32_t v);
  void kv_f32(const std::string &k, double v);
  void kv_bool(const std::string &k, bool v);
  void kv_str(const std::string &k, const std::string &v);

  const std::vector<uint8_t> &data() const { return b_; }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; i++) b_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> b_;
};

// The tokenizer tables (as vocab.json stores them).
struct Vocab {
  std::vector<std::string> pieces;  // UTF-8
  std::vector<double> scores;       // JSON numbers (doubles), stored as f32
  std::vector<int32_t> types;
};

// Reads test/fixtures/spm/vocab.json (its "pieces", "scores" and "types"). Throws
// std::runtime_error naming the problem.
Vocab load_vocab_json(const std::string &path);

// Smallest size that keeps every non-normal token (synthetic-vocab.ts minVocabSize).
int64_t min_vocab_size(const Vocab &v);

// The fixture cut or extended to exactly `size` tokens (synthetic-vocab.ts syntheticVocab);
// size must be at least min_vocab_size.
Vocab synthetic_vocab(const Vocab &fixture, int64_t size);

}  // namespace mm

// Header encoding and the synthetic vocabulary (see gguf_out.h).
#include "gguf_out.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

namespace mm {

void ByteBuilder::f32(double v) {
  const float f = static_cast<float>(v);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u32(u);
}

void ByteBuilder::bytes(const void *p, size_t n) {
  const uint8_t *s = static_cast<const uint8_t *>(p);
  b_.insert(b_.end(), s, s + n);
}

void ByteBuilder::kv_u32(const std::string &k, uint32_t v) {
  str(k);
  u32(kU32);
  u32(v);
}
void ByteBuilder::kv_f32(const std::string &k, double v) {
  str(k);
  u32(kF32);
  f32(v);
}
void ByteBuilder::kv_bool(const std::string &k, bool v) {
  str(k);
  u32(kBool);
  u8(v ? 1 : 0);
}
void ByteBuilder::kv_str(const std::string &k, const std::string &v) {
  str(k);
  u32(kString);
  str(v);
}

namespace {

// Just enough JSON to read vocab.json: objects, arrays, strings, numbers and literals,
// with JSON.parse's meaning (numbers are doubles; a later duplicate key wins).
class Json {
 public:
  Json(const std::string &text, const std::string &path) : s_(text), path_(path) {}

  Vocab read_vocab() {
    Vocab v;
    ws();
    int members = 0;
    object([&](const std::string &key) {
      members++;
      if (key == "pieces") {
        v.pieces.clear();
        array([&] { v.pieces.push_back(string()); });
      } else if (key == "scores") {
        v.scores.clear();
        array([&] { v.scores.push_back(number()); });
      } else if (key == "types") {
        v.types.clear();
        array([&] {
          const double t = number();
          if (t != std::trunc(t) || t < -2147483648.0 || t > 2147483647.0) fail("a token type is not an i32");
          v.types.push_back(static_cast<int32_t>(t));
        });
      } else {
        skip();
      }
    });
    if (members == 0) fail("no pieces, scores and types");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string &what) const {
    throw std::runtime_error(path_ + ": " + what + " (at byte " + std::to_string(i_) + ")");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) i_++;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    i_++;
  }

  // open, elements separated by commas, close: elem() reads one element.
  template <typename F>
  void list(char open, char close, F elem) {
    expect(open);
    ws();
    if (peek() == close) {
      i_++;
      return;
    }
    for (;;) {
      ws();
      elem();
      ws();
      if (peek() == ',') {
        i_++;
        continue;
      }
      expect(close);
      return;
    }
  }
  template <typename F>
  void array(F elem) {
    list('[', ']', elem);
  }
  // member(key) reads the value after "key":.
  template <typename F>
  void object(F member) {
    list('{', '}', [&] {
      const std::string key = string();
      ws();
      expect(':');
      ws();
      member(key);
    });
  }

  void skip() {
    const char c = peek();
    if (c == '{') return object([&](const std::string &) { skip(); });
    if (c == '[') return array([&] { skip(); });
    if (c == '"') {
      string();
      return;
    }
    for (const char *lit : {"true", "false", "null"}) {
      const size_t n = std::strlen(lit);
      if (s_.compare(i_, n, lit) == 0) {
        i_ += n;
        return;
      }
    }
    number();
  }

  double number() {
    const size_t start = i_;
    while (i_ < s_.size() && std::strchr("+-0123456789.eE", s_[i_]) != nullptr) i_++;
    if (i_ == start) fail("expected a value");
    const std::string tok = s_.substr(start, i_ - start);
    char *end = nullptr;
    const double v = std::strtod(tok.c_str(), &end);  // correctly rounded, like JSON.parse
    if (*end != '\0') fail("bad number '" + tok + "'");
    return v;
  }

  static void utf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  uint32_t hex4() {
    if (i_ + 4 > s_.size()) fail("short \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }

  // A string's UTF-8 bytes as TextEncoder would produce them from the parsed JS string:
  // raw bytes are copied (the file is UTF-8), \u escapes become UTF-8, surrogate pairs one
  // code point, a lone surrogate U+FFFD.
  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(i_, 2, "\\u") == 0) {
            const size_t save = i_;
            i_ += 2;
            const uint32_t lo = hex4();
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else i_ = save;  // not a pair: the high surrogate stands alone
          }
          if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
          utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  const std::string &s_;
  const std::string &path_;
  size_t i_ = 0;
};

}  // namespace

Vocab load_vocab_json(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read the tokenizer fixture " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  Vocab v = Json(text, path).read_vocab();
  if (v.pieces.empty() || v.pieces.size() != v.scores.size() || v.pieces.size() != v.types.size())
    throw std::runtime_error(path + ": pieces, scores and types must be arrays of the same length");
  return v;
}

int64_t min_vocab_size(const Vocab &v) {
  int64_t last = 0;
  for (size_t i = 0; i < v.types.size(); i++)
    if (v.types[i] != 1) last = static_cast<int64_t>(i);
  return last + 2;  // and at least one normal piece
}

namespace {

// The k-th synthetic word: "\u2581zq" + base-26 letters (synthetic-vocab.ts syntheticPiece).
std::string synthetic_piece(int64_t k) {
  std::string s;
  int64_t n = k;
  do {
    s.insert(s.begin(), static_cast<char>('a' + n % 26));
    n /= 26;
  } while (n > 0);
  return "\xE2\x96\x81zq" + s;
}

}  // namespace

Vocab synthetic_vocab(const Vocab &fixture, int64_t size) {
  Vocab v;
  if (size <= static_cast<int64_t>(fixture.pieces.size())) {
    v.pieces.assign(fixture.pieces.begin(), fixture.pieces.begin() + size);
    v.scores.assign(fixture.scores.begin(), fixture.scores.begin() + size);
    v.types.assign(fixture.types.begin(), fixture.types.begin() + size);
    return v;
  }
  v = fixture;
  std::unordered_set<std::string> seen(v.pieces.begin(), v.pieces.end());
  // Integers below the lowest real score: exact in f32 up to 2^24.
  double score = std::floor(*std::min_element(v.scores.begin(), v.scores.end())) - 1;
  for (int64_t k = 0; static_cast<int64_t>(v.pieces.size()) < size; k++) {
    std::string p = synthetic_piece(k);
    if (!seen.insert(p).second) continue;
    v.pieces.push_back(std::move(p));
    v.scores.push_back(score--);
    v.types.push_back(1);
  }
  return v;
}

}  // namespace mm

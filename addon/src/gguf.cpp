// GGUF parsing with every count, length and offset checked against the bytes present.
#include "gguf.h"

#include "fault_guard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <unordered_set>

#include "rs_kernels.h"

namespace rs {

namespace {

std::string errno_text() { return std::strerror(errno); }

// Bounds-checked little-endian cursor over the header.
class Cursor {
 public:
  Cursor(const uint8_t *p, uint64_t size) : p_(p), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  void need(uint64_t n, const char *what) const {
    if (n > left())
      throw FormatError(std::string("file is truncated: ") + what + " needs " + std::to_string(n) +
                        " bytes at offset " + std::to_string(pos_) + " but only " +
                        std::to_string(left()) + " remain");
  }
  template <typename T>
  T read(const char *what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view read_string(const char *what) {
    uint64_t len = read<uint64_t>(what);
    if (len > left())
      throw FormatError(std::string(what) + ": string length " + std::to_string(len) +
                        " exceeds the " + std::to_string(left()) + " bytes left in the file");
    std::string_view s(reinterpret_cast<const char *>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  const uint8_t *here() const { return p_ + pos_; }
  void skip(uint64_t n, const char *what) {
    need(n, what);
    pos_ += n;
  }

 private:
  const uint8_t *p_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Byte size of a scalar metadata type; 0 for string/array.
uint64_t scalar_size(rs_meta_type t) {
  switch (t) {
    case RS_META_U8: case RS_META_I8: case RS_META_BOOL: return 1;
    case RS_META_U16: case RS_META_I16: return 2;
    case RS_META_U32: case RS_META_I32: case RS_META_F32: return 4;
    case RS_META_U64: case RS_META_I64: case RS_META_F64: return 8;
    default: return 0;
  }
}

bool valid_meta_type(uint32_t t) { return t <= RS_META_F64; }

void read_scalar(Cursor &c, rs_meta_type t, GgufValue &v, const std::string &ctx) {
  const char *w = ctx.c_str();
  switch (t) {
    case RS_META_U8: v.num.u = c.read<uint8_t>(w); break;
    case RS_META_I8: v.num.i = c.read<int8_t>(w); break;
    case RS_META_U16: v.num.u = c.read<uint16_t>(w); break;
    case RS_META_I16: v.num.i = c.read<int16_t>(w); break;
    case RS_META_U32: v.num.u = c.read<uint32_t>(w); break;
    case RS_META_I32: v.num.i = c.read<int32_t>(w); break;
    case RS_META_U64: v.num.u = c.read<uint64_t>(w); break;
    case RS_META_I64: v.num.i = c.read<int64_t>(w); break;
    case RS_META_F32: v.num.f = c.read<float>(w); break;
    case RS_META_F64: v.num.f = c.read<double>(w); break;
    case RS_META_BOOL: {
      uint8_t b = c.read<uint8_t>(w);
      if (b > 1) throw FormatError(ctx + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
      v.num.u = b;
      break;
    }
    default: throw FormatError(ctx + ": not a scalar type");
  }
}

void read_value(Cursor &c, rs_meta_type t, GgufValue &v, const std::string &ctx, int depth) {
  v.type = t;
  if (t == RS_META_STRING) {
    v.str = c.read_string(ctx.c_str());
  } else if (t == RS_META_ARRAY) {
    if (depth > 4) throw FormatError(ctx + ": arrays nested deeper than 4 levels");
    uint32_t et = c.read<uint32_t>(ctx.c_str());
    if (!valid_meta_type(et))
      throw FormatError(ctx + ": unknown array element type " + std::to_string(et));
    v.elem_type = static_cast<rs_meta_type>(et);
    v.n = c.read<uint64_t>(ctx.c_str());
    uint64_t es = scalar_size(v.elem_type);
    if (es) {
      if (v.n > c.left() / es)
        throw FormatError(ctx + ": array of " + std::to_string(v.n) + " " +
                          meta_type_name(v.elem_type) + " exceeds the " +
                          std::to_string(c.left()) + " bytes left in the file");
      v.array_data = c.here();
      if (v.elem_type == RS_META_BOOL) {
        for (uint64_t k = 0; k < v.n; k++)
          if (v.array_data[k] > 1) throw FormatError(ctx + ": bool array element is neither 0 nor 1");
      }
      c.skip(v.n * es, ctx.c_str());
    } else if (v.elem_type == RS_META_STRING) {
      // Each string takes at least its 8-byte length: reject absurd counts before allocating.
      if (v.n > c.left() / 8)
        throw FormatError(ctx + ": array of " + std::to_string(v.n) +
                          " strings cannot fit in the " + std::to_string(c.left()) +
                          " bytes left in the file");
      v.strs.resize(v.n);
      for (uint64_t k = 0; k < v.n; k++) {
        std::string_view s = c.read_string(ctx.c_str());
        v.strs[k] = rs_str{s.data(), s.size()};
      }
    } else {  // arrays of arrays: each needs at least 12 bytes (type + count)
      if (v.n > c.left() / 12)
        throw FormatError(ctx + ": array of " + std::to_string(v.n) +
                          " arrays cannot fit in the file");
      v.items.resize(v.n);
      for (uint64_t k = 0; k < v.n; k++) read_value(c, RS_META_ARRAY, v.items[k], ctx, depth + 1);
    }
  } else {
    read_scalar(c, t, v, ctx);
  }
}

}  // namespace

const char *meta_type_name(rs_meta_type t) {
  static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  return (unsigned)t <= RS_META_F64 ? names[t] : "unknown";
}

std::unique_ptr<FileBytes> FileBytes::open(const std::string &path, bool use_mmap) {
  std::unique_ptr<FileBytes> fb(new FileBytes());
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open model file '" + path + "': " + errno_text());
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError("model path '" + path + "' is not a regular file");
  }
  fb->size_ = static_cast<uint64_t>(st.st_size);
  if (fb->size_ == 0) {
    ::close(fd);
    throw FormatError("model file '" + path + "' is empty");
  }
  if (use_mmap) {
    void *p = mmap(nullptr, fb->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw IoError("cannot map model file '" + path + "': " + errno_text());
    }
    fb->data_ = static_cast<const uint8_t *>(p);
    fb->mapped_ = true;
    fb->fault_handle_ = fault::register_mapping(p, fb->size_);
  } else {
    try {
      fb->alloc_private(fb->size_);
    } catch (...) {
      ::close(fd);
      throw;
    }
    uint64_t got = 0;
    while (got < fb->size_) {
      ssize_t r = ::read(fd, fb->anon_ + got, fb->size_ - got);
      if (r <= 0) {
        ::close(fd);
        throw IoError("cannot read model file '" + path + "': " + errno_text());
      }
      got += static_cast<uint64_t>(r);
    }
  }
  ::close(fd);
  return fb;
}

std::unique_ptr<FileBytes> FileBytes::copy_of(const uint8_t *p, uint64_t n) {
  std::unique_ptr<FileBytes> fb(new FileBytes());
  if (n == 0) throw FormatError("model file is empty");
  fb->alloc_private(n);
  std::memcpy(fb->anon_, p, n);
  fb->size_ = n;
  return fb;
}

void FileBytes::alloc_private(uint64_t n) {
  void *m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  anon_ = static_cast<uint8_t *>(m);
  anon_bytes_ = n;
  data_ = anon_;
}

uint64_t FileBytes::resident_bytes() const {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = reinterpret_cast<uintptr_t>(data_) / page * page;
  const size_t pages = (reinterpret_cast<uintptr_t>(data_) + size_ - b + page - 1) / page;
  std::vector<unsigned char> v(pages);
  if (mincore(reinterpret_cast<void *>(b), pages * page, v.data()) != 0) return 0;
  uint64_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n * page;
}

bool FileBytes::discard(const uint8_t *p, uint64_t n) const {
  if (mapped_ || !anon_ || p < data_ || p + n > data_ + size_) return false;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (e > b) madvise(reinterpret_cast<void *>(b), e - b, MADV_DONTNEED);  // private anonymous: the pages are freed
  return true;
}

void FileBytes::release(const uint8_t *p, uint64_t n) const {
  if (!mapped_ || p < data_ || p + n > data_ + size_) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (e > b) madvise(reinterpret_cast<void *>(b), e - b, MADV_DONTNEED);  // a hint: failure changes nothing
}

bool FileBytes::faulted() const { return fault::faulted(fault_handle_); }

FileBytes::~FileBytes() {
  fault::unregister_mapping(fault_handle_);
  if (mapped_) munmap(const_cast<uint8_t *>(data_), size_);
  if (anon_) munmap(anon_, anon_bytes_);
}

GgufFile::GgufFile(std::unique_ptr<FileBytes> bytes, const std::string &path)
    : bytes_(std::move(bytes)), path_(path) {
  Cursor c(bytes_->data(), bytes_->size());
  c.need(4, "magic");
  char magic[5] = {0};
  std::memcpy(magic, c.here(), 4);
  c.skip(4, "magic");
  if (std::memcmp(magic, "GGUF", 4) == 0) {
    powerinfer_ = false;
  } else if (std::memcmp(magic, "PWRI", 4) == 0) {
    powerinfer_ = true;
  } else {
    std::string shown;
    for (int k = 0; k < 4; k++) {
      unsigned char ch = static_cast<unsigned char>(magic[k]);
      if (ch >= 32 && ch < 127) shown += static_cast<char>(ch);
      else { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", ch); shown += b; }
    }
    throw FormatError("bad magic '" + shown + "': not a GGUF file (expected 'GGUF' or 'PWRI')");
  }
  version_ = c.read<uint32_t>("version");
  if (version_ == 1)
    throw UnsupportedError("GGUF version 1 is not supported (only 2 and 3); re-convert the model");
  if (version_ < 2 || version_ > 3)
    throw FormatError("unsupported GGUF version " + std::to_string(version_) + " (expected 2 or 3)");
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each KV needs >= 8 (key len) + 4 (type) + 1 bytes; each tensor info >= 8+4+8+4+8.
  if (n_kv > c.left() / 13)
    throw FormatError("metadata count " + std::to_string(n_kv) + " is absurd for a file of " +
                      std::to_string(bytes_->size()) + " bytes");
  if (n_tensors > c.left() / 32)
    throw FormatError("tensor count " + std::to_string(n_tensors) + " is absurd for a file of " +
                      std::to_string(bytes_->size()) + " bytes");

  kvs_.resize(n_kv);
  std::unordered_set<std::string_view> seen;
  for (uint64_t k = 0; k < n_kv; k++) {
    std::string where = "metadata entry " + std::to_string(k);
    kvs_[k].key = c.read_string(where.c_str());
    where = "metadata key '" + std::string(kvs_[k].key) + "'";
    if (!seen.insert(kvs_[k].key).second) throw FormatError(where + " appears twice");
    uint32_t t = c.read<uint32_t>(where.c_str());
    if (!valid_meta_type(t)) throw FormatError(where + " has unknown value type " + std::to_string(t));
    read_value(c, static_cast<rs_meta_type>(t), kvs_[k].value, where, 0);
  }

  uint64_t alignment = 32;
  if (const GgufValue *a = find("general.alignment")) {
    if (a->type != RS_META_U32)
      throw FormatError("general.alignment must be a u32, found " + std::string(meta_type_name(a->type)));
    alignment = a->num.u;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > 65536)
      throw FormatError("general.alignment " + std::to_string(alignment) + " is not a power of two <= 65536");
  }

  tensors_.resize(n_tensors);
  std::unordered_set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; k++) {
    GgufTensor &t = tensors_[k];
    std::string where = "tensor info " + std::to_string(k);
    std::string_view nm = c.read_string(where.c_str());
    if (nm.size() > 256) throw FormatError(where + ": name longer than 256 bytes");
    t.name = std::string(nm);
    where = "tensor '" + t.name + "'";
    if (!names.insert(t.name).second) throw FormatError(where + " appears twice");
    uint32_t nd = c.read<uint32_t>(where.c_str());
    if (nd < 1 || nd > 4) throw FormatError(where + " has " + std::to_string(nd) + " dimensions (1..4 allowed)");
    t.n_dims = static_cast<int>(nd);
    uint64_t total = 1;
    for (uint32_t d = 0; d < nd; d++) {
      uint64_t ne = c.read<uint64_t>(where.c_str());
      // A zero dimension is legal (an empty tensor, e.g. a layer with no GPU neurons in
      // a PowerInfer .gpuidx); weights are checked for their expected shapes elsewhere.
      if (ne > (1ull << 40))
        throw FormatError(where + " has absurd dimension ne[" + std::to_string(d) + "] = " + std::to_string(ne));
      if (ne > 0 && total > (1ull << 50) / ne) throw FormatError(where + " has an absurd element count");
      total *= ne;
      t.ne[d] = static_cast<int64_t>(ne);
    }
    uint32_t type = c.read<uint32_t>(where.c_str());
    t.type = static_cast<int>(type);
    t.offset = c.read<uint64_t>(where.c_str());
    const rs_type_traits *tr = rs_type_get_traits(t.type);
    if (!tr || !tr->name)
      throw FormatError(where + " has unknown type id " + std::to_string(type));
    if (t.ne[0] % tr->block_size != 0)
      throw FormatError(where + " of type " + tr->name + " has ne[0] = " + std::to_string(t.ne[0]) +
                        ", not a multiple of its block size " + std::to_string(tr->block_size));
    t.n_bytes = total / tr->block_size * tr->type_size;
    if (t.offset % alignment != 0)
      throw FormatError(where + " data offset " + std::to_string(t.offset) + " is not aligned to " +
                        std::to_string(alignment));
  }
  uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  if (data_start > bytes_->size() && n_tensors > 0)
    throw FormatError("file is truncated: the tensor data section would start at byte " +
                      std::to_string(data_start) + " of a " + std::to_string(bytes_->size()) + "-byte file");
  uint64_t data_size = bytes_->size() > data_start ? bytes_->size() - data_start : 0;
  for (GgufTensor &t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset)
      throw FormatError("tensor '" + t.name + "' data [" + std::to_string(t.offset) + ", +" +
                        std::to_string(t.n_bytes) + ") lies outside the data section of " +
                        std::to_string(data_size) + " bytes (file truncated or offset corrupt)");
    t.data = bytes_->data() + data_start + t.offset;
  }
}

const GgufValue *GgufFile::find(std::string_view key) const {
  for (const GgufKV &kv : kvs_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const GgufTensor *GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensor &t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

bool GgufFile::get_u64(std::string_view key, uint64_t *out) const {
  const GgufValue *v = find(key);
  if (!v) return false;
  switch (v->type) {
    case RS_META_U8: case RS_META_U16: case RS_META_U32: case RS_META_U64: *out = v->num.u; return true;
    case RS_META_I8: case RS_META_I16: case RS_META_I32: case RS_META_I64:
      if (v->num.i < 0) throw FormatError("metadata key '" + std::string(key) + "' is negative");
      *out = static_cast<uint64_t>(v->num.i);
      return true;
    default:
      throw FormatError("metadata key '" + std::string(key) + "' should be an integer, found " +
                        meta_type_name(v->type));
  }
}

bool GgufFile::get_f64(std::string_view key, double *out) const {
  const GgufValue *v = find(key);
  if (!v) return false;
  switch (v->type) {
    case RS_META_F32: case RS_META_F64: *out = v->num.f; return true;
    case RS_META_U8: case RS_META_U16: case RS_META_U32: case RS_META_U64: *out = (double)v->num.u; return true;
    case RS_META_I8: case RS_META_I16: case RS_META_I32: case RS_META_I64: *out = (double)v->num.i; return true;
    default:
      throw FormatError("metadata key '" + std::string(key) + "' should be a number, found " +
                        meta_type_name(v->type));
  }
}

bool GgufFile::get_string(std::string_view key, std::string *out) const {
  const GgufValue *v = find(key);
  if (!v) return false;
  if (v->type != RS_META_STRING)
    throw FormatError("metadata key '" + std::string(key) + "' should be a string, found " +
                      meta_type_name(v->type));
  *out = std::string(v->str);
  return true;
}

bool GgufFile::get_bool(std::string_view key, bool *out) const {
  const GgufValue *v = find(key);
  if (!v) return false;
  if (v->type != RS_META_BOOL)
    throw FormatError("metadata key '" + std::string(key) + "' should be a bool, found " +
                      meta_type_name(v->type));
  *out = v->num.u != 0;
  return true;
}

}  // namespace rs

// GGUF v2/v3 reader: validates the whole header against the file's bytes and exposes
// metadata and tensor descriptors. Tensor data stays in the (mapped) file.
//
// Everything is bounds-checked before it is read: a malformed or hostile file gets a
// FormatError naming the problem; nothing here trusts a count or an offset.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "relu_serve.h"

namespace rs {

// A problem with a file's contents (bad magic, bounds, counts, shapes...).
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Well-formed but asks for something we do not support (a weight type, an arch...).
struct UnsupportedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The file cannot be opened, mapped or read.
struct IoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The caller passed something out of range.
struct InvalidArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The file's bytes: either an mmap or a heap copy.
class FileBytes {
 public:
  static std::unique_ptr<FileBytes> open(const std::string &path, bool use_mmap);
  // A heap copy of bytes already in memory (the libFuzzer target, addon/fuzz).
  static std::unique_ptr<FileBytes> copy_of(const uint8_t *p, uint64_t n);
  ~FileBytes();
  const uint8_t *data() const { return data_; }
  uint64_t size() const { return size_; }
  // Drops [p, p + n)'s whole pages from this process's resident memory (a mapped file:
  // they stay in the page cache and come back on the next read; a heap copy: no-op).
  void release(const uint8_t *p, uint64_t n) const;
  // A private copy (--no-mmap): gives [p, p + n)'s whole pages back to the system for
  // good; they read as zeros after. For bytes nothing will read again (the plain rows
  // of a matrix repacked elsewhere: dense_repack.cpp). False (nothing done) for a map.
  bool discard(const uint8_t *p, uint64_t n) const;
  bool is_mapped() const { return mapped_; }
  // mincore over the bytes: a private copy's pages held now; a mapping's pages in the
  // page cache (whether or not this process has them mapped in).
  uint64_t resident_bytes() const;
  // A guarded read of the mapping faulted: the file changed under us (fault_guard.h).
  bool faulted() const;

 private:
  FileBytes() = default;
  const uint8_t *data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
  int fault_handle_ = -1;  // fault_guard.h's registration of the mapping
  // The private copy: anonymous memory of its own, so discard() can return pages.
  uint8_t *anon_ = nullptr;
  uint64_t anon_bytes_ = 0;
  void alloc_private(uint64_t n);
};

struct GgufValue {
  rs_meta_type type = RS_META_U8;
  rs_meta_type elem_type = RS_META_U8;  // arrays
  uint64_t n = 0;                       // arrays: element count
  union { uint64_t u; int64_t i; double f; } num{};
  std::string_view str;                 // strings
  const uint8_t *array_data = nullptr;  // arrays of numbers: packed LE elements (maybe unaligned)
  std::vector<rs_str> strs;             // arrays of strings
  std::vector<GgufValue> items;         // arrays of arrays
};

struct GgufKV {
  std::string_view key;
  GgufValue value;
};

struct GgufTensor {
  std::string name;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the fastest dimension
  int type = 0;                  // ggml type id
  uint64_t offset = 0;           // relative to the data section
  uint64_t n_bytes = 0;
  const uint8_t *data = nullptr;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  // Parses and validates; throws FormatError / UnsupportedError.
  GgufFile(std::unique_ptr<FileBytes> bytes, const std::string &path);

  bool is_powerinfer() const { return powerinfer_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return bytes_->size(); }
  const FileBytes &bytes() const { return *bytes_; }
  const std::string &path() const { return path_; }

  const std::vector<GgufKV> &kvs() const { return kvs_; }
  const std::vector<GgufTensor> &tensors() const { return tensors_; }

  const GgufValue *find(std::string_view key) const;
  const GgufTensor *find_tensor(std::string_view name) const;

  // Typed getters: throw FormatError if present with the wrong type.
  bool get_u64(std::string_view key, uint64_t *out) const;  // any integer type >= 0
  bool get_f64(std::string_view key, double *out) const;    // any number type
  bool get_string(std::string_view key, std::string *out) const;
  bool get_bool(std::string_view key, bool *out) const;

 private:
  std::unique_ptr<FileBytes> bytes_;
  std::string path_;
  bool powerinfer_ = false;
  uint32_t version_ = 0;
  std::vector<GgufKV> kvs_;
  std::vector<GgufTensor> tensors_;
};

const char *meta_type_name(rs_meta_type t);

}  // namespace rs

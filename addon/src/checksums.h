// SHA-256 (FIPS 180-4) and CRC-32 (the zlib polynomial), for the fingerprints and
// checksums of the files the profiler writes (server/profiler): the engine reads those
// files too and must compute the same values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace rs {

class Sha256 {
 public:
  Sha256();
  void update(const void *data, size_t n);
  void update(const std::string &s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // finishes; the object is spent afterwards

 private:
  void block(const uint8_t *p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t fill_ = 0;
  uint64_t total_ = 0;
};

std::string hex(const uint8_t *p, size_t n);

uint32_t crc32(const uint8_t *p, size_t n);

}  // namespace rs

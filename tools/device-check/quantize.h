// Weight types and their encoders, byte-identical to what make-model writes: F16 / BF16
// as server/gguf/float16.ts encodes them, the block types with the addon's reference
// quantisers (kernels/ref, which make-model calls through kernels.quantize), whose C
// sources this tool compiles in: it still builds alone, from this repository.
#pragma once

#include <cstdint>
#include <string>

namespace mm {

struct TypeInfo {
  const char *name;
  int id;          // ggml type id, stored in the tensor infos
  int block;       // elements per block (1 for plain numbers)
  int type_size;   // bytes per block
  int file_type;   // llama.cpp's general.file_type for a file of mostly this type
};

// The weight types make-model accepts (f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k); nullptr
// for any other name.
const TypeInfo *weight_type(const std::string &name);

// Bytes of n elements (n a whole number of blocks).
inline int64_t row_bytes(const TypeInfo &t, int64_t n) { return n / t.block * t.type_size; }

// Encode n floats (whole blocks) into row_bytes(t, n) bytes.
void encode_row(const TypeInfo &t, const float *src, uint8_t *dst, int64_t n);

}  // namespace mm

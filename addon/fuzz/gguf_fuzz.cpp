// libFuzzer target for the C++ GGUF parser (addon/src/gguf.cpp): every input must parse
// or be refused with FormatError / UnsupportedError. Anything else (another exception,
// an out-of-bounds read, undefined behaviour) is a finding. Built and run by
// tools/fuzz/libfuzzer.sh with clang's -fsanitize=fuzzer,address,undefined.
#include <cstdint>
#include <string>

#include "gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try {
    // A heap copy of exactly `size` bytes: AddressSanitizer flags any read past it.
    rs::GgufFile f(rs::FileBytes::copy_of(data, size), "fuzz-input.gguf");
    uint64_t u = 0;
    double d = 0;
    std::string s;
    bool b = false;
    for (const rs::GgufKV &kv : f.kvs()) {
      // The typed getters on every key, whatever its type: wrong types must throw FormatError.
      try { f.get_u64(kv.key, &u); } catch (const rs::FormatError &) {}
      try { f.get_f64(kv.key, &d); } catch (const rs::FormatError &) {}
      try { f.get_string(kv.key, &s); } catch (const rs::FormatError &) {}
      try { f.get_bool(kv.key, &b); } catch (const rs::FormatError &) {}
      (void)f.find(kv.key);
    }
    for (const rs::GgufTensor &t : f.tensors()) {
      (void)f.find_tensor(t.name);
      // The parser vouched for [data, data + n_bytes): touch both ends.
      if (t.n_bytes > 0) {
        volatile uint8_t first = t.data[0];
        volatile uint8_t last = t.data[t.n_bytes - 1];
        (void)first;
        (void)last;
      }
    }
  } catch (const rs::FormatError &) {
  } catch (const rs::UnsupportedError &) {
  }
  return 0;
}

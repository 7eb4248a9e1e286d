#!/usr/bin/env bash
# Builds the libFuzzer target for the C++ GGUF parser (addon/fuzz/gguf_fuzz.cpp) with
# clang's fuzzer, AddressSanitizer and UBSan, and runs it for a bounded time over a seed
# corpus of the two tiny models the JS fuzzer uses (written by make-model).
#
#   tools/fuzz/libfuzzer.sh [SECONDS]      (default 60; npm run fuzz:native -- 60)
#
# Needs clang (Debian: apt-get install clang). Findings land in build-fuzz/findings/;
# replay one with build-fuzz/gguf_fuzz FILE.
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build-fuzz"

if ! command -v clang++ >/dev/null 2>&1 || ! command -v clang >/dev/null 2>&1; then
  echo "libfuzzer.sh: clang/clang++ not found; the libFuzzer target needs clang (Debian: apt-get install clang). Nothing was run." >&2
  exit 2
fi

mkdir -p "$out/corpus" "$out/findings"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -g -O1"
# The kernels' type table is the only thing gguf.cpp needs from the kernel library.
clang $san -fsanitize=fuzzer-no-link -std=c11 -I"$root/kernels/include" -I"$root/kernels/ref" \
  -c "$root/kernels/ref/ref_types.c" -o "$out/ref_types.o"
clang++ $san -fsanitize=fuzzer -std=c++17 -I"$root/addon/src" -I"$root/addon/include" -I"$root/kernels/include" \
  "$root/addon/fuzz/gguf_fuzz.cpp" "$root/addon/src/gguf.cpp" "$root/addon/src/fault_guard.cpp" "$out/ref_types.o" -o "$out/gguf_fuzz"

# Seeds: the fuzzer's dense and PowerInfer tiny models (needs the TypeScript build).
if [ ! -s "$out/corpus/dense.gguf" ]; then
  cli="$root/dist/server/cli/main.js"
  if [ -f "$cli" ]; then
    node "$cli" make-model --quiet --arch llama --size tiny --type q8_0 --seed 11 --vocab-size 300 --out "$out/corpus/dense.gguf" >/dev/null
    node "$cli" make-model --quiet --arch bamboo --size tiny --type f16 --seed 12 --vocab-size 300 --sparse --out "$out/corpus/powerinfer.gguf" >/dev/null
  else
    echo "libfuzzer.sh: no dist/ (npx tsc -p tsconfig.json): starting from an empty corpus" >&2
  fi
fi

echo "fuzzing the GGUF parser for ${seconds}s (libFuzzer + ASan + UBSan)"
cd "$out/findings"
"$out/gguf_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$out/corpus"

#!/bin/sh
# The device check: everything the hybrid runtime promises on a GPU, in one run of at most
# 6 minutes, on a machine with nvcc, CMake and Python 3 but no Node (README.md here).
#
#   sh tools/device-check/run.sh OUT_DIR
#
# 1. builds the engine, relu-serve-native, relu-serve-cuda-check and relu-serve-make-model
#    for the GPU present;
# 2. checks every CUDA op against the CPU reference (edge cases included) and measures the
#    GPU's read bandwidth, tensor-core throughput and hot-FFN bytes/s;
# 3. writes a tiny and a 7b-shaped PowerInfer Q4_0 model (byte-identical to make-model);
# 4. runs greedy generation on the CPU alone and on the GPU with 0%, 25%, 50% and 100% of
#    the FFN resident: the token ids must be the CPU's; then timings (decode and a 512-token
#    prompt, per budget and thread count, device time per phase);
# 5. writes OUT_DIR/report.json (tools/device-check/report.py) and OUT_DIR/device-check.log.
# Exit status: 0 when every check passed, 1 otherwise (the report says which).
#
# Settings (environment): RS_BUILD_DIR (default build-device), RS_MODELS_DIR (default
# OUT_DIR/models), RS_CUDA_ARCH (default native), RS_DEVICE_CHECK_EMU=1 (the CUDA emulator
# instead of a GPU: tiny model only, for CI), RS_SKIP_7B=1.
set -u
out=${1:?usage: run.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${RS_BUILD_DIR:-$root/build-device}
emu=${RS_DEVICE_CHECK_EMU:-0}
log="$out/device-check.log"
runs="$out/runs"
mkdir -p "$runs"
: > "$log"
: > "$out/steps.tsv"
start=$(date +%s)

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, output to the log, and
# records "NAME <tab> exit status <tab> seconds".
step() {
  name=$1 limit=$2
  shift 2
  t0=$(date +%s)
  echo "== $name ($*)" >> "$log"
  timeout "$limit" "$@" >> "$log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >> "$out/steps.tsv"
  echo "   $name: exit $rc" >> "$log"
  return $rc
}

# 1. Build.
if [ "$emu" = 1 ]; then
  cuda_flags="-DRS_CUDA_EMU=ON"
else
  cuda_flags="-DCMAKE_CUDA_ARCHITECTURES=${RS_CUDA_ARCH:-native}"
fi
step configure 120 cmake -S "$root/addon" -B "$build" -DCMAKE_BUILD_TYPE=Release $cuda_flags ||
  step configure-sm90 120 cmake -S "$root/addon" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
step build 300 cmake --build "$build" -j "$(nproc)" --target relu-serve-native relu-serve-cuda-check relu-serve-make-model
bin="$build/bin"

# 2. Every CUDA op against the CPU (and, on a GPU, its speeds).
if [ "$emu" = 1 ]; then quick=--quick; else quick=; fi
step ops 180 "$bin/relu-serve-cuda-check" $quick --json "$out/ops.json"

# 3. Models, written here (RS_MODELS_DIR: somewhere other than OUT_DIR, which may be
# copied back, a 7b model being 4 GB).
models=${RS_MODELS_DIR:-$out/models}
mkdir -p "$models"
if [ "$emu" = 1 ]; then tiny=tiny; else tiny=small; fi  # the emulator is slow: its smallest shape
step model-tiny 120 "$bin/relu-serve-make-model" --arch bamboo --size $tiny --type q4_0 --sparse --seed 1 \
  --out "$models/tiny.gguf" --quiet
if [ "$emu" != 1 ] && [ "${RS_SKIP_7B:-0}" != 1 ]; then
  step model-7b 240 "$bin/relu-serve-make-model" --arch bamboo --size 7b --type q4_0 --sparse --seed 1 \
    --out "$models/7b.gguf" --quiet
fi

# 4. Generation: CPU alone, then the GPU at each share of the FFN (budgets from the
# fixed part and the FFN's bytes the engine reports), same prompt ids, greedy.
# 12 ids: fewer than 16 rows, so the GPU's products take the path that quantises x as the
# CPU does (larger steps use the tensor cores in f16: close, not the same).
prompt="1,415,2462,372,1217,304,1209,2989,263,408,310,278"
long=$(python3 -c "print(','.join(str(1 + (i * 37) % 3000) for i in range(512)))")
native() { "$bin/relu-serve-native" --ignore-eos "$@"; }
threads=$(nproc)
for m in tiny 7b; do
  [ -f "$models/$m.gguf" ] || continue
  if [ "$m" = 7b ]; then n=32; else n=16; fi
  [ "$emu" = 1 ] && n=6
  M="$models/$m.gguf"
  step "$m-cpu" 240 sh -c "\"$bin/relu-serve-native\" --ignore-eos --model '$M' --tokens $prompt -n $n --device cpu --json > '$runs/$m-cpu.json'"
  step "$m-gpu-probe" 240 sh -c "\"$bin/relu-serve-native\" --ignore-eos --model '$M' --tokens $prompt -n $n --device cuda --json > '$runs/$m-gpu-probe.json'" || continue
  for share in 0 25 50 100; do
    budget=$(python3 "$root/tools/device-check/report.py" --budget "$runs/$m-gpu-probe.json" "$share")
    step "$m-gpu-$share" 240 sh -c "\"$bin/relu-serve-native\" --ignore-eos --model '$M' --tokens $prompt -n $n --device cuda --vram-budget $budget --json > '$runs/$m-gpu-$share.json'"
  done
  [ "$emu" = 1 ] && continue
  # Timings, while time is left (the whole check must end within 6 minutes): device time
  # per phase (a profiled run), a 512-token prompt, thread counts.
  [ $(( $(date +%s) - start )) -lt 250 ] || { echo "   (no time left for $m's timing runs)" >> "$log"; continue; }
  for share in 25 50 100; do
    budget=$(python3 "$root/tools/device-check/report.py" --budget "$runs/$m-gpu-probe.json" "$share")
    step "$m-gpu-$share-profile" 240 sh -c "RELU_SERVE_PROFILE_DEVICE=1 \"$bin/relu-serve-native\" --ignore-eos --model '$M' --tokens $prompt -n $n --device cuda --vram-budget $budget --json > '$runs/$m-gpu-$share-profile.json'"
  done
  # All resident, each step op by op instead of replayed as a CUDA graph: what graphs save.
  budget=$(python3 "$root/tools/device-check/report.py" --budget "$runs/$m-gpu-probe.json" 100)
  step "$m-gpu-100-nographs" 240 sh -c "RELU_SERVE_DEVICE_GRAPHS=0 \"$bin/relu-serve-native\" --ignore-eos --model '$M' --tokens $prompt -n $n --device cuda --vram-budget $budget --json > '$runs/$m-gpu-100-nographs.json'"
  # A 512-token prompt with everything resident (with less, the cold part of each prompt
  # row runs on the CPU: see the CPU's own prompt speed below).
  budget=$(python3 "$root/tools/device-check/report.py" --budget "$runs/$m-gpu-probe.json" 100)
  step "$m-gpu-100-prompt512" 240 sh -c "\"$bin/relu-serve-native\" --ignore-eos --model '$M' --tokens $long -n 2 --device cuda --vram-budget $budget --json > '$runs/$m-gpu-100-prompt512.json'"
  step "$m-cpu-prompt512" 240 sh -c "\"$bin/relu-serve-native\" --ignore-eos --model '$M' --tokens $long -n 2 --device cpu --json > '$runs/$m-cpu-prompt512.json'"
  if [ "$m" = 7b ]; then
    budget=$(python3 "$root/tools/device-check/report.py" --budget "$runs/$m-gpu-probe.json" 50)
    for t in 4 8; do
      [ "$t" -lt "$threads" ] && [ $(( $(date +%s) - start )) -lt 320 ] || continue
      step "$m-gpu-50-t$t" 240 sh -c "\"$bin/relu-serve-native\" --ignore-eos --model '$M' --tokens $prompt -n $n --device cuda --vram-budget $budget --threads $t --json > '$runs/$m-gpu-50-t$t.json'"
      step "$m-cpu-t$t" 240 sh -c "\"$bin/relu-serve-native\" --ignore-eos --model '$M' --tokens $prompt -n $n --device cpu --threads $t --json > '$runs/$m-cpu-t$t.json'"
    done
  fi
done

# 5. The report.
printf 'total\t0\t%s\n' "$(( $(date +%s) - start ))" >> "$out/steps.tsv"
python3 "$root/tools/device-check/report.py" --report "$out" > "$out/report.json"
rc=$?
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps(r['summary'], indent=1))" "$out/report.json" || true
exit $rc

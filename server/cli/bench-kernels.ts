// `relu-serve bench-kernels`: the matmul kernels' small-batch cost — gemm against
// nc = 1..64 activation rows in the engine's call shape, as a multiple of vec_dot
// against one row — on a matrix larger than the L3 cache, one thread.
import type { Command } from 'commander';
import { native } from '../engine/binding.js';

const NCS = [1, 2, 3, 4, 8, 16, 64];
const TYPES: Array<[string, number]> = [
  ['q4_0', 2],
  ['q8_0', 8],
  ['f16', 1],
  ['q4_K', 12],
  ['q6_K', 14],
];

export function benchKernels(isa: 'scalar' | 'avx2' | 'avx512', reps: number): string {
  const K = native.kernels;
  const n = 4096;
  const lines = [`isa ${isa}, rows of ${n}, one thread; gemm time / vec_dot time`, `type  MiB  vec_dot ms  GB/s | ${NCS.map((c) => `nc=${c}`.padStart(7)).join('')}`];
  for (const [name, type] of TYPES) {
    const rows = Math.ceil((64 << 20) / K.rowSize(type, n));
    const r = K.benchBatch(type, isa, rows, n, NCS, reps);
    lines.push(
      `${name.padEnd(5)} ${(r.bytes / 2 ** 20).toFixed(0).padStart(3)}  ${(r.vecDotSeconds * 1e3).toFixed(2).padStart(10)}  ${(r.bytes / r.vecDotSeconds / 1e9).toFixed(1).padStart(4)} | ` +
        r.gemmSeconds.map((s) => `${(s / r.vecDotSeconds).toFixed(2)}x`.padStart(7)).join(''),
    );
  }
  return lines.join('\n');
}

export function registerBenchKernels(program: Command): void {
  program
    .command('bench-kernels')
    .description('small-batch cost of the matmul kernels (gemm at 1..64 rows vs vec_dot)')
    .option('--isa <isa>', 'scalar, avx2 or avx512 (default: the best this CPU has)')
    .option('--reps <n>', 'interleaved passes', (v) => parseInt(v, 10), 8)
    .action((o: { isa?: 'scalar' | 'avx2' | 'avx512'; reps: number }) => {
      process.stdout.write(benchKernels(o.isa ?? (native.kernels.bestIsa() as 'scalar' | 'avx2' | 'avx512'), o.reps) + '\n');
    });
}

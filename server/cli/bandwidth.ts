// `relu-serve bandwidth`: this machine's memory read bandwidth, every configuration the
// probe tries, and the limit `bench` judges decode speed against.
import type { Command } from 'commander';
import { formatBandwidth, probeBandwidth, READ_PATTERNS, type PageKind, type ReadPattern } from '../engine/bandwidth.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`not an integer: ${v}`);
  return n;
};
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

export function registerBandwidth(program: Command): void {
  program
    .command('bandwidth')
    .description("measure this machine's memory read bandwidth (read patterns x threads x page kinds; the fastest is the limit)")
    .option('--max-threads <n>', 'thread counts 1, 2, 4, ... up to n (default: all cores)', int, 0)
    .option('--threads <n>', 'only this thread count', int, 0)
    .option('--mb <n>', 'buffer read per pass, MiB', int, 1024)
    .option('--reps <n>', 'passes per configuration', int, 5)
    .option('--patterns <list>', `read patterns (${READ_PATTERNS.join(',')})`, list)
    .option('--pages <list>', 'page kinds (normal,huge)', list)
    .option('--json', 'print one JSON object')
    .action(async (o) => {
      const p = await probeBandwidth({
        maxThreads: o.maxThreads,
        threads: o.threads,
        megabytes: o.mb,
        reps: o.reps,
        patterns: o.patterns as ReadPattern[] | undefined,
        pages: o.pages as PageKind[] | undefined,
      });
      process.stdout.write((o.json ? JSON.stringify(p, null, 2) : formatBandwidth(p)) + '\n');
    });
}

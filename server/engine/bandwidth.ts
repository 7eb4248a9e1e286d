// This machine's memory read bandwidth: the limit decode speed is judged against. The
// native probe (addon/src/bandwidth.cpp) tries every read pattern, vector ISA, thread
// count and page kind; the limit is the fastest pass of any of them, since a limit lower
// than the real one flatters every ratio made with it.
import { native, type NativeBandwidthRow } from './binding.js';

export const READ_PATTERNS = ['plain', 'prefetch', 'nontemporal', 'two-streams'] as const;
export type ReadPattern = (typeof READ_PATTERNS)[number];
/** In the addon's bit order: normal pages bit 0, huge bit 1. */
const PAGE_KINDS = ['normal', 'huge'] as const;
export type PageKind = (typeof PAGE_KINDS)[number];
export type BandwidthRow = NativeBandwidthRow;

export interface BandwidthOptions {
  /** Thread counts 1, 2, 4, ... up to this, and this (0 or absent: all cores). */
  maxThreads?: number;
  /** Only this thread count. */
  threads?: number;
  /** Buffer read per pass, MiB (at least 64; default 1024). */
  megabytes?: number;
  /** Passes per configuration (default 5). */
  reps?: number;
  patterns?: readonly ReadPattern[];
  pages?: readonly PageKind[];
  /** Vector ISAs to try (default: every one this CPU has); one the CPU lacks is skipped. */
  isas?: readonly VectorIsa[];
}

/** In rs_isa order: the bit for ISA i is 1 << i. */
const ISAS = ['scalar', 'avx2', 'avx512'] as const;
export type VectorIsa = (typeof ISAS)[number];

export interface BandwidthProbe {
  rows: BandwidthRow[];
  /** The configuration with the fastest pass: its `best` is the limit. */
  best: BandwidthRow;
}

/** Bit i for each chosen names[i] (the addon's bit order); an unknown name is refused. */
function maskOf(chosen: readonly string[], names: readonly string[], unknown: (name: string) => string): number {
  let mask = 0;
  for (const c of chosen) {
    const i = names.indexOf(c);
    if (i < 0) throw new RangeError(unknown(String(c)));
    mask |= 1 << i;
  }
  return mask;
}

function intIn(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  return v;
}

export function fastest(rows: readonly BandwidthRow[]): BandwidthRow {
  if (rows.length === 0) throw new Error('no bandwidth measurement');
  return rows.reduce((a, b) => (b.best > a.best ? b : a));
}

export async function probeBandwidth(o: BandwidthOptions = {}): Promise<BandwidthProbe> {
  // Empty masks are refused by the addon ("no read pattern / page kind / ISA selected").
  const patternMask = maskOf(o.patterns ?? READ_PATTERNS, READ_PATTERNS, (p) => `unknown read pattern "${p}" (one of ${READ_PATTERNS.join(', ')})`);
  const pageMask = maskOf(o.pages ?? PAGE_KINDS, PAGE_KINDS, (p) => `unknown page kind "${p}" (normal or huge)`);
  const isaMask = maskOf(o.isas ?? ISAS, ISAS, (i) => `unknown ISA "${i}" (one of ${ISAS.join(', ')})`);
  const rows = await native.measureBandwidth(
    intIn('maxThreads', o.maxThreads ?? 0, 0, 1024),
    intIn('threads', o.threads ?? 0, 0, 1024),
    intIn('megabytes', o.megabytes ?? 1024, 64, 65536),
    intIn('reps', o.reps ?? 5, 1, 100),
    patternMask,
    pageMask,
    isaMask,
  );
  return { rows, best: fastest(rows) };
}

/** The same configuration as `row`, measured again (drift during a long benchmark). */
export function remeasure(row: BandwidthRow, megabytes = 1024, reps = 5): Promise<BandwidthProbe> {
  return probeBandwidth({
    threads: row.threads,
    megabytes,
    reps,
    patterns: [row.pattern],
    pages: [row.hugePages ? 'huge' : 'normal'],
    isas: [row.isa as VectorIsa],
  });
}

export function describeConfig(r: BandwidthRow): string {
  return `${r.threads} thread${r.threads === 1 ? '' : 's'}, ${r.pattern}, ${r.isa}, ${r.hugePages ? 'huge' : 'normal'} pages`;
}

export function describeRow(r: BandwidthRow): string {
  return `${r.best.toFixed(1)} GB/s (${describeConfig(r)})`;
}

export function formatBandwidth(p: BandwidthProbe): string {
  const lines = ['pages   isa     threads  pattern       best GB/s  median GB/s'];
  for (const r of p.rows)
    lines.push(
      `${(r.hugePages ? 'huge' : 'normal').padEnd(6)}  ${r.isa.padEnd(6)}  ${String(r.threads).padStart(7)}  ${r.pattern.padEnd(12)}  ` +
        `${r.best.toFixed(1).padStart(9)}  ${r.median.toFixed(1).padStart(11)}`,
    );
  lines.push(`limit: ${describeRow(p.best)}`);
  return lines.join('\n');
}

// The bandwidth probe behind every "of limit" figure: it must try what it says, report
// each configuration's fastest pass, and refuse bad parameters without harming the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fastest, formatBandwidth, probeBandwidth, READ_PATTERNS, remeasure, type BandwidthRow } from '../../server/engine/bandwidth.js';
import { native } from '../../server/engine/binding.js';

test('the probe tries every read pattern and page kind asked for, and reports each fastest pass', async () => {
  const p = await probeBandwidth({ threads: 1, megabytes: 64, reps: 3 });
  const isas = new Set(p.rows.map((r) => r.isa));
  assert.ok(isas.size >= 1 && isas.size <= 2);
  assert.equal(p.rows.length, READ_PATTERNS.length * 2 * isas.size, 'one row per pattern, page kind and vector ISA');
  for (const pages of [false, true])
    for (const pattern of READ_PATTERNS) assert.ok(p.rows.some((r) => r.pattern === pattern && r.hugePages === pages), `${pattern} huge=${pages}`);
  for (const r of p.rows) {
    assert.equal(r.threads, 1);
    assert.ok(r.median > 0.1 && r.median < 10_000, `${r.pattern}: ${r.median} GB/s is not a plausible memory read rate`);
    assert.ok(r.best >= r.median, `${r.pattern}: the fastest pass (${r.best}) is below the median (${r.median})`);
  }
  assert.equal(p.best.best, Math.max(...p.rows.map((r) => r.best)), 'the limit is the fastest pass of any configuration');
  assert.match(formatBandwidth(p), /limit: \d+\.\d GB\/s \(1 thread, /);
});

test('thread counts go 1, 2, 4, ... up to the maximum, and a re-measure repeats one configuration', async () => {
  const p = await probeBandwidth({ maxThreads: 3, megabytes: 64, reps: 1, patterns: ['plain'], pages: ['normal'] });
  assert.deepEqual([...new Set(p.rows.map((r) => r.threads))], [1, 2, 3]);
  const again = await remeasure(p.rows[1], 64, 2);
  assert.equal(again.rows.length, 1);
  assert.deepEqual({ ...again.best, best: 0, median: 0 }, { ...p.rows[1], best: 0, median: 0 });
  // On a CPU with two vector ISAs, a re-measure of the second one measures only it.
  const last = p.rows[p.rows.length - 1];
  const only = await remeasure(last, 64, 1);
  assert.deepEqual(only.rows.map((r) => [r.isa, r.threads]), [[last.isa, last.threads]]);
});

test('fastest picks the highest pass, not the highest median', () => {
  const row = (best: number, median: number): BandwidthRow => ({ pattern: 'plain', isa: 'avx2', threads: 1, hugePages: false, best, median });
  assert.equal(fastest([row(10, 9), row(30, 5), row(20, 19)]).best, 30);
  assert.throws(() => fastest([]), /no bandwidth/);
});

test('bad parameters are refused, by the TypeScript layer and by the addon, and the process carries on', async () => {
  await assert.rejects(probeBandwidth({ megabytes: 8 }), /megabytes must be an integer in \[64/);
  await assert.rejects(probeBandwidth({ patterns: ['sideways' as never] }), /unknown read pattern "sideways"/);
  await assert.rejects(probeBandwidth({ pages: [] }), /no page kind/);
  await assert.rejects(probeBandwidth({ isas: ['sse' as never] }), /unknown ISA "sse"/);
  await assert.rejects(probeBandwidth({ isas: [] }), /no ISA/);
  await assert.rejects(native.measureBandwidth(0, 0, 32, 1, 15, 1, 7), /at least 64 MiB/);
  await assert.rejects(native.measureBandwidth(0, 0, 64, 0, 15, 1, 7), /repetitions/);
  await assert.rejects(native.measureBandwidth(0, 0, 64, 1, 0, 1, 7), /no read pattern/);
  assert.throws(() => (native.measureBandwidth as unknown as (a: number) => unknown)(1), /measureBandwidth\(/);
});

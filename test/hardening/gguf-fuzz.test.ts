// A short, fixed-seed pass of the GGUF mutation fuzzer (tools/fuzz/gguf-fuzz.ts): every
// mutated file must be refused with a classified error or load and decode; a loader
// process that dies by a signal, exits on an uncaught exception, or hangs fails the test.
// The long run is `npm run fuzz -- --minutes N`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from '../../tools/fuzz/gguf-fuzz.js';

test('1000 seeded GGUF mutations: no crash, hang or unclassified error', async () => {
  // About 9 s at ~115 cases/s; the time cap keeps a slow machine inside the budget.
  const r = await runFuzz({ cases: 1000, seconds: 30, seed: 1, caseTimeoutMs: 20_000 });
  console.log(`# fuzz: ${r.cases} cases in ${r.seconds.toFixed(1)} s: ${JSON.stringify(r.outcomes)}`);
  assert.deepEqual(r.findings.map((f) => `case ${f.caseNo} (${f.seedModel}; ${f.what}): ${f.failure}`), []);
  assert.ok(r.cases >= 200, `only ${r.cases} cases ran`);
  // Both outcomes occur, so the mutations neither all break the header nor all miss it.
  assert.ok((r.outcomes.refused ?? 0) > 0 && (r.outcomes.loaded ?? 0) > 0, JSON.stringify(r.outcomes));
});

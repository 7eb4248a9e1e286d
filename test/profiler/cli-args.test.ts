// The subcommands as a user runs them (no native engine needed): `place` end to end
// from argv on a GGUF written here, usage errors, and the progress line.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { svgPathFor } from '../../server/cli/profile.js';
import { progressLine } from '../../server/profiler/profile-run.js';
import { describeModelFile } from '../../server/profiler/model-file.js';
import { writeStatsFile } from '../../server/profiler/stats-format.js';
import { readPlacementFile } from '../../server/profiler/placement-format.js';
import { buildPowerLawModel, writePowerLawModel } from './powerlaw-model.js';
import { powerLawCounts } from './synthetic.js';
import { vramCosts } from '../../server/profiler/vram-costs.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-prof-args-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// The subcommands run in a child process, as a user runs them: their output goes to the
// real stdout/stderr and their exit code is the process's.
const runner = join(dir, 'runner.mjs');
writeFileSync(
  runner,
  [
    `import { Command } from ${JSON.stringify(new URL('../../../node_modules/commander/index.js', import.meta.url).href)};`,
    `import { registerProfile } from ${JSON.stringify(new URL('../../server/cli/profile.js', import.meta.url).href)};`,
    `import { registerPlace } from ${JSON.stringify(new URL('../../server/cli/place.js', import.meta.url).href)};`,
    "const program = new Command('relu-serve');",
    'registerProfile(program);',
    'registerPlace(program);',
    'await program.parseAsync(process.argv);',
  ].join('\n'),
);

function run(argv: string[]): Promise<{ out: string; err: string; code: number }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [runner, ...argv], { timeout: 60000 }, (e, out, err) => {
      resolve({ out, err, code: e ? Number((e as { code?: number }).code ?? 1) : 0 });
    });
  });
}

test('place from argv writes the placement and the PowerInfer index', async () => {
  const model = join(dir, 'm.gguf');
  await writePowerLawModel(model, buildPowerLawModel({ nLayer: 2, nFf: 128, nEmbd: 32, alpha: 0.6, seed: 2 }));
  const desc = await describeModelFile(model);
  const stats = join(dir, 'm.rsst');
  writeStatsFile(stats, { identity: desc.identity, tokens: 1000, source: 'test', counts: powerLawCounts(2, 128, 1000, 0.6, 4) });
  const out = join(dir, 'm.rspl');
  // A budget that holds the fixed part with four slots and about half the FFN: one slot
  // leaves room for more neurons.
  const four = vramCosts(desc, { nCtx: 64, nSeq: 4, nBatch: 4 });
  const budget = String(four.fixedTotal + Math.floor(four.ffnTotal / 2));
  const g = await run(['place', '--model', model, '--stats', stats, '--vram-budget', budget, '--ctx', '64', '--batch-size', '4', '--out', out, '--powerinfer-gpuidx', join(dir, 'm.gpuidx')]);
  assert.equal(g.code, 0, g.err);
  assert.match(g.out, /wrote .*m\.gpuidx \(PowerInfer/);
  const r = await run(['place', '--model', model, '--stats', stats, '--vram-budget', budget, '--ctx', '64', '--batch-size', '4', '--out', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /total +\d+\/256/);
  const p = readPlacementFile(out, desc.identity);
  assert.equal(p.budget, Number(budget));
  assert.equal(p.nCtx, 64);
  assert.equal(p.nSeq, 1);
  // Four slots need four KV caches: fewer neurons fit.
  const r4 = await run(['place', '--model', model, '--stats', stats, '--vram-budget', budget, '--ctx', '64', '--batch-size', '4', '--slots', '4', '--out', out]);
  assert.equal(r4.code, 0, r4.err);
  const p4 = readPlacementFile(out, desc.identity);
  assert.equal(p4.nSeq, 4);
  assert.ok(p4.fixedBytes > p.fixedBytes && p4.ffnBytes < p.ffnBytes);

  const small = await run(['place', '--model', model, '--stats', stats, '--vram-budget', '1KiB', '--out', out]);
  assert.equal(small.code, 1);
  assert.match(small.err, /relu-serve place: VRAM budget 1\.00 KiB .* is too small/);
  const kv = await run(['place', '--model', model, '--stats', stats, '--vram-budget', '1GiB', '--kv-type', 'q4', '--out', out]);
  assert.equal(kv.code, 1);
  assert.match(kv.err, /--kv-type must be f16 or f32/);
});

test('usage errors are reported, not thrown', async () => {
  const missing = await run(['place', '--model', 'x.gguf']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.err, /required option '--stats <file>' not specified/);
  const bad = await run(['profile', '--model', 'x.gguf', '--out', 'x.rsst', '--tokens', '-5']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--tokens must be a positive integer, got "-5"/);
  const noModel = await run(['profile', '--model', join(dir, 'nope.gguf'), '--out', join(dir, 'x.rsst')]);
  assert.equal(noModel.code, 1);
  assert.match(noModel.err, /relu-serve profile: cannot read model .*nope\.gguf/);
});

test('progress line and chart path', () => {
  assert.equal(
    progressLine({ done: 2600, total: 5000, elapsedMs: 3200 }, 10),
    '[#####.....]  52.0%  2600/5000 tokens  812.5 tok/s  ETA 0:02',
  );
  assert.match(progressLine({ done: 0, total: 100, elapsedMs: 0 }, 4), /^\[\.\.\.\.\]   0\.0%.*ETA --:--$/);
  assert.equal(svgPathFor('/a/b/stats.rsst'), '/a/b/stats.svg');
  assert.equal(svgPathFor('stats'), 'stats.svg');
});

// End to end on a synthetic ReLU model with a designed power law: `profile` counts what
// the model computes (checked against a direct dense run in float64), survives an
// interrupt with what it counted, and `place` turns the stats into a placement refusing
// foreign stats and budgets below the fixed part. Needs the native addon (npm run build).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { profileCommand, type ProfileCommandOptions } from '../../server/cli/profile.js';
import { placeCommand } from '../../server/cli/place.js';
import { readStatsFile } from '../../server/profiler/stats-format.js';
import { readPlacementFile } from '../../server/profiler/placement-format.js';
import { describeModelFile } from '../../server/profiler/model-file.js';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { vocabFromMetadata } from '../../server/tokenizer/vocab.js';
import { metadataValues, readGgufHeader } from '../../server/gguf/header-reader.js';
import { buildPowerLawModel, denseCounts, writePowerLawModel } from './powerlaw-model.js';
import { seededRandom } from './synthetic.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-prof-e2e-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const spec = { nLayer: 3, nFf: 256, nEmbd: 64, alpha: 0.6, seed: 1 };
const model = buildPowerLawModel(spec);
const modelPath = join(dir, 'powerlaw.gguf');
const corpusPath = join(dir, 'corpus.txt');
const ready = (async () => {
  await writePowerLawModel(modelPath, model);
  // Random printable text: byte-level tokens cover all 95 printable characters.
  const rand = seededRandom(5);
  writeFileSync(corpusPath, Array.from({ length: 6000 }, () => String.fromCharCode(32 + Math.floor(rand() * 95))).join(''));
})();

function quietIo(signalAfterLines?: number) {
  const out: string[] = [];
  const err: string[] = [];
  const ac = new AbortController();
  return {
    out,
    err,
    io: {
      out: (s: string) => out.push(s),
      err: (s: string) => {
        err.push(s);
        if (signalAfterLines !== undefined && err.filter((l) => l.startsWith('[')).length >= signalAfterLines) ac.abort();
      },
      tty: false,
      signal: ac.signal,
    },
  };
}

function opts(o: Partial<ProfileCommandOptions>): ProfileCommandOptions {
  return { model: modelPath, out: join(dir, 'x.rsst'), ctx: 256, batch: 64, speedCheck: false, threads: 2, corpus: [corpusPath], ...o };
}

async function corpusTokens(): Promise<number[]> {
  const tok = new SpmTokenizer(vocabFromMetadata(metadataValues(await readGgufHeader(modelPath))));
  return tok.encode(readFileSync(corpusPath, 'utf8'));
}

function checkAgainstDense(counts: Float64Array[], ids: ArrayLike<number>): number {
  const ref = denseCounts(model, ids);
  let unsure = 0;
  counts.forEach((layer, l) =>
    layer.forEach((c, i) => {
      const lo = ref.sure[l][i];
      const hi = lo + ref.unsure[l][i];
      unsure += ref.unsure[l][i];
      assert.ok(c >= lo && c <= hi, `layer ${l} neuron ${i}: engine ${c}, dense run ${lo}..${hi}`);
    }),
  );
  return unsure;
}

test('profile counts what the model computes, per layer and neuron', async (t) => {
  await ready;
  const o = opts({ out: join(dir, 'full.rsst'), tokens: 4000, speedCheck: true });
  const q = quietIo();
  await profileCommand(o, q.io);
  const desc = await describeModelFile(modelPath);
  const stats = readStatsFile(o.out, desc);
  const ids = (await corpusTokens()).slice(0, 4000);
  assert.equal(stats.tokens, ids.length);
  const unsure = checkAgainstDense(stats.counts, ids);
  t.diagnostic(`${unsure} neuron-token pairs within 1e-4 of zero were left to rounding`);
  // The designed power law shows in what was counted: the neurons designed to be the
  // hottest 10% cover the designed share of activations, and the mean rate matches.
  stats.counts.forEach((counts, l) => {
    const p = model.target[l];
    const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a]);
    const share = (v: ArrayLike<number>) => order.slice(0, 26).reduce((s, i) => s + v[i], 0) / Array.from(v).reduce((s, x) => s + x, 0);
    assert.ok(Math.abs(share(counts) - share(p)) < 0.04, `layer ${l}: top 10% cover ${share(counts).toFixed(3)}, designed ${share(p).toFixed(3)}`);
    const rate = counts.reduce((s, v) => s + v, 0) / (ids.length * counts.length);
    const designed = p.reduce((s, v) => s + v, 0) / p.length;
    assert.ok(Math.abs(rate / designed - 1) < 0.15, `layer ${l}: mean firing rate ${rate.toFixed(4)}, designed ${designed.toFixed(4)}`);
  });
  assert.ok(existsSync(join(dir, 'full.svg')), 'chart written next to the stats');
  assert.match(q.out.join(''), /layer +n_ff +fire rate/);
  const speed = /profiling runs at ([\d.]+)x of it/.exec(q.err.join(''));
  assert.ok(speed, 'speed comparison printed');
  t.diagnostic(`profile / plain prompt speed: ${speed[1]}x; ${q.err.filter((l) => /tok\/s/.test(l)).slice(-2).join(' ').trim()}`);
});

test('an interrupted profile keeps and writes what it counted so far', async () => {
  await ready;
  const o = opts({ out: join(dir, 'part.rsst'), tokens: 4000, batch: 32 });
  const q = quietIo(2); // abort once the progress has printed twice
  await profileCommand(o, q.io);
  const stats = readStatsFile(o.out);
  assert.ok(stats.tokens > 0 && stats.tokens < 4000, `${stats.tokens} tokens`);
  assert.match(q.err.join(''), /interrupted: keeping the \d+ tokens counted so far/);
  checkAgainstDense(stats.counts, (await corpusTokens()).slice(0, stats.tokens));
});

test('place writes a placement within the budget, refuses foreign stats and too small budgets', async () => {
  await ready;
  const statsPath = join(dir, 'place.rsst');
  await profileCommand(opts({ out: statsPath, tokens: 1500 }), quietIo().io);
  const out = join(dir, 'p.rspl');
  const gpuidx = join(dir, 'powerlaw.gguf.generated.gpuidx');
  const q = quietIo();
  await placeCommand({ model: modelPath, stats: statsPath, vramBudget: '600KiB', ctx: 128, batchSize: 4, kvType: 'f16', out }, q.io);
  const desc = await describeModelFile(modelPath);
  const p = readPlacementFile(out, desc.identity);
  assert.ok(p.fixedBytes + p.ffnBytes <= 600 * 1024);
  assert.ok(p.layers.some((l) => l.gpuNeurons.length > 0 && l.gpuNeurons.length < 256), 'a partial placement');
  assert.match(q.out.join(''), /total +\d+\/768/);
  // With PowerInfer's index too: both files hold counts its kernels take (here n_ff = 256: none or all).
  await placeCommand({ model: modelPath, stats: statsPath, vramBudget: '600KiB', ctx: 128, batchSize: 4, kvType: 'f16', out, powerinferGpuidx: gpuidx }, q.io);
  assert.ok(existsSync(gpuidx));
  const grouped = readPlacementFile(out, desc.identity);
  assert.ok(grouped.layers.every((l) => l.gpuNeurons.length === 0 || l.gpuNeurons.length === 256));
  assert.ok(grouped.layers.some((l) => l.gpuNeurons.length === 256));
  assert.match(q.out.join(''), /in multiples of 256 \(or all\)/);

  // Same name, shapes and types but other weights: still another model.
  const twinPath = join(dir, 'twin.gguf');
  await writePowerLawModel(twinPath, buildPowerLawModel({ ...spec, seed: 4 }));
  assert.notDeepEqual((await describeModelFile(twinPath)).identity.hash, desc.identity.hash);
  assert.deepEqual((await describeModelFile(modelPath)).identity.hash, desc.identity.hash);
  await assert.rejects(
    placeCommand({ model: twinPath, stats: statsPath, vramBudget: '1GiB', ctx: 128, kvType: 'f16', out: join(dir, 'q.rspl') }, q.io),
    /made for a different model/,
  );

  const otherPath = join(dir, 'other.gguf');
  await writePowerLawModel(otherPath, buildPowerLawModel({ ...spec, seed: 2 }), 'another-model');
  await assert.rejects(
    placeCommand({ model: otherPath, stats: statsPath, vramBudget: '1GiB', ctx: 128, kvType: 'f16', out: join(dir, 'q.rspl') }, q.io),
    /made for a different model: it is for "powerlaw-relu-tiny".*"another-model"/,
  );
  await assert.rejects(
    placeCommand({ model: modelPath, stats: statsPath, vramBudget: '10KiB', ctx: 128, kvType: 'f16', out: join(dir, 'q.rspl') }, q.io),
    /VRAM budget 10\.00 KiB .* is too small: the attention weights no longer fit/,
  );
  await assert.rejects(
    placeCommand({ model: modelPath, stats: statsPath, vramBudget: 'six gigs', ctx: 128, kvType: 'f16', out: join(dir, 'q.rspl') }, q.io),
    /cannot read "six gigs" as a size/,
  );
});

test('profile --import-powerinfer converts published statistics without running the model', async () => {
  const small = join(dir, 'small.gguf');
  await writePowerLawModel(small, buildPowerLawModel({ nLayer: 2, nFf: 8, nEmbd: 16, alpha: 0.5, seed: 3 }), 'small');
  const o = opts({ model: small, out: join(dir, 'imp.rsst'), importPowerinfer: join(process.cwd(), 'test/fixtures/profiler/powerinfer'), exportPowerinfer: join(dir, 'exp') });
  const q = quietIo();
  await profileCommand(o, q.io);
  const stats = readStatsFile(o.out, await describeModelFile(small));
  assert.deepEqual([...stats.counts[0]], [5, 0, 3, 9, 1, 1, 0, 7]);
  assert.ok(existsSync(join(dir, 'exp', 'activation_1.pt')));
  assert.match(q.out.join(''), /token count unknown/);
});

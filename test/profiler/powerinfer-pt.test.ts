// PowerInfer activation_{i}.pt import/export. The fixtures under
// test/fixtures/profiler/ were written by real torch.save (torch 1.13, Debian python3-torch):
//   activation_0.pt = torch.tensor([5,0,3,9,1,1,0,7], dtype=torch.int64)
//   activation_1.pt = torch.tensor([2.,4.,0.,8.,1.,3.,3.,0.], dtype=torch.float32)
//   strided.pt      = torch.arange(20, dtype=torch.float16)[::2]   (offset 0, stride 2)

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, unlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelIdentity } from '../../server/profiler/model-identity.js';
import {
  exportPowerInferDir,
  importPowerInferDir,
  readTorchVector,
  writeTorchVector,
} from '../../server/profiler/powerinfer-pt.js';
import { readZip, writeZip } from '../../server/profiler/zip-archive.js';
import { syntheticModel } from './synthetic.js';

const fixtures = join(process.cwd(), 'test/fixtures/profiler');
const dir = mkdtempSync(join(tmpdir(), 'rs-prof-pt-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const PY = '/usr/bin/python3';

function hasTorch(): boolean {
  if (!existsSync(PY)) return false;
  try {
    execFileSync(PY, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60000 });
    return true;
  } catch {
    return false;
  }
}

test('reads tensors written by real torch.save (int64, float32, strided float16)', () => {
  const a = readTorchVector(join(fixtures, 'powerinfer/activation_0.pt'));
  assert.equal(a.dtype, 'i64');
  assert.deepEqual([...a.values], [5, 0, 3, 9, 1, 1, 0, 7]);
  const b = readTorchVector(join(fixtures, 'powerinfer/activation_1.pt'));
  assert.equal(b.dtype, 'f32');
  assert.deepEqual([...b.values], [2, 4, 0, 8, 1, 3, 3, 0]);
  const s = readTorchVector(join(fixtures, 'strided.pt'));
  assert.equal(s.dtype, 'f16');
  assert.deepEqual([...s.values], [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
});

test('imports a PowerInfer activation directory as stats tied to the model', () => {
  const model = syntheticModel({ nLayer: 2, nFf: 8, nEmbd: 32 });
  const identity = modelIdentity(model);
  const { stats, scale } = importPowerInferDir(join(fixtures, 'powerinfer'), { identity, nLayer: 2, nFf: 8 });
  assert.equal(scale, 1);
  assert.deepEqual(stats.identity, identity);
  assert.deepEqual([...stats.counts[1]], [2, 4, 0, 8, 1, 3, 3, 0]);
  assert.throws(
    () => importPowerInferDir(join(fixtures, 'powerinfer'), { identity, nLayer: 3, nFf: 8 }),
    /2 layer files but the model has 3 layers/,
  );
  assert.throws(() => importPowerInferDir(join(fixtures, 'powerinfer'), { identity, nLayer: 2, nFf: 16 }), /has 8 entries; the model's n_ff is 16/);
});

test('layer files sort numerically (activation_10 after activation_9) and gaps are refused', () => {
  const d = mkdtempSync(join(dir, 'sort-'));
  for (let i = 0; i < 12; i++) writeTorchVector(join(d, `activation_${i}.pt`), [i, 100 + i], `activation_${i}`);
  const identity = modelIdentity(syntheticModel({ nLayer: 12, nFf: 2, nEmbd: 32 }));
  const { stats } = importPowerInferDir(d, { identity, nLayer: 12, nFf: 2 });
  stats.counts.forEach((c, i) => assert.deepEqual([...c], [i, 100 + i]));
  unlinkSync(join(d, 'activation_4.pt'));
  assert.throws(() => importPowerInferDir(d, { identity, nLayer: 12, nFf: 2 }), /activation_4\.pt is missing/);
});

test('fractional frequencies are scaled to integer counts', () => {
  const d = mkdtempSync(join(dir, 'freq-'));
  // A float64 storage written by hand through the same zip/pickle path.
  const entries = readZip(readFileSync(join(fixtures, 'powerinfer/activation_1.pt')), 'fixture');
  const data = Buffer.alloc(32);
  [0.5, 0.25, 0, 0.125, 0.001, 1, 0, 0].forEach((v, i) => data.writeFloatLE(v, 4 * i));
  writeFileSync(
    join(d, 'activation_0.pt'),
    writeZip([
      { name: 'activation_0/data.pkl', data: entries.get('activation_1/data.pkl')! },
      { name: 'activation_0/data/0', data },
      { name: 'activation_0/version', data: Buffer.from('3\n') },
    ]),
  );
  const identity = modelIdentity(syntheticModel({ nLayer: 1, nFf: 8, nEmbd: 32 }));
  const r = importPowerInferDir(d, { identity, nLayer: 1, nFf: 8 });
  assert.equal(r.scale, 1e6);
  assert.deepEqual([...r.stats.counts[0]], [500000, 250000, 0, 125000, 1000, 1000000, 0, 0]);
  assert.match(r.stats.source, /frequencies/);
});

test('hostile or broken .pt files are refused with a clear message', () => {
  const evil = Buffer.concat([
    Buffer.from([0x80, 2]),
    Buffer.from('cos\nsystem\n'),
    Buffer.from([0x58, 2, 0, 0, 0]),
    Buffer.from('ls'),
    Buffer.from([0x85, 0x52, 0x2e]),
  ]);
  const p = join(dir, 'evil.pt');
  writeFileSync(p, writeZip([{ name: 'evil/data.pkl', data: evil }]));
  assert.throws(() => readTorchVector(p), /uses os\.system.*refusing/);
  const notZip = join(dir, 'plain.pt');
  writeFileSync(notZip, 'hello world, not a zip archive at all........');
  assert.throws(() => readTorchVector(notZip), /not a zip archive/);
  const good = readFileSync(join(fixtures, 'powerinfer/activation_0.pt'));
  const trunc = join(dir, 'trunc.pt');
  writeFileSync(trunc, good.subarray(0, 300));
  assert.throws(() => readTorchVector(trunc), /trunc\.pt/);
  const corrupt = Buffer.from(good);
  corrupt[322] ^= 0xff; // inside data/0 (which starts at byte 320)
  writeFileSync(trunc, corrupt);
  assert.throws(() => readTorchVector(trunc), /CRC-32 mismatch/);
});

test('export writes files our reader and torch.load both read back', (t) => {
  const identity = modelIdentity(syntheticModel({ nLayer: 3, nFf: 5, nEmbd: 32 }));
  const counts = [Float64Array.of(1, 2, 3, 4, 5), Float64Array.of(0, 0, 7, 0, 2 ** 40), Float64Array.of(9, 8, 7, 6, 5)];
  const d = join(dir, 'export');
  const files = exportPowerInferDir(d, { identity, tokens: 10, source: 'test', counts });
  assert.equal(files.length, 3);
  const back = importPowerInferDir(d, { identity, nLayer: 3, nFf: 5 });
  assert.deepEqual(back.stats.counts, counts);
  if (!hasTorch()) {
    t.skip(`python3-torch is not installed at ${PY}: torch.load cross-check not run`);
    return;
  }
  const out = execFileSync(PY, ['-c', `import torch\nfor i in range(3):\n  x = torch.load('${d}/activation_%d.pt' % i)\n  print(x.dtype, x.tolist())`], {
    encoding: 'utf8',
    timeout: 120000,
  });
  assert.equal(
    out.trim(),
    ['torch.int64 [1, 2, 3, 4, 5]', 'torch.int64 [0, 0, 7, 0, 1099511627776]', 'torch.int64 [9, 8, 7, 6, 5]'].join('\n'),
  );
});

// A seeded request gives the same text whatever else the server is doing: its rows'
// results do not depend on the batch they share (matmul kernels give each row the same
// bits alone or batched, and the sparse/dense FFN choice depends only on its own sequence).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { makeModel } from '../../server/cli/make-model.js';
import { createRuntime } from '../../server/scheduler/load.js';
import { startServer } from './server.js';

test('same seed and request give the same output alone and under concurrent load', async () => {
  // Q4_0 weights: quantised activations make any batch dependence visible quickly.
  const out = join(mkdtempSync(join(tmpdir(), 'relu-serve-det-')), 'q4.gguf');
  await makeModel({ arch: 'bamboo', size: 'tiny', type: 'q4_0', seed: 21, out });
  const runtime = createRuntime({ modelPath: out, alias: 'tiny', parallel: 4, ctxSize: 256, threads: 2, batchSize: 256 });
  const s = await startServer({ runtime });
  try {
    const req = { model: 'tiny', prompt: 'In the beginning', max_tokens: 24, temperature: 0.9, seed: 77 };
    const alone = (await s.client.completions.create(req)).choices[0].text;
    const alone2 = (await s.client.completions.create(req)).choices[0].text;
    assert.equal(alone2, alone);
    // The same request again, now sharing every step with three others (one with a long
    // prompt, which takes the dense path while the others take the sparse one).
    const others = [
      s.client.completions.create({ ...req, prompt: 'And the earth was without form', seed: 1 }),
      s.client.completions.create({ ...req, prompt: 'Let there be light '.repeat(6), seed: 2, max_tokens: 30 }),
      s.client.completions.create({ ...req, prompt: 'x', seed: 3, max_tokens: 40 }),
    ];
    const shared = s.client.completions.create(req);
    const [mine] = await Promise.all([shared, ...others]);
    assert.equal(mine.choices[0].text, alone);
    assert.ok(s.steps.some((st) => st.sequences >= 3), 'the requests really shared decode steps');
  } finally {
    await s.close();
  }
});

// The tokenizer built from a model file's metadata, read back two ways: the small TS
// header reader, and the engine's C++ loader (Model.load), whose metadata map is what the
// server uses. Both must give the fixture's exact encodings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeModel } from '../../server/cli/make-model.js';
import { readGgufHeader, metadataValues } from '../../server/gguf/header-reader.js';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { fixtureCases, repoRoot } from './fixture.js';
import type { GgufValue } from '../../server/engine/types.js';

const addonBuilt = existsSync(join(repoRoot(), 'build', 'Release', 'relu_serve.node'));

function checkAll(meta: Map<string, GgufValue>): void {
  const tok = SpmTokenizer.fromMetadata(meta);
  for (const c of fixtureCases.encode) {
    assert.deepEqual(tok.encode(c.text, { addBos: false }), c.ids, JSON.stringify(c.text));
    assert.equal(tok.decode(c.ids), c.decoded);
  }
  for (const c of fixtureCases.decode) assert.equal(tok.decode(c.ids), c.text);
}

test('tokenizer metadata survives a GGUF file (TS header reader and engine loader)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rs-tok-'));
  try {
    const path = join(dir, 'tiny.gguf');
    await makeModel({ arch: 'llama', size: 'tiny', type: 'f32', seed: 2, out: path });
    checkAll(metadataValues(await readGgufHeader(path)));
    if (!addonBuilt) {
      t.skip('native addon not built: engine loader part skipped');
      return;
    }
    const { Model } = await import('../../server/engine/engine.js');
    const model = await Model.load(path);
    try {
      checkAll(model.metadata);
    } finally {
      model.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

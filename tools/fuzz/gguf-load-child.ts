// The fuzzer's loader process: reads one file path per stdin line, loads it with the
// engine (and, when it loads, decodes a few tokens), and answers one JSON line. It runs
// apart from the fuzzer so that a crash is seen as this process's signal, not the
// fuzzer's death. A rejected load is the good outcome for a broken file.

import { createInterface } from 'node:readline';
import { Model, sequenceBatch } from '../../server/engine/engine.js';

async function tryFile(path: string): Promise<string> {
  let m: Model;
  try {
    m = await Model.load(path);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (!e.code?.startsWith('RS_ERR')) return `bad-error ${e.code ?? e.name}: ${e.message}`;
    return 'refused';
  }
  try {
    const ctx = await m.createContext({ nSeq: 1, nCtx: 16, threads: 1 });
    try {
      await ctx.decode(sequenceBatch([1, 2, 3], 0, 0));
    } finally {
      ctx.dispose();
    }
    return 'loaded';
  } catch {
    return 'loaded-refused-later';
  } finally {
    m.dispose();
  }
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  const outcome = await tryFile(line);
  process.stdout.write(JSON.stringify({ outcome }) + '\n');
}

// Shared by make-model-native.test.ts and make-model-native-1b.long.test.ts: write a model
// with both `relu-serve make-model` (TS, in this process) and the C++ port
// (relu-serve-make-model) and compare the files byte for byte.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeModelProgram } from '../make-model-program.js';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
// Left in build/bin by the addon's build (npm ci / npm run build:addon).
export const bin = join(root, 'build', 'bin', 'relu-serve-make-model');
export const dir = mkdtempSync(join(tmpdir(), 'relu-serve-mm-native-'));
after(() => rmSync(dir, { recursive: true, force: true }));

export function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    // cwd outside the checkout: the tool finds the tokenizer fixture from its own path.
    execFile(bin, args, { cwd: dir, timeout: 300_000, maxBuffer: 1 << 20 }, (e, out, err) =>
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

/** The offset of the first byte where two files differ (one ending early counts), or -1. */
async function firstDifference(pathA: string, pathB: string): Promise<number> {
  const [fa, fb] = await Promise.all([open(pathA), open(pathB)]);
  try {
    const a = Buffer.alloc(1 << 24);
    const b = Buffer.alloc(1 << 24);
    for (let pos = 0; ; ) {
      const [ra, rb] = await Promise.all([fa.read(a, 0, a.length, pos), fb.read(b, 0, b.length, pos)]);
      const n = Math.min(ra.bytesRead, rb.bytesRead);
      if (a.subarray(0, n).compare(b.subarray(0, n)) !== 0) {
        let i = 0;
        while (a[i] === b[i]) i++;
        return pos + i;
      }
      if (ra.bytesRead !== rb.bytesRead) return pos + n;
      if (n === 0) return -1;
      pos += n;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/**
 * `relu-serve make-model ARGS` in this process, its flag parsing included. Its one stdout
 * line ("wrote ...") is dropped; everything else passes, since the test reporter writes
 * there too (capturing all of stdout, as runMakeModel does, swallows other tests' results).
 */
export async function tsMakeModel(args: string[]): Promise<void> {
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    typeof chunk === 'string' && chunk.startsWith('wrote ') ? true : write.call(process.stdout, chunk, ...rest)) as typeof process.stdout.write;
  try {
    await makeModelProgram().parseAsync(['make-model', ...args], { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
}

let caseNo = 0;
export async function assertSameBytes(args: string[]): Promise<void> {
  assert.ok(existsSync(bin), `${bin} is missing: npm run build:addon (or a plain CMake build) makes it`);
  const n = caseNo++;
  const ts = join(dir, `ts-${n}.gguf`);
  const cc = join(dir, `cc-${n}.gguf`);
  await tsMakeModel([...args, '--out', ts, '--quiet']);
  const r = await run([...args, '--out', cc]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^wrote .*: \d+ tensors, [\d.]+ MiB in [\d.]+ s\n$/);
  const at = await firstDifference(ts, cc);
  assert.equal(at, -1, `${args.join(' ')}: the files differ from byte ${at} (TS ${statSync(ts).size} bytes, C++ ${statSync(cc).size})`);
  rmSync(ts);
  rmSync(cc);
}

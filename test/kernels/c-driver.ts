// Compiles a small C program against the built kernel library (build/kernels/librs_kernels.a)
// and runs it: for kernels that have no N-API entry point. The program prints "FAIL ..."
// lines for mismatches and a final "checked N fails M" line.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const KERNEL_LIB = join(ROOT, 'build/kernels/librs_kernels.a');

/** Builds and runs `source`; asserts no FAIL lines and returns the number of checks. */
export function runKernelDriver(source: string): number {
  assert.ok(existsSync(KERNEL_LIB), `no ${KERNEL_LIB}: build the addon first (npm run build)`);
  const dir = mkdtempSync(join(tmpdir(), 'rs-kernel-driver-'));
  try {
    const src = join(dir, 'driver.c'), exe = join(dir, 'driver');
    writeFileSync(src, source);
    execFileSync('cc', ['-O1', '-std=c11', '-I', join(ROOT, 'kernels/include'), src, KERNEL_LIB, '-lm', '-o', exe]);
    const out = execFileSync(exe, { encoding: 'utf8' });
    const fails = out.split('\n').filter((l) => l.startsWith('FAIL'));
    assert.deepEqual(fails.slice(0, 10), [], out.slice(0, 2000));
    const m = /checked (\d+) fails (\d+)/.exec(out);
    assert.ok(m, `driver output: ${out.slice(0, 500)}`);
    assert.equal(Number(m[2]), 0);
    return Number(m[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

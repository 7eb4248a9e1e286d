// The CUDA build: the sources compile whenever nvcc exists, the addon loads and runs on
// a machine without a GPU, and on a machine with one every CUDA op matches the CPU
// reference (relu-serve-cuda-check, which native-cmake.long.test.ts also runs on the CUDA emulator).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { native } from '../../server/engine/binding.js';

function haveNvcc(): boolean {
  try {
    execFileSync('nvcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const check = fileURLToPath(new URL('../../../build/bin/relu-serve-cuda-check', import.meta.url));

test('the addon carries the CUDA code whenever nvcc exists, and GPU use is decided at run time', () => {
  assert.equal(native.cuda.compiled, haveNvcc(), 'cuda.compiled must match whether nvcc is installed');
  const n = native.cuda.devices();
  assert.ok(Number.isInteger(n) && n >= 0, `devices() = ${n}`);
  if (native.cuda.compiled && n === 0) {
    // The check program says so itself, with its own exit status.
    const r = spawnSync(check, [], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stdout, /no CUDA device/);
  }
});

test('every CUDA op matches the CPU reference on this GPU', { skip: native.cuda.devices() === 0 ? 'no GPU here (native-cmake.long.test.ts runs the same checks on the CUDA emulator)' : false }, () => {
  const r = spawnSync(check, [], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /every CUDA op matches the CPU reference/);
});

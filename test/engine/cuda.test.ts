// The CUDA build seam: the sources compile whenever nvcc exists, the addon loads and runs
// on a machine without a GPU, and on a machine with one each CUDA op matches the CPU
// reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { native } from '../../server/engine/binding.js';

function haveNvcc(): boolean {
  try {
    execFileSync('nvcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('the addon carries the CUDA code whenever nvcc exists, and GPU use is decided at run time', () => {
  assert.equal(native.cuda.compiled, haveNvcc(), 'cuda.compiled must match whether nvcc is installed');
  const n = native.cuda.devices();
  assert.ok(Number.isInteger(n) && n >= 0, `devices() = ${n}`);
});

test('CUDA RMSNorm matches the CPU reference (or says clearly that there is no device)', () => {
  if (!native.cuda.compiled) return; // nothing to run: the CPU-only build has no CUDA ops
  const d = 4096;
  const rows = 3;
  const x = Float32Array.from({ length: rows * d }, (_, i) => Math.sin(i * 0.013) * 3);
  const w = Float32Array.from({ length: d }, (_, i) => 1 + 0.01 * (i % 17));
  if (native.cuda.devices() === 0) {
    assert.throws(() => native.cuda.rmsnorm!(x, w, rows, 1e-5), /no CUDA device/);
    return;
  }
  const gpu = native.cuda.rmsnorm!(x, w, rows, 1e-5);
  for (let r = 0; r < rows; r++) {
    const cpu = native.kernels.rmsnorm('ref', x.subarray(r * d, (r + 1) * d), w, 1e-5);
    for (let i = 0; i < d; i++) assert.ok(Math.abs(gpu[r * d + i] - cpu[i]) <= 1e-5 * (1 + Math.abs(cpu[i])), `row ${r} [${i}]`);
  }
});

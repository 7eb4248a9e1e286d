// tools/scatter-read: the ceiling for the sparse FFN's access pattern that README's
// benchmark section quotes. It must build warning-free wherever CI builds, refuse bad
// arguments, and read what it says (the sequential case, density 1, is the same loop
// over every block, so it cannot come out slower than a scattered 1-in-4 choice by more
// than noise allows: a loop that skipped blocks would break that).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SRC = 'tools/scatter-read/scatter_read.c';

test('scatter-read builds without warnings, refuses bad arguments, and reports a read rate', (t) => {
  if (process.arch !== 'x64') return t.skip('an x86-64 tool (AVX2 loads)');
  const dir = mkdtempSync(join(tmpdir(), 'scatter-read-'));
  try {
    const exe = join(dir, 'scatter-read');
    const cc = spawnSync('cc', ['-O2', '-mavx2', '-pthread', '-Wall', '-Wextra', '-Werror', SRC, '-o', exe], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const bad = spawnSync(exe, ['2', '0', '0', '10'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /bad arguments/);
    const usage = spawnSync(exe, [], { encoding: 'utf8' });
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /usage: .* THREADS SIDE_BY_SIDE PREFETCH_AHEAD DENSITY/);
    // Small blocks (16 x 8192 x 256 bytes = 32 MiB) keep it quick.
    const rate = (args: string[]) => {
      const r = spawnSync(exe, args, { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const m = /: (\d+\.\d) GB\/s/.exec(r.stdout);
      assert.ok(m, r.stdout);
      return Number(m[1]);
    };
    const all = rate(['2', '4', '0', '1', '256']);
    const some = rate(['2', '4', '0', '4', '256']);
    assert.ok(all > 0.5 && some > 0.5, `${all}, ${some} GB/s`);
    assert.ok(all > 0.5 * some, `every block in order read at ${all} GB/s, a 1-in-4 choice at ${some}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

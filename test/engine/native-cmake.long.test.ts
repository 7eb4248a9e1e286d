// relu-serve-native built without Node: a plain CMake build on a PATH whose `node` only
// records that it was called, with the CUDA device and kernels built against the CPU
// emulator of CUDA; that build then runs every CUDA op against the CPU reference, gives
// the CPU's tokens with any share of the FFN on (emulated) CUDA, and runs the device
// check script end to end. In `npm run test:long` (CI runs it), not `npm test`: the
// second full C++ build alone takes minutes on 2 cores. native.test.ts checks the npm
// build's relu-serve-native against `relu-serve generate`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeNativeModels, run } from './native-fixture.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'relu-serve-native-'));
after(() => rmSync(dir, { recursive: true, force: true }));


let bamboo = '';
let powerinfer = '';
before(async () => {
  ({ bamboo, powerinfer } = await makeNativeModels(dir));
});

let emuBuild = '';

test('the engine, relu-serve-native and the CUDA check build with plain CMake, never calling node', async () => {
  const fake = join(dir, 'fake-bin');
  mkdirSync(fake);
  const calls = join(dir, 'node-calls');
  writeFileSync(join(fake, 'node'), `#!/bin/sh\necho "$@" >> ${calls}\nexit 1\n`);
  chmodSync(join(fake, 'node'), 0o755);
  const env = { ...process.env, PATH: `${fake}:${process.env.PATH}` };
  const b = join(dir, 'build');
  // The CUDA sources as C++ on the emulator (nvcc's own compile of them is the npm build's).
  const conf = await run('cmake', ['-S', join(root, 'addon'), '-B', b, '-DCMAKE_BUILD_TYPE=Release', '-DRS_CUDA_EMU=ON'], env);
  assert.equal(conf.code, 0, conf.err);
  assert.match(conf.out, /building the engine and relu-serve-native without the Node addon/);
  const build = await run('cmake', ['--build', b, '-j2', '--target', 'relu-serve-native', 'relu-serve-cuda-check'], env);
  assert.equal(build.code, 0, build.err);
  assert.equal(existsSync(calls), false, `node was called: ${existsSync(calls) ? readFileSync(calls, 'utf8') : ''}`);
  const r = await run(join(b, 'bin', 'relu-serve-native'), ['--model', bamboo, '--tokens', '1,5,9', '-n', '4', '--device', 'cpu']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^\d+(,\d+){3}\n$/);
  emuBuild = b;
});

test('every CUDA op matches the CPU reference (on the CUDA emulator)', async () => {
  assert.ok(emuBuild, 'the emulator build above');
  const json = join(dir, 'cuda-check.json');
  const r = await run(join(emuBuild, 'bin', 'relu-serve-cuda-check'), ['--quick', '--json', json]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /device 0: CUDA emulator/);
  assert.match(r.out, /\d+ checks, 0 failed: every CUDA op matches the CPU reference/);
  const report = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(report.fails, 0);
  assert.ok(report.checks >= 50, `${report.checks} checks`);
});

test('the CUDA device (emulated) gives the CPU\'s tokens with 0%, 25%, 50% and 100% of the FFN on it', async () => {
  assert.ok(emuBuild, 'the emulator build above');
  const bin = join(emuBuild, 'bin', 'relu-serve-native');
  for (const model of [powerinfer, bamboo]) {
    const args = ['--model', model, '--tokens', '1,17,42,99', '-n', '6', '--threads', '2', '--ignore-eos', '--json'];
    const cpu = JSON.parse((await run(bin, [...args, '--device', 'cpu'])).out);
    const all = JSON.parse((await run(bin, [...args, '--device', 'cuda'])).out);
    const fixed = all.device.used - all.device.bytes.ffn;
    for (const share of [0, 0.25, 0.5, 1]) {
      const budget = share === 0 ? fixed : fixed + Math.floor(share * all.device.ffn_all) + 256 * all.model_info.n_layer;
      const r = await run(bin, [...args, '--device', 'cuda', '--vram-budget', String(budget)]);
      assert.equal(r.code, 0, r.err);
      const j = JSON.parse(r.out);
      const where = `${model} at ${share * 100}%`;
      assert.deepEqual(j.tokens, cpu.tokens, where);
      assert.equal(j.device.type, 'cuda');
      assert.match(j.device.name, /CUDA emulator/);
      assert.ok(Math.abs(j.device.bytes.ffn / j.device.ffn_all - share) < 0.03, `${where}: ${j.device.bytes.ffn / j.device.ffn_all}`);
      // One prompt step, five one-token steps: the second of these is recorded (a CUDA
      // graph on the emulator) and it and the rest are replays.
      assert.deepEqual([j.hybrid.recordings, j.hybrid.replayed_steps], [1, 4], where);
      if (share === 0) assert.equal(j.hybrid.neurons_device, 0, where);
      if (share === 1) assert.equal(j.hybrid.neurons_host, 0, where);
      if (share > 0 && share < 1) assert.ok(j.hybrid.neurons_device > 0 && j.hybrid.neurons_host > 0, where);
    }
  }
});

test('the device check script runs end to end (on the CUDA emulator) and reports every check passed', async () => {
  assert.ok(emuBuild, 'the emulator build above');
  const outDir = join(dir, 'device-check');
  const r = await run('sh', [join(root, 'tools', 'device-check', 'run.sh'), outDir], {
    ...process.env,
    RS_DEVICE_CHECK_EMU: '1',
    RS_BUILD_DIR: emuBuild,
  });
  const report = JSON.parse(readFileSync(join(outDir, 'report.json'), 'utf8'));
  assert.equal(r.code, 0, `${r.out}\n${r.err}\n${JSON.stringify(report.summary)}`);
  assert.equal(report.summary.passed, true);
  assert.match(report.summary.device, /CUDA emulator/);
  const names = report.checks.map((c: { check: string }) => c.check);
  for (const share of [0, 25, 50, 100]) assert.ok(names.includes(`tiny: GPU with ${share}% of the FFN resident gives the CPU's token ids`), names.join('; '));
  const half = report.models.tiny.gpu['50'];
  assert.ok(half.neurons_device > 0 && half.neurons_cpu > 0 && half.vram_used <= half.vram_budget);
  assert.ok(half.cpu_time_hidden >= 0 && half.cpu_time_hidden <= 1);
  // A GPU run whose ids differ from the CPU's fails the check, by name.
  const runFile = join(outDir, 'runs', 'tiny-gpu-25.json');
  const bad = JSON.parse(readFileSync(runFile, 'utf8'));
  bad.tokens[2] += 1;
  writeFileSync(runFile, JSON.stringify(bad));
  const again = await run('python3', [join(root, 'tools', 'device-check', 'report.py'), '--report', outDir]);
  assert.equal(again.code, 1);
  const failed: string[] = JSON.parse(again.out).summary.checks_failed;
  assert.equal(failed.length, 1, failed.join('\n'));
  assert.match(failed[0], /^tiny: GPU with 25% of the FFN resident gives the CPU's token ids: cpu \[/);
});

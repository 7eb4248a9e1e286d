// ModelFileGuard on plain temporary files, without an engine: which changes make the
// model unservable (in-place writes and truncations), which are harmless (rename over
// the path, deletion), that the verdict sticks, and what is logged how often. The
// hardening test model-file-change.test.ts covers the same through a running server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, truncateSync, renameSync, rmSync, utimesSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ModelFileChangedError, ModelFileGuard } from '../../server/scheduler/model-file-guard.js';

interface Logged {
  level: 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}

function setup(): { file: string; dir: string; logs: Logged[]; guard: ModelFileGuard } {
  const dir = mkdtempSync(path.join(tmpdir(), 'guard-'));
  const file = path.join(dir, 'model.gguf');
  writeFileSync(file, Buffer.alloc(4096, 7));
  const logs: Logged[] = [];
  const log = {
    warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj: object, msg: string) => logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
  const guard = new ModelFileGuard(file, ModelFileGuard.stat(file), log);
  return { file, dir, logs, guard };
}

/** Moves the file's mtime by `s` seconds (size unchanged): an in-place write. */
function touch(file: string, s: number): void {
  const st = statSync(file);
  utimesSync(file, st.atime, new Date(st.mtimeMs + s * 1000));
}

test('an unchanged file is served, nothing logged', () => {
  const { guard, logs, dir } = setup();
  assert.equal(guard.check(), null);
  assert.equal(guard.check(), null);
  assert.deepEqual(logs, []);
  rmSync(dir, { recursive: true });
});

test('ModelFileGuard.stat records device, inode, size and mtime', () => {
  const { file, dir } = setup();
  const st = statSync(file);
  assert.deepEqual(ModelFileGuard.stat(file), { dev: st.dev, ino: st.ino, size: 4096, mtimeMs: st.mtimeMs });
  rmSync(dir, { recursive: true });
});

test('truncated in place: unservable, reason names the truncation, error logged once, verdict sticks', () => {
  const { file, guard, logs, dir } = setup();
  truncateSync(file, 1000);
  const r = guard.check();
  assert.equal(r, 'the model file was truncated while the server had it mapped; restart the server to load it again');
  // Restoring the size does not make it servable again: the mapping may already have faulted.
  truncateSync(file, 4096);
  assert.equal(guard.check(), r);
  assert.equal(logs.length, 1);
  assert.equal(logs[0].level, 'error');
  assert.equal(logs[0].msg, 'model file truncated in place: the model is no longer served');
  assert.equal(logs[0].obj.path, file);
  assert.equal((logs[0].obj.before as { size: number }).size, 4096);
  assert.equal((logs[0].obj.now as { size: number }).size, 1000);
  rmSync(dir, { recursive: true });
});

test('a size change is seen even when the mtime was put back', () => {
  const { file, dir } = setup();
  // Whole seconds, so that putting the time back is exact.
  utimesSync(file, 1e9, 1e9);
  const guard = new ModelFileGuard(file, ModelFileGuard.stat(file));
  truncateSync(file, 2000);
  utimesSync(file, 1e9, 1e9);
  assert.equal(ModelFileGuard.stat(file).mtimeMs, 1e12);
  assert.match(guard.check() ?? '', /^the model file was truncated while/);
  rmSync(dir, { recursive: true });
});

test('grown in place is "modified", not "truncated"', () => {
  const { file, guard, dir } = setup();
  writeFileSync(file, Buffer.alloc(8192, 1));
  assert.match(guard.check() ?? '', /^the model file was modified while/);
  rmSync(dir, { recursive: true });
});

test('same size, new mtime (written in place) is "modified"', () => {
  const { file, guard, logs, dir } = setup();
  touch(file, 5);
  assert.equal(guard.check(), 'the model file was modified while the server had it mapped; restart the server to load it again');
  assert.equal(logs.length, 1);
  assert.equal(logs[0].msg, 'model file modified in place: the model is no longer served');
  rmSync(dir, { recursive: true });
});

test('replaced by rename: still served, one warning however often it is checked', () => {
  const { file, guard, logs, dir } = setup();
  const other = path.join(dir, 'new.gguf');
  writeFileSync(other, Buffer.alloc(100, 3));
  renameSync(other, file);
  assert.equal(guard.check(), null);
  assert.equal(guard.check(), null);
  assert.equal(logs.length, 1);
  assert.equal(logs[0].level, 'warn');
  assert.equal(logs[0].msg, 'the model file was replaced by another file; still serving the weights loaded at start (restart to load the new file)');
  assert.deepEqual(logs[0].obj, { path: file });
  rmSync(dir, { recursive: true });
});

test('another device id with the same inode counts as replaced', () => {
  const { file, logs, dir } = setup();
  const id = ModelFileGuard.stat(file);
  const guard = new ModelFileGuard(file, { ...id, dev: id.dev + 1 }, { warn: (o, m) => logs.push({ level: 'warn', obj: o as Record<string, unknown>, msg: m }), error: () => assert.fail('no error') });
  assert.equal(guard.check(), null);
  assert.match(logs[0].msg, /^the model file was replaced by another file;/);
  rmSync(dir, { recursive: true });
});

test('removed: still served, one warning', () => {
  const { file, guard, logs, dir } = setup();
  rmSync(file);
  assert.equal(guard.check(), null);
  assert.equal(guard.check(), null);
  assert.equal(logs.length, 1);
  assert.equal(logs[0].msg, 'the model file was removed; still serving the weights loaded at start (restart to load the new file)');
  rmSync(dir, { recursive: true });
});

test('fail(): unservable at once with the decode-fault reason, logged once; an earlier check reason wins', () => {
  const { file, guard, logs, dir } = setup();
  const r = guard.fail('RS_ERR_MODEL_FILE: bus error');
  assert.equal(r, 'the model file changed on disk while a decode read it (truncated in place?); restart the server to load it again');
  assert.equal(guard.fail('again'), r);
  assert.equal(guard.check(), r);
  assert.equal(logs.length, 1);
  assert.deepEqual(logs[0], { level: 'error', obj: { path: file, detail: 'RS_ERR_MODEL_FILE: bus error' }, msg: 'reading the mapped model file faulted: the model is no longer served' });

  const b = setup();
  truncateSync(b.file, 10);
  const first = b.guard.check();
  assert.equal(b.guard.fail('later'), first);
  assert.equal(b.logs.length, 1);
  rmSync(dir, { recursive: true });
  rmSync(b.dir, { recursive: true });
});

test('without a logger every path still works', () => {
  const { file, dir } = setup();
  const g = new ModelFileGuard(file, ModelFileGuard.stat(file));
  rmSync(file);
  assert.equal(g.check(), null);
  writeFileSync(file, 'x');
  const g2 = new ModelFileGuard(file, ModelFileGuard.stat(file));
  truncateSync(file, 0);
  assert.match(g2.check() ?? '', /truncated/);
  assert.match(g2.fail('x'), /truncated/);
  const g3 = new ModelFileGuard(file, ModelFileGuard.stat(file));
  assert.match(g3.fail('fault'), /^the model file changed on disk while a decode read it/);
  rmSync(dir, { recursive: true });
});

test('watch() checks on its own while idle; stop() ends it', async () => {
  const { file, guard, logs, dir } = setup();
  guard.watch(5);
  touch(file, 5);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(logs.length, 1, 'the timer noticed the write without a check() call');
  guard.stop();
  guard.stop();

  const b = setup();
  b.guard.watch(5);
  b.guard.stop();
  touch(b.file, 5);
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(b.logs.length, 0, 'no check after stop()');
  rmSync(dir, { recursive: true });
  rmSync(b.dir, { recursive: true });
});

test('ModelFileChangedError carries the reason and its name', () => {
  const e = new ModelFileChangedError('why');
  assert.ok(e instanceof Error);
  assert.equal(e.message, 'why');
  assert.equal(e.name, 'ModelFileChangedError');
});

test('watch() defaults to once a second', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { file, guard, logs, dir } = setup();
  guard.watch();
  touch(file, 5);
  t.mock.timers.tick(999);
  assert.equal(logs.length, 0);
  t.mock.timers.tick(1);
  assert.equal(logs.length, 1);
  guard.stop();
  rmSync(dir, { recursive: true });
});

// Left watching on purpose: the timer is unref'd, so this file still exits (a
// referenced timer would hold the test process open until the runner's timeout).
test('a watching guard does not keep the process alive', () => {
  const { guard, dir } = setup();
  guard.watch(60_000);
  rmSync(dir, { recursive: true });
});

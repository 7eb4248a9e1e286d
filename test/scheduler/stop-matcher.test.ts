import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StopMatcher } from '../../server/scheduler/stop-matcher.js';

function run(stops: string[], pieces: string[]): { shown: string[]; stoppedAt: number } {
  const m = new StopMatcher(stops);
  const shown: string[] = [];
  let stoppedAt = -1;
  pieces.forEach((p, i) => {
    if (stoppedAt >= 0) return;
    const r = m.push(p);
    shown.push(r.text);
    if (r.stopped) stoppedAt = i;
  });
  if (stoppedAt < 0) shown.push(m.flush());
  return { shown, stoppedAt };
}

test('no stop strings passes text through unchanged', () => {
  const r = run([], ['ab', 'cd']);
  assert.deepEqual(r.shown, ['ab', 'cd', '']);
});

test('stop string inside one piece cuts before it', () => {
  const r = run(['END'], ['hello END world']);
  assert.equal(r.shown.join(''), 'hello ');
  assert.equal(r.stoppedAt, 0);
});

test('stop string split across pieces is never shown, even partly', () => {
  const r = run(['###'], ['foo #', '#', '# bar']);
  assert.equal(r.shown.join(''), 'foo ');
  assert.deepEqual(r.shown, ['foo ', '', '']);
  assert.equal(r.stoppedAt, 2);
});

test('a held-back prefix that does not complete is released', () => {
  const r = run(['###'], ['a #', '#b', 'c']);
  assert.equal(r.shown.join(''), 'a ##bc');
  assert.equal(r.stoppedAt, -1);
  // The held "#" and "##" are not shown early.
  assert.equal(r.shown[0], 'a ');
});

test('held tail is released by flush at the end', () => {
  const r = run(['STOP'], ['xx ST']);
  assert.deepEqual(r.shown, ['xx ', 'ST']);
});

test('earliest of several stop strings wins', () => {
  const r = run(['b', 'zz', 'a'], ['xyzzab']);
  assert.equal(r.shown.join(''), 'xy');
});

test('overlapping prefix: "aab" with stop "ab"', () => {
  const r = run(['ab'], ['a', 'a', 'b', 'c']);
  assert.equal(r.shown.join(''), 'a');
  assert.equal(r.stoppedAt, 2);
});

test('after stopping, further pushes show nothing', () => {
  const m = new StopMatcher(['.']);
  assert.deepEqual(m.push('x.y'), { text: 'x', stopped: true });
  assert.deepEqual(m.push('more'), { text: '', stopped: true });
  assert.equal(m.flush(), '');
});

test('flush hands the held tail out once: a second flush (or one after more text) starts from nothing', () => {
  const m = new StopMatcher(['STOP']);
  assert.deepEqual(m.push('go ST'), { text: 'go ', stopped: false });
  assert.equal(m.flush(), 'ST');
  assert.equal(m.flush(), '');
  // The matcher goes on from an empty hold: the old 'ST' neither comes back nor joins 'OP' into a stop.
  assert.deepEqual(m.push('OP S'), { text: 'OP ', stopped: false });
  assert.equal(m.flush(), 'S');
});

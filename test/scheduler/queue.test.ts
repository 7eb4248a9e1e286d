import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedQueue } from '../../server/scheduler/queue.js';

test('bounded queue refuses pushes when full and keeps FIFO order', () => {
  const q = new BoundedQueue<number>(2);
  assert.equal(q.push(1), true);
  assert.equal(q.push(2), true);
  assert.equal(q.push(3), false);
  assert.equal(q.length, 2);
  assert.equal(q.shift(), 1);
  assert.equal(q.push(3), true);
  assert.deepEqual(q.drain(), [2, 3]);
  assert.equal(q.length, 0);
});

test('remove takes out a waiting item, and only once', () => {
  const q = new BoundedQueue<string>(3);
  q.push('a');
  q.push('b');
  assert.equal(q.remove('a'), true);
  assert.equal(q.remove('a'), false);
  assert.equal(q.peek(), 'b');
});

test('capacity must be a non-negative integer', () => {
  assert.throws(() => new BoundedQueue(-1), (e: unknown) => e instanceof RangeError && e.message === 'queue capacity must be a non-negative integer, got -1');
  assert.throws(() => new BoundedQueue(1.5), RangeError);
  const q = new BoundedQueue<number>(0);
  assert.equal(q.push(1), false);
});

test('a forced push goes past the capacity (the engine loop counts waiting sequences itself); map sees FIFO order', () => {
  const q = new BoundedQueue<number>(1);
  assert.equal(q.push(1), true);
  assert.equal(q.push(2, true), true);
  assert.equal(q.push(3, false), false);
  assert.equal(q.length, 2);
  assert.deepEqual(q.map((x) => x * 10), [10, 20]);
  assert.equal(q.peek(), 1);
  assert.equal(q.shift(), 1);
  assert.equal(q.shift(), 2);
  assert.equal(q.shift(), undefined);
  assert.equal(q.peek(), undefined);
  assert.equal(q.remove(2), false);
  assert.equal(new BoundedQueue<number>(0).push(5, true), true);
});

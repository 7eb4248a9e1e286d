// The sampler's draws at their defined frequencies (fixed seeds, tens of thousands of
// draws each): temperature, top-k, top-p and min-p renormalise as their definitions say.
// Kept apart from sampler.test.ts because these are the slow ones: a mutation run
// (npm run mutate) can add them in a second, incremental pass over the survivors only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler } from '../../server/sampling/sampler.js';

const L = (xs: number[]) => new Float32Array(xs);

function close(a: number, b: number, eps: number, msg = ''): void {
  assert.ok(Math.abs(a - b) <= eps, `${msg} ${a} vs ${b}`);
}

function frequencies(s: Sampler, logits: Float32Array, n: number): number[] {
  const f = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) f[s.sample(logits).token]++;
  return f.map((c) => c / n);
}

const P = [0.5, 0.3, 0.15, 0.05];
const logP = L(P.map(Math.log));

test('temperature sampling draws tokens at their softmax frequencies (fixed seed)', () => {
  const N = 40000;
  // 4 sigma of a binomial proportion at N draws is below 0.01.
  frequencies(new Sampler({ temperature: 1, seed: 123 }, 4), logP, N).forEach((f, i) => close(f, P[i], 0.01, `T=1 token ${i}`));
  const hot = P.map((p) => Math.sqrt(p));
  const zs = hot.reduce((a, b) => a + b);
  frequencies(new Sampler({ temperature: 2, seed: 123 }, 4), logP, N).forEach((f, i) => close(f, hot[i] / zs, 0.01, `T=2 token ${i}`));
  const cold = P.map((p) => p * p);
  const zc = cold.reduce((a, b) => a + b);
  frequencies(new Sampler({ temperature: 0.5, seed: 9 }, 4), logP, N).forEach((f, i) => close(f, cold[i] / zc, 0.01, `T=0.5 token ${i}`));
});

test('top-k keeps the k best and renormalises', () => {
  const f = frequencies(new Sampler({ topK: 2, seed: 5 }, 4), logP, 20000);
  assert.equal(f[2] + f[3], 0);
  close(f[0], 0.5 / 0.8, 0.015);
  const one = frequencies(new Sampler({ topK: 1, seed: 5 }, 4), logP, 200);
  assert.deepEqual(one, [1, 0, 0, 0]);
});

test('top-p keeps the shortest best-first prefix reaching p', () => {
  for (const topK of [0, 3]) {
    // 0.5 + 0.3 >= 0.75: tokens 0 and 1 only, whichever path (heap or top-k) is taken.
    const f = frequencies(new Sampler({ topP: 0.75, topK, seed: 6 }, 4), logP, 20000);
    assert.equal(f[2] + f[3], 0, `topK=${topK}`);
    close(f[0], 0.5 / 0.8, 0.015);
    // 0.9: tokens 0..2
    const g = frequencies(new Sampler({ topP: 0.9, topK, seed: 6 }, 4), logP, 20000);
    assert.equal(g[3], 0);
    assert.ok(g[2] > 0.1);
  }
  assert.deepEqual(frequencies(new Sampler({ topP: 0, seed: 1 }, 4), logP, 100), [1, 0, 0, 0]);
});

test('min-p drops tokens below minP times the best probability', () => {
  // threshold 0.2 * 0.5 = 0.1: token 3 (0.05) goes, token 2 (0.15) stays
  const f = frequencies(new Sampler({ minP: 0.2, seed: 8 }, 4), logP, 20000);
  assert.equal(f[3], 0);
  close(f[2], 0.15 / 0.95, 0.015);
  // the ratio is taken after temperature: at T=0.5, probabilities ~ p^2
  const g = frequencies(new Sampler({ minP: 0.2, temperature: 0.5, seed: 8 }, 4), logP, 20000);
  assert.equal(g[2] + g[3], 0); // (0.15/0.5)^2 = 0.09 < 0.2
});

// test-runner: alone (it times the sampler per token)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, SamplingError, type SampleResult } from '../../server/sampling/sampler.js';
import { SamplingParamError } from '../../server/sampling/params.js';
import { Rng } from '../../server/sampling/rng.js';

const L = (xs: number[]) => new Float32Array(xs);

/** Processed logits seen through logprobs: differences are exact logit differences. */
function processed(s: Sampler, logits: Float32Array): number[] {
  const r = s.sample(logits, { topLogprobs: logits.length });
  const out = new Array<number>(logits.length).fill(-Infinity);
  for (const t of r.top!) out[t.token] = t.logprob;
  return out;
}

function close(a: number, b: number, eps = 1e-6, msg = ''): void {
  assert.ok(Math.abs(a - b) <= eps, `${msg} ${a} vs ${b}`);
}

test('greedy is argmax with the lowest id on ties', () => {
  const s = new Sampler({ temperature: 0 }, 5);
  assert.equal(s.sample(L([1, 3, 2, 3, -1])).token, 1);
  assert.equal(s.sample(L([0, 0, 0, 0, 0])).token, 0);
  assert.equal(s.sample(L([-Infinity, NaN, -5, -4, -4])).token, 3);
});

test('logit bias adds, and -Infinity bans', () => {
  const s = new Sampler({ temperature: 0, logitBias: { 1: -Infinity, 2: 0.5 } }, 3);
  assert.equal(s.sample(L([0, 5, 4.6])).token, 2);
  const t = new Sampler({ temperature: 0, logitBias: new Map([[0, -Infinity], [1, -Infinity], [2, -Infinity]]) }, 3);
  assert.throws(() => t.sample(L([1, 2, 3])), (e: unknown) => e instanceof SamplingError && e.name === 'SamplingError');
});

test('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
  const s = new Sampler({ temperature: 0, repetitionPenalty: 2 }, 4);
  s.acceptMany([0, 1, 1]);
  const w = processed(s, L([2, -2, 1, 0.5]));
  // expected processed logits: [1, -4, 1, 0.5] (repeats do not compound)
  close(w[0] - w[2], 0);
  close(w[1] - w[2], -5);
  close(w[3] - w[2], -0.5);
});

test('presence and frequency penalties follow OpenAI: count * f + presence', () => {
  const s = new Sampler({ temperature: 0, presencePenalty: 0.5, frequencyPenalty: 0.25 }, 3);
  s.acceptMany([0, 0, 1]);
  const w = processed(s, L([1, 1, 1]));
  close(w[0] - w[2], -(2 * 0.25 + 0.5));
  close(w[1] - w[2], -(0.25 + 0.5));
});

test('the penalty window holds the last N accepted tokens, sampled ones included', () => {
  const s = new Sampler({ temperature: 0, frequencyPenalty: 1, penaltyLastN: 2 }, 3);
  s.acceptMany([0, 0, 1]); // window: [0, 1]
  let w = processed(s, L([0, 0, 5])); // picks 2 and records it: window [1, 2]
  close(w[0] - w[2], -1 - 5);
  w = processed(s, L([0, 0, 0]));
  close(w[0], Math.log(1 / (1 + 2 * Math.exp(-1))), 1e-6, 'token 0 has left the window');
  close(w[1] - w[0], -1);
  close(w[2] - w[0], -1);
  const none = new Sampler({ temperature: 0, frequencyPenalty: 1, penaltyLastN: 0 }, 2);
  none.acceptMany([0, 0, 0]);
  assert.equal(none.sample(L([1, 0.5])).token, 0);
});

test('logprobs are the log-softmax after penalties, before temperature', () => {
  const logits = L([2, 1, 0, -1]);
  const hot = new Sampler({ temperature: 5, seed: 1 }, 4).sample(logits, { logprobs: true, topLogprobs: 2 });
  const z = Math.log(Math.exp(2) + Math.exp(1) + 1 + Math.exp(-1));
  close(hot.logprob!, logits[hot.token] - z);
  assert.deepEqual(hot.top!.map((t) => t.token), [0, 1]);
  close(hot.top![0].logprob, 2 - z);
  close(hot.top![1].logprob, 1 - z);
  const greedy = new Sampler({ temperature: 0 }, 4).sample(logits, { logprobs: true });
  assert.equal(greedy.top, undefined);
  close(greedy.logprob!, 2 - z);
});

/** A plain full-sort implementation of the same chain, drawing from the same stream. */
function reference(logits: Float32Array, o: { temperature: number; topK: number; topP: number; minP: number }, rng: Rng): number {
  const ids = [...logits.keys()].filter((i) => logits[i] > -Infinity);
  ids.sort((a, b) => logits[b] - logits[a] || a - b);
  const sorted = o.topK > 0 && o.topK < logits.length; // otherwise the draw walks in id order
  let kept = o.topK > 0 && o.topK < logits.length ? ids.slice(0, o.topK) : ids;
  const lmax = logits[kept[0]];
  const e = (i: number) => Math.exp((logits[i] - lmax) / o.temperature);
  if (o.topP < 1) {
    const z = kept.reduce((a, i) => a + e(i), 0);
    let cum = 0;
    let n = 0;
    while (n < kept.length) {
      cum += e(kept[n++]);
      if (cum >= o.topP * z) break;
    }
    kept = kept.slice(0, n);
  }
  if (o.minP > 0) kept = kept.filter((i) => e(i) >= o.minP);
  if (!sorted) kept.sort((a, b) => a - b);
  const total = kept.reduce((a, i) => a + e(i), 0);
  const u = rng.nextDouble() * total;
  let cum = 0;
  for (const i of kept) {
    cum += e(i);
    if (u < cum) return i;
  }
  return kept[kept.length - 1];
}

test('partial selection picks exactly what a full sort would (random logits with ties)', () => {
  const gen = new Rng(77);
  const configs = [
    { temperature: 0.8, topK: 40, topP: 1, minP: 0 },
    { temperature: 1, topK: 0, topP: 0.9, minP: 0 },
    { temperature: 1.3, topK: 50, topP: 0.7, minP: 0.05 },
    { temperature: 0.7, topK: 0, topP: 1, minP: 0.1 },
    { temperature: 1, topK: 0, topP: 1, minP: 0 },
  ];
  for (const c of configs) {
    const s = new Sampler({ ...c, seed: 31337 }, 500);
    const rng = new Rng(31337);
    for (let round = 0; round < 30; round++) {
      // Rounded to 0.25 so that many logits tie.
      const logits = new Float32Array(500);
      for (let i = 0; i < logits.length; i++) logits[i] = Math.round((gen.nextDouble() * 8 - 4) * 4) / 4;
      assert.equal(s.sample(logits).token, reference(logits, c, rng), JSON.stringify(c));
    }
  }
});

test('same seed and inputs give the same tokens; another seed differs', () => {
  const logits = new Float32Array(1000);
  const g = new Rng(3);
  for (let i = 0; i < logits.length; i++) logits[i] = g.nextDouble() * 4;
  const run = (seed: number | bigint) => {
    const s = new Sampler({ temperature: 0.9, topP: 0.95, repetitionPenalty: 1.1, seed }, 1000);
    return Array.from({ length: 200 }, () => s.sample(logits).token);
  };
  assert.deepEqual(run(2024), run(2024n));
  assert.notDeepEqual(run(2024), run(2025));
  // Snapshot of the stream: guards the RNG, the draw order and the penalty arithmetic
  // against accidental change (any machine must produce these).
  assert.deepEqual(run(2024).slice(0, 8), SNAPSHOT);
});
const SNAPSHOT = [120, 789, 740, 830, 891, 836, 771, 861];

test('a seedless sampler draws and reports a random seed', () => {
  const a = new Sampler({}, 10);
  const b = new Sampler({}, 10);
  assert.equal(typeof a.seed, 'bigint');
  assert.notEqual(a.seed, b.seed);
  assert.equal(new Sampler({ seed: -1 }, 10).seed, 2n ** 64n - 1n);
});

test('bad parameters are refused naming the parameter', () => {
  const bad = (p: object, re: RegExp) =>
    assert.throws(() => new Sampler(p, 10), (e: unknown) => e instanceof SamplingParamError && re.test(e.message));
  bad({ temperature: -0.1 }, /^temperature must be >= 0/);
  bad({ temperature: NaN }, /^temperature must be a finite number/);
  bad({ topK: 1.5 }, /^top_k must be an integer >= 0/);
  bad({ topP: 1.1 }, /^top_p must be between 0 and 1/);
  bad({ minP: -0.1 }, /^min_p must be between 0 and 1/);
  bad({ repetitionPenalty: 0 }, /^repetition_penalty must be > 0/);
  bad({ presencePenalty: 2.5 }, /^presence_penalty must be between -2 and 2/);
  bad({ frequencyPenalty: -3 }, /^frequency_penalty must be between -2 and 2/);
  bad({ penaltyLastN: -2 }, /^penalty_last_n must be an integer >= -1/);
  bad({ logitBias: { 10: 1 } }, /^logit_bias has key "10", which is not a token id \(0\.\.9\)/);
  bad({ logitBias: { abc: 1 } }, /^logit_bias has key "abc"/);
  bad({ logitBias: { 3: Infinity } }, /^logit_bias value for token 3/);
  bad({ seed: 0.5 }, /^seed must be an integer/);
  assert.throws(() => new Sampler({}, 10).sample(new Float32Array(9)), /logits has 9 values, expected n_vocab = 10/);
});

// Mutation runs (npm run mutate) instrument every line, so times there say nothing.
const untimed = process.env.RELU_SERVE_UNTIMED ? 'timing is meaningless in an instrumented mutation run' : false;

test('sampling 32000 logits is fast with top-k, top-p, min-p or none', { skip: untimed }, () => {
  const n = 32000;
  const logits = new Float32Array(n);
  const g = new Rng(1);
  for (let i = 0; i < n; i++) logits[i] = g.nextDouble() * 10 - 5;
  const configs: [string, object][] = [
    ['greedy', { temperature: 0 }],
    ['top-k 40', { temperature: 0.8, topK: 40 }],
    ['top-p 0.95', { temperature: 0.8, topP: 0.95 }],
    ['min-p 0.05', { temperature: 0.8, minP: 0.05 }],
    ['plain', { temperature: 1 }],
    ['penalties + top-k + top-p', { temperature: 0.8, topK: 40, topP: 0.9, repetitionPenalty: 1.1, frequencyPenalty: 0.5 }],
  ];
  for (const [name, p] of configs) {
    const s = new Sampler({ ...p, seed: 1 }, n);
    let r: SampleResult | undefined;
    const reps = 50;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) r = s.sample(logits);
    const ms = (performance.now() - t0) / reps;
    console.log(`# sample ${name}: ${ms.toFixed(3)} ms/token`);
    assert.ok(r && r.token >= 0);
    assert.ok(ms < 10, `${name}: ${ms} ms per token`);
  }
});

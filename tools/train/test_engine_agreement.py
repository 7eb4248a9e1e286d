"""The engine (C++ addon + TS wrapper, built into dist/ by `npm run build`) against the
PyTorch reference numbers in tools/train/reference.json, on the shipped model:
  * perplexity on tools/train/heldout.txt within 0.5%;
  * identical greedy continuations (a divergence is tolerated only right after a step
    whose top-2 logit margin in PyTorch was below 1e-2, i.e. a genuine near-tie);
  * per-layer FFN zero fractions within 1 percentage point;
  * the TS tokenizer's ids equal SentencePiece's on tokenizer_samples.json.
Run from the repository root (skips when the engine is not built):
  /usr/bin/python3 -m unittest tools/train/test_engine_agreement.py -v
"""
import json
import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODEL = os.path.join(ROOT, 'models', 'bamboo-kjv-mini.gguf')
REF = os.path.join(HERE, 'reference.json')
SAMPLES = os.path.join(HERE, 'tokenizer_samples.json')
BUILT = all(os.path.exists(os.path.join(ROOT, 'dist', p)) for p in
            ('server/engine/engine.js', 'server/cli/perplexity.js', 'server/tokenizer/spm.js'))


@unittest.skipUnless(BUILT and os.path.exists(MODEL) and os.path.exists(REF),
                     'engine not built (npm run build) or model/reference missing')
class EngineAgreesWithPyTorch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(REF) as f:
            cls.ref = json.load(f)
        with open(SAMPLES, encoding='utf-8') as f:
            cls.samples = json.load(f)['samples']
        p = subprocess.run(['node', os.path.join(HERE, 'engine_probe.mjs'), MODEL, REF, SAMPLES],
                           cwd=ROOT, capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            raise RuntimeError(f'engine_probe failed ({p.returncode}): {p.stderr[-2000:]}')
        cls.eng = json.loads(p.stdout)
        print('\nengine:', json.dumps(cls.eng['perplexity']))

    def test_perplexity_within_half_a_percent(self):
        e, r = self.eng['perplexity'], self.ref
        self.assertEqual(e['textTokens'], r['text_tokens'], 'engine tokenized the text differently')
        self.assertEqual(e['scoredTokens'], r['scored_tokens'])
        rel = abs(e['perplexity'] - r['perplexity']) / r['perplexity']
        print(f"perplexity engine {e['perplexity']:.4f} torch {r['perplexity']:.4f} rel diff {rel:.2e}")
        self.assertLess(rel, 0.005)

    def test_greedy_continuations_match(self):
        same = sum(r['greedy_ids'] == e['greedy_ids'] for r, e in zip(self.ref['greedy'], self.eng['greedy']))
        print(f"greedy: {same} of {len(self.ref['greedy'])} continuations identical token for token")
        self.assertEqual(len(self.eng['greedy']), len(self.ref['greedy']))
        for r, e in zip(self.ref['greedy'], self.eng['greedy']):
            self.assertEqual(e['prompt_ids_ts'], r['prompt_ids'], f"prompt {r['prompt']!r} tokenized differently")
            want, got = r['greedy_ids'], e['greedy_ids']
            first = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), None)
            if first is None:
                continue
            # The first differing token must be one PyTorch itself nearly tied on.
            self.assertLess(r['top2_margins'][first], 1e-2, f"prompt {r['prompt']!r}: engine diverges at step {first} "
                                 f"(margin {r['top2_margins'][first]}): {got} vs {want}")

    def test_sparsity_per_layer(self):
        e = self.eng['perplexity'].get('ffnZeroFractionPerLayer')
        self.assertIsNotNone(e, 'engine reported no activation counts')
        for li, (a, b) in enumerate(zip(e, self.ref['ffn_zero_fraction_per_layer'])):
            self.assertLess(abs(a - b), 0.01, f'layer {li}: engine {a:.4f} torch {b:.4f}')

    def test_ts_tokenizer_matches_sentencepiece(self):
        bad = [(s['text'], s['ids'], got) for s, got in zip(self.samples, self.eng['tokenizer'])
               if s['ids'] != got]
        self.assertEqual(bad, [], f'{len(bad)} of {len(self.samples)} samples differ; first: {bad[:1]}')


if __name__ == '__main__':
    unittest.main()

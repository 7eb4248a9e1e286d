// Manual probe (not a test): make a sparse model and print its measured behaviour.
// node dist/test/sparse-models/probe.js arch size type sparsity predictor [tokens]
import { makeModel } from '../../server/cli/make-model.js';
import { Model } from '../../server/engine/engine.js';
import { engineTally, engineActiveSets, predictedSets, predictorQuality, sparsityReport, variedTokens } from './measure.js';

// Does nothing without arguments, so a test runner that picks up every file under test/
// only imports it.
if (process.argv.length < 3) {
  console.log('usage: node dist/test/sparse-models/probe.js arch size type sparsity predictor [tokens]  (env MODEL=file, SWEEP=1, AGREE=steps)');
  process.exit(0);
}
const [arch = 'llama', size = 'tiny', type = 'f16', sp = '0.9', pred = 'exact', nt = '300'] = process.argv.slice(2);
const out = process.env.MODEL ?? `/tmp/sp/${arch}-${size}-${type}-${sp}-${pred}.gguf`;
const t0 = Date.now();
if (!process.env.MODEL) await makeModel({ arch, size, type, seed: 1, out, sparse: true, sparsity: Number(sp), predictor: pred });
console.log(`made in ${Date.now() - t0} ms`);
const m = await Model.load(out);
console.log(m.info.isPowerInfer, m.info.ffnActivation, m.info.ffnActivationFrom);
const toks = variedTokens(Number(nt), m.info.nVocab);
const truth = await engineActiveSets(m, toks);
console.log(sparsityReport(truth, m.info.nFf));
const p = await predictedSets(out, toks);
console.log('TS predictor', predictorQuality(truth, p));
console.log('engine predictor', engineTally);
m.dispose();
if (process.env.SWEEP) {
  const m2 = await Model.load(out);
  const truth2 = await engineActiveSets(m2, toks);
  for (const t of [0, -0.005, -0.01, -0.02, -0.05, -0.1, -0.2, -0.3]) {
    const q = predictorQuality(truth2, await predictedSets(out, toks, t));
    console.log(`threshold ${t}: recall ${q.recall.toFixed(4)} precision ${q.precision.toFixed(4)}`);
  }
  m2.dispose();
}
if (process.env.AGREE) {
  const { agreement } = await import('./agree.js');
  console.log('agreement', await agreement(out, toks.slice(0, 8), Number(process.env.AGREE)));
}

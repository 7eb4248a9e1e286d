// Predictor-mode (or another mode's) decoding against dense decoding of the same file: greedy continuation
// from a prompt, one token per step, both contexts fed the dense run's tokens.
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import type { FfnMode } from '../../server/engine/types.js';

export interface Agreement {
  steps: number;
  /** Steps where both modes pick the same most likely token. */
  top1: number;
  /** Largest |logit difference| over all steps, relative to the largest |dense logit|. */
  maxRelErr: number;
  /** Mean active ratio of the predictor run (neurons computed / n_ff). */
  predictorActive: number;
}

export async function agreement(path: string, prompt: number[], steps: number, mode: FfnMode = 'predictor'): Promise<Agreement> {
  const m = await Model.load(path);
  const mk = (ffnMode: FfnMode) => m.createContext({ nSeq: 1, nCtx: prompt.length + steps + 1, threads: 2, ffnMode });
  const dense = await mk('dense');
  const pred = await mk(mode);
  try {
    const argmax = (l: Float32Array) => l.reduce((b, v, i) => (v > l[b] ? i : b), 0);
    let ld = await dense.decode(sequenceBatch(prompt, 0, 0));
    let lp: Float32Array = new Float32Array(0);
    for (let i = 0; i < prompt.length; i++) lp = await pred.decode(sequenceBatch([prompt[i]], 0, i)); // sparse steps
    let top1 = 0;
    let maxErr = 0;
    for (let s = 0; s < steps; s++) {
      const scale = ld.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      for (let j = 0; j < ld.length; j++) maxErr = Math.max(maxErr, Math.abs(ld[j] - lp[j]) / scale);
      const next = argmax(ld);
      if (argmax(lp) === next) top1++;
      const pos = prompt.length + s;
      ld = await dense.decode(sequenceBatch([next], 0, pos));
      lp = await pred.decode(sequenceBatch([next], 0, pos));
    }
    const sp = pred.sparsity();
    return { steps, top1, maxRelErr: maxErr, predictorActive: sp.avgActiveRatio.reduce((a, b) => a + b, 0) / sp.avgActiveRatio.length };
  } finally {
    dense.dispose();
    pred.dispose();
    m.dispose();
  }
}

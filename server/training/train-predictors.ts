// train-predictor's pipeline: collect (predictor input, true activation mask) rows by
// running the engine over a corpus (the profiler's pass, with capture on), train a
// low-rank predictor per layer in the addon, choose each layer's threshold on held-out
// rows for the target recall, and write the PowerInfer-format file.
//
// One threshold for all layers: the file has a single powerinfer.sparse_threshold key, so
// each layer's own threshold t_l is folded into its fc2 (fc2 * T / t_l: logits scale with
// fc2, so logits >= t_l becomes logits' >= T, for t_l of T's sign). The predictor has no
// bias, so its logits sit near 0 where it is unsure, and the threshold for a high recall
// lies below 0: T is negative, and training puts its decision boundary at T. A layer
// whose t_l comes out >= 0 gets a slightly negative one instead, which only selects more
// (recall can only rise).

import type { Context, Model } from '../engine/engine.js';
import { native } from '../engine/binding.js';
import { runProfile, type ProfileProgress } from '../profiler/profile-run.js';
import { readGgufHeader } from '../gguf/header-reader.js';
import { resolveGgmlType, tensorByteSize } from '../gguf/constants.js';
import { predictorQuality, thresholdForRecall, type PredictorQuality } from './threshold.js';
import { predictorType, roundTrip, weightTypeOf, writePowerInferModel, type LayerPredictor } from './powerinfer-file.js';

/** The boundary the trainer aims at, and the file's threshold. */
export const FILE_THRESHOLD = -1;
/** Below these a model (or corpus) is too small to train a predictor that means anything. */
export const MIN_N_EMBD = 16;
export const MIN_N_FF = 16;
export const MIN_ROWS = 64;

export interface TrainPredictorsOptions {
  modelPath: string;
  out: string;
  tokens: Int32Array;
  /** A fixed rank, or 'auto' (smallest of the candidates that meets the target on the evaluation half). */
  rank: number | 'auto';
  /** --rank auto: the ranks to try, ascending (default autoRanks); if none meets the target, the last. */
  rankCandidates?: number[];
  targetRecall: number;
  seed: number;
  epochs: number;
  /** Adam's learning rate (decays linearly to a tenth over the run); default 1e-2. */
  lr?: number;
  /** Share of the collected rows held out (the last ones) for thresholds and the report. */
  heldoutShare: number;
  nCtx: number;
  nBatch: number;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (p: ProfileProgress) => void;
  log?: (s: string) => void;
}

export interface LayerReport {
  layer: number;
  rank: number;
  /** This layer's threshold on the raw (unfolded) logits, and the scale folded into fc2. */
  rawThreshold: number;
  scale: number;
  /** Held-out quality of the written (rounded) predictor at the file's threshold. */
  heldout: PredictorQuality;
  predictorBytes: number;
  ffnBytes: number;
  epochLoss: number[];
  trainSeconds: number;
  /**
   * --rank auto: each rank tried, in order, with its recall and shares on the evaluation
   * half of the held-out rows (threshold from the other half); the first to meet the
   * target recall while selecting at most twice the active share is the one kept.
   */
  candidates?: { rank: number; recall: number; predictedShare: number; activeShare: number; accepted: boolean }[];
}

export interface TrainReport {
  model: string;
  out: string;
  tokens: number;
  trainRows: number;
  heldoutRows: number;
  interrupted: boolean;
  collectSeconds: number;
  trainSeconds: number;
  threshold: number;
  predictorType: string;
  fileBytes: number;
  layers: LayerReport[];
}

/** Refuses models whose FFN has no exact zeros to predict, or that are too small. */
export function checkTrainable(model: Model): void {
  const i = model.info;
  if (i.ffnActivation === 'swiglu') {
    throw new Error(
      `${model.name} uses a SwiGLU (SiLU) FFN: its activations are almost never exactly zero, so there is nothing ` +
        'for a predictor to predict; train-predictor needs a ReLU-gated or dReLU model (override with --ffn-activation if the file mislabels it)',
    );
  }
  if (i.nEmbd < MIN_N_EMBD || i.nFf < MIN_N_FF) {
    throw new Error(`the model is too small to train predictors for (n_embd ${i.nEmbd}, n_ff ${i.nFf}; needs at least ${MIN_N_EMBD} and ${MIN_N_FF})`);
  }
}

interface LayerData {
  x: Float32Array;
  mask: Uint8Array;
}

function rowsOf(d: LayerData, r0: number, r1: number, nEmbd: number, rb: number): LayerData {
  return { x: d.x.subarray(r0 * nEmbd, r1 * nEmbd), mask: d.mask.subarray(r0 * rb, r1 * rb) };
}

async function collect(ctx: Context, o: TrainPredictorsOptions): Promise<{ layers: LayerData[]; rows: number; interrupted: boolean; seconds: number }> {
  ctx.setActivationCapture(true);
  try {
    const run = await runProfile(ctx, o.tokens, { nCtx: o.nCtx, nBatch: o.nBatch, signal: o.signal, onProgress: o.onProgress });
    const cap = ctx.activationCapture();
    return { layers: cap.layers, rows: cap.rows, interrupted: run.interrupted, seconds: run.elapsedMs / 1000 };
  } finally {
    ctx.setActivationCapture(false);
    ctx.resetActivationCounts();
  }
}

interface Trained {
  rank: number;
  fc1: Float32Array;
  fc2: Float32Array;
  rawThreshold: number;
  scale: number;
  heldout: PredictorQuality;
  epochLoss: number[];
}

/** Train one rank, pick the threshold on `calib`, fold it, round to the file's type, measure on `evalRows`. */
async function trainOne(
  train: LayerData, calib: LayerData, evalRows: LayerData, nEmbd: number, nFf: number, rank: number,
  o: TrainPredictorsOptions, layer: number, typeFor: (rank: number) => Parameters<typeof roundTrip>[0],
): Promise<Trained> {
  const th = o.threads ?? 0;
  const w = await native.training.trainPredictor(train.x, train.mask, nEmbd, nFf, {
    rank, epochs: o.epochs, lr: o.lr, seed: o.seed + 7919 * layer, margin: FILE_THRESHOLD, threads: th,
    // At least ~50 steps per epoch: small corpora need small batches to converge.
    batch: Math.max(16, Math.min(256, Math.floor(train.x.length / nEmbd / 50))),
  });
  const type = typeFor(rank);
  const fc1 = await roundTrip(type, w.fc1);
  const fc2r = await roundTrip(type, w.fc2);
  const cRows = calib.x.length / nEmbd;
  const raw = await native.training.predictorLogits(fc1, fc2r, rank, calib.x, nEmbd, nFf, th);
  let t = thresholdForRecall(raw, calib.mask, cRows, nFf, o.targetRecall);
  if (!(t < 0)) t = 1e-3 * FILE_THRESHOLD;
  let fc2: Float32Array;
  let scale = FILE_THRESHOLD / t;
  fc2 = await roundTrip(type, w.fc2.map((v) => v * scale));
  // Rounding the scaled fc2 moves logits slightly: re-fold until the calibration rows
  // keep the target recall at T with the weights as written (a step or two).
  for (let k = 0; k < 3; k++) {
    const again = await native.training.predictorLogits(fc1, fc2, rank, calib.x, nEmbd, nFf, th);
    const t2 = thresholdForRecall(again, calib.mask, cRows, nFf, o.targetRecall);
    if (t2 >= FILE_THRESHOLD) break;
    scale *= FILE_THRESHOLD / t2;
    fc2 = await roundTrip(type, w.fc2.map((v) => v * scale));
  }
  const eRows = evalRows.x.length / nEmbd;
  const logits = await native.training.predictorLogits(fc1, fc2, rank, evalRows.x, nEmbd, nFf, th);
  return { rank, fc1, fc2, rawThreshold: t, scale, heldout: predictorQuality(logits, evalRows.mask, eRows, nFf, FILE_THRESHOLD), epochLoss: w.epochLoss };
}

export async function trainPredictors(model: Model, o: TrainPredictorsOptions): Promise<TrainReport> {
  checkTrainable(model);
  const log = o.log ?? (() => {});
  if (!(o.targetRecall > 0 && o.targetRecall <= 1)) throw new Error('--target-recall must be in (0, 1]');
  const { nEmbd, nFf, nLayer } = model.info;
  if (o.rank !== 'auto' && !(Number.isInteger(o.rank) && o.rank > 0 && o.rank <= Math.max(nEmbd, nFf))) {
    throw new Error(`--rank must be an integer in [1, ${Math.max(nEmbd, nFf)}] or auto`);
  }
  const rc = o.rankCandidates;
  if (rc && !(rc.length > 0 && rc.every((r, i) => Number.isInteger(r) && r > 0 && r <= Math.max(nEmbd, nFf) && (i === 0 || r > rc[i - 1])))) {
    throw new Error(`rank candidates must be ascending integers in [1, ${Math.max(nEmbd, nFf)}], got ${JSON.stringify(rc)}`);
  }
  const ctx = await model.createContext({ nSeq: 1, nCtx: o.nCtx, nBatch: Math.min(o.nBatch, o.nCtx), threads: o.threads, ffnMode: 'dense' });
  let data;
  try {
    data = await collect(ctx, o);
  } finally {
    ctx.dispose();
  }
  const nHeld = Math.max(1, Math.round(o.heldoutShare * data.rows));
  const nTrain = data.rows - nHeld;
  if (nTrain < MIN_ROWS || nHeld < 8) {
    throw new Error(`too few tokens to train on: ${data.rows} collected, needs at least ${MIN_ROWS} for training plus held-out rows (raise --tokens or give a longer --corpus)`);
  }
  log(`collected ${data.rows} rows per layer in ${data.seconds.toFixed(1)} s${data.interrupted ? ' (interrupted)' : ''}: ${nTrain} to train, ${nHeld} held out\n`);
  const header = await readGgufHeader(o.modelPath);
  const weight = weightTypeOf(header);
  const typeFor = (r: number) => predictorType(weight, r, nEmbd);
  const rb = (nFf + 7) >> 3;
  const half = nTrain + Math.floor(nHeld / 2);

  const t0 = performance.now();
  const layers: LayerReport[] = [];
  const preds: LayerPredictor[] = [];
  for (let l = 0; l < nLayer; l++) {
    const tl = performance.now();
    const d = data.layers[l];
    const train = rowsOf(d, 0, nTrain, nEmbd, rb);
    const held = rowsOf(d, nTrain, data.rows, nEmbd, rb);
    let best: Trained;
    const tried: NonNullable<LayerReport['candidates']> = [];
    if (o.rank === 'auto') {
      // Threshold from the first half of the held-out rows, recall checked on the second:
      // the smallest rank that still reaches the target there, and that selects no more
      // than twice the truly active share (else it would save little work).
      const calib = rowsOf(d, nTrain, half, nEmbd, rb);
      const evalRows = rowsOf(d, half, data.rows, nEmbd, rb);
      const cands = o.rankCandidates ?? autoRanks(nEmbd, nFf);
      let chosen: Trained | undefined;
      for (const r of cands) {
        const t = await trainOne(train, calib, evalRows, nEmbd, nFf, r, o, l, typeFor);
        log(`  layer ${l} rank ${r}: held-out recall ${(100 * t.heldout.recall).toFixed(2)}%, selects ${(100 * t.heldout.predictedShare).toFixed(1)}% (active ${(100 * t.heldout.activeShare).toFixed(1)}%)\n`);
        chosen = t;
        const accepted = t.heldout.recall >= o.targetRecall && t.heldout.predictedShare <= 2 * t.heldout.activeShare;
        tried.push({ rank: r, recall: t.heldout.recall, predictedShare: t.heldout.predictedShare, activeShare: t.heldout.activeShare, accepted });
        if (accepted) break;
      }
      // Final threshold on all held-out rows for the chosen rank.
      best = await trainOne(train, held, held, nEmbd, nFf, chosen!.rank, o, l, typeFor);
    } else {
      best = await trainOne(train, held, held, nEmbd, nFf, o.rank, o, l, typeFor);
    }
    const pt = typeFor(best.rank);
    const ffnBytes = header.tensors
      .filter((t) => new RegExp(`^blk\\.${l}\\.ffn_(gate|up|down|down_t)\\.weight$`).test(t.name))
      .reduce((s, t) => s + Number(tensorByteSize(t.dims, resolveGgmlType(t.typeId))), 0);
    const predictorBytes = ((nEmbd * best.rank + best.rank * nFf) / pt.blockSize) * pt.typeSize;
    const rep: LayerReport = {
      layer: l, rank: best.rank, rawThreshold: best.rawThreshold, scale: best.scale, heldout: best.heldout,
      predictorBytes, ffnBytes, epochLoss: best.epochLoss, trainSeconds: (performance.now() - tl) / 1000,
      ...(o.rank === 'auto' ? { candidates: tried } : {}),
    };
    layers.push(rep);
    preds.push({ rank: best.rank, fc1: best.fc1, fc2: best.fc2 });
    log(formatLayer(rep) + '\n');
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  const written = await writePowerInferModel({ input: o.modelPath, output: o.out, predictors: preds, threshold: FILE_THRESHOLD, onNote: (s) => log(`note: ${s}\n`) });
  return {
    model: o.modelPath, out: o.out, tokens: data.rows, trainRows: nTrain, heldoutRows: nHeld, interrupted: data.interrupted,
    collectSeconds: data.seconds, trainSeconds, threshold: FILE_THRESHOLD, predictorType: typeFor(layers[0]?.rank ?? 32).name,
    fileBytes: written.bytes, layers,
  };
}

/** --rank auto's default candidates: 16, 32, 64, ... up to min(n_embd, n_ff, 512). */
export function autoRanks(nEmbd: number, nFf: number): number[] {
  const out: number[] = [];
  for (let r = 16; r <= Math.min(nEmbd, nFf, 512); r *= 2) out.push(r);
  return out;
}

export function formatLayer(r: LayerReport): string {
  const q = r.heldout;
  return (
    `layer ${String(r.layer).padStart(2)}  rank ${String(r.rank).padStart(4)}  recall ${(100 * q.recall).toFixed(2)}%  ` +
    `precision ${(100 * q.precision).toFixed(2)}%  active ${(100 * q.activeShare).toFixed(1)}%  selected ${(100 * q.predictedShare).toFixed(1)}%  ` +
    `predictor ${(r.predictorBytes / 1024).toFixed(0)} KiB / FFN ${(r.ffnBytes / 1024).toFixed(0)} KiB  ` +
    `t ${r.rawThreshold.toPrecision(3)}  loss ${r.epochLoss.map((v) => v.toFixed(4)).join(' ')}  ${r.trainSeconds.toFixed(1)} s`
  );
}

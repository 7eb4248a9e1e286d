// Runs a model over tokens with activation counting on: the engine computes the FFN
// densely and counts, per layer and neuron, the rows whose activation output was
// non-zero. Tokens go through in windows of n_ctx positions (the KV cache is cleared
// between windows), each window in batches of up to n_batch tokens, exactly as prompt
// processing does, so profiling costs about what prompt processing costs.

// Types only: the engine (and its native addon) is loaded by the caller, so modules that
// merely format or convert stats work without the addon built.
import type { Context } from '../engine/engine.js';
import type { DecodeBatch } from '../engine/types.js';
import type { PredictorCounts } from './stats-format.js';

/** Tokens of sequence 0 at consecutive positions from `start`; logits only for the last. */
function windowBatch(tokens: Int32Array, start: number): DecodeBatch {
  const n = tokens.length;
  const b: DecodeBatch = {
    tokens,
    positions: new Int32Array(n),
    seqIds: new Int32Array(n),
    wantLogits: new Uint8Array(n),
  };
  for (let i = 0; i < n; i++) b.positions[i] = start + i;
  b.wantLogits[n - 1] = 1;
  return b;
}

export interface ProfileProgress {
  done: number;
  total: number;
  elapsedMs: number;
}

export interface ProfileRunOptions {
  nCtx: number;
  nBatch: number;
  /** Stops after the current batch when aborted; what was counted so far is kept. */
  signal?: AbortSignal;
  onProgress?: (p: ProfileProgress) => void;
}

export interface ProfileRunResult {
  counts: Float64Array[];
  /** Per layer predictor agreement, when the engine evaluates the model's predictors. */
  predictor?: PredictorCounts[];
  /** Tokens (rows) the counts cover, as the engine reports them. */
  tokens: number;
  elapsedMs: number;
  interrupted: boolean;
}

/** Feeds `tokens` through `ctx` (sequence 0) in windows and batches; no counting setup. */
async function feed(ctx: Context, tokens: Int32Array, o: ProfileRunOptions, progress: boolean): Promise<{ done: number; ms: number }> {
  const t0 = performance.now();
  let done = 0;
  for (let w = 0; w < tokens.length && !o.signal?.aborted; w += o.nCtx) {
    ctx.truncate(0, 0);
    const end = Math.min(tokens.length, w + o.nCtx);
    for (let b = w; b < end && !o.signal?.aborted; b += o.nBatch) {
      const chunk = tokens.subarray(b, Math.min(end, b + o.nBatch));
      await ctx.decode(windowBatch(chunk.slice(), b - w));
      done += chunk.length;
      if (progress) o.onProgress?.({ done, total: tokens.length, elapsedMs: performance.now() - t0 });
    }
  }
  ctx.truncate(0, 0);
  return { done, ms: performance.now() - t0 };
}

export async function runProfile(ctx: Context, tokens: Int32Array, o: ProfileRunOptions): Promise<ProfileRunResult> {
  if (!(o.nCtx > 0) || !(o.nBatch > 0)) throw new Error('n_ctx and n_batch must be positive');
  ctx.setActivationCounting(true);
  ctx.resetActivationCounts();
  try {
    const { done, ms } = await feed(ctx, tokens, o, true);
    const c = ctx.activationCounts();
    if (c.rows !== done) throw new Error(`the engine counted ${c.rows} rows but ${done} tokens were decoded`);
    // The engine does not evaluate predictors yet; when it reports their agreement with the
    // true activations (per layer tp/fp/fn), it is kept in the stats.
    const pred = (c as { predictor?: PredictorCounts[] }).predictor;
    return {
      counts: c.layers.map((l) => Float64Array.from(l)),
      predictor: pred && pred.length === c.layers.length ? pred.map((p) => ({ ...p })) : undefined,
      tokens: c.rows,
      elapsedMs: ms,
      interrupted: done < tokens.length,
    };
  } finally {
    ctx.setActivationCounting(false);
  }
}

/**
 * Prompt-processing speed over `sample` with activation counting off and on, alternated
 * three times after a warm-up pass, the best of each kept, so machine noise hits both alike.
 */
export async function compareSpeed(ctx: Context, sample: Int32Array, o: ProfileRunOptions): Promise<{ plain: number; counting: number }> {
  let plain = 0;
  let counting = 0;
  try {
    // One untimed pass first: the first decodes after a pause pay for cold caches and
    // sleeping worker threads, which would favour whichever side runs second.
    ctx.setActivationCounting(false);
    await feed(ctx, sample, o, false);
    for (let rep = 0; rep < 3; rep++) {
      for (const on of [false, true]) {
        ctx.setActivationCounting(on);
        const { done, ms } = await feed(ctx, sample, o, false);
        const rate = ms > 0 ? (1000 * done) / ms : 0;
        if (on) counting = Math.max(counting, rate);
        else plain = Math.max(plain, rate);
      }
    }
  } finally {
    ctx.setActivationCounting(false);
  }
  return { plain, counting };
}

/** "[#######.......]  52.0%  2600/5000 tokens  812.4 tok/s  ETA 0:03" */
export function progressLine(p: ProfileProgress, width = 30): string {
  const frac = p.total > 0 ? p.done / p.total : 1;
  const filled = Math.round(frac * width);
  const rate = p.elapsedMs > 0 ? (1000 * p.done) / p.elapsedMs : 0;
  const etaS = rate > 0 ? Math.max(0, (p.total - p.done) / rate) : NaN;
  const eta = Number.isFinite(etaS)
    ? `${Math.floor(etaS / 60)}:${String(Math.floor(etaS % 60)).padStart(2, '0')}`
    : '--:--';
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(100 * frac).toFixed(1).padStart(5)}%  ` +
    `${p.done}/${p.total} tokens  ${rate.toFixed(1)} tok/s  ETA ${eta}`
  );
}

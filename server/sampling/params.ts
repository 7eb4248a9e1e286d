// Sampling parameters, their defaults and range checks. Errors name the parameter so the
// HTTP layer can turn them into a 400 about that field.

export interface SamplingParams {
  /** 0: greedy (argmax). Logits are divided by it before truncation and sampling. */
  temperature: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose mass reaches p; 1 = off. */
  topP: number;
  /** Drop tokens whose probability is below minP x the top probability; 0 = off. */
  minP: number;
  /** llama.cpp repetition penalty over the penalty window; 1 = off. */
  repetitionPenalty: number;
  /** OpenAI presence penalty: subtracted once from every token seen in the window. */
  presencePenalty: number;
  /** OpenAI frequency penalty: subtracted once per occurrence in the window. */
  frequencyPenalty: number;
  /** Accepted tokens the penalties look back over; -1 = all of them, 0 = none. */
  penaltyLastN: number;
  /** token id -> added to its logit; -Infinity bans the token. */
  logitBias: ReadonlyMap<number, number>;
  /** u64 seed; undefined: a random one (see Sampler.seed for the one used). */
  seed: number | bigint | undefined;
}

export const DEFAULT_SAMPLING: Readonly<SamplingParams> = Object.freeze({
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  penaltyLastN: 64,
  logitBias: new Map<number, number>(),
  seed: undefined,
});

export class SamplingParamError extends RangeError {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(`${param} ${message}`);
    this.name = 'SamplingParamError';
  }
}

function finite(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new SamplingParamError(name, `must be a finite number, got ${String(v)}`);
  return v;
}

function inRange(name: string, v: unknown, lo: number, hi: number): number {
  const x = finite(name, v);
  if (x < lo || x > hi) throw new SamplingParamError(name, `must be between ${lo} and ${hi}, got ${x}`);
  return x;
}

function integer(name: string, v: unknown, lo: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo) {
    throw new SamplingParamError(name, `must be an integer >= ${lo}, got ${String(v)}`);
  }
  return v;
}

/**
 * Fill defaults and check every range. `logitBias` may be a Map or a plain object with
 * numeric-string keys (OpenAI's JSON shape). Token ids are checked against nVocab.
 */
export function resolveSamplingParams(
  p: Partial<Omit<SamplingParams, 'logitBias'>> & { logitBias?: ReadonlyMap<number, number> | Record<string, number> },
  nVocab: number,
): SamplingParams {
  const d = DEFAULT_SAMPLING;
  const temperature = finite('temperature', p.temperature ?? d.temperature);
  if (temperature < 0) throw new SamplingParamError('temperature', `must be >= 0, got ${temperature}`);
  const out: SamplingParams = {
    temperature,
    topK: integer('top_k', p.topK ?? d.topK, 0),
    topP: inRange('top_p', p.topP ?? d.topP, 0, 1),
    minP: inRange('min_p', p.minP ?? d.minP, 0, 1),
    repetitionPenalty: finite('repetition_penalty', p.repetitionPenalty ?? d.repetitionPenalty),
    presencePenalty: inRange('presence_penalty', p.presencePenalty ?? d.presencePenalty, -2, 2),
    frequencyPenalty: inRange('frequency_penalty', p.frequencyPenalty ?? d.frequencyPenalty, -2, 2),
    penaltyLastN: integer('penalty_last_n', p.penaltyLastN ?? d.penaltyLastN, -1),
    logitBias: new Map(),
    seed: p.seed,
  };
  if (out.repetitionPenalty <= 0) {
    throw new SamplingParamError('repetition_penalty', `must be > 0, got ${out.repetitionPenalty}`);
  }
  if (p.seed !== undefined) {
    if (typeof p.seed === 'number' ? !Number.isSafeInteger(p.seed) : typeof p.seed !== 'bigint') {
      throw new SamplingParamError('seed', `must be an integer, got ${String(p.seed)}`);
    }
  }
  const bias = p.logitBias ?? d.logitBias;
  const entries: [unknown, unknown][] = bias instanceof Map ? [...bias] : Object.entries(bias);
  const m = out.logitBias as Map<number, number>;
  for (const [k, v] of entries) {
    const id = typeof k === 'string' && /^\d+$/.test(k) ? Number(k) : k;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= nVocab) {
      throw new SamplingParamError('logit_bias', `has key ${JSON.stringify(k)}, which is not a token id (0..${nVocab - 1})`);
    }
    if (typeof v !== 'number' || Number.isNaN(v) || v === Infinity) {
      throw new SamplingParamError('logit_bias', `value for token ${id} must be a finite number or -Infinity, got ${String(v)}`);
    }
    m.set(id, v);
  }
  return out;
}

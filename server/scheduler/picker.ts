// Per-sequence token picking: the seeded sampler from server/sampling, fed the prompt
// for its penalty window (as llama.cpp does), asked for logprobs only when the request
// wants them (they cost an extra pass over the vocabulary).

import { Sampler } from '../sampling/sampler.js';
import type { PickerOptions } from './runtime.js';
import type { Picked } from './types.js';

export function makePickerFactory(nVocab: number): (o: PickerOptions) => (logits: Float32Array) => Picked {
  return (o) => {
    const s = o.settings;
    const sampler = new Sampler(
      {
        temperature: s.temperature,
        topK: s.topK,
        topP: s.topP,
        minP: s.minP,
        repetitionPenalty: s.repetitionPenalty,
        presencePenalty: s.presencePenalty,
        frequencyPenalty: s.frequencyPenalty,
        logitBias: s.logitBias,
        seed: o.seed,
      },
      nVocab,
    );
    sampler.acceptMany(o.prompt);
    const opts = o.topLogprobs === null ? {} : { logprobs: true, topLogprobs: o.topLogprobs };
    return (logits) => sampler.sample(logits, opts);
  };
}

// Per-sequence token picking: the seeded sampler from server/sampling plus logprobs.
// Placeholder until server/sampling lands: creating a picker fails with a clear error
// (generation requests then answer 500 and the server stays up).

import type { PickerOptions } from './runtime.js';
import type { Picked } from './types.js';

export function makePickerFactory(_nVocab: number): (o: PickerOptions) => (logits: Float32Array) => Picked {
  return () => {
    throw new Error('the sampler (server/sampling) is not available in this build yet');
  };
}

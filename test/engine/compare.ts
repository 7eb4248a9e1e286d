// Comparing logits: the largest absolute difference relative to the largest reference
// value, i.e. the error as a share of the logit range.
import assert from 'node:assert/strict';

export function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

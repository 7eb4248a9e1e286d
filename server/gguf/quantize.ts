// Turning f32 rows into a tensor type's bytes, for model writers. Plain float types are
// encoded here in TypeScript; block-quantised types (q8_0, q4_0, q4_k, q6_k, ...) go
// through the native addon's quantiser (the same code the kernels' tests trust), loaded
// only when such a type is asked for, so F32/F16/BF16 files can be written without a
// built addon.

import { encodeBf16, encodeF16 } from './float16.js';
import type { GgmlTypeInfo } from './constants.js';
import type { NativeKernels } from '../engine/native-kernels.js';

/** Quantise whole rows: src.length must be a multiple of the type's block size. */
export type Quantizer = (src: Float32Array) => Uint8Array;

type NativeQuantize = (typeId: number, src: Float32Array) => Uint8Array;

let nativeQuantize: Promise<NativeQuantize> | undefined;

async function loadNativeQuantize(): Promise<NativeQuantize> {
  let kernels: NativeKernels;
  try {
    kernels = (await import('../engine/binding.js')).native.kernels;
  } catch (e) {
    throw new Error(
      `quantised types need the native addon's quantiser, which could not be loaded: ${(e as Error).message}`,
    );
  }
  if (!kernels || typeof kernels.quantize !== 'function') {
    throw new Error('the native addon has no kernels.quantize(type, Float32Array); rebuild it (npm run build:addon)');
  }
  return (typeId, src) => kernels.quantize(typeId, src);
}

/**
 * A quantiser for `type`. The returned function may reuse its output buffer between
 * calls for the float types: consume (write) each result before the next call.
 */
export async function quantizerFor(type: GgmlTypeInfo): Promise<Quantizer> {
  switch (type.name) {
    case 'f32':
      return (src) => new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    case 'f16': {
      let out = new Uint8Array(0);
      return (src) => {
        if (out.length < src.length * 2) out = new Uint8Array(src.length * 2);
        return encodeF16(src, out);
      };
    }
    case 'bf16': {
      let out = new Uint8Array(0);
      return (src) => {
        if (out.length < src.length * 2) out = new Uint8Array(src.length * 2);
        return encodeBf16(src, out);
      };
    }
    default: {
      nativeQuantize ??= loadNativeQuantize();
      const q = await nativeQuantize.catch((e) => {
        nativeQuantize = undefined; // let a later call retry (e.g. after a build)
        throw e;
      });
      return (src) => {
        if (src.length % type.blockSize !== 0) {
          throw new RangeError(`${src.length} values are not whole ${type.name} blocks of ${type.blockSize}`);
        }
        const b = q(type.id, src); // the addon takes ggml type ids
        const want = (src.length / type.blockSize) * type.typeSize;
        if (b.length !== want) {
          throw new Error(`native quantize(${type.name}) returned ${b.length} bytes, expected ${want}`);
        }
        return b;
      };
    }
  }
}

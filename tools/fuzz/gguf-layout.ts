// Where each field of a GGUF header sits, so the mutator can aim at counts, lengths,
// types, dims and offsets instead of flipping bytes at random (random flips rarely hit
// the handful of bytes that matter). Reads the well-formed seed files only.

export interface Field {
  at: number;
  /** 4 or 8 bytes. */
  size: 4 | 8;
  kind: 'count' | 'strlen' | 'valueType' | 'arrayType' | 'arrayLen' | 'value' | 'nDims' | 'dim' | 'tensorType' | 'offset';
}

export interface Layout {
  fields: Field[];
  /** Tensor names: offset and length of the bytes. */
  tensorNames: { at: number; len: number }[];
  keyNames: { at: number; len: number }[];
  headerEnd: number;
}

const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export function scanLayout(b: Buffer): Layout {
  const fields: Field[] = [];
  const tensorNames: Layout['tensorNames'] = [];
  const keyNames: Layout['keyNames'] = [];
  let p = 8;
  const u32 = () => {
    const v = b.readUInt32LE(p);
    p += 4;
    return v;
  };
  const u64 = () => {
    const v = Number(b.readBigUInt64LE(p));
    p += 8;
    return v;
  };
  const str = (names?: Layout['keyNames']) => {
    fields.push({ at: p, size: 8, kind: 'strlen' });
    const n = u64();
    names?.push({ at: p, len: n });
    p += n;
  };
  const value = (type: number): void => {
    if (type === 8) return str();
    if (type === 9) {
      fields.push({ at: p, size: 4, kind: 'arrayType' });
      const et = u32();
      fields.push({ at: p, size: 8, kind: 'arrayLen' });
      const n = u64();
      for (let i = 0; i < n; i++) value(et);
      return;
    }
    const size = SCALAR_SIZE[type];
    if (size === undefined) throw new Error(`seed file: unknown value type ${type}`);
    if (size >= 4) fields.push({ at: p, size: size as 4 | 8, kind: 'value' });
    p += size;
  };
  fields.push({ at: 8, size: 8, kind: 'count' }, { at: 16, size: 8, kind: 'count' });
  p = 8;
  const nTensors = u64();
  const nKv = u64();
  for (let i = 0; i < nKv; i++) {
    str(keyNames);
    fields.push({ at: p, size: 4, kind: 'valueType' });
    value(u32());
  }
  for (let i = 0; i < nTensors; i++) {
    str(tensorNames);
    fields.push({ at: p, size: 4, kind: 'nDims' });
    const nd = u32();
    for (let d = 0; d < nd; d++) {
      fields.push({ at: p, size: 8, kind: 'dim' });
      p += 8;
    }
    fields.push({ at: p, size: 4, kind: 'tensorType' });
    p += 4;
    fields.push({ at: p, size: 8, kind: 'offset' });
    p += 8;
  }
  return { fields, tensorNames, keyNames, headerEnd: p };
}

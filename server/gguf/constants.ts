// GGUF / ggml numeric constants: metadata value type ids, tensor (ggml) type ids with
// their block geometry, and llama.cpp's `general.file_type` codes. The numbers are the
// public file-format values (ggml.h / gguf spec), so files we write load anywhere.

/** Metadata value type ids as stored in the file (gguf_type). */
export const GGUF_VALUE_TYPE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPE;
export type GgufScalarTypeName = Exclude<GgufValueTypeName, 'array'>;

const VALUE_TYPE_NAMES = new Map<number, GgufValueTypeName>(
  Object.entries(GGUF_VALUE_TYPE).map(([k, v]) => [v, k as GgufValueTypeName]),
);

export function valueTypeName(id: number): GgufValueTypeName | undefined {
  return VALUE_TYPE_NAMES.get(id);
}

/** Byte size of a fixed-size scalar value type (strings and arrays have none). */
export const SCALAR_SIZE: Record<Exclude<GgufScalarTypeName, 'string'>, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  u64: 8,
  i64: 8,
  f64: 8,
};

export interface GgmlTypeInfo {
  name: string;
  id: number;
  /** Elements per block (1 for plain numbers). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

// ggml_type ids and block layouts (ggml-common.h): e.g. Q4_0 = 32 weights in 18 bytes
// (f16 scale + 16 bytes of nibbles), Q6_K = 256 weights in 210 bytes.
const GGML_TYPE_LIST: GgmlTypeInfo[] = [
  { name: 'f32', id: 0, blockSize: 1, typeSize: 4 },
  { name: 'f16', id: 1, blockSize: 1, typeSize: 2 },
  { name: 'q4_0', id: 2, blockSize: 32, typeSize: 18 },
  { name: 'q4_1', id: 3, blockSize: 32, typeSize: 20 },
  { name: 'q5_0', id: 6, blockSize: 32, typeSize: 22 },
  { name: 'q5_1', id: 7, blockSize: 32, typeSize: 24 },
  { name: 'q8_0', id: 8, blockSize: 32, typeSize: 34 },
  { name: 'q8_1', id: 9, blockSize: 32, typeSize: 36 },
  { name: 'q2_k', id: 10, blockSize: 256, typeSize: 84 },
  { name: 'q3_k', id: 11, blockSize: 256, typeSize: 110 },
  { name: 'q4_k', id: 12, blockSize: 256, typeSize: 144 },
  { name: 'q5_k', id: 13, blockSize: 256, typeSize: 176 },
  { name: 'q6_k', id: 14, blockSize: 256, typeSize: 210 },
  { name: 'q8_k', id: 15, blockSize: 256, typeSize: 292 },
  { name: 'i8', id: 24, blockSize: 1, typeSize: 1 },
  { name: 'i16', id: 25, blockSize: 1, typeSize: 2 },
  { name: 'i32', id: 26, blockSize: 1, typeSize: 4 },
  { name: 'i64', id: 27, blockSize: 1, typeSize: 8 },
  { name: 'f64', id: 28, blockSize: 1, typeSize: 8 },
  { name: 'bf16', id: 30, blockSize: 1, typeSize: 2 },
];

const BY_NAME = new Map(GGML_TYPE_LIST.map((t) => [t.name, t]));
const BY_ID = new Map(GGML_TYPE_LIST.map((t) => [t.id, t]));

export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name.toLowerCase());
}

export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** Resolve a type given by name or id; throws naming the bad value. */
export function resolveGgmlType(type: string | number): GgmlTypeInfo {
  const info = typeof type === 'number' ? ggmlTypeById(type) : ggmlTypeByName(type);
  if (!info) throw new Error(`unknown ggml tensor type ${JSON.stringify(type)}`);
  return info;
}

/**
 * Bytes of a tensor with these dims (ne order) and type. The fastest dimension must be a
 * whole number of blocks, as in ggml.
 */
export function tensorByteSize(dims: readonly number[], type: GgmlTypeInfo): bigint {
  if (dims.length === 0) throw new Error('a tensor needs at least one dimension');
  const ne0 = dims[0];
  if (ne0 % type.blockSize !== 0) {
    throw new Error(
      `dimension 0 (${ne0}) is not a multiple of the ${type.name} block size ${type.blockSize}`,
    );
  }
  let rows = 1n;
  for (let i = 1; i < dims.length; i++) rows *= BigInt(dims[i]);
  return (BigInt(ne0 / type.blockSize) * BigInt(type.typeSize)) * rows;
}

/**
 * llama.cpp's `general.file_type` (llama_ftype) for the weight types make-model writes:
 * the code says what most matrices are. Q4_K / Q5_K files are "_S"-like (all matrices of
 * that type except the output), hence 14 / 16.
 */
export const LLAMA_FILE_TYPE: Record<string, number> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q8_0: 7,
  q5_0: 8,
  q5_1: 9,
  q4_k: 14,
  q5_k: 16,
  q6_k: 18,
  bf16: 32,
};

export const GGUF_DEFAULT_ALIGNMENT = 32;

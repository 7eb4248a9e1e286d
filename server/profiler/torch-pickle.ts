// A minimal unpickler for what torch.save writes for a tensor (protocols 2-5): enough
// opcodes to build tuples, lists, dicts, strings and numbers, persistent ids for storages,
// and the few constructors a saved tensor needs (torch._utils._rebuild_tensor_v2,
// _rebuild_parameter, collections.OrderedDict). Anything else is refused by name: we
// never execute arbitrary globals, so a hostile .pt cannot run code here.

export interface TorchStorageRef {
  kind: 'storage';
  dtype: TorchDtype;
  key: string;
  numel: number;
}

export interface TorchTensorRef {
  kind: 'tensor';
  storage: TorchStorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

export type TorchDtype = 'f32' | 'f64' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

export const STORAGE_DTYPES: Record<string, TorchDtype> = {
  FloatStorage: 'f32',
  DoubleStorage: 'f64',
  HalfStorage: 'f16',
  BFloat16Storage: 'bf16',
  LongStorage: 'i64',
  IntStorage: 'i32',
  ShortStorage: 'i16',
  CharStorage: 'i8',
  ByteStorage: 'u8',
  BoolStorage: 'bool',
};

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get full(): string {
    return `${this.module}.${this.name}`;
  }
}

class Tuple {
  constructor(readonly items: unknown[]) {}
}

const MARK = Symbol('mark');

/** Sizes, offsets and strides: non-negative safe integers (LONG1 gives bigints only past 2^53). */
function asInt(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n) return Number(v);
  throw new Error(`${what} is not a non-negative integer`);
}

function intTuple(v: unknown, what: string): number[] {
  if (!(v instanceof Tuple)) throw new Error(`${what} is not a tuple`);
  return v.items.map((x, i) => asInt(x, `${what}[${i}]`));
}

function persistentLoad(pid: unknown): TorchStorageRef {
  // ('storage', <StorageType global>, key, location, numel)
  if (!(pid instanceof Tuple) || pid.items[0] !== 'storage' || pid.items.length < 5) {
    throw new Error('unsupported persistent id in pickle (expected a storage reference)');
  }
  const [, type, key, , numel] = pid.items;
  if (!(type instanceof Global) || type.module !== 'torch' || !(type.name in STORAGE_DTYPES)) {
    throw new Error(`unsupported storage type ${type instanceof Global ? type.full : String(type)}`);
  }
  if (typeof key !== 'string') throw new Error('storage key is not a string');
  return { kind: 'storage', dtype: STORAGE_DTYPES[type.name], key, numel: asInt(numel, 'storage size') };
}

function reduce(fn: unknown, args: unknown): unknown {
  if (!(fn instanceof Global)) throw new Error('pickle REDUCE on something that is not a known constructor');
  if (!(args instanceof Tuple)) throw new Error(`arguments of ${fn.full} are not a tuple`);
  const a = args.items;
  switch (fn.full) {
    case 'torch._utils._rebuild_tensor_v2': {
      const storage = a[0] as TorchStorageRef;
      if (!storage || storage.kind !== 'storage') throw new Error('tensor without a storage');
      return {
        kind: 'tensor',
        storage,
        offset: asInt(a[1], 'storage offset'),
        shape: intTuple(a[2], 'tensor size'),
        stride: intTuple(a[3], 'tensor stride'),
      } satisfies TorchTensorRef;
    }
    case 'torch._utils._rebuild_parameter':
      return a[0];
    case 'collections.OrderedDict':
      return new Map();
    default:
      throw new Error(`the pickle uses ${fn.full}, which a tensor file does not need; refusing to load it`);
  }
}

/** Unpickles `data`; returns the top object (a TorchTensorRef for a saved tensor). */
export function unpickle(data: Buffer, what: string): unknown {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const need = (n: number) => {
    if (p + n > data.length) throw new Error(`${what}: pickle truncated at byte ${p}`);
  };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new Error(`${what}: pickle MARK missing`);
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw new Error(`${what}: pickle stack underflow at byte ${p}`);
    return stack.pop();
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) throw new Error(`${what}: pickle truncated in a GLOBAL`);
    const s = data.subarray(p, end).toString('utf8');
    p = end + 1;
    return s;
  };
  try {
    for (;;) {
      need(1);
      const op = data[p++];
      switch (op) {
        case 0x80: need(1); p += 1; break; // PROTO
        case 0x95: need(8); p += 8; break; // FRAME
        case 0x63: { const m = line(); stack.push(new Global(m, line())); break; } // GLOBAL
        case 0x93: { const n = pop(); const m = pop(); stack.push(new Global(String(m), String(n))); break; } // STACK_GLOBAL
        case 0x71: need(1); memo.set(data[p++], stack[stack.length - 1]); break; // BINPUT
        case 0x72: need(4); memo.set(data.readUInt32LE(p), stack[stack.length - 1]); p += 4; break; // LONG_BINPUT
        case 0x94: memo.set(memo.size, stack[stack.length - 1]); break; // MEMOIZE
        case 0x68: need(1); stack.push(memo.get(data[p++])); break; // BINGET
        case 0x6a: need(4); stack.push(memo.get(data.readUInt32LE(p))); p += 4; break; // LONG_BINGET
        case 0x28: stack.push(MARK); break;
        case 0x74: stack.push(new Tuple(popMark())); break; // TUPLE
        case 0x29: stack.push(new Tuple([])); break; // EMPTY_TUPLE
        case 0x85: stack.push(new Tuple([pop()])); break; // TUPLE1
        case 0x86: { const b = pop(); stack.push(new Tuple([pop(), b])); break; } // TUPLE2
        case 0x87: { const c = pop(); const b = pop(); stack.push(new Tuple([pop(), b, c])); break; } // TUPLE3
        case 0x5d: stack.push([]); break; // EMPTY_LIST
        case 0x61: { const v = pop(); (stack[stack.length - 1] as unknown[]).push(v); break; } // APPEND
        case 0x65: { const items = popMark(); (stack[stack.length - 1] as unknown[]).push(...items); break; } // APPENDS
        case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
        case 0x73: { const v = pop(); const k = pop(); (stack[stack.length - 1] as Map<unknown, unknown>).set(k, v); break; } // SETITEM
        case 0x75: { // SETITEMS
          const items = popMark();
          const d = stack[stack.length - 1] as Map<unknown, unknown>;
          for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
          break;
        }
        case 0x58: { need(4); const n = data.readUInt32LE(p); p += 4; need(n); stack.push(data.subarray(p, p + n).toString('utf8')); p += n; break; } // BINUNICODE
        case 0x8c: { need(1); const n = data[p++]; need(n); stack.push(data.subarray(p, p + n).toString('utf8')); p += n; break; } // SHORT_BINUNICODE
        case 0x43: { need(1); const n = data[p++]; need(n); stack.push(data.subarray(p, p + n)); p += n; break; } // SHORT_BINBYTES
        case 0x42: { need(4); const n = data.readUInt32LE(p); p += 4; need(n); stack.push(data.subarray(p, p + n)); p += n; break; } // BINBYTES
        case 0x4b: need(1); stack.push(data[p++]); break; // BININT1
        case 0x4d: need(2); stack.push(data.readUInt16LE(p)); p += 2; break; // BININT2
        case 0x4a: need(4); stack.push(data.readInt32LE(p)); p += 4; break; // BININT
        case 0x8a: { // LONG1: little-endian two's complement
          need(1);
          const n = data[p++];
          need(n);
          let v = 0n;
          for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[p + i]);
          if (n > 0 && data[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
          p += n;
          stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
          break;
        }
        case 0x47: need(8); stack.push(data.readDoubleBE(p)); p += 8; break; // BINFLOAT
        case 0x88: stack.push(true); break;
        case 0x89: stack.push(false); break;
        case 0x4e: stack.push(null); break;
        case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
        case 0x52: { const args = pop(); stack.push(reduce(pop(), args)); break; } // REDUCE
        case 0x62: pop(); break; // BUILD: state of an OrderedDict / Parameter, not needed
        case 0x2e: // STOP
          if (stack.length !== 1) throw new Error(`pickle ended with ${stack.length} values on the stack`);
          return stack[0];
        default:
          throw new Error(`unsupported pickle opcode 0x${op.toString(16)} at byte ${p - 1}`);
      }
    }
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(what) ? msg : `${what}: ${msg}`);
  }
}

/** The pickle torch.save writes for a contiguous 1-D int64 tensor of n elements in storage "0". */
export function pickleInt64Vector(n: number): Buffer {
  const parts: Buffer[] = [];
  const op = (...b: number[]) => parts.push(Buffer.from(b));
  const str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    parts.push(h, b);
  };
  const int = (v: number) => {
    const h = Buffer.alloc(5);
    h[0] = 0x4a;
    h.writeInt32LE(v, 1);
    parts.push(h);
  };
  const glob = (m: string, name: string) => parts.push(Buffer.from(`c${m}\n${name}\n`, 'utf8'));
  op(0x80, 2);
  glob('torch._utils', '_rebuild_tensor_v2');
  op(0x28); // MARK (args)
  op(0x28); // MARK (persistent id)
  str('storage');
  glob('torch', 'LongStorage');
  str('0');
  str('cpu');
  int(n);
  op(0x74, 0x51); // TUPLE, BINPERSID
  int(0); // storage offset
  int(n);
  op(0x85); // size (n,)
  int(1);
  op(0x85); // stride (1,)
  op(0x89); // requires_grad False
  glob('collections', 'OrderedDict');
  op(0x29, 0x52); // OrderedDict()
  op(0x74, 0x52, 0x2e); // TUPLE, REDUCE, STOP
  return Buffer.concat(parts);
}

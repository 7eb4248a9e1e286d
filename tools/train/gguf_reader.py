"""Read back a GGUF v3 file (metadata and F32/F16 tensors), independently of the writer's
bookkeeping, so the reference numbers come from exactly the weights an engine loads."""
import struct

import numpy as np

import gguf_writer as g

_FMT = {g.U8: '<B', g.I8: '<b', g.U16: '<H', g.I16: '<h', g.U32: '<I', g.I32: '<i', g.F32: '<f',
        g.BOOL: '<?', g.U64: '<Q', g.I64: '<q', g.F64: '<d'}


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take('<Q')
        s = self.buf[self.pos:self.pos + n].decode('utf-8')
        self.pos += n
        return s

    def value(self, t):
        if t == g.STRING:
            return self.string()
        if t == g.ARRAY:
            et, n = self.take('<I'), self.take('<Q')
            return [self.value(et) for _ in range(n)]
        return self.take(_FMT[t])


def read_gguf(path):
    """Returns (metadata dict, {name: numpy float32 array in PyTorch shape})."""
    with open(path, 'rb') as f:
        buf = f.read()
    c = _Cursor(buf)
    if buf[:4] != b'GGUF':
        raise ValueError(f'{path}: not a GGUF file')
    c.pos = 4
    version, n_t, n_kv = c.take('<I'), c.take('<Q'), c.take('<Q')
    if version != 3:
        raise ValueError(f'{path}: GGUF version {version}, expected 3')
    meta = {}
    for _ in range(n_kv):
        k = c.string()
        meta[k] = c.value(c.take('<I'))
    infos = []
    for _ in range(n_t):
        name = c.string()
        nd = c.take('<I')
        ne = [c.take('<Q') for _ in range(nd)]
        gtype, off = c.take('<I'), c.take('<Q')
        infos.append((name, ne, gtype, off))
    align = meta.get('general.alignment', 32)
    base = (c.pos + align - 1) // align * align
    tensors = {}
    for name, ne, gtype, off in infos:
        count = int(np.prod(ne))
        dt = {g.GGML_F32: '<f4', g.GGML_F16: '<f2'}[gtype]
        a = np.frombuffer(buf, dtype=dt, count=count, offset=base + off)
        tensors[name] = a.astype(np.float32).reshape(list(reversed(ne)))
    return meta, tensors

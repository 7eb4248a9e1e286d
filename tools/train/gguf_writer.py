"""A minimal GGUF v3 writer (little-endian, 32-byte alignment), written from the spec.

Layout: "GGUF", u32 version, u64 tensor count, u64 KV count, the KVs, the tensor infos
(name, n_dims, ne[] fastest dimension first, ggml type, offset into the data section),
padding to the alignment, then each tensor's raw bytes, each padded to the alignment.
"""
import struct

import numpy as np

ALIGN = 32

# GGUF metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml tensor types used here
GGML_F32, GGML_F16 = 0, 1

_SCALAR_FMT = {U8: '<B', I8: '<b', U16: '<H', I16: '<h', U32: '<I', I32: '<i', F32: '<f',
               BOOL: '<?', U64: '<Q', I64: '<q', F64: '<d'}


def _str(s):
    b = s.encode('utf-8')
    return struct.pack('<Q', len(b)) + b


class GgufWriter:
    def __init__(self):
        self.kv = []       # (key, type, value, elem_type)
        self.tensors = []  # (name, ne, ggml_type, bytes)

    def add(self, key, vtype, value):
        if vtype == ARRAY:
            raise ValueError('use add_array for arrays')
        self.kv.append((key, vtype, value, None))

    def add_array(self, key, elem_type, values):
        self.kv.append((key, ARRAY, list(values), elem_type))

    def add_tensor(self, name, array, ggml_type):
        """array: numpy array in PyTorch (row-major) shape; ne is the reversed shape."""
        if ggml_type == GGML_F32:
            data = np.ascontiguousarray(array, dtype='<f4')
        elif ggml_type == GGML_F16:
            data = np.ascontiguousarray(array, dtype='<f2')
        else:
            raise ValueError(f'unsupported ggml type {ggml_type}')
        ne = list(reversed(data.shape))
        self.tensors.append((name, ne, ggml_type, data.tobytes()))

    @staticmethod
    def _value(vtype, v):
        if vtype == STRING:
            return _str(v)
        return struct.pack(_SCALAR_FMT[vtype], v)

    def write(self, path):
        out = bytearray(b'GGUF')
        out += struct.pack('<IQQ', 3, len(self.tensors), len(self.kv))
        for key, vtype, value, elem in self.kv:
            out += _str(key) + struct.pack('<I', vtype)
            if vtype == ARRAY:
                out += struct.pack('<IQ', elem, len(value))
                for v in value:
                    out += self._value(elem, v)
            else:
                out += self._value(vtype, value)
        offset = 0
        offsets = []
        for name, ne, gtype, data in self.tensors:
            offsets.append(offset)
            out += _str(name) + struct.pack('<I', len(ne))
            out += struct.pack(f'<{len(ne)}Q', *ne)
            out += struct.pack('<IQ', gtype, offset)
            offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
        out += b'\0' * (-len(out) % ALIGN)
        base = len(out)
        for (name, ne, gtype, data), off in zip(self.tensors, offsets):
            if len(out) - base != off:
                raise AssertionError(f'offset mismatch for {name}')
            out += data
            out += b'\0' * (-len(out) % ALIGN)
        with open(path, 'wb') as f:
            f.write(out)
        return len(out)

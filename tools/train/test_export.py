"""GGUF export round trip on a tiny random model (no training, a few seconds):
  /usr/bin/python3 -m unittest discover -s tools/train -p 'test_*.py'
"""
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gguf_writer as g  # noqa: E402
from gguf_reader import read_gguf  # noqa: E402
from model import Config, Decoder, apply_rope, rope_tables  # noqa: E402
from reference import model_from_gguf  # noqa: E402

TOKENIZER = os.path.join(HERE, '..', '..', 'models', 'bamboo-kjv-mini.tokenizer.model')


class WriterLayout(unittest.TestCase):
    def test_header_alignment_and_values(self):
        w = g.GgufWriter()
        w.add('a.u32', g.U32, 7)
        w.add('a.f32', g.F32, 0.5)
        w.add('a.bool', g.BOOL, True)
        w.add('a.str', g.STRING, 'héllo')
        w.add_array('a.arr', g.I32, [1, -2, 3])
        w.add_array('a.strs', g.STRING, ['x', '', 'yz'])
        w.add_tensor('t1', np.arange(6, dtype=np.float32).reshape(2, 3), g.GGML_F32)
        w.add_tensor('t2', np.arange(5, dtype=np.float32), g.GGML_F16)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, 'x.gguf')
            w.write(p)
            with open(p, 'rb') as f:
                raw = f.read()
            self.assertEqual(raw[:4], b'GGUF')
            self.assertEqual(struct.unpack_from('<IQQ', raw, 4), (3, 2, 6))
            meta, t = read_gguf(p)
        self.assertEqual(meta['a.u32'], 7)
        self.assertEqual(meta['a.f32'], 0.5)
        self.assertIs(meta['a.bool'], True)
        self.assertEqual(meta['a.str'], 'héllo')
        self.assertEqual(meta['a.arr'], [1, -2, 3])
        self.assertEqual(meta['a.strs'], ['x', '', 'yz'])
        # PyTorch shape [2, 3] is GGUF ne {3, 2}; the reader turns it back.
        np.testing.assert_array_equal(t['t1'], np.arange(6).reshape(2, 3))
        np.testing.assert_array_equal(t['t2'], np.arange(5))

    def test_rejects_unknown_tensor_type(self):
        with self.assertRaises(ValueError):
            g.GgufWriter().add_tensor('t', np.zeros(2), 8)


class RopeLayout(unittest.TestCase):
    def test_pairs_rotate_by_position_times_frequency(self):
        cfg = Config(n_embd=8, n_head=1, n_head_kv=1, n_ctx=4)
        cos, sin = rope_tables(cfg, 4)
        x = torch.randn(1, 1, 4, 8)
        y = apply_rope(x, cos, sin)
        for p in range(4):
            for i in range(4):
                th = p * cfg.rope_base ** (-2 * i / 8)
                a, b = x[0, 0, p, 2 * i].item(), x[0, 0, p, 2 * i + 1].item()
                self.assertAlmostEqual(y[0, 0, p, 2 * i].item(), a * np.cos(th) - b * np.sin(th), places=5)
                self.assertAlmostEqual(y[0, 0, p, 2 * i + 1].item(), a * np.sin(th) + b * np.cos(th), places=5)


class ExportRoundTrip(unittest.TestCase):
    def test_exported_model_computes_the_same_logits(self):
        torch.manual_seed(0)
        cfg = Config(n_vocab=4096, n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=128, n_ctx=32)
        m = Decoder(cfg).eval()
        with tempfile.TemporaryDirectory() as d:
            ck, out = os.path.join(d, 'c.pt'), os.path.join(d, 'm.gguf')
            torch.save({'cfg': cfg.to_dict(), 'model': m.state_dict(), 'step': 0}, ck)
            subprocess.run([sys.executable, os.path.join(HERE, 'export_gguf.py'), '--ckpt', ck,
                            '--tokenizer', TOKENIZER, '--out', out, '--f32'],
                           check=True, capture_output=True)
            m2, meta = model_from_gguf(out)
            _, t = read_gguf(out)
        self.assertEqual(meta['general.architecture'], 'bamboo')
        self.assertEqual(meta['bamboo.attention.head_count_kv'], 2)
        self.assertEqual(meta['bamboo.rope.dimension_count'], 16)
        self.assertEqual(len(meta['tokenizer.ggml.tokens']), 4096)
        self.assertEqual(meta['tokenizer.ggml.token_type'][:4], [2, 3, 3, 6])
        self.assertEqual(meta['tokenizer.ggml.tokens'][3], '<0x00>')
        # llama tensor names and GGUF shapes (ne reversed from PyTorch's [out, in])
        self.assertEqual(t['blk.1.attn_k.weight'].shape, (32, 64))
        self.assertEqual(t['blk.0.ffn_down.weight'].shape, (64, 128))
        self.assertEqual(t['output.weight'].shape, (4096, 64))
        x = torch.randint(3, 4096, (1, 20))
        with torch.no_grad():
            a, _ = m(x)
            b, _ = m2(x)
        torch.testing.assert_close(a, b)


if __name__ == '__main__':
    unittest.main()

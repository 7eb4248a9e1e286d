"""Token streams for training and evaluation.

Each document (a Bible chapter or a novel's chapter) is encoded whole, as an engine would
encode a prompt, and preceded by <s>; the streams are cached as uint16 arrays.
"""
import os

import numpy as np
import sentencepiece as spm

DOC_SEP = '\n\f\n'


def documents(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    return [d.strip('\n') for d in text.split(DOC_SEP) if d.strip('\n')]


def token_stream(sp, path, cache_path):
    if os.path.exists(cache_path) and os.path.getmtime(cache_path) > max(
            os.path.getmtime(path), os.path.getmtime(sp.model_file)):
        return np.load(cache_path)
    ids = []
    for doc in documents(path):
        ids.append(sp.bos_id())
        ids.extend(sp.encode(doc))
    arr = np.asarray(ids, dtype=np.uint16)
    np.save(cache_path, arr)
    return arr


class Tokenizer(spm.SentencePieceProcessor):
    def __init__(self, model_file):
        super().__init__(model_file=model_file)
        self.model_file = model_file


def eval_windows(stream, n_ctx, max_windows=None):
    """Held-out windows: non-overlapping slices of n_ctx tokens, each opened with <s>
    (a window that already starts at a document's <s> is not given a second one).
    The first token of each window is context only; the other n_ctx-1 are scored."""
    bos = 1
    windows = []
    pos = 0
    body = n_ctx - 1
    while pos + body <= len(stream):
        chunk = stream[pos:pos + body].tolist()
        if chunk[0] == bos:
            chunk = stream[pos:pos + n_ctx].tolist()
            pos += n_ctx
            if len(chunk) < n_ctx:
                break
        else:
            chunk = [bos] + chunk
            pos += body
        windows.append(chunk)
        if max_windows and len(windows) >= max_windows:
            break
    return windows

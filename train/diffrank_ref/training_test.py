#!/usr/bin/env python3
"""Training data helpers: inverse-cloze pairs come only from BEIR corpus passages, take one
sentence out as the query and keep the rest in order, skip passages too short to split, and
are the same for the same seed; weighted sampling follows the group weights, not group sizes."""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from diffrank_ref.training import WeightedSources, ict_pairs  # noqa: E402


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
    print("training helpers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The ensemble teacher's pieces that need no model: standard scores, the weighted ensemble,
keyword queries (content words only, rarest first, original order, deterministic per seed,
None for a question with no content word) and BM25 of chosen pool rows with the pool's
statistics (0 for a row that matches no query term)."""
import os
import random
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from diffrank_ref.retrieval import Bm25  # noqa: E402
from diffrank_ref.teacher import (bm25_of, doc_freq, ensemble, keyword_query, load_fit,  # noqa: E402
                                  z)


def main():
    assert np.allclose(z([1, 2, 3]), [-1.2247449, 0, 1.2247449])
    assert not z([5, 5, 5]).any(), "equal scores must not divide by zero"
    s = ensemble([0.9, 0.8, 0.7], [0.1, 0.3, 0.2], [3.0, 3.0, 3.0], a=0.25, w=0.2)
    assert np.allclose(s, 0.25 * z([0.9, 0.8, 0.7]) + 0.75 * z([0.1, 0.3, 0.2])), s
    assert s.argmax() == 1, "e5 has the larger weight here"

    pool = ["gzip compresses files with deflate", "the governor of plymouth colony",
            "william bradford served as governor", "files and folders", "a colony of ants"]
    df = doc_freq(pool)
    assert df["governor"] == 2 and df["colony"] == 2 and df["bradford"] == 1, df
    q = "How many years did William Bradford serve as governor of Plymouth colony?"
    seen = set()
    for seed in range(20):
        kw = keyword_query(q, df, random.Random(seed))
        words = kw.split()
        assert 1 <= len(words) <= 3, kw
        assert not {"how", "many", "did", "as", "of"} & set(words), f"question words: {kw}"
        order = "years william bradford serve governor plymouth colony".split()
        assert words == sorted(words, key=order.index), f"not in question order: {kw}"
        # the rarest words come first: a one-word keyword query is a df-0/1 word
        if len(words) == 1:
            assert df.get(words[0], 0) <= 1, kw
        seen.add(kw)
        assert kw == keyword_query(q, df, random.Random(seed)), "not deterministic"
    assert len(seen) > 1, "the keyword length never varies"
    assert keyword_query("what is it?", df, random.Random(0)) is None
    assert keyword_query("define 1984", df, random.Random(0)) is None

    bm = Bm25(list(range(len(pool))), pool)
    got = bm25_of(bm, "plymouth governor", [2, 1, 0])
    assert got[2] == 0.0 and got[1] > got[0] > 0, got
    assert bm25_of(bm, "gzip", [0, 3]) == [bm.search("gzip")[0][1], 0.0]
    assert bm25_of(bm, "", [0, 1]) == [0.0, 0.0]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fit.json")
        for body, want in (('{"a": 0.25, "w": 0.2, "fit_on": "bm25"}', None),
                           ("not json", "readable JSON"), ("[1, 2]", "object"),
                           ('{"w": 0.2}', '"a"'), ('{"a": 2, "w": 0.2}', '"a"'),
                           ('{"a": 0.5, "w": "x"}', '"w"'), ('{"a": true, "w": 0}', '"a"')):
            with open(path, "w") as f:
                f.write(body)
            try:
                got = load_fit(path)
                assert want is None and got == (0.25, 0.2), (body, got)
            except ValueError as e:
                assert want is not None and want in str(e), (body, e)
        try:
            load_fit(os.path.join(d, "missing.json"))
            raise AssertionError("a missing file loaded")
        except ValueError as e:
            assert "missing.json" in str(e)
    print("teacher helpers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

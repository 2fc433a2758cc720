#!/usr/bin/env python3
"""Builds diffrank's training data from text that exists offline, from scratch.

  .venv/bin/python train/build_data.py --out DIR [--shared ../shared/data] [--no-apt]
Writes to DIR:
  pairs.jsonl       {"query", "positive", "source"}: weak and supervised (query, passage) pairs
  unlabeled.jsonl   {"text", "source"}: passages for distillation (no queries)
  squad_heldout.jsonl  {"query", "positive", "distractors": [...], "article"}: the distractor set
  SOURCES.json      counts and provenance per source
Sources (each documented in the model cards):
  squad-train   SQuAD v1.1 dev questions -> paragraphs, articles 1-38 of 48 (by file order)
  squad-heldout articles 39-48: never trained on; gold passage among hard distractors from the
                same article (highest word overlap with the question)
  debian-pkg    Debian package short description -> long description (apt's Translation-en;
                `apt-get update -o Acquire::Languages=en` brings it; needs root and the Debian mirror)
  wordnet       WordNet 3.0 lemma(s) -> gloss (Debian package wordnet-base)
  beir-titles   title -> abstract of the BEIR corpora's documents (corpus text only: never the
                collections' queries or relevance judgements)
  unlabeled     the BEIR corpora's passages and the SQuAD training paragraphs
"""
import argparse
import glob
import gzip
import json
import os
import random
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORD = re.compile(r"\w+")


def squad(shared, out, rng):
    with gzip.open(os.path.join(shared, "raw", "squad", "dev-v1.1.json.gz"), "rt",
                   encoding="utf-8") as f:
        data = json.load(f)["data"]
    n_train = int(len(data) * 0.8)
    pairs, heldout, unlabeled = [], [], []
    for ai, article in enumerate(data):
        paras = [p["context"].strip() for p in article["paragraphs"]]
        for p in article["paragraphs"]:
            ctx = p["context"].strip()
            for qa in p["qas"]:
                q = " ".join(qa["question"].split())
                if ai < n_train:
                    pairs.append({"query": q, "positive": ctx, "source": "squad-train"})
                else:
                    qw = set(WORD.findall(q.lower()))
                    others = [c for c in paras if c != ctx]
                    others.sort(key=lambda c: -len(qw & set(WORD.findall(c.lower()))))
                    heldout.append({"query": q, "positive": ctx, "distractors": others[:9],
                                    "article": article["title"]})
            if ai < n_train:
                unlabeled.append({"text": ctx, "source": "squad-train"})
    return pairs, heldout, unlabeled


def debian_packages(allow_apt):
    files = glob.glob("/var/lib/apt/lists/*Translation-en*")
    if not files and allow_apt and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq", "-o", "Acquire::Languages=en"], check=False)
        files = glob.glob("/var/lib/apt/lists/*Translation-en*")
    pairs, seen = [], set()
    for path in files:
        text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], capture_output=True,
                              text=True, check=True).stdout
        for stanza in text.split("\n\n"):
            m = re.search(r"^Description-en: (.*)\n((?: .*\n?)*)", stanza, re.M)
            if not m:
                continue
            short = m.group(1).strip()
            long_lines = [l[1:] for l in m.group(2).splitlines()]
            long = " ".join("" if l.strip() == "." else l.strip() for l in long_lines)
            long = " ".join(long.split())
            if len(long) < 40 or (short, long) in seen:
                continue
            seen.add((short, long))
            pairs.append({"query": short, "positive": long, "source": "debian-pkg"})
    return pairs


def wordnet(allow_apt):
    base = "/usr/share/wordnet"
    if not os.path.exists(os.path.join(base, "data.noun")) and allow_apt and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wordnet-base"], check=False)
    pairs = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(base, f"data.{pos}")
        if not os.path.exists(path):
            continue
        with open(path, encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                head, gloss = line.split("|", 1)
                parts = head.split()
                n = int(parts[3], 16)
                words = [parts[4 + 2 * i].replace("_", " ") for i in range(n)]
                gloss = gloss.strip()
                if len(gloss) < 20:
                    continue
                pairs.append({"query": words[0].split("(")[0], "positive":
                              f"{', '.join(words)}: {gloss}", "source": "wordnet"})
    return pairs


def beir(shared):
    pairs, unlabeled = [], []
    for name in ("cranfield", "cisi", "cacm", "lisa"):
        with open(os.path.join(shared, name, "corpus.jsonl"), encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                title, text = d.get("title", "").strip(), d.get("text", "").strip()
                if title and text.lower().startswith(title.lower()):
                    text = text[len(title):].strip()  # cranfield repeats the title
                if text:
                    unlabeled.append({"text": (title + " " + text).strip(), "source": f"beir-{name}"})
                    if title and len(text) > 80:
                        pairs.append({"query": title, "positive": text, "source": f"beir-titles-{name}"})
    return pairs, unlabeled


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--no-apt", action="store_true", help="do not run apt-get for missing sources")
    a = ap.parse_args()
    rng = random.Random(0)
    os.makedirs(a.out, exist_ok=True)
    sq_pairs, heldout, sq_unl = squad(a.shared, a.out, rng)
    deb = debian_packages(not a.no_apt)
    wn = wordnet(not a.no_apt)
    be_pairs, be_unl = beir(a.shared)
    pairs = sq_pairs + deb + wn + be_pairs
    rng.shuffle(pairs)
    unlabeled = be_unl + sq_unl
    with open(os.path.join(a.out, "pairs.jsonl"), "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "unlabeled.jsonl"), "w", encoding="utf-8") as f:
        for u in unlabeled:
            f.write(json.dumps(u, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "squad_heldout.jsonl"), "w", encoding="utf-8") as f:
        for h in heldout:
            f.write(json.dumps(h, ensure_ascii=False) + "\n")
    counts = {}
    for p in pairs:
        counts[p["source"]] = counts.get(p["source"], 0) + 1
    summary = {"pairs": counts, "unlabeled": len(unlabeled), "squad_heldout": len(heldout)}
    with open(os.path.join(a.out, "SOURCES.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())

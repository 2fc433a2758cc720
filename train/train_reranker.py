#!/usr/bin/env python3
"""Train a diffrank cross-encoder (reranker): DiffAttn V2 retrofit of MiniLM's body, or its twin.

  .venv/bin/python train/train_reranker.py --data DIR --out RUN_DIR --arch diffattn-v2|baseline
      [--layers 6] [--max-len 128] [--ffn-width N] [--minutes 30] [--group 4] [--queries 8]
      [--export MODEL_DIR]
Recipe: the encoder body of all-MiniLM-L6-v2 (first --layers layers), retrofitted exactly to V2
for diffattn-v2; a cross-encoder head (pooler tanh + one logit; the pooler starts as the
identity, the logit layer as N(0, 0.02)). --ffn-width N keeps the N FFN neurons per layer with
the largest |w_in| * |w_out| (the width axis of the quality/latency sweep). Each step takes --queries queries, each with
its positive and --group - 1 BM25-mined hard negatives from the same source pool, and minimizes
  the listwise softmax cross-entropy of the positive, plus
  --distill (default 1) x KL(teacher || student) over the same group, where the teacher's
  distribution is softmax(cos(query, passage) / --teacher-temp) from the frozen all-MiniLM-L6-v2
  bi-encoder (soft labels: they keep the reranker from learning only SQuAD's word overlap).
bf16 autocast where supported. Resumable: rerunning the same command continues from
RUN_DIR/checkpoint.pt (pass a larger --minutes or --steps to train longer).

--pair-mode segments (the shipped recipe since issue 11): an exact start. The whole bi-encoder
(all-MiniLM-L6-v2, retrofitted exactly to V2 for diffattn-v2) reads the pair as two segments,
cross-segment attention gated off and a head that computes scale x the bi-encoder's cosine, so
step 0 ranks exactly as the dense score (model.py); training opens the gates. --msmarco FILE adds
the MS MARCO question -> passage pairs (negatives BM25-mined among the other questions'
passages; a split of --val-queries questions is held out and reported as MRR@10 every
--val-every steps and at the end). --weights sets the source mix (group=weight,...).

--source HF_DIR starts from another converted BERT (convert_onnx_bert.py: bge, e5) instead of
all-MiniLM-L6-v2, with --query-prefix / --document-prefix put before each side of every pair
(stored in config.json; the C++ runtime does the same). --steps 0 --export writes the exact
start (diffrank-rerank-v3 is e5-small-v2's). --junk P makes a group's last negative, with
probability P, a generated passage with no answer (a stopword, one word, a fragment).

--teacher ensemble --teacher-fit FILE (issue 24 part 3): the soft labels come from the
bge + e5 + BM25 ensemble of diffrank_ref/teacher.py with the weights fit_teacher.py --write
fitted on validation data, computed once for every group (positive + all mined negatives;
ORT embeddings cached in ~/.cache/diffrank/teacher, scores in RUN_DIR/teacher_groups.json),
at --teacher-temp 1 (z units). A generated no-answer passage gets the group's lowest teacher
score minus --junk-margin. --keyword P asks, with probability P, the question's keyword form
instead (its 1-3 rarest content words: "plymouth colony governor"), teacher-scored the same way.
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
from diffrank_ref.model import DiffrankConfig, DiffrankModel, save_model_dir  # noqa: E402
from diffrank_ref.prune import prune_ffn_state  # noqa: E402
from diffrank_ref.retrofit import segments_exact_start  # noqa: E402
from diffrank_ref.teacher import doc_freq, group_scores, keyword_query, load_fit  # noqa: E402
from diffrank_ref.tokenization import load_tokenizer  # noqa: E402
from diffrank_ref.retrieval import Bm25, pair_logits  # noqa: E402
from diffrank_ref.training import (Checkpoint, StepLog, WeightedSources, cached_json,  # noqa: E402
                                   freeze_below, frozen_teacher, use_bf16)
from train_biencoder import load_jsonl, minilm_src  # noqa: E402


def build_model(arch, layers, max_len, model_id, ffn_width=None, pair_mode="joint",
                max_query_len=32, source=None, prefixes=("", "")):
    """The cross-encoder started from `source` (a Hugging Face BERT folder; default
    all-MiniLM-L6-v2), with the source's query / document prefixes (e5: "query: ",
    "passage: ") applied to each side of the pair."""
    src = source or minilm_src()
    body = convert(src, "bi-encoder", arch, model_id)
    cfg = DiffrankConfig(**{**body.cfg.__dict__, "role": "cross-encoder", "num_layers": layers,
                            "max_length": max_len, "model_id": model_id,
                            "intermediate_size": ffn_width or body.cfg.intermediate_size,
                            "pair_mode": pair_mode, "max_query_length": max_query_len,
                            "query_prefix": prefixes[0], "document_prefix": prefixes[1]})
    model = DiffrankModel(cfg)
    state = {k: v for k, v in body.state_dict().items()
             if not k.startswith("layers.") or int(k.split(".")[1]) < layers}
    if ffn_width:
        prune_ffn_state(state, layers, ffn_width)
    if pair_mode == "segments":
        return segments_exact_start(model, state), src
    with torch.no_grad():
        # The checkpoint's NSP pooler saturates (tanh near +-1 for every input), which
        # stalls learning; start from identity + tanh over the [CLS] state instead.
        state["head.pooler.weight"] = torch.eye(cfg.hidden_size)
        state["head.pooler.bias"] = torch.zeros(cfg.hidden_size)
        g = torch.Generator().manual_seed(0)
        state["head.out.weight"] = 0.02 * torch.randn(1, cfg.hidden_size, generator=g)
        state["head.out.bias"] = torch.zeros(1)
    model.load_state_dict(state)
    return model, src


def msmarco_pairs(path, val_queries):
    """MS MARCO (question, passage) pairs split by a hash of the question id: (train, val)."""
    import zlib
    rows = load_jsonl(path)
    keyed = sorted(rows, key=lambda r: zlib.crc32(r["query_id"].encode()))
    val = keyed[:val_queries]
    train = [{"query": r["query"], "positive": r["positive"], "source": "msmarco"}
             for r in keyed[val_queries:]]
    return train, val


@torch.no_grad()
def validate(model, tok, val, val_negs, max_len, device):
    """MRR@10 of the positive among itself + its mined negatives (BM25 and dense)."""
    model.eval()
    rr = 0.0
    for r, negs in zip(val, val_negs):
        group = [r["positive"]] + negs
        s = pair_logits(model, tok, [r["query"]] * len(group), group, max_len, device).float()
        rank = int((s > s[0]).sum().item()) + 1
        rr += 1.0 / rank if rank <= 10 else 0.0
    model.train()
    return round(rr / max(1, len(val)), 4)


def mine_dense(pairs, source, src, pool=10):
    """For the pairs of `source`: the `pool` passages of that source's pool that the frozen
    all-MiniLM-L6-v2 bi-encoder ranks highest (the positive excluded): the negatives the dense
    score confuses, which is what a reranker over it has to fix."""
    from diffrank_ref.retrieval import embed
    idx = [i for i, p in enumerate(pairs) if p["source"] == source]
    passages = sorted({pairs[i]["positive"] for i in idx})
    teacher = frozen_teacher(src, "cpu")
    tok = load_tokenizer(src)
    pe = torch.from_numpy(embed(teacher, tok, passages, 128))
    qe = torch.from_numpy(embed(teacher, tok, [pairs[i]["query"] for i in idx], 64))
    top = (qe @ pe.T).topk(pool + 1, dim=1).indices.tolist()
    out = {}
    for i, row in zip(idx, top):
        out[i] = [passages[j] for j in row if passages[j] != pairs[i]["positive"]][:pool]
    return out


def val_groups(train, val, src):
    """Validation candidates per held-out question: the 4 BM25 and the 5 dense (MiniLM) top
    passages of the whole MS MARCO pool that are not its positive."""
    pool = [{"query": r["query"], "positive": r["positive"], "source": "msmarco"}
            for r in list(train) + list(val)]
    dense = mine_dense(pool, "msmarco", src, pool=5)
    passages = sorted({p["positive"] for p in pool})
    bm = Bm25(list(range(len(passages))), passages)
    out = []
    for k, r in enumerate(val, start=len(train)):
        found = list(dense[k])
        for j, _ in bm.search(r["query"], 12):
            if passages[j] != r["positive"] and passages[j] not in found and len(found) < 9:
                found.append(passages[j])
        out.append(found)
    return out


def teacher_scores(teacher, tok, queries, passages, max_len, device):
    """Cosine of the teacher's embeddings for each (query, passage) pair."""
    with torch.no_grad():
        texts = sorted(set(queries) | set(passages))
        enc = tok(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        emb = teacher(*(enc[k].to(device) for k in ("input_ids", "token_type_ids",
                                                     "attention_mask"))).float()
        row = {t: i for i, t in enumerate(texts)}
        q = emb[[row[t] for t in queries]]
        p = emb[[row[t] for t in passages]]
        return (q * p).sum(-1)


STOPWORDS = ("a", "an", "the", "of", "and", "or", "to", "in", "is", "it", "this", "that", "for",
             "on", "with", "as", "by", "at", "from", "be")


def junk_passage(pairs, rng):
    """A passage with no answer in it, generated from the training pool: a stopword, one word
    or the first two or three words of another passage, or a numbered fragment ("Table 3").
    Bi-encoder cosines score such passages close to real answers (the e5 start gives "the"
    a higher logit than the answer for "compress"); a reranker must not."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(STOPWORDS)
    words = pairs[rng.randrange(len(pairs))]["positive"].split()
    if kind == 1 or len(words) < 3:
        return rng.choice(words) if words else rng.choice(STOPWORDS)
    if kind == 2:
        return " ".join(words[:rng.choice((2, 3))])
    return f"{rng.choice(('Table', 'Figure', 'Section', 'See also', 'Page'))} {rng.randrange(1, 40)}"


def mine_groups(pairs, group, rng, cap=20000):
    """For each pair: group - 1 hard negatives (BM25 within its source pool, the positive and
    its exact duplicates excluded)."""
    pools = {}
    for i, p in enumerate(pairs):
        pools.setdefault(p["source"], []).append(i)
    negs = [None] * len(pairs)
    for src, idx in pools.items():
        idx = idx[:cap]
        passages = sorted({pairs[i]["positive"] for i in idx})
        if len(passages) < group + 1:
            continue
        bm = Bm25(list(range(len(passages))), passages)
        for i in idx:
            found = [passages[j] for j, _ in bm.search(pairs[i]["query"], group + 3)
                     if passages[j] != pairs[i]["positive"]][:group - 1]
            while len(found) < group - 1:
                cand = passages[rng.randrange(len(passages))]
                if cand != pairs[i]["positive"]:
                    found.append(cand)
            negs[i] = found
    return negs


def ensemble_groups(pairs, negs, a, w, seed):
    """Per pair (None where it has no group): the ensemble teacher's scores of [positive] +
    its mined negatives for the question and for its keyword form."""
    pool = sorted({p["positive"] for p in pairs})
    df = doc_freq(pool)
    krng = random.Random(seed + 1)
    idx = [i for i in range(len(pairs)) if negs[i]]
    kws = {i: keyword_query(pairs[i]["query"], df, krng) for i in idx}
    cands = [[pairs[i]["positive"]] + negs[i] for i in idx]
    asked = [pairs[i]["query"] for i in idx] + [kws[i] or pairs[i]["query"] for i in idx]
    scores = group_scores(asked, cands + cands, pool, a, w)
    out = [None] * len(pairs)
    for k, i in enumerate(idx):
        out[i] = {"question": scores[k], "keyword": kws[i],
                  "keyword_scores": scores[len(idx) + k] if kws[i] else None}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="build_data.py output (pairs.jsonl)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", choices=["diffattn-v2", "baseline"], default="diffattn-v2")
    ap.add_argument("--source", default=None,
                    help="Hugging Face BERT folder to start from (default all-MiniLM-L6-v2; "
                         "convert_onnx_bert.py makes one from bge / e5)")
    ap.add_argument("--query-prefix", default="", help="text put before each query (e5: 'query: ')")
    ap.add_argument("--document-prefix", default="",
                    help="text put before each passage (e5: 'passage: ')")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--ffn-width", type=int, default=None,
                    help="FFN width: keep this many of the source's FFN neurons per layer")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--queries", type=int, default=8)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--freeze-below", type=int, default=0,
                    help="keep the embeddings and layers 0..N-1 (gates included) at their start "
                         "values; only the top layers, their gates and the head train")
    ap.add_argument("--distill", type=float, default=1.0, help="weight of the teacher KL term")
    ap.add_argument("--teacher", choices=["minilm", "ensemble"], default="minilm",
                    help="minilm: the frozen all-MiniLM-L6-v2 cosine; ensemble: bge + e5 + BM25")
    ap.add_argument("--teacher-fit", default=None,
                    help="fit_teacher.py --write output ({a, w}); needed by --teacher ensemble")
    ap.add_argument("--teacher-temp", type=float, default=None,
                    help="softmax temperature of the teacher (default 0.05 minilm, 1 ensemble)")
    ap.add_argument("--keyword", type=float, default=0.0,
                    help="probability of asking a question's keyword form instead")
    ap.add_argument("--junk-margin", type=float, default=2.0,
                    help="ensemble teacher: a no-answer passage scores the group's lowest minus this")
    ap.add_argument("--groups", default=None,
                    help="mined groups JSON to reuse (default RUN_DIR/groups.json, mined once)")
    ap.add_argument("--pair-mode", choices=["joint", "segments"], default="joint")
    ap.add_argument("--max-query-len", type=int, default=32)
    ap.add_argument("--msmarco", default=None, help="MS MARCO pairs.jsonl (query_id, query, positive)")
    ap.add_argument("--val-queries", type=int, default=300)
    ap.add_argument("--val-every", type=int, default=0)
    ap.add_argument("--no-val", action="store_true",
                    help="keep the held-out split out of training but do not score it")
    ap.add_argument("--weights", default="squad=0.4,beir=0.35,debian=0.25")
    ap.add_argument("--junk", type=float, default=0.0,
                    help="probability that a group's last negative is a generated passage with "
                         "no answer (junk_passage: a stopword, a word, a fragment)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--export", default=None)
    ap.add_argument("--model-id", default=None)
    ap.add_argument("--export-only", action="store_true",
                    help="export RUN_DIR's checkpoint to --export and stop (no training)")
    a = ap.parse_args()
    if a.ffn_width is not None and a.ffn_width <= 0:
        ap.error("--ffn-width must be positive")
    if a.teacher == "ensemble" and a.distill > 0 and not a.teacher_fit:
        ap.error("--teacher ensemble needs --teacher-fit (fit_teacher.py --write FILE)")
    if a.keyword and (a.teacher != "ensemble" or a.distill <= 0):
        ap.error("--keyword needs --teacher ensemble and --distill > 0 (the keyword forms and "
                 "their teacher scores are made there)")
    if not 0 <= a.freeze_below <= a.layers:
        ap.error(f"--freeze-below must be in [0, --layers={a.layers}]")
    if a.teacher_temp is None:
        a.teacher_temp = 1.0 if a.teacher == "ensemble" else 0.05
    fit = None
    if a.teacher == "ensemble" and a.distill > 0:
        try:
            fit = load_fit(a.teacher_fit)
        except ValueError as e:
            ap.error(f"--teacher-fit {e}")
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    torch.set_num_threads(int(os.environ.get("DIFFRANK_THREADS", os.cpu_count() or 1)))
    os.makedirs(a.out, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, src = build_model(a.arch, a.layers, a.max_len, a.model_id or f"diffrank-rerank-{a.arch}",
                             a.ffn_width, a.pair_mode, a.max_query_len, a.source,
                             (a.query_prefix, a.document_prefix))
    tok = load_tokenizer(src)
    model.to(device).train()
    # The new head learns at a higher rate than the pretrained body.
    # (and the cross-segment gates, which start at 0).
    def fast(n):
        return n.startswith("head.") or n.endswith("cross_gate")
    frozen = freeze_below(model, a.freeze_below)
    if frozen:
        print(f"frozen: embeddings + layers 0..{a.freeze_below - 1} ({frozen:,} parameters)",
              flush=True)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = [p for n, p in trainable if fast(n)]
    body = [p for n, p in trainable if not fast(n)]
    opt = torch.optim.AdamW([{"params": body, "lr": a.lr}, {"params": head, "lr": a.head_lr}],
                            weight_decay=0.01)
    ckpt = Checkpoint(a.out)
    step = ckpt.load(model, opt, rng, device)
    if a.export_only or (a.steps == 0 and a.export):
        if not a.export or (step == 0 and a.steps != 0):
            ap.error("--export-only needs --export and a checkpoint in --out "
                     "(--steps 0 --export exports the exact start)")
        model.eval().float()
        save_model_dir(model.cpu(), a.export, os.path.join(src, "vocab.txt"))
        print(f"exported {a.export} at step {step}", flush=True)
        return
    weights = {k: float(v) for k, v in (w.split("=") for w in a.weights.split(","))}
    pairs = []
    if a.data:
        pairs = [p for p in load_jsonl(os.path.join(a.data, "pairs.jsonl"))
                 if not p["source"].startswith("wordnet")
                 and weights.get(p["source"].split("-")[0], 0) > 0]
    val = []
    if a.msmarco:
        ms_train, val = msmarco_pairs(a.msmarco, a.val_queries)
        pairs += ms_train
        val_negs = cached_json(os.path.join(a.out, "val_groups.json"),
                               lambda: val_groups(ms_train, val, src), "validation groups")
    teacher = frozen_teacher(src, device) if a.distill > 0 and a.teacher == "minilm" else None
    def mine():
        negs = mine_groups(pairs, a.group, rng)
        if a.msmarco:
            for i, found in mine_dense(pairs, "msmarco", src).items():
                negs[i] = found
        return negs
    negs = cached_json(a.groups or os.path.join(a.out, "groups.json"), mine, "mined negatives")
    sources = WeightedSources(pairs, [i for i in range(len(pairs)) if negs[i]], weights)
    ens = None
    if fit is not None:
        ens = cached_json(os.path.join(a.out, "teacher_groups.json"),
                          lambda: ensemble_groups(pairs, negs, fit[0], fit[1], a.seed),
                          "teacher scores")

    def run_val():
        if val and not a.no_val:
            rec = {"step": step, "val_mrr@10": validate(model, tok, val, val_negs, a.max_len,
                                                         device)}
            print(json.dumps(rec), flush=True)
            with open(os.path.join(a.out, "val_log.jsonl"), "a") as f:
                f.write(json.dumps(rec) + "\n")
    if step == 0:
        run_val()
    bf16 = use_bf16(device)
    log = StepLog(a.out)
    while step < a.steps and log.elapsed() < a.minutes * 60:
        qs, ps, ts = [], [], []
        for _ in range(a.queries):
            i = sources.sample(rng)
            pick = rng.sample(range(len(negs[i])), a.group - 1)
            group = [pairs[i]["positive"]] + [negs[i][j] for j in pick]
            query, scores = pairs[i]["query"], None
            if ens is not None:
                row = ens[i]
                scores = row["question"]
                if a.keyword and row["keyword"] and rng.random() < a.keyword:
                    query, scores = row["keyword"], row["keyword_scores"]
                scores = [scores[0]] + [scores[1 + j] for j in pick]
            if a.junk and rng.random() < a.junk:
                group[-1] = junk_passage(pairs, rng)
                if scores is not None:
                    scores[-1] = min(scores[:-1]) - a.junk_margin
            qs += [query] * a.group
            ps += group
            ts += scores or []
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            logits = pair_logits(model, tok, qs, ps, a.max_len, device).float()
        logits = logits.view(a.queries, a.group)
        hard = F.cross_entropy(logits, torch.zeros(a.queries, dtype=torch.long, device=device))
        loss = hard
        if teacher is not None or ens is not None:
            if ens is not None:
                t = torch.tensor(ts, device=device).view(a.queries, a.group)
            else:
                t = teacher_scores(teacher, tok, qs, ps, a.max_len, device).view(a.queries,
                                                                                 a.group)
            soft = F.kl_div(F.log_softmax(logits, 1), F.log_softmax(t / a.teacher_temp, 1),
                            reduction="batchmean", log_target=True)
            loss = hard + a.distill * soft
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
        opt.step()
        step += 1
        acc = (logits.argmax(1) == 0).float().mean().item()
        log.write({"step": step, "loss": round(loss.item(), 4), "hard": round(hard.item(), 4),
                   "acc@1": round(acc, 3)})
        if step % a.save_every == 0:
            ckpt.save(model, opt, step, rng)
        if a.val_every and step % a.val_every == 0:
            run_val()
    ckpt.save(model, opt, step, rng)
    run_val()
    if a.export:
        model.eval().float()
        save_model_dir(model.cpu(), a.export, os.path.join(src, "vocab.txt"))
        print(f"exported {a.export} after {step} steps", flush=True)


if __name__ == "__main__":
    main()

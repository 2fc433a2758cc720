#!/usr/bin/env bash
# The DiffAttn V2 vs plain-attention ablation (issue 4): the same recipe, data, steps and seed
# for both arms, on CPU. Usage: train/run_ablation.sh {rerank-seg|rerank|biencoder} SEED [STEPS]
# Runs land in ~/.cache/diffrank/runs/<kind>-<arch>-s<SEED> (rerank-seg: abl-seg-<arch>-s<SEED>);
# rerunning resumes them.
# All arms reuse one set of mined reranker groups so only the attention differs.
# rerank-seg is the shipped reranker's recipe (issue 11: segments exact start, MS MARCO pairs);
# its groups come from the shipped run (DIFFRANK_SEG_GROUPS, default runs/rerank-seg-v2-s0).
# rerank-v3 is diffrank-rerank-v3's distillation recipe (issue 24: e5-small-v2 exact start, 12
# layers, teacher ensemble, keyword queries, junk passages), unfrozen; its mined groups and
# cached teacher scores come from DIFFRANK_V3_GROUPS (default runs/rerank-v3-train) and
# DIFFRANK_V3_TEACHER (default runs/rerank-v3-distill), and each arm is then scored on dl21
# (BM25 top 100, depth 100, w 0 / 0.3: fusion.jsonl) and by train/probe_junk.py (probe.txt).
# DIFFRANK_ARCHS limits the arms (default "diffattn-v2 baseline").
set -euo pipefail
cd "$(dirname "$0")/.."
kind=$1 seed=$2
runs=${DIFFRANK_RUNS:-$HOME/.cache/diffrank/runs}
data=${DIFFRANK_DATA:-$HOME/.cache/diffrank/data}
py=.venv/bin/python
shared=${DIFFRANK_SHARED:-../shared}
for arch in ${DIFFRANK_ARCHS:-diffattn-v2 baseline}; do
  tag=${arch/diffattn-/}
  if [[ $kind == rerank-v3 ]]; then
    out=$runs/abl-v3-$tag-s$seed
    mkdir -p "$out"
    # Shared by every arm and seed (the keyword forms inside were drawn once,
    # with seed 0): a seed varies the sampled groups, their order and the junk.
    teacher=${DIFFRANK_V3_TEACHER:-$runs/rerank-v3-distill}
    for f in teacher_groups.json val_groups.json; do
      [ -f "$out/$f" ] || cp "$teacher/$f" "$out/"
    done
    [ -d "$out/model" ] || $py train/train_reranker.py --source "$runs/e5-hf" \
      --query-prefix "query: " --document-prefix "passage: " --out "$out" --arch "$arch" \
      --pair-mode segments --layers 12 --max-len 128 --max-query-len 32 --data "$data" \
      --msmarco "$shared/data/train/msmarco-dev-small/pairs.jsonl" --weights msmarco=0.8,squad=0.2 \
      --teacher ensemble --teacher-fit train/teacher-dl21.json --keyword 0.3 --junk 0.3 \
      --distill 1 --lr 1e-5 --groups "${DIFFRANK_V3_GROUPS:-$runs/rerank-v3-train}/groups.json" \
      --queries 8 --group 4 --steps "${3:-100}" --minutes 600 --no-val --seed "$seed" \
      --model-id "rerank-v3-$tag-s$seed" --export "$out/model" >>"$out/stdout.log" 2>&1
    # probe_junk exits 1 when a probe fails: a result (in probe.txt), not an error.
    [ -s "$out/probe.txt" ] || $py train/probe_junk.py "$out/model" >"$out/probe.txt" \
      2>>"$out/stdout.log" || true
    [ -s "$out/fusion.jsonl" ] || $py train/fit_fusion.py --rerank-set "$shared/data/dl21" \
      --candidates bm25 --reranker "$out/model" --depths 100 --weights 0,0.3 \
      ${DIFFRANK_RERANK_TOOL:+--rerank-tool "$DIFFRANK_RERANK_TOOL"} \
      >"$out/fusion.jsonl" 2>>"$out/stdout.log"
  elif [[ $kind == rerank-seg ]]; then
    out=$runs/abl-seg-$tag-s$seed
    groups=${DIFFRANK_SEG_GROUPS:-$runs/rerank-seg-v2-s0}
    mkdir -p "$out"
    [ -f "$out/val_groups.json" ] || cp "$groups/val_groups.json" "$out/"
    $py train/train_reranker.py --data "$data" --msmarco "$shared/data/train/msmarco-dev-small/pairs.jsonl" \
      --out "$out" --groups "$groups/groups.json" --arch "$arch" --pair-mode segments --layers 6 \
      --max-len 128 --max-query-len 24 --queries 8 --group 4 --distill 0 \
      --weights msmarco=0.7,squad=0.15,beir=0.15 --lr 3e-5 --val-queries 300 --no-val --steps "${3:-100}" \
      --minutes 600 --seed "$seed" --model-id "rerank-seg-$tag-s$seed" --export "$out/model" \
      >>"$out/stdout.log" 2>&1
  elif [[ $kind == rerank ]]; then
    out=$runs/rerank-$tag-kd-s$seed
    mkdir -p "$out"
    $py train/train_reranker.py --data "$data" --out "$out" --groups "$runs/groups-rerank.json" \
      --arch "$arch" --layers 4 --max-len 128 --queries 8 --group 4 --steps "${3:-500}" \
      --minutes 600 --seed "$seed" --export "$out/model" >>"$out/stdout.log" 2>&1
  else
    out=$runs/embed-$tag-s$seed
    mkdir -p "$out"
    $py train/train_biencoder.py --data "$data" --out "$out" --arch "$arch" --batch 32 \
      --steps "${3:-226}" --minutes 600 --seed "$seed" --export "$out/model" \
      >>"$out/stdout.log" 2>&1
  fi
  echo "$(date -Is) done $out"
done

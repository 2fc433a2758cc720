#!/usr/bin/env bash
# The DiffAttn V2 vs plain-attention ablation (issue 4): the same recipe, data, steps and seed
# for both arms, on CPU. Usage: train/run_ablation.sh {rerank-seg|rerank|biencoder} SEED [STEPS]
# Runs land in ~/.cache/diffrank/runs/<kind>-<arch>-s<SEED> (rerank-seg: abl-seg-<arch>-s<SEED>);
# rerunning resumes them.
# All arms reuse one set of mined reranker groups so only the attention differs.
# rerank-seg is the shipped reranker's recipe (issue 11: segments exact start, MS MARCO pairs);
# its groups come from the shipped run (DIFFRANK_SEG_GROUPS, default runs/rerank-seg-v2-s0).
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
  if [[ $kind == rerank-seg ]]; then
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

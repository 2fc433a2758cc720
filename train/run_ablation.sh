#!/usr/bin/env bash
# The DiffAttn V2 vs plain-attention ablation (issue 4): the same recipe, data, steps and seed
# for both arms, on CPU. Usage: train/run_ablation.sh {rerank|biencoder} SEED [STEPS]
# Runs land in ~/.cache/diffrank/runs/<kind>-<arch>-s<SEED>; rerunning resumes them.
# All arms reuse one set of mined reranker groups so only the attention differs.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=$1 seed=$2
runs=${DIFFRANK_RUNS:-$HOME/.cache/diffrank/runs}
data=${DIFFRANK_DATA:-$HOME/.cache/diffrank/data}
py=.venv/bin/python
for arch in diffattn-v2 baseline; do
  tag=${arch/diffattn-/}
  if [[ $kind == rerank ]]; then
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

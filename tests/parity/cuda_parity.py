#!/usr/bin/env python3
"""GPU: the C++ runtime on CUDA in bfloat16 vs the PyTorch reference in float32 (ctest label gpu).

  cuda_parity.py --encode BUILD/encoder/diffrank-encode --workdir DIR
Exits 77 (ctest: skipped) when this build or machine has no CUDA device. Otherwise, for each
attention kind x role on a random 6-layer, 384-wide model and for all-MiniLM-L6-v2, compares
C++ CUDA bf16 with PyTorch CPU fp32 on the same inputs. Stated tolerance: embedding cosine
>= 0.999 per row; cross-encoder logits within 0.05 * (1 + |logit|).
"""
import argparse
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "train"))
sys.path.insert(0, HERE)
import common  # noqa: E402
from model_parity import batch_inputs  # noqa: E402
from convert_hf_bert import convert  # noqa: E402
from diffrank_ref.model import DiffrankConfig, DiffrankModel, save_model_dir  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encode", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    vocab = os.path.join(common.minilm_dir(), "vocab.txt")
    # Probe with a tiny model first, so a machine without CUDA skips at once.
    probe = os.path.join(a.workdir, "probe")
    save_model_dir(DiffrankModel(DiffrankConfig(vocab_size=30522, hidden_size=32, num_layers=1,
                                                num_heads=2, intermediate_size=32,
                                                max_position_embeddings=16)).init_random(),
                   probe, vocab)
    save_file({"input_ids": torch.tensor([[101, 102]]), "token_type_ids": torch.zeros(1, 2,
               dtype=torch.int64), "attention_mask": torch.ones(1, 2, dtype=torch.int64)},
              os.path.join(probe, "in.safetensors"))
    r = subprocess.run([a.encode, "--model", probe, "--input", os.path.join(probe, "in.safetensors"),
                        "--output", os.path.join(probe, "out.safetensors"), "--device", "cuda"],
                       capture_output=True, text=True)
    if r.returncode != 0 and "no CUDA device" in r.stderr:
        print("SKIP: no CUDA device in this build or machine")
        return 77
    models = []
    for arch in ("baseline", "diffattn-v1", "diffattn-v2"):
        for role in ("bi-encoder", "cross-encoder"):
            cfg = DiffrankConfig(architecture=arch, role=role, vocab_size=30522, hidden_size=384,
                                 num_layers=6, num_heads=12, intermediate_size=1536,
                                 max_position_embeddings=512)
            models.append((f"{arch}-{role}", DiffrankModel(cfg).init_random(seed=1).eval()))
    models.append(("minilm", convert(common.minilm_dir(), "bi-encoder", "baseline", "minilm")))
    gen = torch.Generator().manual_seed(0)
    ids, types, mask = batch_inputs(models[0][1].cfg, gen, [128, 64, 17, 100, 5, 128, 33, 90])
    inp = os.path.join(a.workdir, "inputs.safetensors")
    save_file({"input_ids": ids, "token_type_ids": types, "attention_mask": mask}, inp)
    ok = True
    for name, model in models:
        d = os.path.join(a.workdir, name)
        save_model_dir(model, d, vocab)
        out = os.path.join(d, "out.safetensors")
        r = subprocess.run([a.encode, "--model", d, "--input", inp, "--output", out,
                            "--device", "cuda"], capture_output=True, text=True)
        if r.returncode != 0 and "no CUDA device" in r.stderr:
            print("SKIP: no CUDA device in this build or machine")
            return 77
        if r.returncode != 0:
            print(r.stderr)
            return 1
        got = load_file(out)["output"].double()
        with torch.no_grad():
            want = model(ids, types, mask).double()
        if want.dim() == 2:
            cos = torch.nn.functional.cosine_similarity(got, want, dim=1)
            good = bool(cos.min() >= 0.999)
            print(f"{name}: min cosine (C++ CUDA bf16 vs PyTorch fp32) {cos.min():.5f}")
        else:
            err = ((got - want).abs() / (1 + want.abs())).max().item()
            good = err <= 0.05
            print(f"{name}: max relative logit error {err:.4f}")
        ok &= good
    print("cuda parity:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

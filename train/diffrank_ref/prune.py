"""Structured FFN pruning: the width axis of the reranker's quality/latency sweep (issue 4).

The only pretrained source here is 384 wide, so narrower models start from it by keeping, in
every layer, the FFN neurons with the largest |w_in| * |w_out| (magnitude importance of the
neuron's input row and output column), then train with the unchanged recipe.
"""
import torch


def ffn_keep(up_weight: torch.Tensor, down_weight: torch.Tensor, width: int) -> torch.Tensor:
    """Indices (ascending) of the `width` most important neurons of one FFN."""
    score = up_weight.norm(dim=1) * down_weight.norm(dim=0)
    return score.topk(width).indices.sort().values


def prune_ffn_state(state: dict, layers: int, width: int) -> None:
    """Narrows the FFN of layers 0..layers-1 in a DiffrankModel state dict to `width`, in place."""
    for n in range(layers):
        up, down = f"layers.{n}.ffn.up", f"layers.{n}.ffn.down"
        inner = state[f"{up}.weight"].shape[0]
        if not 0 < width <= inner:
            raise ValueError(f"FFN width must be in 1..{inner}, got {width}")
        keep = ffn_keep(state[f"{up}.weight"], state[f"{down}.weight"], width)
        state[f"{up}.weight"] = state[f"{up}.weight"][keep].clone()
        if f"{up}.bias" in state:
            state[f"{up}.bias"] = state[f"{up}.bias"][keep].clone()
        state[f"{down}.weight"] = state[f"{down}.weight"][:, keep].clone()

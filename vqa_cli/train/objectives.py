"""The losses: answers, and with scene annotations the detector and per-object targets.

Per-object targets (after the NS-VQA and BUTD line of work, where models reason over
objects): every object token is asked, by a linear classifier used only in training, for
its own attributes, its image half, and the attributes of its nearest and of its furthest
other object. These dense targets are what make "closest"/"furthest" learnable in minutes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model.objects import Objects

POSITIVE_WEIGHT = 20.0  # a 16x16 grid holds about 4 centres in 256 cells
MATCH_PX = 6.0  # a detection within this many px (at the image's own size) finds an object


def answer_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy over the answers; rows whose answer is outside the vocabulary (-1) are skipped."""
    keep = labels >= 0
    return F.cross_entropy(logits[keep], labels[keep]) if keep.any() else logits.sum() * 0


class ObjectTargets(nn.Module):
    """One linear classifier per auxiliary target, on the object tokens."""

    def __init__(self, width: int, classes: dict[str, list[str]]):
        super().__init__()
        self.names = sorted(classes)
        self.heads = nn.ModuleDict({name: nn.Linear(width, len(classes[name])) for name in self.names})

    def loss(self, tokens: Tensor, targets: dict[str, Tensor]) -> Tensor:  # tokens: (Bi, K, D), targets: (Bi, K) each
        losses = [F.cross_entropy(self.heads[n](tokens).flatten(0, 1).float(), targets[n].flatten(), ignore_index=-1) for n in self.names]
        return torch.stack(losses).mean()


def detection_loss(objects: Objects, centres: Tensor, mask: Tensor) -> Tensor:
    """Heatmap BCE against "this cell holds a centre", plus L1 on the offset in those cells."""
    Bi, h, w = objects.heatmap.shape
    cells = torch.stack([(centres[..., 0] * w).long().clamp(0, w - 1), (centres[..., 1] * h).long().clamp(0, h - 1)], -1)  # (Bi, K, 2)
    target = torch.zeros_like(objects.heatmap)  # (Bi, h, w)
    b, k = mask.nonzero(as_tuple=True)
    col, row = cells[b, k, 0], cells[b, k, 1]
    target[b, row, col] = 1.0
    heat = F.binary_cross_entropy_with_logits(
        objects.heatmap, target, pos_weight=torch.tensor(POSITIVE_WEIGHT, device=target.device)
    )
    wanted = torch.stack([centres[b, k, 0] * w - col, centres[b, k, 1] * h - row], -1)  # (P, 2) in cells
    offset = F.l1_loss(objects.offsets[b, row, col], wanted) if len(b) else heat * 0
    return heat + offset


@torch.no_grad()
def detection_quality(found: Objects, centres: Tensor, mask: Tensor, sizes: Tensor) -> dict:
    """Counts for objects found (a detection within MATCH_PX), false detections and centre error (px)."""
    scale = sizes[:, None, :].to(centres.device)  # (Bi, 1, 2) px per unit
    truth = centres * scale  # (Bi, K, 2) px
    guess = found.centres * scale  # (Bi, K', 2) px
    distance = torch.cdist(truth, guess.to(truth.dtype))  # (Bi, K, K')
    distance = distance.masked_fill(~found.found[:, None, :], float("inf"))
    nearest, _ = distance.min(-1)  # (Bi, K)
    hit = (nearest <= MATCH_PX) & mask
    claimed = (distance.masked_fill(~mask[..., None], float("inf")).min(1).values <= MATCH_PX) & found.found  # (Bi, K')
    return {
        "objects": int(mask.sum()),
        "found": int(hit.sum()),
        "false": int((found.found & ~claimed).sum()),
        "error_sum": float(nearest[hit].sum()),
    }

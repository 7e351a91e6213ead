"""late: each side is encoded and pooled on its own; they meet only at the end.

The classic VQA baseline (Antol et al., 2015): a question vector, from self-attention over
the question's tokens alone and their mean, and an image vector, from the mean of the grid
tokens and the mean of the object tokens found, are multiplied elementwise, and an MLP
turns the product into the state the answer is read from. There is no attention between
the two sides, so nothing in the image can be looked up by what the question asks; and
the image vector is computed once per image, whatever the questions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import HeadConfig
from ..embeds import ImageEmbeds
from ..layers import MLP, MLP_RATIO, Block


class QuestionEncoder(nn.Module):
    """Self-attention blocks over the question's tokens alone, then their masked mean."""

    def __init__(self, cfg: HeadConfig, layers: int):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(layers))
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, text: Tensor, mask: Tensor) -> Tensor:  # (Bq, Tq, D), (Bq, Tq) -> (Bq, D)
        x = text
        for block in self.blocks:
            x, _ = block(x, mask=mask)
        return masked_mean(self.norm(x), mask)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:  # (B, T, D), (B, T) -> (B, D)
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1)


def pooled_image(image: ImageEmbeds) -> Tensor:
    """(Bi, 2D): the mean of all image tokens, and the mean of the objects found (zeros when none)."""
    tokens = image.tokens.mean(dim=1)  # (Bi, D)
    if image.objects is None:
        return torch.cat([tokens, torch.zeros_like(tokens)], dim=-1)
    objects = masked_mean(image.objects.object_tokens, image.objects.found)  # (Bi, D)
    return torch.cat([tokens, objects], dim=-1)


class LateFusion(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        D = cfg.width
        self.question = QuestionEncoder(cfg, cfg.layers)
        self.image = nn.Sequential(nn.LayerNorm(2 * D), nn.Linear(2 * D, D))
        self.question_out = nn.Linear(D, D)
        self.norm, self.mlp = nn.LayerNorm(D), MLP(D, 2 * MLP_RATIO)

    def forward(self, text: Tensor, text_mask: Tensor, image: ImageEmbeds, image_index: Tensor | None, need_looks: bool = False):
        q = self.question(text, text_mask)  # (Bq, D)
        v = self.image(pooled_image(image))  # (Bi, D): once per image
        if image_index is not None:
            v = v[image_index]  # (Bq, D)
        fused = self.question_out(q) * v  # (Bq, D)
        fused = fused + self.mlp(self.norm(fused))
        return fused[:, None], text_mask.new_ones(len(fused), 1), []  # (Bq, 1, D), (Bq, 1), no looks: no attention to the image

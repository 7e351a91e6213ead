"""early: one transformer over the question and the image together, as ViLT does.

The sequence is [CLS; question tokens; image tokens; object tokens], each part with a type
embedding of its own, and a stack of self-attention blocks mixes all of it from the first
layer on; the answer is read from CLS. Every question carries its own copy of its image
through every layer, so a question costs (1 + Tq + Ti)^2 attention instead of the Tq * Ti of
cross-attention, and nothing about an image can be computed once for all its questions.
To keep that affordable the grid is average-pooled 2x2 first (a 16x16 grid becomes 8x8:
16-pixel patches on a 128-pixel scene, about as coarse as ViLT's 32-pixel ones at 384).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import HeadConfig
from ..embeds import ImageEmbeds, Look
from ..layers import Block

POOL = 2  # grid cells averaged along each side before the joint sequence
QUESTION, IMAGE, OBJECT = 0, 1, 2  # type embeddings


class EarlyFusion(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, cfg.width) * 0.02)
        self.types = nn.Embedding(3, cfg.width)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))

    def forward(self, text: Tensor, text_mask: Tensor, image: ImageEmbeds, image_index: Tensor | None, need_looks: bool = False):
        Bq, Tq, _ = text.shape
        tokens, grid_shape = pooled_grid(image)  # (Bi, S_img, D)
        image_part = [tokens + self.types.weight[IMAGE]]
        image_mask = [torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)]
        if image.objects is not None:
            image_part.append(image.objects.tokens + self.types.weight[OBJECT])  # (Bi, K + N, D)
            image_mask.append(image.objects.mask)
        seen = torch.cat(image_part, dim=1)  # (Bi, S, D)
        seen_mask = torch.cat(image_mask, dim=1)  # (Bi, S)
        if image_index is not None:
            seen, seen_mask = seen[image_index], seen_mask[image_index]  # (Bq, S, D), (Bq, S)
        question = torch.cat([self.cls.to(text.dtype).expand(Bq, -1, -1), text], dim=1) + self.types.weight[QUESTION]  # (Bq, 1 + Tq, D)
        x = torch.cat([question, seen], dim=1)  # (Bq, 1 + Tq + S, D)
        mask = torch.cat([text_mask.new_ones(Bq, 1), text_mask, seen_mask], dim=1)  # (Bq, 1 + Tq + S)
        start = 1 + Tq  # where the image's tokens begin
        h, w = grid_shape or (0, 0)
        grid = slice(start + image.prefix, start + image.prefix + h * w)
        objects = slice(start + tokens.shape[1], start + tokens.shape[1] + image.objects.centres.shape[1]) if image.objects is not None else None
        looks = []
        for block in self.blocks:
            x, weights = block(x, mask=mask, need_weights=need_looks)
            if need_looks:
                looks.append(Look(weights, grid=grid, grid_shape=grid_shape, objects=objects, queries=slice(0, start)))
        return x[:, :1], mask[:, :1], looks  # CLS


def pooled_grid(image: ImageEmbeds) -> tuple[Tensor, tuple[int, int] | None]:
    """The image's tokens with the grid average-pooled POOL x POOL -> (Bi, prefix + h'w' + R, D), (h', w')."""
    if image.grid is None:
        return image.tokens, None
    h, w = image.grid
    columns = image.grid_columns
    grid = image.tokens[:, columns]  # (Bi, h*w, D)
    Bi, _, D = grid.shape
    pooled = F.avg_pool2d(grid.transpose(1, 2).reshape(Bi, D, h, w), POOL, ceil_mode=True)  # (Bi, D, h', w')
    shape = tuple(pooled.shape[-2:])
    tokens = torch.cat([image.tokens[:, : columns.start], pooled.flatten(2).transpose(1, 2), image.tokens[:, columns.stop :]], dim=1)
    return tokens, shape

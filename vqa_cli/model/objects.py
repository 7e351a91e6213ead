"""Object tokens: find each object's centre on the image grid, then give it a token of its own.

CenterNet-style detection: per grid cell, an objectness logit ("an object's centre lies in
this cell") and the centre's offset within the cell. The K best local maxima above 0.5 are
the objects; each token is the grid features sampled bilinearly at its exact centre, plus an
embedding of that centre. Self-attention among the object tokens is biased by their pairwise
distances, with heads that start out preferring the nearest others and heads that prefer the
furthest, so "the object closest to X" is one hop from X's token.

Ground-truth centres (from training annotations) can be passed instead of detected ones;
they are used only to train, never to answer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import HeadConfig
from .layers import POSITION_FEATURES, Block, fourier_features

THRESHOLD = 0.5  # objectness a detection needs
NULLS = 4  # learned null object tokens N: where a question's attention rests when no object matches
FAR_MASK = -1e4  # added to the logits of empty object slots (finite, so a slot with no objects stays defined)


@dataclass
class Objects:
    tokens: Tensor  # (Bi, K + N, D) normed: K object tokens, then N learned null tokens
    centres: Tensor  # (Bi, K, 2) (x, y) in [0, 1] image coordinates
    mask: Tensor  # (Bi, K + N) bool: True for a real object, and for the null tokens
    heatmap: Tensor  # (Bi, h, w) objectness logits
    offsets: Tensor  # (Bi, h, w, 2) each cell's centre offset (x, y), in cells

    @property
    def found(self) -> Tensor:  # (Bi, K) bool: the slots that hold an object
        return self.mask[:, : self.centres.shape[1]]

    @property
    def object_tokens(self) -> Tensor:  # (Bi, K, D) without the null tokens
        return self.tokens[:, : self.centres.shape[1]]

    def select(self, index: Tensor) -> "Objects":
        return Objects(*(getattr(self, f.name)[index] for f in fields(self)))

    def clone(self) -> "Objects":
        return Objects(*(getattr(self, f.name).clone() for f in fields(self)))


class ObjectFinder(nn.Module):
    """Per grid cell: objectness logit and the centre's offset within the cell, in [-0.5, 1.5] cells."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 3))

    def forward(self, grid: Tensor, shape: tuple[int, int]) -> tuple[Tensor, Tensor]:  # grid: (Bi, h*w, D)
        h, w = shape
        out = self.net(grid).float().view(-1, h, w, 3)  # (Bi, h, w, 3)
        return out[..., 0], 2 * out[..., 1:].sigmoid() - 0.5  # (Bi, h, w), (Bi, h, w, 2)


def peaks(heatmap: Tensor, offsets: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k strongest local maxima above THRESHOLD -> centres (Bi, k, 2) in [0, 1] and mask (Bi, k)."""
    Bi, h, w = heatmap.shape
    prob = heatmap.sigmoid()  # (Bi, h, w)
    local = prob == F.max_pool2d(prob[:, None], 3, stride=1, padding=1)[:, 0]
    score = torch.where(local & (prob > THRESHOLD), prob, torch.zeros_like(prob)).flatten(1)  # (Bi, h*w)
    value, cell = score.topk(min(k, h * w), dim=1)  # (Bi, k)
    row, col = cell // w, cell % w
    offset = offsets.flatten(1, 2).gather(1, cell[..., None].expand(-1, -1, 2))  # (Bi, k, 2)
    centres = torch.stack([(col + offset[..., 0]) / w, (row + offset[..., 1]) / h], dim=-1)  # (Bi, k, 2)
    mask = value > 0
    return torch.where(mask[..., None], centres, torch.full_like(centres, 0.5)), mask


class ObjectTokens(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        D, H = cfg.width, cfg.heads
        self.k = cfg.objects
        self.finder = ObjectFinder(D)
        self.position = nn.Sequential(nn.Linear(POSITION_FEATURES, D), nn.GELU(), nn.Linear(D, D))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.object_layers))
        self.norm = nn.LayerNorm(D)
        # Logit slope per unit of distance (image widths): even heads prefer the nearest others,
        # odd heads the furthest; 150 is sharp enough to single out an object 10 px nearer at 256 px.
        self.slope = nn.Parameter(torch.tensor([-150.0 if h % 2 == 0 else 150.0 for h in range(H)]))
        self.self_bias = nn.Parameter(torch.full((H,), -100.0))  # a token mostly skips itself: the residual has it
        self.nulls = nn.Parameter(torch.randn(NULLS, D) * 0.02)

    def forward(
        self,
        grid: Tensor,  # (Bi, h*w, D) projected grid features with their positions
        shape: tuple[int, int],  # (h, w)
        centres: Tensor | None = None,  # (Bi, K', 2) given centres (training); None: detect them
        mask: Tensor | None = None,  # (Bi, K') bool, with centres
    ) -> Objects:
        h, w = shape
        heatmap, offsets = self.finder(grid, shape)  # (Bi, h, w), (Bi, h, w, 2)
        if centres is None:
            centres, mask = peaks(heatmap, offsets, self.k)  # (Bi, K, 2), (Bi, K)
        Bi, D = grid.shape[0], grid.shape[-1]
        feature_map = grid.transpose(1, 2).reshape(Bi, D, h, w)  # (Bi, D, h, w)
        where = (centres * 2 - 1).to(grid.dtype)[:, :, None, :]  # (Bi, K, 1, 2) in grid_sample's [-1, 1]
        sampled = F.grid_sample(feature_map, where, mode="bilinear", align_corners=False)[..., 0]  # (Bi, D, K)
        x = sampled.transpose(1, 2) + self.position(fourier_features(centres).to(grid.dtype))  # (Bi, K, D)
        bias = self.distance_bias(centres, mask).to(x.dtype)  # (Bi, H, K, K)
        for block in self.blocks:
            x, _ = block(x, bias)
        nulls = self.nulls.to(x.dtype).expand(Bi, -1, -1)  # (Bi, N, D)
        tokens = torch.cat([self.norm(x), nulls], dim=1)  # (Bi, K + N, D)
        mask = torch.cat([mask, torch.ones(nulls.shape[:2], dtype=torch.bool, device=mask.device)], dim=1)  # (Bi, K + N)
        return Objects(tokens, centres, mask, heatmap, offsets)

    def distance_bias(self, centres: Tensor, mask: Tensor) -> Tensor:
        """(Bi, H, K, K) logit bias: slope_h * distance, self_bias_h on the diagonal, FAR_MASK for empty keys."""
        distance = torch.cdist(centres.float(), centres.float())  # (Bi, K, K)
        K = centres.shape[1]
        eye = torch.eye(K, device=centres.device)
        bias = self.slope.view(1, -1, 1, 1) * distance[:, None] + self.self_bias.view(1, -1, 1, 1) * eye  # (Bi, H, K, K)
        return bias + FAR_MASK * (~mask)[:, None, None, :].float()

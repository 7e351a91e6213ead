"""Building blocks the head is made of: attention, MLPs, pre-norm self-attention blocks, positions.

Shape letters are those of model/__init__.py (B rows, T and S query and key tokens, D width,
H heads, hs = D // H).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import HeadConfig

POSITION_FEATURES = 18  # x, y, and sin/cos of each at 4 frequencies
MLP_RATIO = 2.0  # hidden width of every MLP, as a multiple of D


class Attention(nn.Module):
    """Multi-head attention; with `context` it is cross-attention.

    `context_index` maps each row of x to a row of context, so K and V are projected once
    per image and then shared by every question about that image. Returns (y, weights):
    with need_weights the (B, H, T, S) attention weights, computed explicitly so they can be
    differentiated; otherwise None, and the fused kernel runs.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,  # (B, T, D)
        context: Tensor | None = None,  # (Bc, S, D); None means self-attention
        *,
        mask: Tensor | None = None,  # (Bc, S) bool, True where a key may be attended
        context_index: Tensor | None = None,  # (B,) row of context for each row of x
        bias: Tensor | None = None,  # (B, H, T, S) added to the logits; self- or unindexed attention only
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:  # (B, T, D), (B, H, T, S) or None
        if context is None:
            return self._attend(x, x, mask, bias, need_weights)
        if context_index is None:
            return self._attend(x, context, mask, bias, need_weights)
        # Queries never interact in cross-attention, so all the questions about one image can
        # be packed into a single query sequence: K and V are then projected and used once per
        # image instead of being copied for every question, and only for the images asked about.
        used, context_index = torch.unique(context_index, return_inverse=True)  # (Bc,), (B,)
        if len(used) < context.shape[0]:
            context = context[used]  # (Bc, S, D)
            mask = mask[used] if mask is not None else None
        B, T, D = x.shape
        Bc = context.shape[0]
        slot = _slots(context_index, Bc)  # (B,) position of each question among its image's
        Q = int(slot.max()) + 1 if B else 1
        packed = x.new_zeros(Bc, Q, T, D)
        packed[context_index, slot] = x
        y, weights = self._attend(packed.view(Bc, Q * T, D), context, mask, None, need_weights)  # (Bc, Q*T, D)
        if weights is not None:
            weights = weights.view(Bc, self.heads, Q, T, context.shape[1])[context_index, :, slot]  # (B, H, T, S)
        return y.view(Bc, Q, T, D)[context_index, slot], weights  # (B, T, D)

    def _attend(self, x: Tensor, context: Tensor, mask: Tensor | None, bias: Tensor | None, need_weights: bool):
        B, T, D = x.shape
        S = context.shape[1]
        H, hs = self.heads, D // self.heads
        k, v = self.kv(context).chunk(2, dim=-1)  # (B, S, D) each
        q = self.q(x).view(B, T, H, hs).transpose(1, 2)  # (B, H, T, hs)
        k = k.reshape(B, S, H, hs).transpose(1, 2)  # (B, H, S, hs)
        v = v.reshape(B, S, H, hs).transpose(1, 2)  # (B, H, S, hs)
        logits_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, S)
        if bias is not None:
            logits_mask = bias if logits_mask is None else bias.masked_fill(~logits_mask, float("-inf"))
        weights = None
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, H, T, S)
            if logits_mask is not None:
                scores = scores.masked_fill(~logits_mask, float("-inf")) if logits_mask.dtype == torch.bool else scores + logits_mask
            weights = scores.softmax(dim=-1)  # (B, H, T, S)
            y = weights @ v  # (B, H, T, hs)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=logits_mask)  # (B, H, T, hs)
        y = y.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        return self.out(y), weights


def _slots(index: Tensor, groups: int) -> Tensor:
    """For each row, its rank among the rows with the same index: [0, 0, 1, 0, 1, 2] for [a, b, b, c, c, c]."""
    counts = torch.bincount(index, minlength=groups)
    starts = counts.cumsum(0) - counts  # (groups,)
    order = torch.argsort(index, stable=True)
    slot = torch.empty_like(index)
    slot[order] = torch.arange(len(index), device=index.device) - starts[index[order]]
    return slot


class MLP(nn.Module):
    def __init__(self, dim: int, ratio: float = MLP_RATIO):
        super().__init__()
        hidden = int(dim * ratio)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Block(nn.Module):
    """Pre-norm self-attention over a sequence of tokens, then an MLP; `bias` shapes who sees whom."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads)
        self.norm2, self.mlp = nn.LayerNorm(cfg.width), MLP(cfg.width)

    def forward(
        self,
        x: Tensor,  # (B, T, D)
        bias: Tensor | None = None,  # (B, H, T, T) added to the logits
        mask: Tensor | None = None,  # (B, T) bool, True for real tokens (padding is never attended)
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:  # (B, T, D), (B, H, T, T) or None
        y, weights = self.attn(self.norm1(x), mask=mask, bias=bias, need_weights=need_weights)
        x = y + x
        return self.mlp(self.norm2(x)) + x, weights


def grid_centres(h: int, w: int, device) -> Tensor:
    """(h*w, 2) cell centres (x, y) in [0, 1], row by row."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # (h, w) each
    return torch.stack([xx.flatten(), yy.flatten()], dim=-1)  # (h*w, 2)


def fourier_features(coords: Tensor) -> Tensor:
    """(..., 2) positions in [0, 1] -> (..., POSITION_FEATURES): raw, plus sines and cosines at 4 frequencies."""
    freqs = math.pi * 2.0 ** torch.arange(4, device=coords.device, dtype=torch.float32)  # (4,)
    angles = coords.float()[..., None] * freqs  # (..., 2, 4)
    feats = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (..., 16)
    return torch.cat([coords.float(), feats], dim=-1)  # (..., 18)

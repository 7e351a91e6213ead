"""The transformer cross-attention head that fuses image and question.

Dimensions used in the shape comments:
    Bi  images in the batch          Bq  questions in the batch (several may share an image)
    Ti  image tokens                 Tq  question tokens
    Ci  image encoder width          Ct  text encoder width
    D   head width                   H   attention heads, hs = D // H
    h,w the image grid               K   object tokens (HeadConfig.objects)
    R   register tokens              A   answers in the vocabulary

Reading order: Attention -> MLP -> ImageBlock -> FusionBlock -> AnswerHead -> FusionHead.
The head only sees features: encoders live in `encoders.py` and `VQAModel` (model/vqa.py)
joins them, so encoding an image once for many questions is a matter of calling
`encode_image` once and `answer` as often as needed. Object tokens (objects.py) join the
grid tokens when the config asks for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import HeadConfig

if TYPE_CHECKING:
    from .objects import Objects

POSITION_FEATURES = 18  # x, y, and sin/cos of each at 4 frequencies


class Attention(nn.Module):
    """Multi-head attention; with `context` it is cross-attention.

    `context_index` maps each row of x to a row of context, so K and V are projected once
    per image and then shared by every question about that image. Pass a list as `weights`
    to get the attention weights appended to it (computed explicitly, so they can be
    differentiated); otherwise the fused kernel runs.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(
        self,
        x: Tensor,  # (B, T, D)
        context: Tensor | None = None,  # (Bc, S, D); None means self-attention
        *,
        mask: Tensor | None = None,  # (Bc, S) bool, True where a key may be attended
        context_index: Tensor | None = None,  # (B,) row of context for each row of x
        bias: Tensor | None = None,  # (B, H, T, S) added to the logits; self- or unindexed attention only
        weights: list | None = None,  # receives (B, H, T, S) when given
    ) -> Tensor:
        if context is None:
            return self._attend(x, x, mask, bias, weights)
        if context_index is None:
            return self._attend(x, context, mask, bias, weights)
        # Queries never interact in cross-attention, so all the questions about one image can
        # be packed into a single query sequence: K and V are then projected and used once per
        # image instead of being copied for every question.
        B, T, D = x.shape
        Bc = context.shape[0]
        slot = _slots(context_index, Bc)  # (B,) position of each question among its image's
        Q = int(slot.max()) + 1 if B else 1
        packed = x.new_zeros(Bc, Q, T, D)
        packed[context_index, slot] = x
        packed_weights = [] if weights is not None else None
        y = self._attend(packed.view(Bc, Q * T, D), context, mask, None, packed_weights)  # (Bc, Q*T, D)
        if weights is not None:
            S = context.shape[1]
            weights.append(packed_weights[0].view(Bc, self.heads, Q, T, S)[context_index, :, slot])  # (B, H, T, S)
        return y.view(Bc, Q, T, D)[context_index, slot]  # (B, T, D)

    def _attend(self, x: Tensor, context: Tensor, mask: Tensor | None, bias: Tensor | None, weights: list | None) -> Tensor:
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
        if weights is not None:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, H, T, S)
            if logits_mask is not None:
                scores = scores.masked_fill(~logits_mask, float("-inf")) if logits_mask.dtype == torch.bool else scores + logits_mask
            attention = scores.softmax(dim=-1)  # (B, H, T, S)
            weights.append(attention)
            y = attention @ v  # (B, H, T, hs)
        else:
            drop = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=logits_mask, dropout_p=drop)  # (B, H, T, hs)
        y = y.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        return self.out(y)


def _slots(index: Tensor, groups: int) -> Tensor:
    """For each row, its rank among the rows with the same index: [0, 0, 1, 0, 1, 2] for [a, b, b, c, c, c]."""
    counts = torch.bincount(index, minlength=groups)
    starts = counts.cumsum(0) - counts  # (groups,)
    order = torch.argsort(index, stable=True)
    slot = torch.empty_like(index)
    slot[order] = torch.arange(len(index), device=index.device) - starts[index[order]]
    return slot


class MLP(nn.Module):
    def __init__(self, dim: int, ratio: float, dropout: float = 0.0):
        super().__init__()
        hidden = int(dim * ratio)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ImageBlock(nn.Module):
    """Pre-norm self-attention over image tokens, so each can see the others; `bias` shapes whom."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads, cfg.dropout)
        self.norm2, self.mlp = nn.LayerNorm(cfg.width), MLP(cfg.width, cfg.mlp_ratio, cfg.dropout)

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:  # x: (Bi, Ti, D), bias: (Bi, H, Ti, Ti)
        x = self.attn(self.norm1(x), bias=bias) + x
        return self.mlp(self.norm2(x)) + x


class FusionBlock(nn.Module):
    """Question self-attention, cross-attention to the image grid, to the objects (when there are
    object tokens), then an MLP.

    The objects get a cross-attention of their own, so a question can single out one object
    token without competing with the hundreds of grid tokens for the same softmax.
    """

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads, cfg.dropout)
        self.norm2, self.cross_attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads, cfg.dropout)
        if cfg.objects:
            self.norm_objects, self.object_attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads, cfg.dropout)
        self.norm3, self.mlp = nn.LayerNorm(cfg.width), MLP(cfg.width, cfg.mlp_ratio, cfg.dropout)

    def forward(
        self,
        x: Tensor,  # (Bq, Tq, D) question tokens
        text_mask: Tensor,  # (Bq, Tq) bool
        image: ImageEmbeds,  # Bi images
        image_index: Tensor | None,  # (Bq,) which image each question is about; None: image i for question i
        attentions: dict[str, list] | None = None,  # receives {"grid": [(Bq, H, Tq, Ti)], "objects": [(Bq, H, Tq, K + N)]}
    ) -> Tensor:
        keep = attentions or {}
        x = self.self_attn(self.norm1(x), mask=text_mask) + x
        x = self.cross_attn(self.norm2(x), image.tokens, context_index=image_index, weights=keep.get("grid")) + x
        if image.objects is not None:
            objects = image.objects
            x = self.object_attn(
                self.norm_objects(x), objects.tokens, mask=objects.mask, context_index=image_index, weights=keep.get("objects")
            ) + x
        return self.mlp(self.norm3(x)) + x


class AnswerHead(nn.Module):
    """Masked mean of the question tokens, then an MLP classifier over the answer vocabulary."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.width)
        self.net = nn.Sequential(nn.Linear(cfg.width, cfg.width), nn.GELU(), nn.Linear(cfg.width, cfg.num_answers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # x: (Bq, Tq, D), mask: (Bq, Tq)
        m = mask.unsqueeze(-1).to(x.dtype)  # (Bq, Tq, 1)
        pooled = (self.norm(x) * m).sum(1) / m.sum(1).clamp(min=1)  # (Bq, D)
        return self.net(pooled)  # (Bq, A)


@dataclass
class ImageEmbeds:
    """An encoded image, ready for any number of questions."""

    tokens: Tensor  # (Bi, Ti + R, D) normed: prefix (CLS and the like), grid, registers
    grid: tuple[int, int] | None  # (h, w): the grid the h*w tokens after `prefix` lie on
    prefix: int  # tokens before the grid
    objects: "Objects | None" = None  # object tokens, their centres and the detector's raw output

    def select(self, index: Tensor) -> "ImageEmbeds":
        """One row per question: image index[i] for question i."""
        objects = None if self.objects is None else self.objects.select(index)
        return ImageEmbeds(self.tokens[index], self.grid, self.prefix, objects)

    def clone(self) -> "ImageEmbeds":
        """A copy outside inference mode, so autograd can run through it (see run/explain.py)."""
        objects = None if self.objects is None else self.objects.clone()
        return ImageEmbeds(self.tokens.clone(), self.grid, self.prefix, objects)


@dataclass
class HeadOutput:
    logits: Tensor  # (Bq, A)
    cross_attentions: list[Tensor] | None = None  # per fusion block, over the grid: (Bq, H, Tq, Ti + R)
    object_attentions: list[Tensor] | None = None  # per fusion block, over the objects: (Bq, H, Tq, K + N)


class FusionHead(nn.Module):
    """Everything between the two encoders' features and the answer scores."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        from .objects import ObjectTokens

        self.cfg = cfg
        D = cfg.width
        self.image_proj = nn.Sequential(nn.LayerNorm(cfg.image_dim), nn.Linear(cfg.image_dim, D))
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.text_dim), nn.Linear(cfg.text_dim, D))
        self.position = nn.Sequential(nn.Linear(POSITION_FEATURES, D), nn.GELU(), nn.Linear(D, D)) if cfg.grid_positions else None
        self.registers = nn.Parameter(torch.randn(cfg.registers, D) * 0.02)
        self.image_blocks = nn.ModuleList(ImageBlock(cfg) for _ in range(cfg.image_layers))
        self.image_norm = nn.LayerNorm(D)
        self.objects = ObjectTokens(cfg) if cfg.objects else None
        self.blocks = nn.ModuleList(FusionBlock(cfg) for _ in range(cfg.layers))
        self.answer_head = AnswerHead(cfg)

    def encode_image(
        self,
        features: Tensor,  # (Bi, Ti, Ci) from the image encoder
        grid: tuple[int, int] | None,  # (h, w) when the last h*w tokens form a grid
        centres: Tensor | None = None,  # (Bi, K, 2) object centres to use instead of detected ones (training)
        centre_mask: Tensor | None = None,  # (Bi, K) bool, with centres
    ) -> ImageEmbeds:
        x = self.image_proj(features)  # (Bi, Ti, D)
        prefix = x.shape[1] - (grid[0] * grid[1] if grid else 0)
        if self.position is not None and grid is not None:
            pos = self.position(fourier_features(grid_centres(*grid, x.device)).to(x.dtype))  # (h*w, D)
            x = torch.cat([x[:, :prefix], x[:, prefix:] + pos], dim=1)
        registers = self.registers.to(x.dtype).expand(x.shape[0], -1, -1)  # (Bi, R, D)
        image = torch.cat([x, registers], dim=1)  # (Bi, Ti + R, D)
        for block in self.image_blocks:
            image = block(image)
        image = self.image_norm(image)
        objects = self.objects(x[:, prefix:], grid, centres, centre_mask) if self.objects is not None and grid else None
        return ImageEmbeds(image, grid, prefix, objects)

    def encode_text(self, features: Tensor) -> Tensor:  # (Bq, Tq, Ct) -> (Bq, Tq, D)
        return self.text_proj(features)

    def forward(
        self,
        text: Tensor,  # (Bq, Tq, D) from encode_text
        text_mask: Tensor,  # (Bq, Tq)
        image: ImageEmbeds,  # Bi images
        image_index: Tensor | None,  # (Bq,); None when image row i belongs to question i
        output_attentions: bool = False,
    ) -> HeadOutput:
        text_mask = text_mask.bool()
        attentions = {"grid": [], "objects": []} if output_attentions else None
        x = text
        for block in self.blocks:
            x = block(x, text_mask, image, image_index, attentions)
        if attentions is None:
            return HeadOutput(self.answer_head(x, text_mask))
        return HeadOutput(self.answer_head(x, text_mask), attentions["grid"], attentions["objects"] if image.objects is not None else None)


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

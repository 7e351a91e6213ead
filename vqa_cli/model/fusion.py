"""The transformer cross-attention head that fuses image and question.

Dimensions used in the shape comments:
    Bi  images in the batch          Bq  questions in the batch (several may share an image)
    Ti  image tokens                 Tq  question tokens
    Ci  image encoder width          Ct  text encoder width
    D   head width                   H   attention heads, hs = D // H
    A   answers in the vocabulary

Reading order: Attention -> MLP -> ImageBlock -> FusionBlock -> AnswerHead -> FusionHead.
The head only sees features: encoders live in `encoders.py` and `VQAModel` (model/vqa.py)
joins them, so encoding an image once for many questions is a matter of calling
`encode_image` once and `answer` as often as needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import HeadConfig

POSITION_FEATURES = 18  # x, y, and sin/cos of each at 4 frequencies
# Parameters only a --geometric head has; a plain bundle can start one (they keep their priors).
GEOMETRY_PARAMETERS = ("distance_table", "focus_sharpness", "inhibition", "locate.weight", "locate.bias")


class Attention(nn.Module):
    """Multi-head attention; with `context` it is cross-attention.

    `context_index` maps each row of x to a row of context, so K and V are projected once
    per image and then shared by every question about that image.
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
        mask: Tensor | None = None,  # (Bc, S) bool, True where a key may be attended
        context_index: Tensor | None = None,  # (B,) row of context for each row of x
        return_weights: bool = False,
        bias: Tensor | None = None,  # (B, H, T, S) added to the attention logits
    ) -> tuple[Tensor, Tensor | None]:
        if context is None:
            return self._attend(x, x, mask, return_weights, bias)
        if context_index is None:
            return self._attend(x, context, mask, return_weights, bias)
        # Queries never interact in cross-attention, so all the questions about one image can
        # be packed into a single query sequence: K and V are then projected and used once per
        # image instead of being copied for every question.
        B, T, D = x.shape
        Bc = context.shape[0]
        slot = _slots(context_index, Bc)  # (B,) position of each question among its image's
        Q = int(slot.max()) + 1 if B else 1
        packed = x.new_zeros(Bc, Q, T, D)
        packed[context_index, slot] = x
        if bias is not None:
            S = bias.shape[-1]
            packed_bias = bias.new_zeros(Bc, Q, self.heads, T, S)
            packed_bias[context_index, slot] = bias
            bias = packed_bias.transpose(1, 2).reshape(Bc, self.heads, Q * T, S)  # (Bc, H, Q*T, S)
        y, weights = self._attend(packed.view(Bc, Q * T, D), context, mask, return_weights, bias)  # (Bc, Q*T, D)
        y = y.view(Bc, Q, T, D)[context_index, slot]  # (B, T, D)
        if weights is not None:
            S = weights.shape[-1]
            weights = weights.view(Bc, self.heads, Q, T, S)[context_index, :, slot]  # (B, H, T, S)
        return y, weights

    def _attend(self, x: Tensor, context: Tensor, mask: Tensor | None, return_weights: bool, bias: Tensor | None = None):
        B, T, D = x.shape
        S = context.shape[1]
        H, hs = self.heads, D // self.heads
        k, v = self.kv(context).chunk(2, dim=-1)  # (B, S, D) each
        q = self.q(x).view(B, T, H, hs).transpose(1, 2)  # (B, H, T, hs)
        k = k.reshape(B, S, H, hs).transpose(1, 2)  # (B, H, S, hs)
        v = v.reshape(B, S, H, hs).transpose(1, 2)  # (B, H, S, hs)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, S)
        if return_weights:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, H, T, S)
            if bias is not None:
                scores = scores + bias
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            weights = scores.softmax(dim=-1)  # (B, H, T, S)
            y = weights @ v  # (B, H, T, hs)
        else:
            weights = None
            drop = self.dropout if self.training else 0.0
            if bias is not None:
                attn_mask = bias if attn_mask is None else bias.masked_fill(~attn_mask, float("-inf"))
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=drop)  # (B, H, T, hs)
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
    def __init__(self, dim: int, ratio: float, dropout: float = 0.0):
        super().__init__()
        hidden = int(dim * ratio)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ImageBlock(nn.Module):
    """Pre-norm self-attention over image tokens, so each object can see the others."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads, cfg.dropout)
        self.norm2, self.mlp = nn.LayerNorm(cfg.width), MLP(cfg.width, cfg.mlp_ratio, cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # x: (Bi, Ti, D)
        x = self.attn(self.norm1(x), mask=mask)[0] + x
        return self.mlp(self.norm2(x)) + x


class FusionBlock(nn.Module):
    """Question self-attention, then cross-attention from question tokens to image tokens, then an MLP.

    With geometry on, each head's cross-attention logits also get g_h(|p_i - f|): p_i is image
    token i's position, f is where the same head looked in the previous block (the mean
    position of its sharpened attention), and g_h is a learned piecewise-linear function of
    the distance; tokens that head looked at before are also penalised. "Closest to the X"
    is then one step: find X, then prefer tokens a little way from it (not X itself);
    "furthest from" prefers tokens far away.

    g_h starts as a prior that training reshapes: head 0 prefers near tokens but not the
    focus itself, head 1 prefers far ones, the other heads have no preference, so the heads
    give a near/far reading from the first step. What it measured: models/shapes/README.md.
    """

    DISTANCE_BINS = 32  # g_h is linear between 33 knots over [0, MAX_DISTANCE]
    MAX_DISTANCE = math.sqrt(2.0)  # the image diagonal, positions being in [0, 1]
    DISTANCE_SCALE = 50.0  # g_h = DISTANCE_SCALE * table: Adam then reshapes g_h in a few hundred steps
    INHIBITION_SCALE = 10.0

    def __init__(self, cfg: HeadConfig, geometric: bool = False, track_focus: bool = False):
        super().__init__()
        self.track_focus = track_focus  # report where each head looked, for the next block
        self.norm1, self.self_attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads, cfg.dropout)
        self.norm2, self.cross_attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads, cfg.dropout)
        self.norm3, self.mlp = nn.LayerNorm(cfg.width), MLP(cfg.width, cfg.mlp_ratio, cfg.dropout)
        self.distance_table = nn.Parameter(self._prior(cfg.heads)) if geometric else None
        # The focus is found with sharpened attention, weights ** sharpness renormalised (a
        # softmax at a lower temperature), so it lands on the best-matching object rather than
        # somewhere between it and the background. log-parametrised; starts at 4.
        self.focus_sharpness = nn.Parameter(torch.full((cfg.heads,), math.log(4.0))) if track_focus else None
        # Inhibition of return: -INHIBITION_SCALE * inhibition_h * (how strongly the previous block
        # looked at each token), so "the object closest to X" need not be X. Head 0 starts at 5 logits.
        self.inhibition = nn.Parameter((torch.arange(cfg.heads) == 0).float() * 0.5) if geometric else None

    @classmethod
    def _prior(cls, heads: int) -> Tensor:
        """(H, K+1) knots of g_h / DISTANCE_SCALE: near (not self) for head 0, far for head 1."""
        knots = torch.linspace(0, 1, cls.DISTANCE_BINS + 1)  # (K+1,) distance / MAX_DISTANCE
        pixels = knots * cls.MAX_DISTANCE * 256  # on a 256 px image
        table = torch.zeros(heads, cls.DISTANCE_BINS + 1)
        slope = 40.0 / cls.DISTANCE_SCALE  # 40 logits across the diagonal, ~0.1 per pixel
        table[0] = -slope * knots - (pixels < 20).float() * 10.0 / cls.DISTANCE_SCALE  # not the object itself
        if heads > 1:
            table[1] = slope * knots
        return table

    def forward(
        self,
        x: Tensor,  # (Bq, Tq, D) question tokens
        text_mask: Tensor,  # (Bq, Tq) bool
        image: Tensor,  # (Bi, Ti, D) image tokens, already normed
        image_index: Tensor | None,  # (Bq,) which image each question is about; None: image i for question i
        image_mask: Tensor | None = None,  # (Bi, Ti) bool
        return_weights: bool = False,
        positions: Tensor | None = None,  # (Bq, Ti, 2) token positions in [0, 1] per question; NaN off the grid
        look: Look | None = None,  # where each head looked in the previous block
    ) -> tuple[Tensor, Tensor | None, Look | None]:
        x = self.self_attn(self.norm1(x), mask=text_mask)[0] + x
        bias = None
        if self.distance_table is not None and look is not None:
            on_grid, grid_positions = _split_grid(positions)  # (Bq, Ti), (Bq, Ti, 2)
            # |p - f|^2 = |p|^2 - 2 p.f + |f|^2, as one batched matmul instead of a (Bq, H, Tq, Ti, 2) difference
            f = look.focus  # (Bq, H, Tq, 2)
            d2 = (grid_positions ** 2).sum(-1)[:, None, None, :] - 2 * f @ grid_positions[:, None].transpose(-1, -2) + (f ** 2).sum(-1, keepdim=True)
            d2 = d2.clamp(min=0)  # (Bq, H, Tq, Ti)
            distance = (d2 + 1e-8).sqrt() / self.MAX_DISTANCE  # (Bq, H, Tq, Ti), in [0, 1]
            g = _piecewise_linear(self.DISTANCE_SCALE * self.distance_table, distance)  # (Bq, H, Tq, Ti)
            inhibition = (self.INHIBITION_SCALE * self.inhibition).view(1, -1, 1, 1) * look.seen  # (Bq, H, Tq, Ti)
            bias = (g - inhibition) * on_grid[:, None, None, :].to(g.dtype)
        need_weights = return_weights or self.track_focus
        y, weights = self.cross_attn(
            self.norm2(x), image, mask=image_mask, context_index=image_index, return_weights=need_weights, bias=bias
        )  # y: (Bq, Tq, D), weights: (Bq, H, Tq, Ti)
        x = y + x
        new_look = _look(weights, positions, self.focus_sharpness.exp()) if self.track_focus else None
        return self.mlp(self.norm3(x)) + x, (weights if return_weights else None), new_look


def _piecewise_linear(table: Tensor, u: Tensor) -> Tensor:
    """Per-head linear interpolation: table (H, K+1) knots over [0, 1], u (B, H, T, S) -> (B, H, T, S)."""
    K = table.shape[1] - 1
    x = u.clamp(0, 1) * K
    lo = x.detach().floor().clamp(max=K - 1).long()  # (B, H, T, S)
    frac = x - lo
    knots = table[None, :, None, :].expand(u.shape[0], -1, u.shape[2], -1)  # (B, H, T, K+1)
    left, right = knots.gather(-1, lo), knots.gather(-1, lo + 1)
    return left + frac * (right - left)


class Look(NamedTuple):
    """Where each head of a block looked, for the next block's geometry."""

    focus: Tensor  # (Bq, H, Tq, 2) mean position of the sharpened attention
    seen: Tensor  # (Bq, H, Tq, Ti) the sharpened attention, scaled so its largest weight is 1


def _split_grid(positions: Tensor) -> tuple[Tensor, Tensor]:
    """(Bq, Ti, 2) positions, NaN off the grid -> which tokens are on it (Bq, Ti), positions with 0 off it.

    NaN must not enter the graph, or its gradient (NaN * 0) would poison every step.
    """
    on_grid = ~positions.isnan().any(-1)
    return on_grid, torch.where(on_grid[..., None], positions, torch.zeros_like(positions))


def _look(weights: Tensor | None, positions: Tensor | None, sharpness: Tensor) -> Look | None:
    """Sharpen each head's attention over the grid tokens (weights ** sharpness_h) and find its mean position."""
    if weights is None or positions is None:
        return None
    on_grid, grid_positions = _split_grid(positions)  # (Bq, Ti), (Bq, Ti, 2)
    # w ** s as exp(s * log w), with log w shifted by its max so the largest term is 1
    logw = weights.clamp(min=1e-30).log()  # (Bq, H, Tq, Ti)
    logw = logw - logw.detach().amax(-1, keepdim=True)
    seen = (sharpness.view(1, -1, 1, 1) * logw).exp() * on_grid[:, None, None, :].to(weights.dtype)  # (Bq, H, Tq, Ti)
    w = seen / seen.sum(-1, keepdim=True).clamp(min=1e-6)
    return Look(w @ grid_positions[:, None].to(w.dtype), seen)  # focus: (Bq, H, Tq, 2)


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
class HeadOutput:
    logits: Tensor  # (Bq, A)
    cross_attentions: list[Tensor] | None = None  # per fusion block: (Bq, H, Tq, Ti)


class FusionHead(nn.Module):
    """Everything between the two encoders' features and the answer scores."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.width
        self.image_proj = nn.Sequential(nn.LayerNorm(cfg.image_dim), nn.Linear(cfg.image_dim, D))
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.text_dim), nn.Linear(cfg.text_dim, D))
        self.position = nn.Sequential(nn.Linear(POSITION_FEATURES, D), nn.GELU(), nn.Linear(D, D)) if cfg.grid_positions else None
        self.registers = nn.Parameter(torch.randn(cfg.registers, D) * 0.02)
        self.image_blocks = nn.ModuleList(ImageBlock(cfg) for _ in range(cfg.image_layers))
        self.image_norm = nn.LayerNorm(D)
        self.blocks = nn.ModuleList(FusionBlock(cfg, geometric=cfg.geometric and i > 0, track_focus=cfg.geometric and i < cfg.layers - 1)
            for i in range(cfg.layers))
        self.answer_head = AnswerHead(cfg)
        # Geometry: each grid token may move its position up to a quarter of the image, so
        # all the tokens of one object can agree on its centre. Starts at the cell centres.
        self.locate = nn.Linear(D, 2) if cfg.geometric else None
        if self.locate is not None:
            nn.init.zeros_(self.locate.weight)
            nn.init.zeros_(self.locate.bias)

    def encode_image(
        self,
        features: Tensor,  # (Bi, Ti, Ci) from the image encoder
        grid: tuple[int, int] | None,  # (h, w) when the last h*w tokens form a grid
    ) -> Tensor:
        x = self.image_proj(features)  # (Bi, Ti, D)
        if self.position is not None and grid is not None:
            h, w = grid
            pos = self.position(_fourier_grid(h, w, x.device, x.dtype))  # (h*w, D)
            x = torch.cat([x[:, : x.shape[1] - h * w], x[:, x.shape[1] - h * w :] + pos], dim=1)
        registers = self.registers.to(x.dtype).expand(x.shape[0], -1, -1)  # (Bi, R, D)
        x = torch.cat([x, registers], dim=1)  # (Bi, Ti + R, D): registers go last so grid tokens keep their indices
        for block in self.image_blocks:
            x = block(x)
        return self.image_norm(x)

    def encode_text(self, features: Tensor) -> Tensor:  # (Bq, Tq, Ct) -> (Bq, Tq, D)
        return self.text_proj(features)

    def forward(
        self,
        text: Tensor,  # (Bq, Tq, D) from encode_text
        text_mask: Tensor,  # (Bq, Tq)
        image: Tensor,  # (Bi, Ti + R, D) from encode_image
        image_index: Tensor | None,  # (Bq,); None when image row i belongs to question i
        return_attentions: bool = False,
        grid: tuple[int, int] | None = None,  # (h, w) of the grid tokens, which follow `prefix` others
        prefix: int = 0,
    ) -> HeadOutput:
        text_mask = text_mask.bool()
        positions = self.token_positions(image, grid, prefix) if self.locate is not None and grid else None  # (Bi, Ti, 2)
        if positions is not None:
            positions = positions if image_index is None else positions[image_index]  # (Bq, Ti, 2)
        x, attentions, look = text, [], None
        for block in self.blocks:
            x, weights, look = block(
                x, text_mask, image, image_index, return_weights=return_attentions, positions=positions, look=look
            )
            attentions.append(weights)
        return HeadOutput(self.answer_head(x, text_mask), attentions if return_attentions else None)

    MAX_OFFSET = 0.25  # how far (in image widths) a token may move its position

    def token_positions(self, image: Tensor, grid: tuple[int, int], prefix: int) -> Tensor:
        """(Bi, Ti, 2) positions in [0, 1]: cell centres, plus learned offsets when geometric; NaN off the grid."""
        h, w = grid
        cells = _fourier_grid(h, w, image.device, torch.float32)[:, :2]  # (h*w, 2) raw (x, y)
        if self.locate is not None:
            cells = cells + self.MAX_OFFSET * torch.tanh(self.locate(image[:, prefix : prefix + h * w]).float())  # (Bi, h*w, 2)
        positions = torch.full((*image.shape[:2], 2), float("nan"), device=image.device)
        positions[:, prefix : prefix + h * w] = cells
        return positions


def _fourier_grid(h: int, w: int, device, dtype) -> Tensor:
    """Raw coordinates plus sines and cosines of each cell's centre: (h*w, POSITION_FEATURES)."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # (h, w) each
    coords = torch.stack([xx.flatten(), yy.flatten()], dim=-1)  # (h*w, 2)
    freqs = math.pi * 2.0 ** torch.arange(4, device=device, dtype=torch.float32)  # (4,)
    angles = coords[:, :, None] * freqs  # (h*w, 2, 4)
    feats = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(1)  # (h*w, 16)
    return torch.cat([coords, feats], dim=-1).to(dtype)  # (h*w, 18)

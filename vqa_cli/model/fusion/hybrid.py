"""hybrid: late fusion's pooled question, reading the image in stacked attention hops.

Stacked attention (SAN; Yang et al., 2016) joined as bottom-up top-down attention joins its
sides (Anderson et al., 2018). The question is encoded and pooled on its own to one vector
q, as in late fusion; a query u = q then reads the image `layers` times, each hop a
cross-attention from u to the grid tokens and one to the object tokens, and an MLP, so a
later hop can follow up on what an earlier one found. The answer is read from q * f(u): the
question, multiplied elementwise by what it found. The sides meet at every hop, but only
through one pooled vector, never token to token.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import HeadConfig
from ..embeds import ImageEmbeds
from ..layers import MLP, Attention
from .cross import read_image
from .late import QuestionEncoder

QUESTION_LAYERS = 1  # self-attention blocks over the question before it is pooled


class Hop(nn.Module):
    """One read of the image by the pooled query: grid, then objects, then an MLP."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        D = cfg.width
        self.norm2, self.cross_attn = nn.LayerNorm(D), Attention(D, cfg.heads, cfg.dropout)
        if cfg.objects:
            self.norm_objects, self.object_attn = nn.LayerNorm(D), Attention(D, cfg.heads, cfg.dropout)
        self.norm_mlp, self.mlp = nn.LayerNorm(D), MLP(D, cfg.mlp_ratio, cfg.dropout)

    def forward(self, u: Tensor, image: ImageEmbeds, image_index: Tensor | None, looks: list | None) -> Tensor:  # u: (Bq, 1, D)
        u = read_image(self, u, image, image_index, looks)
        return self.mlp(self.norm_mlp(u)) + u


class HybridFusion(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        D = cfg.width
        self.question = QuestionEncoder(cfg, QUESTION_LAYERS)
        self.hops = nn.ModuleList(Hop(cfg) for _ in range(cfg.layers))
        self.question_out = nn.Linear(D, D)
        self.found_out = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, D))

    def forward(self, text: Tensor, text_mask: Tensor, image: ImageEmbeds, image_index: Tensor | None, looks=None):
        q = self.question(text, text_mask)  # (Bq, D)
        u = q[:, None]  # (Bq, 1, D): the query
        for hop in self.hops:
            u = hop(u, image, image_index, looks)
        fused = self.question_out(q) * self.found_out(u[:, 0])  # (Bq, D)
        return fused[:, None], text_mask.new_ones(len(fused), 1)  # (Bq, 1, D), (Bq, 1)

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
from ..embeds import ImageEmbeds, Look
from ..layers import MLP
from .cross import ImageReader
from .late import QuestionEncoder

QUESTION_LAYERS = 1  # self-attention blocks over the question before it is pooled


class Hop(ImageReader):
    """One read of the image by the pooled query: grid, then objects (ImageReader), then an MLP."""

    def __init__(self, cfg: HeadConfig):
        super().__init__(cfg)
        self.norm_mlp, self.mlp = nn.LayerNorm(cfg.width), MLP(cfg.width)

    def forward(self, u: Tensor, image: ImageEmbeds, image_index: Tensor | None, need_looks: bool) -> tuple[Tensor, list[Look]]:
        u, looks = self.read_image(u, image, image_index, need_looks)  # u: (Bq, 1, D)
        return self.mlp(self.norm_mlp(u)) + u, looks


class HybridFusion(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        D = cfg.width
        self.question = QuestionEncoder(cfg, QUESTION_LAYERS)
        self.hops = nn.ModuleList(Hop(cfg) for _ in range(cfg.layers))
        self.question_out = nn.Linear(D, D)
        self.found_out = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, D))

    def forward(self, text: Tensor, text_mask: Tensor, image: ImageEmbeds, image_index: Tensor | None, need_looks: bool = False):
        q = self.question(text, text_mask)  # (Bq, D)
        u, looks = q[:, None], []  # (Bq, 1, D): the query
        for hop in self.hops:
            u, taken = hop(u, image, image_index, need_looks)
            looks += taken
        fused = self.question_out(q) * self.found_out(u[:, 0])  # (Bq, D)
        return fused[:, None], text_mask.new_ones(len(fused), 1), looks  # (Bq, 1, D), (Bq, 1)

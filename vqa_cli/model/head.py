"""The head: everything between the two encoders' features and the answer scores.

Shape letters are those of model/__init__.py. Reading order: FusionHead.encode_image (the image side, shared by every fusion), encode_text,
then forward: the fusion strategy (fusion/, chosen by HeadConfig.fusion) and the AnswerHead.
The head only sees features: the encoders live in `encoders.py` and `VQAModel` (model/vqa.py)
joins them, so encoding an image once for many questions is a matter of calling
`encode_image` once and `forward` as often as needed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import HeadConfig
from .embeds import HeadOutput, ImageEmbeds
from .fusion import build_fusion
from .layers import POSITION_FEATURES, Block, fourier_features, grid_centres

REGISTERS = 4  # learned extra image tokens R: somewhere for attention to rest when nothing matches


class AnswerHead(nn.Module):
    """Masked mean of the states the fusion answers from, then an MLP classifier over the answers."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.width)
        self.net = nn.Sequential(nn.Linear(cfg.width, cfg.width), nn.GELU(), nn.Linear(cfg.width, cfg.num_answers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # x: (Bq, T, D), mask: (Bq, T)
        m = mask.unsqueeze(-1).to(x.dtype)  # (Bq, T, 1)
        pooled = (self.norm(x) * m).sum(1) / m.sum(1).clamp(min=1)  # (Bq, D)
        return self.net(pooled)  # (Bq, A)


class FusionHead(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        from .objects import ObjectTokens

        self.cfg = cfg
        D = cfg.width
        self.image_proj = nn.Sequential(nn.LayerNorm(cfg.image_dim), nn.Linear(cfg.image_dim, D))
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.text_dim), nn.Linear(cfg.text_dim, D))
        self.position = nn.Sequential(nn.Linear(POSITION_FEATURES, D), nn.GELU(), nn.Linear(D, D))  # CNN grids have no position
        self.registers = nn.Parameter(torch.randn(REGISTERS, D) * 0.02)
        self.image_blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.image_layers))
        self.image_norm = nn.LayerNorm(D)
        self.objects = ObjectTokens(cfg) if cfg.objects else None
        self.fusion = build_fusion(cfg)
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
        if grid is not None:
            pos = self.position(fourier_features(grid_centres(*grid, x.device)).to(x.dtype))  # (h*w, D)
            x = torch.cat([x[:, :prefix], x[:, prefix:] + pos], dim=1)
        registers = self.registers.to(x.dtype).expand(x.shape[0], -1, -1)  # (Bi, R, D)
        image = torch.cat([x, registers], dim=1)  # (Bi, Ti + R, D)
        for block in self.image_blocks:
            image, _ = block(image)
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
        output_attentions: bool = False,  # also return the fusion's looks at the image (see embeds.Look)
    ) -> HeadOutput:
        states, mask, looks = self.fusion(text, text_mask.bool(), image, image_index, output_attentions)  # (Bq, T, D), (Bq, T)
        return HeadOutput(self.answer_head(states, mask), looks)

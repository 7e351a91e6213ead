"""cross: the question's tokens read the image through cross-attention, block after block.

Each block is question self-attention, cross-attention to the image grid, cross-attention to
the object tokens (when there are any), then an MLP; the answer is read from the question
tokens. The image is never copied per question: the cross-attentions project K and V once
per image and pack all the questions about it into one query sequence (layers.Attention).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import HeadConfig
from ..embeds import ImageEmbeds, Look
from ..layers import MLP, Attention


class ImageReader(nn.Module):
    """Cross-attention from some states to the image grid, then to the object tokens, each pre-normed and residual.

    The objects get a cross-attention of their own, so a question can single out one object
    token without competing with the hundreds of grid tokens for the same softmax. Cross
    blocks and hybrid hops are image readers.
    """

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.norm2, self.cross_attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads)
        if cfg.objects:
            self.norm_objects, self.object_attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads)

    def read_image(self, x: Tensor, image: ImageEmbeds, image_index: Tensor | None, need_looks: bool) -> tuple[Tensor, list[Look]]:
        """x (Bq, T, D) after reading the grid and the objects; with need_looks, a grid Look (Bq, H, T, Ti + R)
        and an objects Look (Bq, H, T, K + N)."""
        y, grid = self.cross_attn(self.norm2(x), image.tokens, context_index=image_index, need_weights=need_looks)
        x = y + x
        looks = [Look(grid, grid=image.grid_columns, grid_shape=image.grid)] if need_looks else []
        if image.objects is not None:
            found = image.objects
            y, objects = self.object_attn(self.norm_objects(x), found.tokens, mask=found.mask, context_index=image_index,
                                          need_weights=need_looks)
            x = y + x
            if need_looks:
                looks.append(Look(objects, objects=slice(0, found.centres.shape[1])))
        return x, looks


class CrossBlock(ImageReader):
    """Question self-attention, cross-attention to the grid and to the objects (ImageReader), then an MLP."""

    def __init__(self, cfg: HeadConfig):
        super().__init__(cfg)
        self.norm1, self.self_attn = nn.LayerNorm(cfg.width), Attention(cfg.width, cfg.heads)
        self.norm3, self.mlp = nn.LayerNorm(cfg.width), MLP(cfg.width)

    def forward(
        self,
        x: Tensor,  # (Bq, Tq, D) question tokens
        text_mask: Tensor,  # (Bq, Tq) bool
        image: ImageEmbeds,  # Bi images
        image_index: Tensor | None,  # (Bq,) which image each question is about; None: image i for question i
        need_looks: bool = False,
    ) -> tuple[Tensor, list[Look]]:
        y, _ = self.self_attn(self.norm1(x), mask=text_mask)
        x, looks = self.read_image(y + x, image, image_index, need_looks)
        return self.mlp(self.norm3(x)) + x, looks


class CrossFusion(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.blocks = nn.ModuleList(CrossBlock(cfg) for _ in range(cfg.layers))

    def forward(self, text: Tensor, text_mask: Tensor, image: ImageEmbeds, image_index: Tensor | None, need_looks: bool = False):
        x, looks = text, []  # (Bq, Tq, D)
        for block in self.blocks:
            x, taken = block(x, text_mask, image, image_index, need_looks)
            looks += taken
        return x, text_mask, looks

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


class CrossBlock(nn.Module):
    """Question self-attention, cross-attention to the grid, to the objects, then an MLP.

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
        looks: list[Look] | None = None,  # receives a grid Look (Bq, H, Tq, Ti + R) and an objects Look (Bq, H, Tq, K + N)
    ) -> Tensor:
        x = self.self_attn(self.norm1(x), mask=text_mask) + x
        x = read_image(self, x, image, image_index, looks)
        return self.mlp(self.norm3(x)) + x


def read_image(block: nn.Module, x: Tensor, image: ImageEmbeds, image_index: Tensor | None, looks: list[Look] | None) -> Tensor:
    """x (Bq, T, D) reads the grid, then the objects: `block`'s cross_attn and object_attn, each pre-normed, residual."""
    grid, objects = ([], []) if looks is not None else (None, None)
    x = block.cross_attn(block.norm2(x), image.tokens, context_index=image_index, weights=grid) + x
    if image.objects is not None:
        found = image.objects
        x = block.object_attn(block.norm_objects(x), found.tokens, mask=found.mask, context_index=image_index, weights=objects) + x
    if looks is not None:
        looks.append(Look(grid[0], grid=image.grid_columns, grid_shape=image.grid))
        if objects:
            looks.append(Look(objects[0], objects=slice(0, image.objects.centres.shape[1])))
    return x


class CrossFusion(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.blocks = nn.ModuleList(CrossBlock(cfg) for _ in range(cfg.layers))

    def forward(self, text: Tensor, text_mask: Tensor, image: ImageEmbeds, image_index: Tensor | None, looks=None):
        x = text  # (Bq, Tq, D)
        for block in self.blocks:
            x = block(x, text_mask, image, image_index, looks)
        return x, text_mask

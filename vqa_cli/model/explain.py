"""Where the model looked: relevance maps from the fusion's attention to the image (pure torch).

io/explain.py draws them over the image.

How the map is made (gradient-weighted attention, after Chefer et al., 2021):
  for every look the fusion took at the image (each cross-attention of cross and hybrid
  fusion; the question's rows of each joint layer of early fusion), every head and every
  query, take the attention weights A over the image tokens and the gradient G of the
  chosen answer's logit with respect to A; keep A * G where it is positive (attention that
  raised the answer), sum, keep the image's grid tokens (dropping CLS and register tokens)
  and object tokens, and scale to [0, 1]. Plain attention shows where the model looked;
  the gradient weighting keeps only the looks that mattered for this answer. Late fusion
  has no attention between the sides, so it has no map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ModelError


def relevance_maps(model, text, text_mask, image, image_index, answer_index, offset=(0.0, 0.0)) -> torch.Tensor:
    """(Bq, h, w) maps in [0, 1] for the answers `answer_index` (Bq,) of each question.

    Every fusion reports its looks at the image (model/embeds.Look): which attention
    weights they are, and which of their keys are grid cells or object tokens. Relevance on
    a coarser grid is spread over the cells it covers; relevance that lands on an object
    token is added to the grid cell that looks nearest its centre (`offset` from
    grid_offset), so the map shows the object the answer came from.
    """
    if image.grid is None:
        raise ModelError("this model's image tokens do not lie on a grid, so there is nothing to draw")
    h, w = image.grid
    with torch.inference_mode(False), torch.enable_grad():
        # Inputs made under inference_mode cannot enter autograd; clones of them can. Each
        # question gets its own copy of its image's tokens, so the attention weights returned
        # are the very tensors the answer was computed from.
        per_question = image.select(image_index).clone()
        text, text_mask = text.clone(), text_mask.clone()
        out = model.answer(text, text_mask.bool(), per_question, output_attentions=True)
        if not out.looks:
            raise ModelError(f"this model's fusion ({model.config.fusion}) has no attention from the question to the image, "
                             "so --explain has nothing to draw")
        chosen = out.logits.gather(1, answer_index.clone()[:, None]).sum()
        grads = torch.autograd.grad(chosen, [look.weights for look in out.looks])
    grid = torch.zeros(len(text), h, w)
    for look, grad in zip(out.looks, grads):
        # Attention that raised the answer, summed over heads and the queries that count: (Bq, S)
        relevance = (look.weights.detach() * grad).clamp(min=0)[:, :, look.queries or slice(None)].sum(dim=(1, 2)).float()
        if look.grid is not None and look.grid.stop > look.grid.start:
            gh, gw = look.grid_shape
            cells = relevance[:, look.grid].reshape(-1, 1, gh, gw)
            grid += F.interpolate(cells, size=(h, w), mode="nearest")[:, 0] * (gh * gw) / (h * w)
        if look.objects is not None:
            objects = per_question.objects
            splat(grid, relevance[:, look.objects] * objects.found.float(), objects.centres, offset)
    peak = grid.flatten(1).max(dim=1).values.clamp(min=1e-12)[:, None, None]
    return grid / peak


def splat(grid: torch.Tensor, values: torch.Tensor, centres: torch.Tensor, offset=(0.0, 0.0)) -> None:
    """Add each object's value (Bq, K) to the cell of grid (Bq, h, w) that looks nearest its centre (Bq, K, 2)."""
    h, w = grid.shape[1:]
    col = ((centres[..., 0] - offset[0]) * w - 0.5).round().long().clamp(0, w - 1)  # (Bq, K)
    row = ((centres[..., 1] - offset[1]) * h - 0.5).round().long().clamp(0, h - 1)
    grid.view(len(grid), -1).scatter_add_(1, row * w + col, values.to(grid.dtype))


def grid_offset(model, image_size: int) -> tuple[float, float]:
    """Where the encoder's grid cells really look, relative to the plain cell centres.

    A CNN's output cell (i, j) is centred near (i * stride, j * stride), not at the middle
    of its cell: padding shifts it by up to half a cell. This measures the shift once, from
    the input gradient of the middle cell (its effective receptive field), and returns it
    as (dx, dy) in fractions of the image side. For ViT patches it comes out near 0.
    """
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode(False), torch.enable_grad():
        pixels = torch.randn(1, 3, image_size, image_size, generator=generator)
        param = next(model.image_encoder.parameters())
        pixels = pixels.to(device=param.device, dtype=param.dtype).requires_grad_(True)
        features, grid = model.image_encoder(pixels)  # (1, T, C)
        if grid is None:
            return 0.0, 0.0
        h, w = grid
        row, col = h // 2, w // 2
        token = features.shape[1] - h * w + row * w + col
        features[0, token].abs().sum().backward()
    weight = pixels.grad.detach().abs().float().sum(dim=(0, 1))  # (S, S)
    centres = torch.arange(image_size, device=weight.device, dtype=torch.float32) + 0.5
    cy = float((weight.sum(1) * centres).sum() / weight.sum())
    cx = float((weight.sum(0) * centres).sum() / weight.sum())
    return cx / image_size - (col + 0.5) / w, cy / image_size - (row + 0.5) / h


def cell_centre(row: int, col: int, grid: tuple[int, int], offset: tuple[float, float]) -> tuple[float, float]:
    """(x, y) of a grid cell's centre in [0, 1] image coordinates."""
    h, w = grid
    return (col + 0.5) / w + offset[0], (row + 0.5) / h + offset[1]

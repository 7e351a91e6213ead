"""What passes between the head's parts: an encoded image, the looks a fusion took at it, the scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from .objects import Objects


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

    @property
    def grid_columns(self) -> slice:
        """Where the grid tokens sit among `tokens`."""
        h, w = self.grid or (0, 0)
        return slice(self.prefix, self.prefix + h * w)


@dataclass
class Look:
    """One attention layer's weights from the answering side onto the image, and what its keys are.

    run/explain.py turns looks into relevance maps, whatever the fusion that took them.
    """

    weights: Tensor  # (Bq, H, T, S): T queries of the fusion, S keys
    grid: slice | None = None  # the keys that are grid tokens, row by row
    grid_shape: tuple[int, int] | None = None  # the grid those keys lie on (coarser than the image's when pooled)
    objects: slice | None = None  # the keys that are the K object tokens
    queries: slice | None = None  # the queries that count (the question's side of a joint sequence); None: all


@dataclass
class HeadOutput:
    logits: Tensor  # (Bq, A)
    looks: list[Look] = field(default_factory=list)  # with output_attentions, in the order they were taken

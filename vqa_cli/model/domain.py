"""How unlike its training data an image or a question is, from features the answer computes anyway.

    image:    the mean of the head's grid tokens, scored by its Mahalanobis distance to the
              training images' mean under a shrunk covariance; out of domain beyond a
              threshold calibrated on held-out training-domain images.
    question: the mean of the head's question-token features, scored by its cosine
              similarity to the nearest of a few hundred centroids of the training
              questions (spherical k-means); out of domain below a calibrated threshold.

Rewordings of in-domain questions land near their templates (the text encoder is a
sentence embedder), so they stay in domain; "is there a dog?" does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

SHRINKAGE = 0.1  # covariance -> (1 - s) * covariance + s * (its mean variance) * I
IMAGE_QUANTILE = 0.999  # threshold: the 99.9th percentile of held-out distances, times 1 + 3/n for n held-out images
QUESTION_QUANTILE, QUESTION_MARGIN = 0.001, 0.03  # threshold: the 0.1th percentile of held-out similarities, minus 0.03
CENTROIDS = 256


@dataclass
class Domain:
    image_mean: Tensor  # (D,)
    image_precision: Tensor  # (D, D) inverse of the shrunk covariance
    image_threshold: float  # Mahalanobis distance beyond which an image is out of domain
    question_centroids: Tensor  # (C, D) unit vectors
    question_threshold: float  # cosine similarity below which a question is out of domain
    description: str  # what the model knows, for messages: "Shapes scenes"

    def image_distance(self, pooled: Tensor) -> Tensor:  # (B, D) -> (B,)
        centred = pooled.float() - self.image_mean.to(pooled.device)
        return ((centred @ self.image_precision.to(pooled.device)) * centred).sum(-1).clamp(min=0).sqrt()

    def question_similarity(self, pooled: Tensor) -> Tensor:  # (B, D) -> (B,)
        unit = F.normalize(pooled.float(), dim=-1)
        return (unit @ self.question_centroids.to(pooled.device).float().T).max(-1).values

    def images_in_domain(self, pooled: Tensor) -> list[bool]:
        return (self.image_distance(pooled) <= self.image_threshold).tolist()

    def questions_in_domain(self, pooled: Tensor) -> list[bool]:
        return (self.question_similarity(pooled) >= self.question_threshold).tolist()

    def tensors(self) -> dict[str, Tensor]:
        return {"image_mean": self.image_mean, "image_precision": self.image_precision, "question_centroids": self.question_centroids.half()}

    def settings(self) -> dict:
        return {"image_threshold": self.image_threshold, "question_threshold": self.question_threshold, "description": self.description}

    @classmethod
    def from_saved(cls, tensors: dict[str, Tensor], settings: dict) -> "Domain":
        return cls(tensors["image_mean"], tensors["image_precision"], settings["image_threshold"],
                   tensors["question_centroids"].float(), settings["question_threshold"], settings.get("description", "its training data"))


def pool_image(tokens: Tensor, grid: tuple[int, int] | None, prefix: int) -> Tensor:
    """(Bi, T, D) image tokens -> (Bi, D): the mean of the grid tokens (of all tokens without a grid)."""
    if grid is None:
        return tokens.float().mean(1)
    return tokens[:, prefix : prefix + grid[0] * grid[1]].float().mean(1)


def pool_question(text: Tensor, mask: Tensor) -> Tensor:
    """(Bq, Tq, D) question features and (Bq, Tq) mask -> (Bq, D) masked mean."""
    m = mask[..., None].float()
    return (text.float() * m).sum(1) / m.sum(1).clamp(min=1)


def fit(images: Tensor, held_out_images: Tensor, questions: Tensor, held_out_questions: Tensor, description: str, seed: int = 0) -> Domain:
    """Statistics from pooled training features, thresholds from held-out ones (all (N, D))."""
    mean = images.float().mean(0)
    centred = images.float() - mean
    covariance = centred.T @ centred / max(len(images) - 1, 1)  # (D, D)
    scale = covariance.diagonal().mean().clamp(min=1e-6)  # one image, or identical ones, still give an invertible matrix
    shrunk = (1 - SHRINKAGE) * covariance + SHRINKAGE * scale * torch.eye(len(mean))
    domain = Domain(mean, torch.linalg.inv(shrunk), 0.0, kmeans(F.normalize(questions.float(), dim=-1), CENTROIDS, seed), 0.0, description)
    # With few held-out images the percentile is just their maximum; the allowance 3/n keeps a
    # small bundle from refusing its own world, and all but vanishes for thousands of images.
    allowance = 1 + 3 / max(len(held_out_images), 1)
    domain.image_threshold = allowance * float(domain.image_distance(held_out_images).quantile(IMAGE_QUANTILE))
    domain.question_threshold = float(domain.question_similarity(held_out_questions).quantile(QUESTION_QUANTILE)) - QUESTION_MARGIN
    return domain


def kmeans(points: Tensor, k: int, seed: int = 0, steps: int = 25) -> Tensor:
    """Spherical k-means: (N, D) unit vectors -> (min(k, N), D) unit centroids."""
    generator = torch.Generator().manual_seed(seed)
    centroids = points[torch.randperm(len(points), generator=generator)[: min(k, len(points))]].clone()
    for _ in range(steps):
        nearest = (points @ centroids.T).argmax(-1)  # (N,)
        sums = torch.zeros_like(centroids).index_add_(0, nearest, points)
        used = torch.bincount(nearest, minlength=len(centroids)) > 0
        centroids[used] = F.normalize(sums[used], dim=-1)
    return centroids

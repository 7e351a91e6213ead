"""Turn a PIL image into the tensor an image encoder expects. The bundle carries these settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Preprocessing:
    image_size: int = 128  # images are resized to a square of this side
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    max_question_tokens: int = 40  # longer questions are truncated

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def to_uint8(self, image):
        """PIL RGB image -> (3, S, S) uint8 tensor, resized. Cheap to keep many of in memory."""
        import numpy as np
        import torch
        from PIL import Image

        resized = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(resized, dtype=np.uint8).copy()).permute(2, 0, 1)

    def normalize(self, pixels):
        """(B, 3, S, S) uint8 -> float32, normalised."""
        import torch

        mean = torch.tensor(self.mean, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=pixels.device).view(1, 3, 1, 1)
        return (pixels.float() / 255.0 - mean) / std

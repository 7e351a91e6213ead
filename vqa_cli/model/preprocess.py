"""Both halves of preprocessing, as CLIP ships them with its model: images to pixel tensors,
questions to token ids. The bundle carries these settings, so answering and training agree."""

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

    def pixels(self, images: list):
        """PIL RGB images, or their to_uint8 tensors -> (B, 3, S, S) normalised float32 pixels."""
        import torch

        return self.normalize(torch.stack([i if isinstance(i, torch.Tensor) else self.to_uint8(i) for i in images]))

    def question(self, text: str) -> str:
        """The form of a question the tokenizer sees: trimmed and lowercased (the templates are lowercase)."""
        return text.strip().lower()

    def tokenize(self, tokenizer, questions: list[str]) -> dict:
        """Questions -> {"input_ids", "attention_mask"}: (B, Tq) tensors, padded, at most max_question_tokens."""
        return tokenizer(
            [self.question(q) for q in questions],
            padding=True,
            truncation=True,
            max_length=self.max_question_tokens,
            return_tensors="pt",
        )

    def normalize(self, pixels):
        """(B, 3, S, S) uint8 -> float32, normalised."""
        import torch

        mean = torch.tensor(self.mean, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=pixels.device).view(1, 3, 1, 1)
        return (pixels.float() / 255.0 - mean) / std

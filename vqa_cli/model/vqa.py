"""VQAModel: an image encoder and a text encoder joined by the fusion head.

`encode_image` and `encode_text` are separate, as in CLIP, so one image is encoded once
and then asked any number of questions through `answer`.
"""

from __future__ import annotations

from torch import Tensor, nn

from .config import HeadConfig
from .encoders import ImageEncoder, TextEncoder
from .embeds import HeadOutput, ImageEmbeds
from .head import FusionHead


class VQAModel(nn.Module):
    def __init__(
        self,
        image_encoder: nn.Module,
        text_encoder: nn.Module,
        head_config: HeadConfig,
        answers: list[str],
        *,
        train_image_encoder: bool = True,
        train_text_encoder: bool = False,
    ):
        super().__init__()
        self.image_encoder = ImageEncoder(image_encoder)
        self.text_encoder = TextEncoder(text_encoder, head_config.text_layers)
        self.head = FusionHead(head_config)
        self.answers = list(answers)
        self.image_encoder.requires_grad_(train_image_encoder)
        self.text_encoder.requires_grad_(train_text_encoder)

    def train(self, mode: bool = True) -> "VQAModel":
        """Frozen encoders stay in eval mode, so their dropout and batch-norm statistics never change."""
        super().train(mode)
        for encoder in (self.image_encoder, self.text_encoder):
            if not any(p.requires_grad for p in encoder.parameters()):
                encoder.eval()
        return self

    @property
    def config(self) -> HeadConfig:
        return self.head.cfg

    def encode_image(self, pixel_values: Tensor, centres: Tensor | None = None, centre_mask: Tensor | None = None) -> ImageEmbeds:
        """(Bi, 3, S, S) normalised pixels -> image tokens for the head.

        centres (Bi, K, 2) and centre_mask (Bi, K) replace the detected object centres; training only.
        """
        features, grid = self.image_encoder(pixel_values)  # (Bi, Ti, Ci)
        return self.head.encode_image(features, grid, centres, centre_mask)

    def text_features(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """The text encoder's own output, (Bq, Tq, Ct): what a frozen encoder's cache stores."""
        return self.text_encoder(input_ids, attention_mask)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(Bq, Tq) token ids -> (Bq, Tq, D)."""
        return self.head.encode_text(self.text_features(input_ids, attention_mask))

    def answer(
        self,
        text: Tensor,  # (Bq, Tq, D) from encode_text
        text_mask: Tensor,  # (Bq, Tq)
        image: ImageEmbeds,
        image_index: Tensor | None = None,  # (Bq,); None: question i is about image i
        output_attentions: bool = False,  # also return the fusion's looks at the image (embeds.Look)
    ) -> HeadOutput:
        return self.head(text, text_mask, image, image_index, output_attentions)

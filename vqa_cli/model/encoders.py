"""Hugging Face image and text encoders behind one small interface.

Any model that loads through the Auto classes works: CNNs (ResNet, ConvNeXt) give a
(B, C, h, w) feature map, which becomes h*w tokens; ViT-style models (ViT, DINOv2, the
vision towers of CLIP and SigLIP) give (B, T, C) tokens, some of them CLS or register
tokens before the patch grid.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# Image encoders trained from scratch: a name -> a Hugging Face config.
SCRATCH_IMAGE_ENCODERS = {
    # A small ResNet: stride 8 (7x7 stem + max-pool, then one strided stage), 2 stages.
    # On 128 px input it gives a 16x16 grid of 96-wide features.
    "resnet-small": dict(
        model_type="resnet",
        num_channels=3,
        embedding_size=32,
        hidden_sizes=[48, 96],
        depths=[2, 2],
        layer_type="basic",
        hidden_act="relu",
        downsample_in_first_stage=False,
    ),
}


def tower(model: nn.Module, kind: str) -> nn.Module:
    """The vision or text tower of a dual-encoder model (CLIP, SigLIP); the model itself otherwise."""
    sub = getattr(model, f"{kind}_model", None)
    return sub if isinstance(sub, nn.Module) else model


def feature_width(config) -> int:
    for name in ("hidden_size", "projection_dim"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    if getattr(config, "hidden_sizes", None):
        return config.hidden_sizes[-1]
    raise ValueError(f"cannot tell the feature width of a {type(config).__name__}")


class ImageEncoder(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.width = feature_width(getattr(model, "config"))
        self._inference: tuple = ()  # (the traced, frozen encoder,) once optimize_for_inference kept one
        self.optimized = False  # optimize_for_inference has run (whether or not it kept the result)
        self.min_batch = 1  # batches smaller than this run eagerly, traced or not

    @property
    def traced(self) -> bool:
        """Inference without gradients runs the traced, frozen encoder."""
        return bool(self._inference)

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, tuple[int, int] | None]:
        """(B, 3, S, S) -> tokens (B, T, C) and the (h, w) grid of the last h*w tokens."""
        if self._inference and pixel_values.shape[0] >= self.min_batch and not torch.is_grad_enabled() and not self.training:
            hidden = self._inference[0](pixel_values)
        else:
            hidden = self.model(pixel_values=pixel_values).last_hidden_state
        if hidden.dim() == 4:  # CNN: (B, C, h, w)
            B, C, h, w = hidden.shape
            return hidden.flatten(2).transpose(1, 2), (h, w)  # (B, h*w, C)
        return hidden, _grid_of(hidden.shape[1])


    @torch.no_grad()
    def optimize_for_inference(self, example: Tensor, tolerance: float = 1e-4, min_batch: int = 1) -> bool:
        """Trace and freeze the encoder for CPU inference (TorchScript): batch norm folded into the
        convolutions, oneDNN weights packed once with the ReLUs fused, instead of reordered on every call.

        Kept only when it gives the eager encoder's features on `example` (B, 3, S, S) to within
        `tolerance` (relative to their scale); otherwise, or when tracing fails, the eager encoder stays.
        Gradients (--explain, training) always run through the eager encoder, and so do batches
        under `min_batch`: which path a batch takes depends on its size alone, never on the calls
        before it, so the same batch gives the same features in every process.
        """
        import warnings

        was_training = self.model.training
        self.model.eval()
        try:
            with warnings.catch_warnings():  # the tracer's and transformers' notes are not the user's business
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(_LastHidden(self.model).eval(), example, check_trace=False)
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            eager = self.model(pixel_values=example).last_hidden_state
            fast = frozen(example)
            close = fast.shape == eager.shape and float((fast - eager).abs().max()) <= tolerance * max(float(eager.abs().max()), 1.0)
        except Exception:  # a model TorchScript cannot trace: the eager encoder is as good, only slower
            close = False
        self.model.train(was_training)
        self._inference = (frozen,) if close else ()
        self.optimized = True
        self.min_batch = min_batch
        return close


class _LastHidden(nn.Module):
    """The encoder as a function of pixels alone, for tracing."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: Tensor) -> Tensor:
        return self.model(pixel_values=pixel_values).last_hidden_state


class TextEncoder(nn.Module):
    """Token features from one or more of the encoder's hidden states, concatenated.

    layers=(-1,) is the usual last layer; (0, -1) adds the word-embedding layer, whose
    features keep each word distinct ("red" vs "orange") where contextual ones blur them.
    """

    def __init__(self, model: nn.Module, layers: tuple[int, ...] = (-1,)):
        super().__init__()
        self.model = model
        self.layers = tuple(layers)
        self.width = feature_width(getattr(model, "config")) * len(self.layers)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, C) token features."""
        if self.layers == (-1,):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return torch.cat([out.hidden_states[i] for i in self.layers], dim=-1)


def _grid_of(tokens: int, max_prefix: int = 8) -> tuple[int, int] | None:
    """ViTs put CLS (and register) tokens before a square patch grid; find that grid."""
    for prefix in range(max_prefix + 1):
        side = math.isqrt(tokens - prefix)
        if side * side == tokens - prefix and side > 1:
            return (side, side)
    return None


def load_encoder(reference: str, kind: str) -> nn.Module:
    """Load a pretrained encoder from a local folder or a hub id, safetensors only."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(reference, use_safetensors=True, trust_remote_code=False)
    return tower(model, kind)


def scratch_image_encoder(name: str) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    params = dict(SCRATCH_IMAGE_ENCODERS[name])
    config = AutoConfig.for_model(params.pop("model_type"), **params)
    return AutoModel.from_config(config)

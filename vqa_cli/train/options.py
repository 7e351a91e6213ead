"""Every `vqa train` option, declared once: its type, default and help.

The CLI builds its options from these fields (cli_parameters), and the head's defaults come
from HeadConfig, so nothing is copied field by field. No torch here: `vqa --help` imports it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Optional

from ..model.config import FUSIONS, HeadConfig

_HEAD_DEFAULTS = {f.name: f.default for f in fields(HeadConfig) if f.default is not MISSING}


def option(default, help: str, *, flag: str | None = None, cli: bool = True, **limits):
    """A training option. `flag` overrides the CLI spelling (e.g. '--x/--no-x'); limits go to typer (min=1),
    except `choices`, the only values allowed."""
    return field(default=default, metadata={"help": help, "flag": flag, "cli": cli, "limits": limits})


def head_option(name: str, help: str, **limits):
    """An option whose default is the fusion head's own (HeadConfig)."""
    return option(_HEAD_DEFAULTS[name], help, **limits)


@dataclass
class TrainOptions:
    data: str = option(None, "CSV or JSONL with image, question, answer (and optional family).", cli=False)
    out: str = option(None, "Bundle folder to write (the best by validation).", cli=False)
    image_encoder: str = option("resnet-small", "'resnet-small' (from scratch) or a pretrained HF id/folder.")
    text_encoder: str = option("sentence-transformers/all-MiniLM-L6-v2", "Pretrained HF text encoder id/folder.")
    train_image_encoder: Optional[bool] = option(
        None, "Default: train when from scratch.", flag="--train-image-encoder/--freeze-image-encoder"
    )
    train_text_encoder: bool = option(False, "Fine-tune the text encoder.", flag="--train-text-encoder/--freeze-text-encoder")
    scenes: Optional[str] = option(
        None, "Per-image annotations (the scenes.json `vqa synth` writes): object centres and attributes for the "
        "detector and the auxiliary losses. Used for training only."
    )
    image_size: int = option(128, "Side of the square input for a from-scratch encoder.", min=16)
    top_answers: Optional[int] = option(None, "Keep only the N most frequent answers.", min=1)
    epochs: int = option(10, "Passes over the training images.", min=1)
    steps: Optional[int] = option(None, "Total steps; overrides --epochs.", min=1)
    images_per_batch: int = option(32, "Images per step; each brings all its questions.", min=1)
    lr: float = option(5e-4, "Peak learning rate (AdamW, warm-up then cosine decay).")
    warmup_steps: int = option(300, "Linear warm-up steps.", min=0)
    weight_decay: float = option(0.05, "AdamW weight decay.")
    val_fraction: float = option(0.05, "Share of images held out for validation.")
    eval_every: int = option(500, "Validate (and keep the best bundle) every N steps.", min=1)
    fusion: str = head_option(
        "fusion", "How the question meets the image: cross (cross-attention blocks), early (one joint transformer, "
        "as ViLT), late (pooled vectors, product and MLP) or hybrid (stacked attention hops, as SAN).", choices=tuple(FUSIONS)
    )
    width: int = head_option("width", "Width D of the fusion head.", min=8)
    layers: int = head_option("layers", "Depth of the fusion: cross blocks, early joint layers, late question layers, hybrid hops.", min=1)
    image_layers: int = head_option("image_layers", "Self-attention blocks over image tokens.", min=0)
    heads: int = head_option("heads", "Attention heads.", min=1)
    objects: Optional[int] = option(
        None, "Object tokens per image (K), found by the head's detector. Default: 8 with --scenes, else 0.", min=0
    )
    object_layers: int = head_option("object_layers", "Distance-biased self-attention blocks among object tokens.", min=0)
    object_loss_weight: float = option(1.0, "Weight of the auxiliary per-object losses (with --scenes).")
    detection_loss_weight: float = option(1.0, "Weight of the detector's heatmap and offset losses (with --scenes).")
    text_layers: tuple[int, ...] = option(
        (-1,), "Text encoder hidden states to use, comma-separated; 0 = word embeddings, -1 = last."
    )
    seed: int = option(0, "Seed of the initialisation and of the batch order.")
    domain_name: str = option("its training data", "What the data shows, in words, for the domain guard's warnings (e.g. 'Shapes scenes').")
    device: str = option("cpu", "cpu, cuda, cuda:N, mps or auto [env: VQA_DEVICE; default: auto]", cli=False)
    keep_checkpoint: bool = option(False, "Keep OUT.checkpoint/ after finishing.", flag="--keep-checkpoint/--no-keep-checkpoint")
    init: Optional[str] = option(None, "Start from this bundle's weights (fine-tune or continue).")
    provenance: dict = field(default_factory=dict)

    @property
    def object_tokens(self) -> int:
        return self.objects if self.objects is not None else (8 if self.scenes else 0)

    def public(self) -> dict:
        """What the bundle's provenance records: every option but where and how it ran."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("provenance", "device", "keep_checkpoint")}


def cli_fields():
    """The fields the CLI exposes, in declaration order."""
    return [f for f in fields(TrainOptions) if f.metadata.get("cli")]


def parse_int_list(text: str) -> tuple[int, ...]:
    """'0,-1' -> (0, -1)."""
    return tuple(int(part) for part in text.split(","))

"""Build what training needs: preprocessing, the model with its encoders, and a frozen text cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from ..model.config import HeadConfig
from ..model.encoders import SCRATCH_IMAGE_ENCODERS, feature_width, load_encoder, scratch_image_encoder
from ..model.preprocess import Preprocessing
from ..model.vqa import VQAModel
from ..store import bundle as bundles
from ..store.hub import resolve
from .options import TrainOptions


@dataclass
class Built:
    model: VQAModel
    tokenizer: object
    from_scratch: bool  # the image encoder is trained here (and saved inside the bundle)
    train_image: bool


def preprocessing(opts: TrainOptions) -> Preprocessing:
    """A from-scratch encoder takes --image-size; a pretrained one, its own processor's size and statistics."""
    if opts.image_encoder in SCRATCH_IMAGE_ENCODERS:
        return Preprocessing(image_size=opts.image_size)
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(resolve(opts.image_encoder), trust_remote_code=False)
    side = _side(getattr(processor, "crop_size", None)) or _side(getattr(processor, "size", None))
    return Preprocessing(image_size=int(side), mean=tuple(processor.image_mean), std=tuple(processor.image_std))


def _side(size) -> int | None:
    """The square side an image processor asks for; its size is an int, a dict or a SizeDict."""
    if size is None or isinstance(size, int):
        return size
    for key in ("height", "shortest_edge"):
        value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        if value:
            return int(value)
    return None


def model(opts: TrainOptions, answers: list[str]) -> Built:
    """The encoders (from scratch or pretrained) and a fresh head seeded from opts.seed, or --init's weights."""
    from transformers import AutoTokenizer

    from_scratch = opts.image_encoder in SCRATCH_IMAGE_ENCODERS
    train_image = from_scratch if opts.train_image_encoder is None else opts.train_image_encoder
    text_source = resolve(opts.text_encoder)
    image_model = scratch_image_encoder(opts.image_encoder) if from_scratch else load_encoder(resolve(opts.image_encoder), "vision")
    text_model = load_encoder(text_source, "text")
    head = HeadConfig(
        image_dim=feature_width(image_model.config),
        text_dim=feature_width(text_model.config) * len(opts.text_layers),
        num_answers=len(answers), fusion=opts.fusion, width=opts.width, layers=opts.layers, image_layers=opts.image_layers,
        heads=opts.heads, text_layers=tuple(opts.text_layers), objects=opts.object_tokens, object_layers=opts.object_layers,
    )
    torch.manual_seed(opts.seed)
    built = VQAModel(image_model, text_model, head, answers, train_image_encoder=train_image, train_text_encoder=opts.train_text_encoder)
    if opts.init:
        initialise_from(built, opts.init)
    return Built(built, AutoTokenizer.from_pretrained(text_source, trust_remote_code=False), from_scratch, train_image)


def initialise_from(model: VQAModel, reference: str) -> None:
    """Copy a bundle's head (and trained encoders) into a fresh model of the same shape."""
    start = bundles.load(reference)
    if start.model.answers != model.answers:
        raise InputError(f"--init {reference}: its answers differ from the vocabulary of this data")
    try:
        model.load_state_dict(start.model.state_dict())
    except RuntimeError as e:
        raise InputError(f"--init {reference}: not the same architecture ({str(e).splitlines()[0]})") from None


@torch.no_grad()
def encode_questions(model: VQAModel, tokens: dict, device, batch: int = 256) -> torch.Tensor:
    """Run the frozen text encoder once per distinct question, shortest first so little is padding."""
    model.text_encoder.eval()
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    order = mask.sum(1).argsort()
    cache = torch.zeros(len(ids), ids.shape[1], model.text_encoder.width)  # (N_questions, Tq, Ct)
    for start in range(0, len(ids), batch):
        rows = order[start : start + batch]
        length = int(mask[rows].sum(1).max())
        features = model.text_features(ids[rows, :length].to(device), mask[rows, :length].to(device))
        cache[rows, :length] = features.float().cpu()
    return cache

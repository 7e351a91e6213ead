"""Turn a -m/--model value into a ready engine: a bundle, or a pretrained Hugging Face VQA model.

    shapes                         a bundle shipped in models/
    ./my-bundle                    a bundle folder (config.json with "format": "vqa-bundle/1")
    ./blip-vqa-base                a local Hugging Face BLIP or ViLT checkpoint
    Salesforce/blip-vqa-base       a hub id, from the Hugging Face cache (or downloaded when online)
    org/name@revision              the same, pinned to a branch, tag or commit
"""

from __future__ import annotations

from pathlib import Path

from . import bundle as bundles
from .errors import ModelError


def load_engine(reference: str, device: str, dtype):
    path = Path(reference).expanduser()
    if bundles.is_bundle(path) or (reference in bundles.available()):
        from .engine import Engine

        return Engine(bundles.load(reference, device, dtype), device, dtype)
    folder = _pretrained_folder(reference)
    from .backends.pretrained import ENGINES, detect_kind

    kind = detect_kind(folder)
    if kind is None:
        raise ModelError(f"{reference} is not a model vqa can run: expected a vqa bundle or a BLIP/ViLT question-answering checkpoint")
    return ENGINES[kind](folder, reference, device, dtype)


def _pretrained_folder(reference: str) -> Path:
    path = Path(reference).expanduser()
    if path.is_dir():
        return path
    if "/" not in reference or path.exists() or reference.startswith((".", "~")):
        bundles.find(reference)  # raises the "unknown model ...; available: ..." error
    from .hub import resolve

    return Path(resolve(reference))

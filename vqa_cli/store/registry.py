"""Names to models: a -m/--model value becomes a ready engine, and `vqa models` lists what is here.

    shapes                         a bundle shipped in models/
    ./my-bundle                    a bundle folder (config.json with "format": "vqa-bundle/1")
    ./blip-vqa-base                a local Hugging Face BLIP or ViLT checkpoint
    Salesforce/blip-vqa-base       a hub id, from the Hugging Face cache (or downloaded when online)
    org/name@revision              the same, pinned to a branch, tag or commit
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelError
from . import bundle as bundles


def load_engine(reference: str, device: str, dtype):
    """The engine for a -m value, loaded on `device` in `dtype`."""
    path = Path(reference).expanduser()
    if bundles.is_bundle(path) or (reference in bundles.available()):
        from ..backends.bundle import BundleEngine

        return BundleEngine(bundles.load(reference, device, dtype), device, dtype)
    folder = _pretrained_folder(reference)
    from ..backends.pretrained import ENGINES, detect_kind

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


def list_models() -> list[dict]:
    """What `vqa models` lists: the shipped bundles, then the pretrained VQA models in the cache."""
    return bundle_entries() + cached_entries()


def bundle_entries() -> list[dict]:
    entries = []
    for name, path in bundles.available().items():
        config = bundles.read_config(path)
        entries.append(
            {
                "name": name,
                "kind": config.get("kind", "cross-attention"),
                "path": str(path),
                "image_encoder": _encoder(config["image_encoder"]),
                "text_encoder": _encoder(config["text_encoder"]),
                "answers": len(config["answers"]),
                "size_bytes": bundles.size_on_disk(path),
            }
        )
    return entries


def _encoder(entry: dict) -> str:
    if entry.get("saved_inside"):
        return f"{entry.get('model_type', 'encoder')} (in bundle)"
    return entry["source"]


def cached_entries() -> list[dict]:
    """BLIP and ViLT question-answering models found in the Hugging Face cache."""
    from huggingface_hub import constants, scan_cache_dir

    from ..backends.pretrained import detect_kind

    try:
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except Exception:  # no cache folder yet, or one we cannot read
        return []
    entries = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        latest = max(repo.revisions, key=lambda r: r.last_modified)
        kind = detect_kind(Path(latest.snapshot_path))
        if kind:
            entries.append(
                {
                    "name": repo.repo_id, "kind": kind, "path": str(latest.snapshot_path),
                    "image_encoder": "built in", "text_encoder": "built in",
                    "answers": _answer_count(Path(latest.snapshot_path)), "size_bytes": repo.size_on_disk,
                }
            )
    return entries


def _answer_count(folder: Path) -> int | None:
    config = json.loads((folder / "config.json").read_text())
    labels = config.get("id2label")
    return len(labels) if config.get("model_type") == "vilt" and labels else None

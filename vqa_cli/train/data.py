"""Training data: rows, the answer vocabulary, images in memory, and per-object annotations.

Annotations (`--scenes`) are the scenes.json that `vqa synth` writes, or any file of the
same form: {"scenes": [{"image": "...", "objects": [{"x": px, "y": px, "<attribute>": "<value>", ...}]}]}.
Every string-valued field of an object is a categorical attribute. From them come the
auxiliary targets of each object: its own attributes, which half of the image it is in,
and the attributes of its nearest and of its furthest other object.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InputError
from ..io.media import image_path, load_media
from ..io.records import read_rows
from ..model.preprocess import Preprocessing


@dataclass
class ObjectAnnotations:
    centres: torch.Tensor  # (N_images, K, 2) (x, y) in [0, 1]
    mask: torch.Tensor  # (N_images, K) bool
    targets: dict[str, torch.Tensor]  # name -> (N_images, K) class index, -1 for empty slots
    classes: dict[str, list[str]]  # name -> the values, in index order
    sizes: torch.Tensor  # (N_images, 2) original (width, height) in px


@dataclass
class Dataset:
    pixels: torch.Tensor  # (N_images, 3, S, S) uint8
    question_ids: torch.Tensor  # (N_rows,) index into the distinct questions
    image_ids: torch.Tensor  # (N_rows,) index into pixels
    labels: torch.Tensor  # (N_rows,) answer index, -1 when outside the vocabulary
    families: list[str]  # (N_rows,) "" when the data has none
    rows_of_image: list[list[int]]
    questions: list[str]  # the distinct questions, as the tokenizer sees them
    objects: ObjectAnnotations | None = None


def vocabulary(answers: list[str], top: int | None = None) -> list[str]:
    """Answers by frequency (ties alphabetical), optionally only the top N."""
    ranked = sorted(Counter(answers).items(), key=lambda kv: (-kv[1], kv[0]))
    return [a for a, _ in ranked[:top] if a]


def read_training_rows(path: str) -> list[dict]:
    rows = []
    for number, row in enumerate(read_rows(path), start=1):
        missing = [c for c in ("image", "question", "answer") if not str(row.get(c) or "").strip()]
        if missing:
            raise InputError(f"{path}: row {number} has no {', '.join(missing)}")
        rows.append({k: str(v) for k, v in row.items() if v is not None})
    return rows


def load(rows: list[dict], answers: list[str], root: Path, pre: Preprocessing, progress=None) -> tuple[Dataset, list[str], list]:
    """Index rows and questions and decode every image once -> (data, image names, their (width, height))."""
    image_index: dict[str, int] = {}
    question_index: dict[str, int] = {}
    answer_index = {a: i for i, a in enumerate(answers)}
    q_ids, i_ids, labels, families = [], [], [], []
    rows_of_image: list[list[int]] = []
    for n, row in enumerate(rows):
        i = image_index.setdefault(row["image"], len(image_index))
        if i == len(rows_of_image):
            rows_of_image.append([])
        rows_of_image[i].append(n)
        q_ids.append(question_index.setdefault(pre.question(row["question"]), len(question_index)))
        i_ids.append(i)
        labels.append(answer_index.get(row["answer"], -1))
        families.append(row.get("family", ""))
    task = progress.add_task("loading images", total=len(image_index), status="") if progress else None
    pixels = torch.empty(len(image_index), 3, pre.image_size, pre.image_size, dtype=torch.uint8)
    sizes = []
    for name, i in image_index.items():
        image = load_media(image_path(name, root))
        sizes.append(image.size)
        pixels[i] = pre.to_uint8(image)
        if progress:
            progress.update(task, advance=1)
    if progress:
        progress.remove_task(task)
    data = Dataset(pixels, torch.tensor(q_ids), torch.tensor(i_ids), torch.tensor(labels), families, rows_of_image, list(question_index))
    return data, list(image_index), sizes


def read_scenes(path: str, images: list[str], sizes: list[tuple[int, int]], k: int) -> ObjectAnnotations:
    """Per-object centres and auxiliary targets for every training image, from a scenes file."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read scenes {path}: {e}") from None
    scenes = document["scenes"] if isinstance(document, dict) else document
    by_image = {str(scene.get("image")): scene.get("objects", []) for scene in scenes}
    missing = [name for name in images if name not in by_image]
    if missing:
        raise InputError(f"{path} has no scene for {len(missing)} training images, e.g. {missing[0]!r}")
    per_image = [[_object_targets(o, others, size) for o in others] for others, size in ((by_image[n], s) for n, s in zip(images, sizes))]
    largest = max((len(objects) for objects in per_image), default=0)
    if largest > k:
        raise InputError(f"a scene in {path} has {largest} objects but the head keeps {k}; pass --objects {largest}")
    names = sorted({name for objects in per_image for o in objects for name in o["targets"]})
    classes = {name: sorted({o["targets"][name] for objs in per_image for o in objs if name in o["targets"]}) for name in names}
    centres = torch.full((len(images), k, 2), 0.5)
    mask = torch.zeros(len(images), k, dtype=torch.bool)
    targets = {name: torch.full((len(images), k), -1, dtype=torch.long) for name in names}
    for i, objects in enumerate(per_image):
        for j, o in enumerate(objects):
            centres[i, j] = torch.tensor(o["centre"])
            mask[i, j] = True
            for name, value in o["targets"].items():
                targets[name][i, j] = classes[name].index(value)
    return ObjectAnnotations(centres, mask, targets, classes, torch.tensor(sizes, dtype=torch.float32))


def _object_targets(obj: dict, scene: list[dict], size: tuple[int, int]) -> dict:
    """One object's centre in [0, 1] and its categorical targets, own and relational."""
    width, height = size
    try:
        x, y = float(obj["x"]) / width, float(obj["y"]) / height
    except (KeyError, TypeError, ValueError):
        raise InputError(f"an annotated object has no numeric x and y: {obj}") from None
    own = {k: v for k, v in obj.items() if isinstance(v, str)}
    targets = {**own, "half_x": "left" if x < 0.5 else "right", "half_y": "top" if y < 0.5 else "bottom"}
    others = [o for o in scene if o is not obj]
    if others:
        distance = [math.hypot(float(o["x"]) - float(obj["x"]), float(o["y"]) - float(obj["y"])) for o in others]
        nearest, furthest = others[distance.index(min(distance))], others[distance.index(max(distance))]
        for relation, other in (("nearest", nearest), ("furthest", furthest)):
            targets.update({f"{relation}_{k}": v for k, v in other.items() if isinstance(v, str)})
    return {"centre": (x, y), "targets": targets}


def split(n_images: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training image ids, validation image ids), drawn from the seed."""
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(n_images * fraction)) if n_images > 1 else 0
    return order[n_val:], order[:n_val]

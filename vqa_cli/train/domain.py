"""Domain statistics for a bundle, from its training data: at the end of `vqa train`, or with `vqa domain`.

The images and questions of the training split give the statistics; those of the held-out
split (the same split as training's validation) set the thresholds (model/domain.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..io.media import image_path, load_media
from ..io.records import read_rows
from ..model.domain import Domain, fit, pool_image, pool_question
from ..store import bundle as bundles
from .data import split

MAX_IMAGES = 4000  # training images sampled for the statistics


@torch.inference_mode()
def fit_bundle(path: str, data: str, description: str, *, val_fraction: float = 0.05, seed: int = 0, batch: int = 64,
               command: str | None = None) -> Domain:
    """Compute and save the domain statistics of the bundle at `path` from the rows of `data`."""
    from ..backends.bundle import BundleEngine

    engine = BundleEngine(bundles.load(path), "cpu", torch.float32)
    root = Path(data).parent if data != "-" else Path.cwd()
    questions_of: dict[str, list[str]] = {}
    for row in read_rows(data):
        questions_of.setdefault(str(row["image"]), []).append(str(row["question"]))
    names = list(questions_of)
    train_ids, held_ids = split(len(names), val_fraction, seed)
    train_ids = train_ids[torch.randperm(len(train_ids), generator=torch.Generator().manual_seed(seed))[:MAX_IMAGES]]

    def images(ids) -> torch.Tensor:
        pooled = []
        for start in range(0, len(ids), batch):
            chunk = [load_media(image_path(names[i], root)) for i in ids[start : start + batch].tolist()]
            embeds = engine.encode_images(chunk)
            pooled.append(pool_image(embeds.tokens, embeds.grid, embeds.prefix))
        return torch.cat(pooled)

    def questions(ids) -> torch.Tensor:
        texts = list(dict.fromkeys(engine.bundle.preprocessing.question(q) for i in ids.tolist() for q in questions_of[names[i]]))
        return torch.cat([pool_question(*engine.question_features(texts[s : s + 256])) for s in range(0, len(texts), 256)])

    domain = fit(images(train_ids), images(held_ids), questions(train_ids), questions(held_ids), description, seed)
    bundles.save_domain(Path(path), domain, command)
    return domain

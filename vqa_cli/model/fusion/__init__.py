"""How the question meets the image: four fusion strategies behind one interface.

HeadConfig.fusion names one (`vqa train --fusion`); each is a module of its own here:
    cross   the question's tokens cross-attend to the image, block after block (the default)
    early   one transformer over [CLS; question; image] tokens together, as ViLT does
    late    each side pooled to a vector on its own, joined by a product and an MLP
    hybrid  stacked attention hops from the pooled question (SAN), joined as late fusion is

Every fusion is called as fusion(text, text_mask, image, image_index, need_looks):
    text (Bq, Tq, D) and text_mask (Bq, Tq) from the head's text side, image an ImageEmbeds of
    Bi images, image_index (Bq,) the image of each question (None: image i for question i),
    need_looks whether to return the looks it took at the image (embeds.Look, for --explain);
and returns (states, mask, looks): the states the answer is read from, (Bq, T, D), their
(Bq, T) mask, and the looks in the order they were taken (empty unless asked for).
"""

from __future__ import annotations

from importlib import import_module

from ..config import FUSIONS, HeadConfig

_CLASSES = {"cross": "CrossFusion", "early": "EarlyFusion", "late": "LateFusion", "hybrid": "HybridFusion"}
assert tuple(_CLASSES) == tuple(FUSIONS)


def build_fusion(cfg: HeadConfig):
    if cfg.fusion not in _CLASSES:
        raise ValueError(f"unknown fusion {cfg.fusion!r}; expected one of {', '.join(FUSIONS)}")
    return getattr(import_module(f".{cfg.fusion}", __name__), _CLASSES[cfg.fusion])(cfg)

"""Hyper-parameters of the fusion head. They are saved in a bundle's config.json under "head"."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# How the question meets the image (model/fusion/), and the "kind" a bundle of each reports.
FUSIONS = {"cross": "cross-attention", "early": "early-fusion", "late": "late-fusion", "hybrid": "hybrid-fusion"}


@dataclass
class HeadConfig:
    image_dim: int  # width of the image encoder's features (channels for a CNN, hidden size for a ViT)
    text_dim: int  # width of the text features: the text encoder's hidden size times len(text_layers)
    num_answers: int  # size of the answer vocabulary
    width: int = 128  # D: the common width both encoders are projected to
    heads: int = 4  # H: attention heads in every attention layer
    fusion: str = "cross"  # one of FUSIONS; bundles from before there was a choice are "cross"
    layers: int = 3  # depth of the fusion: cross blocks, early joint layers, late question layers, hybrid hops
    image_layers: int = 2  # self-attention blocks over the image tokens first, so objects can relate to each other
    text_layers: tuple[int, ...] = (-1,)  # text encoder hidden states to concatenate; 0 is the word embeddings
    objects: int = 0  # K: object tokens found on the grid by the head's detector; 0 = grid tokens only
    object_layers: int = 2  # self-attention blocks among the object tokens, biased by their pairwise distances

    def to_dict(self) -> dict:
        """What config.json's "head" holds. Bundles made with more fields (dropout, registers, ...) load:
        from_dict ignores what no longer varies."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "HeadConfig":
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)

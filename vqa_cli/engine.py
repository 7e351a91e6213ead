"""Answer questions with a loaded bundle: encode each image once, then fuse its questions in batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .bundle import Bundle
from .device import dtype_name
from .errors import InputError


@dataclass
class Answer:
    question: str
    answer: str
    score: float
    top_k: list[dict] = field(default_factory=list)  # [{"answer": str, "score": float}], best first
    attention: list[list[float]] | None = None  # (h, w) relevance map in [0, 1], with --explain


def score(value: float) -> float:
    """Scores keep 6 significant digits: short JSON, and tiny probabilities do not round to 0."""
    return float(f"{value:.6g}")


def check_question(question: str) -> str:
    text = question.strip()
    if not text:
        raise InputError("empty question")
    return text


def ranked_answers(questions: list[str], probs: torch.Tensor, labels, top_k: int) -> list[Answer]:
    """(Bq, A) answer probabilities -> one Answer per question with its top_k, best first."""
    k = max(1, min(top_k, probs.shape[-1]))
    scores, indices = probs.topk(k, dim=-1)
    results = []
    for question, row_scores, row_indices in zip(questions, scores.tolist(), indices.tolist()):
        ranked = [{"answer": labels[i], "score": score(s)} for s, i in zip(row_scores, row_indices)]
        results.append(Answer(question, ranked[0]["answer"], ranked[0]["score"], ranked))
    return results


class DeviceEngine:
    """What every engine shares: where it runs and in which dtype."""

    def __init__(self, device: str, dtype):
        self.device = device
        self.dtype = dtype

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.dtype)


class Engine(DeviceEngine):
    """A bundle on a device, ready to answer."""

    def __init__(self, bundle: Bundle, device: str, dtype):
        super().__init__(device, dtype)
        self.bundle = bundle
        self.model = bundle.model

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def grid_offset(self) -> tuple[float, float]:
        """Shift of the image grid's cell centres (see explain.grid_offset), measured once."""
        if not hasattr(self, "_grid_offset"):
            from .explain import grid_offset

            self._grid_offset = grid_offset(self.model, self.bundle.preprocessing.image_size)
        return self._grid_offset

    @property
    def model_info(self) -> dict:
        return {"name": self.bundle.name, "kind": self.bundle.config.get("kind", "cross-attention"), "path": str(self.bundle.path)}

    @torch.inference_mode()
    def encode_images(self, images: list) -> "object":
        """PIL RGB images -> ImageEmbeds for all of them, in one forward pass."""
        pre = self.bundle.preprocessing
        pixels = torch.stack([pre.to_uint8(image) for image in images]).to(self.device)
        return self.model.encode_image(pre.normalize(pixels).to(self.dtype))

    @torch.inference_mode()
    def answer(
        self, image_embeds, questions: list[str], image_index: list[int] | None = None, top_k: int = 1, explain: bool = False
    ) -> list[Answer]:
        """Answer questions about already-encoded images; question i is about image image_index[i].

        With explain, each answer also carries the relevance map of the image grid (see explain.py).
        """
        if not questions:
            return []
        tokens = self.bundle.tokenizer(
            [q.lower() for q in questions],
            padding=True,
            truncation=True,
            max_length=self.bundle.preprocessing.max_question_tokens,
            return_tensors="pt",
        ).to(self.device)
        index = torch.tensor(image_index if image_index is not None else [0] * len(questions), device=self.device)
        text = self.model.encode_text(tokens["input_ids"], tokens["attention_mask"])
        logits = self.model.answer(text, tokens["attention_mask"], image_embeds, index).logits
        answers = ranked_answers(questions, logits.float().softmax(-1), self.model.answers, top_k)
        if explain:
            from .explain import relevance_maps

            maps = relevance_maps(self.model, text, tokens["attention_mask"], image_embeds, index, logits.argmax(-1))
            for answer, heatmap in zip(answers, maps.tolist()):
                answer.attention = [[round(v, 4) for v in row] for row in heatmap]
        return answers

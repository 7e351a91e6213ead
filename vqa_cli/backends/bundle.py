"""Our own bundles behind the Engine protocol: encode each image once, fuse its questions in batches.

Batch files usually ask the same few questions of many images, and the text encoder is
then most of the cost; so each distinct question is encoded once per process and kept in a
bounded LRU cache of its head features.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict

import torch

from ..errors import env_limit
from ..model.domain import pool_image, pool_question
from ..model.explain import grid_offset, relevance_maps
from ..store import bundle as bundles
from ..store.bundle import Bundle
from .base import Answer, DeviceEngine, chosen, ranked_answers, vocabulary_indices

FAST_ENCODER_BATCH = 8  # images in one call that make tracing the CNN for inference pay (batch runs, not `vqa ask`)
QUESTION_BATCH = 16  # the one batch shape questions are encoded in (see BundleEngine._encode_questions)
QUESTION_CACHE_BYTES = 256 * 2**20  # the question cache's ceiling, counted on its tensors; VQA_QUESTION_CACHE_MB overrides it


CLASSIFIES = "it chooses among a fixed vocabulary of answers; it does not generate them"

class BundleEngine(DeviceEngine):
    """A bundle on a device, ready to answer."""

    def __init__(self, bundle: Bundle, device: str, dtype, cache_bytes: int | None = None):
        super().__init__(device, dtype)
        self.bundle = bundle
        self.model = bundle.model
        self.cache_bytes = cache_bytes if cache_bytes is not None else env_limit("VQA_QUESTION_CACHE_MB", QUESTION_CACHE_BYTES // 2**20) * 2**20
        self._cached_bytes = 0
        self._questions: OrderedDict[str, torch.Tensor] = OrderedDict()  # question -> (L, D) head features
        self._lock = threading.Lock()
        self._grid_offset: tuple[float, float] | None = None
        self._trace = device == "cpu" and dtype == torch.float32  # the TorchScript path is for fp32 on the CPU
        if self.model.config.fusion == "late":
            self.capabilities = frozenset()
            self.why_not = {"explain": "late fusion has no attention between the question and the image", "generate": CLASSIFIES}
        else:
            self.capabilities = frozenset({"explain"})
            self.why_not = {"generate": CLASSIFIES}

    @property
    def cached_bytes(self) -> int:
        """What the question cache holds now, in bytes (at most cache_bytes)."""
        return self._cached_bytes

    def clear_cache(self) -> None:
        """Forget every cached question (benchmarks start cold with it)."""
        with self._lock:
            self._questions.clear()
            self._cached_bytes = 0

    @classmethod
    def load(cls, folder, reference: str, device: str, dtype) -> "BundleEngine":
        return cls(bundles.load(str(folder), device, dtype), device, dtype)

    def session(self) -> "BundleEngine":
        """The same model with an empty question cache of its own.

        A question's features are computed with whichever new questions arrive in the same
        call, and floating-point sums depend a little on that company. Replaying one
        process's calls through a fresh session therefore gives it the very same scores,
        which is how a server reproduces a local run byte for byte.
        """
        view = copy.copy(self)
        view._questions, view._lock, view._cached_bytes = OrderedDict(), threading.Lock(), 0
        return view

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def model_info(self) -> dict:
        return {"name": self.bundle.name, "kind": self.bundle.config.get("kind", "cross-attention"), "path": str(self.bundle.path)}

    @property
    def grid_offset(self) -> tuple[float, float]:
        """Shift of the image grid's cell centres (see model/explain.grid_offset), measured once."""
        if self._grid_offset is None:
            self._grid_offset = grid_offset(self.model, self.bundle.preprocessing.image_size)
        return self._grid_offset

    def prepare(self, image) -> torch.Tensor:
        """A PIL image -> its (3, S, S) uint8 pixels at the model's size, in the reading thread."""
        return image if isinstance(image, torch.Tensor) else self.bundle.preprocessing.to_uint8(image)

    def check_choices(self, choices: tuple[str, ...]) -> None:
        """An InputError unless every choice is an answer this model can give."""
        vocabulary_indices(choices, self.model.answers, self.name)

    @torch.inference_mode()
    def encode_images(self, images: list):
        """PIL RGB images -> ImageEmbeds for all of them, in one forward pass.

        The first call with FAST_ENCODER_BATCH or more images (a batch run) traces the image
        encoder for inference first (model/encoders.ImageEncoder.optimize_for_inference); from
        then on calls with that many images run traced, and smaller ones eagerly, as before."""
        pixels = self.bundle.preprocessing.pixels(images).to(self.device, self.dtype)  # PIL images or prepared pixels
        encoder = self.model.image_encoder
        if self._trace and not encoder.optimized and len(images) >= FAST_ENCODER_BATCH:
            with self._lock:
                if not encoder.optimized:
                    encoder.optimize_for_inference(pixels, min_batch=FAST_ENCODER_BATCH)
        return self.model.encode_image(pixels)

    def _encode_questions(self, questions: list[str]) -> dict[str, torch.Tensor]:
        """{question: its (T, D) features}, each the same whatever other questions are encoded with it.

        Matrix products give results that depend, in their last bits, on the batch's shape. So
        questions are encoded in batches of one shape only: QUESTION_BATCH rows of the same token
        length, with no padding (a short batch repeats its last question). A question's features
        then depend on the question alone, in every process: a Ray run gives the same records
        whatever its number of workers, and a server the same as a local run."""
        tokens = self.bundle.preprocessing.tokenize(self.bundle.tokenizer, questions).to(self.device)
        lengths = tokens["attention_mask"].sum(1).tolist()
        by_length: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            by_length.setdefault(n, []).append(i)
        fresh = {}
        for n, members in by_length.items():
            for start in range(0, len(members), QUESTION_BATCH):
                rows = members[start : start + QUESTION_BATCH]
                full = rows + rows[-1:] * (QUESTION_BATCH - len(rows))  # (QUESTION_BATCH,)
                features = self.model.encode_text(tokens["input_ids"][full, :n], tokens["attention_mask"][full, :n])  # (QB, n, D)
                fresh.update({questions[i]: features[k].clone() for k, i in enumerate(rows)})
        return fresh

    @torch.inference_mode()
    def question_features(self, questions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(Bq, Tq, D) head features of the questions and their (Bq, Tq) mask, from the cache where possible."""
        with self._lock:
            known = {q: self._questions[q] for q in dict.fromkeys(questions) if q in self._questions}
            for q in known:
                self._questions.move_to_end(q)
        new = [q for q in dict.fromkeys(questions) if q not in known]
        if new:
            fresh = self._encode_questions(new)
            known.update(fresh)
            with self._lock:
                for question, tensor in fresh.items():
                    if question not in self._questions:
                        self._questions[question] = tensor
                        self._cached_bytes += _size(question, tensor)
                while self._questions and self._cached_bytes > self.cache_bytes:
                    question, tensor = self._questions.popitem(last=False)
                    self._cached_bytes -= _size(question, tensor)
        rows = [known[q] for q in questions]
        length = max(len(r) for r in rows)
        text = rows[0].new_zeros(len(rows), length, rows[0].shape[-1])  # (Bq, Tq, D)
        mask = torch.zeros(len(rows), length, dtype=torch.bool, device=text.device)  # (Bq, Tq)
        for i, r in enumerate(rows):
            text[i, : len(r)] = r
            mask[i, : len(r)] = True
        return text, mask

    @property
    def domain(self) -> str | None:
        """What the model knows, in words, when the bundle has domain statistics."""
        return self.bundle.domain.description if self.bundle.domain is not None else None

    def _judge(self, answers: list[Answer], images, index, text, mask) -> None:
        """Mark each answer's image and question as in or out of the training domain (model/domain.py)."""
        domain = self.bundle.domain
        if domain is None:
            return
        image_ok = domain.images_in_domain(pool_image(images.tokens, images.grid, images.prefix))  # per image
        question_ok = domain.questions_in_domain(pool_question(text, mask))
        for answer, i, ok in zip(answers, index.tolist(), question_ok):
            answer.image_in_domain, answer.question_in_domain = image_ok[i], ok

    @torch.inference_mode()
    def answer(self, images, questions: list[str], image_index: list[int] | None = None, top_k: int = 1, explain: bool = False,
               choices: list | None = None) -> list[Answer]:
        """Answer questions about already-encoded images; question i is about image image_index[i].

        With explain, each answer also carries the relevance map of the image grid (see model/explain.py).
        With choices[i], question i is answered among those: the softmax restricted to them.
        """
        if not questions:
            return []
        text, mask = self.question_features(questions)
        index = torch.tensor(image_index if image_index is not None else [0] * len(questions), device=self.device)
        logits = self.model.answer(text, mask, images, index).logits  # (Bq, A)
        answers = ranked_answers(questions, logits.float().softmax(-1), self.model.answers, top_k)
        for i, options in enumerate(choices or []):
            if options:
                columns = vocabulary_indices(options, self.model.answers, self.name)
                answers[i] = chosen(questions[i], dict(zip(options, logits[i, columns].double().tolist())))
        self._judge(answers, images, index, text, mask)
        if explain:
            maps = relevance_maps(self.model, text, mask, images, index, logits.argmax(-1), self.grid_offset)
            for answer, heatmap in zip(answers, maps.tolist()):
                answer.attention = [[round(v, 4) for v in row] for row in heatmap]
        return answers


def _size(question: str, features: torch.Tensor) -> int:
    """What one cache entry holds: its features and its text (the dictionary's own overhead is small beside them)."""
    return features.numel() * features.element_size() + len(question.encode("utf-8", "surrogatepass"))

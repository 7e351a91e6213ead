"""The Engine protocol every model runs behind, and the Answer it gives.

An engine encodes images once (`encode_images`) and then answers any number of questions
about them (`answer`): the split that makes asking many questions of one image cheap.
Our bundles (bundle.py) and the pretrained BLIP and ViLT checkpoints (pretrained.py)
implement it; the answering stream (run/stream.py) is written against it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import InputError, ModelError, UsageError

# What an engine may be able to do beyond answering, and how a refusal words it.
CAPABILITIES = {
    "explain": "draw where it looked (--explain)",
    "generate": "take --instruction, --max-tokens, --temperature or --seed",
}


@dataclass(frozen=True)
class Generation:
    """How an engine that generates its answers generates them (the "generate" capability)."""

    instruction: str | None = None  # None: the engine's short-answer instruction; "": the question alone
    max_tokens: int | None = None  # new tokens at most per answer; None: the engine's default
    temperature: float = 0.0  # 0: greedy, deterministic
    seed: int | None = None  # with a temperature: the same samples on every run

    def is_default(self) -> bool:
        return self == Generation()


@dataclass
class Answer:
    question: str
    answer: str
    score: float
    top_k: list[dict] = field(default_factory=list)  # [{"answer": str, "score": float}], best first
    attention: list[list[float]] | None = None  # (h, w) relevance map in [0, 1], with --explain
    image_in_domain: bool | None = None  # None: the model has no domain statistics (BLIP, ViLT, older bundles)
    question_in_domain: bool | None = None


@runtime_checkable
class Engine(Protocol):
    """A model on a device, ready to answer."""

    @property
    def name(self) -> str: ...

    @property
    def model_info(self) -> dict:
        """{"name", "kind", "path"}: what `vqa ask --json` reports as "model"."""
        ...

    device: str
    dtype: Any  # a torch dtype
    capabilities: frozenset  # names from CAPABILITIES
    why_not: dict  # capability -> why the engine lacks it
    domain: str | None  # what the model knows, in words, when it can tell what lies outside it

    @property
    def dtype_name(self) -> str: ...

    def prepare(self, image) -> Any:
        """A decoded image -> what encode_images takes: per-image work the reading thread can do ahead.

        Idempotent: what it returns, given again, comes back as it is."""
        ...

    def encode_images(self, images: list) -> Any:
        """PIL RGB images (or what `prepare` made of them) -> an opaque state holding all of them, for `answer`."""
        ...

    def answer(
        self, images: Any, questions: list[str], image_index: list[int] | None = None, top_k: int = 1, explain: bool = False
    ) -> list[Answer]:
        """One Answer per question; question i is about image image_index[i] of `images` (default 0)."""
        ...


class DeviceEngine:
    """What every engine shares: where it runs and in which dtype."""

    domain: str | None = None  # what the model knows, in words, when it can tell what lies outside it
    capabilities: frozenset = frozenset()
    why_not: dict = {}  # capability -> why this engine lacks it, for the refusal

    def __init__(self, device: str, dtype):
        self.device = device
        self.dtype = dtype

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def session(self):
        """An engine whose answers depend only on the calls made through it (see BundleEngine.session)."""
        return self

    def prepare(self, image):
        """Nothing to do ahead of the model unless an engine says so: the image as it is."""
        return image


def require(engine, capability: str) -> None:
    """The one refusal for a capability an engine lacks: which model, what it cannot do, and why."""
    if capability in engine.capabilities:
        return
    reason = engine.why_not.get(capability)
    raise ModelError(f"{engine.name} cannot {CAPABILITIES[capability]}" + (f": {reason}" if reason else ""))


def configure(engine, generation: Generation):
    """The engine, set to generate as asked; options other than the defaults are a usage error for
    an engine that does not generate its answers."""
    if generation.is_default():
        return engine
    if "generate" not in engine.capabilities:
        reason = engine.why_not.get("generate") or "it does not generate its answers"
        raise UsageError(f"{engine.name} cannot {CAPABILITIES['generate']}: {reason}")
    engine.configure(generation)
    return engine


def score(value: float) -> float:
    """Scores keep 6 significant digits: short JSON, and tiny probabilities do not round to 0."""
    return float(f"{value:.6g}")


def check_question(question: str) -> str:
    """The question, trimmed; an empty one, or one that is not valid Unicode text (a lone surrogate), is an InputError."""
    if not isinstance(question, str):
        raise InputError(f"a question must be text, not {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InputError("empty question")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"question {text!r} is not valid UTF-8 text (invalid bytes or a lone surrogate)") from None
    return text


def parse_choices(items, separator: str | None = None) -> tuple[str, ...]:
    """Choices from a list, or a string split on `separator`: trimmed, repeats dropped, in order;
    none, or an empty one, is an InputError."""
    if isinstance(items, str):
        items = items.split(separator) if separator else [items]
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise InputError("choices must be text: a list of strings, or one string separated by |")
    choices = tuple(dict.fromkeys(item.strip() for item in items))
    if not choices or "" in choices:
        raise InputError(f"choices must be non-empty text, not {list(items)!r}")
    return choices


def chosen(question: str, logscores: dict[str, float]) -> Answer:
    """An Answer among choices from each choice's log-score: the softmax over the set (summed in
    sorted order, so the order the choices came in changes nothing), best first."""
    import math

    names = sorted(logscores)
    top = max(logscores[c] for c in names)
    weights = {c: math.exp(logscores[c] - top) for c in names}
    total = math.fsum(weights[c] for c in names)
    ranked = sorted(names, key=lambda c: (-weights[c], c))
    listed = [{"answer": c, "score": score(weights[c] / total)} for c in ranked]
    return Answer(question, listed[0]["answer"], listed[0]["score"], listed)


def vocabulary_indices(choices: tuple[str, ...], labels: list[str], model: str) -> list[int]:
    """Each choice's place in a classifier's answer vocabulary (matched trimmed and in lower case);
    a choice the model cannot give is an InputError naming it, and the valid ones when they are few."""
    index = {str(label).strip().lower(): n for n, label in enumerate(labels)}
    unknown = [c for c in choices if c.strip().lower() not in index]
    if unknown:
        known = f"; it knows: {', '.join(map(str, labels))}" if len(labels) <= 40 else f" (of its {len(labels)} answers)"
        raise InputError(f"{model} cannot answer {', '.join(map(repr, unknown))}: not in its answer vocabulary{known}")
    return [index[c.strip().lower()] for c in choices]


def ranked_answers(questions: list[str], probs, labels, top_k: int) -> list[Answer]:
    """(Bq, A) answer probabilities -> one Answer per question with its top_k, best first."""
    k = max(1, min(top_k, probs.shape[-1]))
    scores, indices = probs.topk(k, dim=-1)
    results = []
    for question, row_scores, row_indices in zip(questions, scores.tolist(), indices.tolist()):
        ranked = [{"answer": labels[i], "score": score(s)} for s, i in zip(row_scores, row_indices)]
        results.append(Answer(question, ranked[0]["answer"], ranked[0]["score"], ranked))
    return results

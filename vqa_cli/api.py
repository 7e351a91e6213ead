"""The Python API behind `vqa_cli.load`: an engine that answers through the same stream as `vqa ask`."""

from __future__ import annotations

from .backends.base import Answer, check_question, parse_choices
from .io.media import load_media
from .io.video import Sampling
from .run.stream import answer_image


class Engine:
    """A loaded model. `ask` answers questions about one image; the image is encoded once."""

    def __init__(self, engine):
        self.engine = engine  # the backend's engine (backends/), for what the API does not cover

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def model_info(self) -> dict:
        """{"name", "kind", "path"}, as `vqa ask --json` reports it."""
        return self.engine.model_info

    @property
    def device(self) -> str:
        return self.engine.device

    def ask(self, image, questions: str | list[str], top_k: int = 1, choices: list[str] | None = None,
            fps: float = 1.0, max_frames: int = 64, start: float = 0.0, end: float | None = None) -> list[Answer]:
        """One Answer per question, in order. image: a path, a URI, '-', bytes or a PIL image.
        With choices, each answer is one of them, its score a probability over the set.
        A video is answered at `fps` frames per second (at most max_frames, from start to end):
        each answer is then a VideoAnswer, with `frames`, `segments` and `video`.

        >>> engine.ask("samples/scene_1.png", "what shape is the red object?")[0].answer
        'square'
        """
        texts = [check_question(q) for q in ([questions] if isinstance(questions, str) else questions)]
        among = parse_choices(choices) if choices is not None else None
        media = load_media(image, video=Sampling(fps, max_frames, start, end))
        return answer_image(self.engine, media, texts, top_k=max(1, int(top_k)), choices=among)

    def __repr__(self) -> str:
        return f"<vqa_cli Engine {self.name} ({self.model_info['kind']}) on {self.device}>"


def load(model: str = "shapes", device: str = "auto", dtype: str = "auto") -> Engine:
    from .backends.registry import load_engine

    return Engine(load_engine(model, device, dtype))

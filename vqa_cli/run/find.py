"""`vqa find`: images ranked by the probability of an answer to one question, streamed.

Every image goes through the answering stream (read ahead, each encoded once) with the
question and its choices; an image's score is the probability of the wanted answer among
the choices (a video's: the highest of its frames'). Memory stays flat: with a threshold every match is written as it comes, and
without one only the best `top` are kept.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .stream import Request, answer_stream


@dataclass(frozen=True)
class FindOptions:
    question: str
    answer: str  # the answer whose probability ranks the images
    choices: tuple[str, ...]  # answered among these; `answer` is one of them
    top: int = 10  # without a threshold: the best this many
    threshold: float | None = None  # with one: every image at or above it, in input order
    batch_size: int = 64


@dataclass
class Found:
    image: str
    score: float | None = None
    error: str | None = None


def find(engine: Callable[[], object], images: Iterable[str], opts: FindOptions, advance: Callable[[int], None] = lambda n: None) -> Iterator[Found]:
    """Found images: with a threshold, each match (and each failure) as it comes, in input order;
    without one, each failure as it comes, then the best `top`, best first."""
    requests = (Request(image, opts.question, choices=opts.choices) for image in images)
    best: list[tuple[float, int, str]] = []  # a min-heap of (score, -position, image): ties keep input order
    position = 0
    for window in answer_stream(engine, requests, batch_size=opts.batch_size):
        for request, answer in window:
            position += 1
            if answer is None:
                yield Found(request.image, error=request.error)
                continue
            if getattr(answer, "frames", None):  # a video answered frame by frame: where the answer is likeliest
                score = answer.peak(opts.answer)
            else:
                score = next(r["score"] for r in answer.top_k if r["answer"] == opts.answer)
            if opts.threshold is not None:
                if score >= opts.threshold:
                    yield Found(request.image, score)
            elif len(best) < opts.top:
                heapq.heappush(best, (score, -position, request.image))
            else:
                heapq.heappushpop(best, (score, -position, request.image))
        advance(len(window))
    for score, _, image in sorted(best, reverse=True):
        yield Found(image, score)

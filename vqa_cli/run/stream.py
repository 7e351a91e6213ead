"""The one answering path: a stream of (image, question) requests in, answers out, in input order.

Every front door uses it: `vqa ask` (answer_image), `vqa batch`, `vqa eval`, and the
engines that serve or scale out.

    reader thread:  requests -> windows of requests, each distinct image decoded once
    caller thread:  each window -> grouped by image, each image encoded once, its
                    questions fused in batches of `batch_size`
    output:         (request, answer) pairs in input order, as each window is done

A video is its sampled frames: each frame is encoded once and answered as an image, and
the frames' answers become the question's timeline (timeline.py). An engine with the
"video" capability takes the frames whole instead, as one input.

Memory is bounded by the window size (in requests, and in decoded frames) and the
prefetch depth, never by the input length. A request whose image cannot be decoded comes
back with its `error` set and no answer.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ..backends.base import require
from ..errors import InputError, UsageError, VQAError
from ..io.media import load_media
from ..io.video import Video
from .timeline import video_answer, whole_video_answer

WINDOW = 256  # requests read ahead and grouped by image
FRAME_BUDGET = 512  # decoded images (a video counts its frames) a window holds at most


@dataclass
class Request:
    image: str  # where the image is: a resolved path, or a key `load` understands
    question: str
    error: str | None = None  # set for a request that cannot be answered; it is passed through
    data: Any = None  # the caller's own (its input row); untouched
    choices: tuple[str, ...] | None = None  # answer among these (--choices) instead of freely


def answer_stream(
    engine: Callable[[], Any],
    requests: Iterable[Request],
    *,
    top_k: int = 1,
    batch_size: int = 64,
    window: int = WINDOW,
    load: Callable[[str], Any] = load_media,
    prefetch: int = 2,
    explain: bool = False,
) -> Iterator[list[tuple[Request, Any]]]:
    """Answer every request; yields each window's (request, Answer or None) pairs, in input order.

    `engine` is called once, when the first answerable request arrives, so a stream of bad
    rows never loads a model. From then on the reading thread also does the engine's own
    per-image work (Engine.prepare: resizing, for our bundles) ahead of the model.
    """
    loaded = None
    prepare: list = []  # [engine.prepare] once the engine is loaded; read by the reading thread

    def load_and_prepare(source: str):
        media = load(source)
        return prepared(media, prepare[0]) if prepare else media

    for batch, images in _prefetch(requests, window, load_and_prepare, prefetch):
        if loaded is None and any(r.error is None for r in batch):
            loaded = engine()
            if explain:
                require(loaded, "explain")
            prepare.append(loaded.prepare)
        if loaded is not None:
            _prepare_window(images, loaded.prepare)  # windows read before the engine existed; prepare is idempotent
        yield answer_window(loaded, batch, images, top_k, batch_size, explain)


def answer_image(engine, image, questions: list[str], *, top_k: int = 1, explain: bool = False,
                 choices: tuple[str, ...] | None = None) -> list:
    """`vqa ask` and the Python API: every question about one decoded image (or Video), through the same stream.

    A question that cannot be answered raises its error (one image, one answer per question)."""
    requests = [Request("image", question, choices=choices) for question in questions]
    windows = answer_stream(lambda: engine, requests, top_k=top_k, load=lambda _: image, explain=explain)
    answered = [pair for window in windows for pair in window]
    for request, answer in answered:
        if answer is None:
            raise InputError(f"question {request.question!r}: {request.error}")
    return [answer for _, answer in answered]


def answer_window(engine, batch: list[Request], images: dict, top_k: int, batch_size: int, explain: bool = False) -> list[tuple[Request, Any]]:
    """One window's answers, in input order. Requests that share an image share its encoding;
    a video's frames are answered as images, each encoded once for all its questions.

    What fails for one image or one question fails that request alone: a pass that raises is
    redone one image (or one question) at a time, and only the ones that still fail get an error.
    """
    for request in batch:
        if request.error is None and isinstance(images.get(request.image), Exception):
            request.error = str(images[request.image])
    whole = "video" in getattr(engine, "capabilities", ())
    asked, images = _frames_asked(batch, images, by_frame=not whole)
    answers = _answered_requests(engine, asked, images, top_k, batch_size, explain)
    return [(request, answer) for request, answer in zip(batch, _folded(batch, asked, answers, images, whole))]


def _frames_asked(batch: list[Request], images: dict, by_frame: bool) -> tuple[list[Request], dict]:
    """The requests as the model answers them, each knowing its place in `batch`; by_frame: a video's
    request becomes one request per sampled frame."""
    asked, frames = [], {}
    for n, request in enumerate(batch):
        media = images.get(request.image)
        if by_frame and request.error is None and isinstance(media, Video):
            for i, frame in enumerate(media.frames):
                key = f"{request.image}#{i}"
                frames[key] = frame
                asked.append(Request(key, request.question, data=n, choices=request.choices))
        else:
            asked.append(Request(request.image, request.question, request.error, n, request.choices))
    return asked, {**images, **frames}


def _folded(batch: list[Request], asked: list[Request], answers: dict[int, Any], images: dict, whole: bool) -> list:
    """Each request's answer: a video's frames' answers become its timeline; a failed frame fails the request."""
    per_request: dict[int, list[tuple[Request, Any]]] = {}
    for k, sub in enumerate(asked):
        per_request.setdefault(sub.data, []).append((sub, answers.get(k)))
    out = []
    for n, request in enumerate(batch):
        parts = per_request[n]
        failed = next((sub.error for sub, answer in parts if answer is None), None)
        media = images.get(request.image)
        if failed is not None or request.error is not None:
            request.error = request.error or failed
            out.append(None)
        elif isinstance(media, Video) and whole:
            out.append(whole_video_answer(parts[0][1], media.info()))
        elif isinstance(media, Video):
            out.append(video_answer(request.question, media.info(), media.times, [answer for _, answer in parts], media.until))
        else:
            out.append(parts[0][1])
    return out


def _answered_requests(engine, batch: list[Request], images: dict, top_k: int, batch_size: int, explain: bool) -> dict[int, Any]:
    """{request number: Answer} for the requests without an error, grouped by image."""
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for n, request in enumerate(batch):
        if request.error is None:
            groups.setdefault(request.image, []).append(n)
    answers: dict[int, Any] = {}
    group_list = list(groups.items())
    for start in range(0, len(group_list), batch_size):
        chunk = group_list[start : start + batch_size]  # at most batch_size images per forward pass
        for embeds, members in _encoded(engine, chunk, images, batch):
            for first in range(0, len(members), batch_size):
                part = members[first : first + batch_size]
                answers.update(_answered(engine, embeds, part, batch, top_k, explain))
    return answers


def _encoded(engine, chunk: list[tuple[str, list[int]]], images: dict, batch: list[Request]):
    """(embeds, [(image row, request number)]) for a chunk of images: one pass, or one per image when the pass fails."""
    try:
        embeds = engine.encode_images([images[image] for image, _ in chunk])
        return [(embeds, [(i, n) for i, (_, ns) in enumerate(chunk) for n in ns])]
    except Exception as e:
        if len(chunk) == 1:
            for n in chunk[0][1]:
                batch[n].error = _failure("cannot encode the image", e)
            return []
    return [pair for single in chunk for pair in _encoded(engine, [single], images, batch)]


def _answered(engine, embeds, part: list[tuple[int, int]], batch: list[Request], top_k: int, explain: bool) -> dict:
    """{request number: Answer} for questions (image row, request number); one at a time when the pass fails."""
    try:
        among = [batch[n].choices for _, n in part]
        extra = {"choices": among} if any(among) else {}  # engines without choices never see the keyword
        out = engine.answer(embeds, [batch[n].question for _, n in part], [i for i, _ in part], top_k=top_k, explain=explain, **extra)
        return {n: answer for (_, n), answer in zip(part, out)}
    except Exception as e:
        if len(part) == 1:
            batch[part[0][1]].error = _failure("cannot answer the question", e)
            return {}
    return {n: a for single in part for n, a in _answered(engine, embeds, [single], batch, top_k, explain).items()}


def _failure(what: str, error: Exception) -> str:
    if isinstance(error, VQAError):
        return str(error)
    text = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{what}: {type(error).__name__}" + (f": {text}" if text else "")


def windows(requests: Iterable[Request], size: int) -> Iterator[list[Request]]:
    """Consecutive runs of `size` requests (the last may be shorter)."""
    batch: list[Request] = []
    for request in requests:
        batch.append(request)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def prepared(media, prepare: Callable[[Any], Any]):
    """An engine's `prepare` applied to an image, or to each frame of a video."""
    if isinstance(media, Video):
        return media.with_frames([prepare(frame) for frame in media.frames])
    return prepare(media)


def _prepare_window(images: dict[str, Any], prepare: Callable[[Any], Any]) -> None:
    """Prepare, in place, a window's decoded images; what fails for one image becomes its error."""
    for key, image in images.items():
        if not isinstance(image, Exception):
            try:
                images[key] = prepared(image, prepare)
            except VQAError as e:
                images[key] = e
            except Exception as e:  # noqa: BLE001 - whatever one input raises is that input's error
                images[key] = VQAError(_failure("cannot prepare the image", e))


def decoded_windows(requests: Iterable[Request], size: int, load: Callable[[str], Any],
                    budget: int = FRAME_BUDGET) -> Iterator[tuple[list[Request], dict[str, Any]]]:
    """(window, its decoded images): at most `size` requests, each distinct image decoded once,
    and a window closed early once its images hold `budget` frames (a video holds many)."""
    batch: list[Request] = []
    images: dict[str, Any] = {}
    held = 0
    for request in requests:
        batch.append(request)
        if request.error is None and request.image not in images:
            images[request.image] = media = _decoded(request.image, load)
            held += len(media.frames) if isinstance(media, Video) else 1
        if len(batch) >= size or held >= budget:
            yield batch, images
            batch, images, held = [], {}, 0
    if batch:
        yield batch, images


def _decoded(source: str, load: Callable[[str], Any]):
    """The decoded image, or the error it raised (a malformed setting is the run's error, not this row's)."""
    try:
        return load(source)
    except UsageError:  # VQA_MAX_PIXELS=abc
        raise
    except VQAError as e:
        return e
    except Exception as e:  # whatever one input raises is that input's error
        return VQAError(_failure("cannot read the image", e))


_DONE = object()


def _prefetch(requests: Iterable[Request], window: int, load, depth: int) -> Iterator[tuple[list[Request], dict]]:
    """Read and decode windows in a background thread, `depth` windows ahead of the model."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in decoded_windows(requests, window, load):
                if not put(item):
                    return
            put(_DONE)
        except BaseException as e:  # handed to the caller's thread, which raises it
            put(e)

    thread = threading.Thread(target=work, name="vqa-image-loader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()

"""`vqa batch`: answer a stream of (image, question) rows, in input order, without losing any.

Three stages run at once:
    reader+loader thread: rows -> windows of rows, each with its images decoded
    main thread:          each window -> images encoded once, questions fused in batches
    writer:               records in input order, one write and flush per JSONL line

Memory is bounded by the window size and the queue depth, never by the input length.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .engine import check_question
from .errors import InputError, VQAError
from .images import open_image
from .records import BadRow, read_rows

CORE_COLUMNS = ("id", "image", "question")


@dataclass
class BatchOptions:
    input: str
    input_format: str | None = None
    image_root: str | None = None
    top_k: int | None = None  # None: no top_k list in the records
    batch_size: int = 64  # questions (and images) per forward pass
    shard: tuple[int, int] = (0, 1)  # (K, N): only rows with index % N == K
    fail_fast: bool = False
    window: int = 256  # rows read ahead and grouped by image
    skip_ids: frozenset = frozenset()  # ids already answered (resume), as json-encoded strings


@dataclass
class Row:
    index: int  # 0-based position in the input
    id: object
    image: str  # as given
    question: str
    extra: dict  # pass-through columns
    path: str | None = None  # resolved image path
    error: str | None = None


@dataclass
class Summary:
    answered: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def rate(self) -> float:
        return (self.answered + self.failed) / self.seconds if self.seconds > 0 else 0.0


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like K/N, e.g. 0/4; got {text!r}") from None
    if n < 1 or not 0 <= k < n:
        raise InputError(f"--shard {text}: need 0 <= K < N")
    return k, n


def rows_of(opts: BatchOptions) -> Iterator[Row]:
    """The input's rows with ids and resolved paths; bad rows carry an error instead of failing."""
    import json

    root = Path(opts.image_root) if opts.image_root else (Path.cwd() if opts.input == "-" else Path(opts.input).parent)
    k, n = opts.shard
    for index, raw in enumerate(read_rows(opts.input, opts.input_format, strict=False)):
        if index % n != k:
            continue
        if isinstance(raw, BadRow):
            row = Row(index, index + 1, "", "", {}, error=raw.error)
        else:
            extra = {key: value for key, value in raw.items() if key not in CORE_COLUMNS}
            row_id = _id_value(raw.get("id"), default=index + 1)
            image = str(raw.get("image") or "")
            question = str(raw.get("question") or "")
            row = Row(index, row_id, image, question, extra)
            row.error = _row_error(row)
            if image:
                row.path = image if Path(image).is_absolute() or image == "-" else str(root / image)
        if json.dumps(row.id) in opts.skip_ids:
            continue
        yield row


def _id_value(value, default: int):
    """CSV ids that are plain integers become JSON numbers, so ids sort numerically."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.isdigit() and str(int(value)) == value:
        return int(value)
    return value


def _row_error(row: Row) -> str | None:
    if not row.image:
        return "missing image"
    try:
        check_question(row.question)
    except VQAError as e:
        return str(e)
    return None


def _windows(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    window: list[Row] = []
    for row in rows:
        window.append(row)
        if len(window) >= size:
            yield window
            window = []
    if window:
        yield window


def _decode(window: list[Row]) -> dict[str, object]:
    """Decode each distinct image of a window once: path -> PIL image, or the error message."""
    images: dict[str, object] = {}
    for row in window:
        if row.error or row.path in images:
            continue
        try:
            images[row.path] = open_image(row.path)
        except VQAError as e:
            images[row.path] = e
    return images


_DONE = object()


def _prefetch(opts: BatchOptions, depth: int = 2) -> Iterator[tuple[list[Row], dict]]:
    """Read and decode windows in a background thread, `depth` windows ahead of the model."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        try:
            for window in _windows(rows_of(opts), opts.window):
                item = (window, _decode(window))
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as e:  # handed to the main thread, which raises it
            q.put(e)

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


def answer_window(engine, window: list[Row], images: dict, opts: BatchOptions) -> list[dict]:
    """Records for one window, in input order. Rows that share an image share its encoding."""
    for row in window:
        if not row.error and isinstance(images.get(row.path), Exception):
            row.error = str(images[row.path])
    groups: "OrderedDict[str, list[Row]]" = OrderedDict()
    for row in window:
        if not row.error:
            groups.setdefault(row.path, []).append(row)
    results: dict[int, object] = {}
    for chunk in _chunks(list(groups.items()), opts.batch_size):
        embeds = engine.encode_images([images[path] for path, _ in chunk])
        members = [(i, row) for i, (_, rows) in enumerate(chunk) for row in rows]
        for start in range(0, len(members), opts.batch_size):
            part = members[start : start + opts.batch_size]
            answers = engine.answer(
                embeds, [row.question for _, row in part], [i for i, _ in part], top_k=opts.top_k or 1
            )
            results.update({row.index: answer for (_, row), answer in zip(part, answers)})
    return [record(row, results.get(row.index), opts.top_k) for row in window]


def _chunks(groups: list, limit: int) -> Iterator[list]:
    """Split image groups into runs of at most `limit` images."""
    for start in range(0, len(groups), limit):
        yield groups[start : start + limit]


def record(row: Row, answer, top_k: int | None) -> dict:
    out = {"id": row.id, "image": row.image, "question": row.question}
    out["answer"] = answer.answer if answer else None
    out["score"] = answer.score if answer else None
    if top_k:
        out["top_k"] = answer.top_k if answer else None
    out.update({k: v for k, v in row.extra.items() if k not in out and k != "error"})
    out["error"] = row.error
    return out


def run(
    engine_factory: Callable[[], object],
    opts: BatchOptions,
    write: Callable[[dict], None],
    advance: Callable[[int], None] = lambda n: None,
) -> Summary:
    """Answer every row of opts.input, writing each record as soon as its window is done."""
    summary = Summary()
    started = time.perf_counter()
    engine = None
    try:
        for window, images in _prefetch(opts):
            if engine is None and any(not r.error for r in window):
                engine = engine_factory()
            records = answer_window(engine, window, images, opts) if engine else [record(r, None, opts.top_k) for r in window]
            for rec in records:
                write(rec)
                if rec["error"]:
                    summary.failed += 1
                    if opts.fail_fast:
                        summary.stopped_early = True
                        return summary
                else:
                    summary.answered += 1
            advance(len(records))
    finally:
        summary.seconds = time.perf_counter() - started
    return summary

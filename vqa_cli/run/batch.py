"""`vqa batch`: answer a file of (image, question) rows, in input order, without losing any.

Rows become requests for the answering stream (stream.py), which reads ahead, encodes
each image once and fuses questions in batches; each answer becomes a record, written
(and for JSONL flushed) as soon as its window is done. Memory stays bounded whatever the
length of the input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..backends.base import check_question
from ..errors import InputError, VQAError
from ..io.media import image_path
from ..io.records import BadRow, read_rows
from .stream import WINDOW, Request, answer_stream

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
    window: int = WINDOW  # rows read ahead and grouped by image
    skip_ids: frozenset = frozenset()  # ids already answered (resume), as json-encoded strings
    strict_domain: bool = False  # rows outside the model's domain become error records


@dataclass
class Row:
    index: int  # 0-based position in the input
    id: object
    image: str  # as given
    question: str
    extra: dict  # pass-through columns
    error: str | None = None


@dataclass
class Summary:
    answered: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    stopped_early: bool = False

    def count(self, rec: dict) -> bool:
        """Count one written record; True when it was answered."""
        if rec["error"]:
            self.failed += 1
            return False
        self.answered += 1
        return True

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


def record(row: Row, answer, top_k: int | None) -> dict:
    out = {"id": row.id, "image": row.image, "question": row.question}
    out["answer"] = answer.answer if answer else None
    out["score"] = answer.score if answer else None
    if top_k:
        out["top_k"] = answer.top_k if answer else None
    out["image_in_domain"] = answer.image_in_domain if answer else None
    out["question_in_domain"] = answer.question_in_domain if answer else None
    out.update({k: v for k, v in row.extra.items() if k not in out and k != "error"})
    out["error"] = row.error
    return out


def finish(request: Request, answer, opts: BatchOptions) -> dict:
    """The record of one answered request; with --strict-domain, an answer outside the domain becomes an error."""
    if opts.strict_domain and answer is not None and (answer.image_in_domain is False or answer.question_in_domain is False):
        which = "image" if answer.image_in_domain is False else "question"
        request.error, answer = f"{which} outside the model's domain (--strict-domain)", None
    request.data.error = request.error
    return record(request.data, answer, opts.top_k)


def requests_of(opts: BatchOptions) -> Iterator[Request]:
    """The rows as requests for the answering stream, image paths resolved against the input's folder or --image-root."""
    root = opts.image_root or (Path.cwd() if opts.input == "-" else Path(opts.input).parent)
    for row in rows_of(opts):
        yield Request(image_path(row.image, root) if row.image else "", row.question, row.error, row)


def run(
    engine_factory: Callable[[], object],
    opts: BatchOptions,
    write: Callable[[dict], None],
    advance: Callable[[int], None] = lambda n: None,
) -> Summary:
    """Answer every row of opts.input, writing each record as soon as its window is done."""
    summary = Summary()
    started = time.perf_counter()
    try:
        stream = answer_stream(engine_factory, requests_of(opts), top_k=opts.top_k or 1, batch_size=opts.batch_size, window=opts.window)
        for answered in stream:
            for request, answer in answered:
                rec = finish(request, answer, opts)
                write(rec)
                if not summary.count(rec) and opts.fail_fast:
                    summary.stopped_early = True
                    return summary
            advance(len(answered))
    finally:
        summary.seconds = time.perf_counter() - started
    return summary

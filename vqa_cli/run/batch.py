"""`vqa batch`: answer a file of (image, question) rows, in input order, without losing any.

Rows become requests for the answering stream (stream.py), which reads ahead, encodes
each image once and fuses questions in batches; each answer becomes a record, written
(and for JSONL flushed) as soon as its window is done. Memory stays bounded whatever the
length of the input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

from ..backends.base import check_question, parse_choices
from ..errors import InputError, UsageError, VQAError
from ..io.media import image_path, input_folder, load_media
from ..io.records import WRITERS, BadRow, answered_ids, read_rows
from ..io.video import Sampling
from .stream import WINDOW, Request, answer_stream
from .timeline import VideoAnswer

CORE_COLUMNS = ("id", "image", "question", "choices")


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
    unique_ids: bool = False  # --resume: ids must not repeat, or a resumed run would skip rows it never answered
    choices: tuple[str, ...] | None = None  # --choices: for rows with no choices of their own
    video: Sampling = Sampling()  # which frames of a video row are answered
    frames: bool = False  # --frames: a video row's record lists its per-frame answers


@dataclass
class Row:
    index: int  # 0-based position in the input
    id: object
    image: str  # as given
    question: str
    extra: dict  # pass-through columns
    error: str | None = None
    choices: tuple[str, ...] | None = None  # its `choices` column (a|b|c, or a JSON list), else --choices


@dataclass
class Summary:
    answered: int = 0
    failed: int = 0
    seconds: float = 0.0
    stopped_early: bool = False

    def emit(self, records: list[dict], write: Callable[[dict], None], fail_fast: bool) -> bool:
        """Write and count a window's records, in order; True when --fail-fast stops the run here.

        The one record loop of a batch, whichever engine (local or Ray) answered the window.
        """
        for rec in records:
            write(rec)
            if rec["error"]:
                self.failed += 1
                if fail_fast:
                    self.stopped_early = True
                    return True
            else:
                self.answered += 1
        return False

    @property
    def rate(self) -> float:
        return (self.answered + self.failed) / self.seconds if self.seconds > 0 else 0.0

    def line(self, already_done: int = 0) -> str:
        """The one-line summary `vqa batch` prints on stderr."""
        skipped = f", {already_done} already done" if already_done else ""
        stopped = " - stopped at the first bad row" if self.stopped_early else ""
        return (f"vqa: answered {self.answered}, failed {self.failed}{skipped} in {self.seconds:.1f} s "
                f"({self.rate:.1f} rows/s){stopped}")


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like K/N, e.g. 0/4; got {text!r}") from None
    if n < 1 or not 0 <= k < n:
        raise UsageError(f"--shard {text}: need 0 <= K < N")
    return k, n


def rows_of(opts: BatchOptions) -> Iterator[Row]:
    """The input's rows with ids and resolved paths; bad rows carry an error instead of failing."""
    import json

    k, n = opts.shard
    seen: set[str] = set()
    for index, raw in enumerate(read_rows(opts.input, opts.input_format, strict=False)):
        if opts.unique_ids:
            _check_unique(raw, index, seen)
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
            row.choices = _row_choices(raw.get("choices"), opts.choices, row)
        if json.dumps(row.id) in opts.skip_ids:
            continue
        yield row


def _check_unique(raw, index: int, seen: set[str]) -> None:
    import json

    row_id = index + 1 if isinstance(raw, BadRow) else _id_value(raw.get("id"), default=index + 1)
    key = json.dumps(row_id)
    if key in seen:
        raise InputError(f"--resume needs unique ids, and id {row_id!r} repeats (row {index + 1}); give every row its own id")
    seen.add(key)


def _id_value(value, default: int):
    """CSV ids that are plain integers become JSON numbers, so ids sort numerically."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.isdigit() and str(int(value)) == value:
        return int(value)
    return value


def _row_choices(value, default: tuple[str, ...] | None, row: Row) -> tuple[str, ...] | None:
    """A row's own choices, else the default; malformed ones are the row's error."""
    if value is None or value == "":
        return default
    try:
        return parse_choices(value, "|")
    except VQAError as e:
        row.error = row.error or str(e)
        return None


def _row_error(row: Row) -> str | None:
    if not row.image:
        return "missing image"
    try:
        check_question(row.question)
    except VQAError as e:
        return str(e)
    return None


def record(row: Row, answer, top_k: int | None, frames: bool = False) -> dict:
    out = {"id": row.id, "image": row.image, "question": row.question}
    out["answer"] = answer.answer if answer else None
    out["score"] = answer.score if answer else None
    if top_k:
        out["top_k"] = answer.top_k if answer else None
    out["image_in_domain"] = answer.image_in_domain if answer else None
    out["question_in_domain"] = answer.question_in_domain if answer else None
    if isinstance(answer, VideoAnswer):
        out.update(answer.video_fields(frames))
    out.update({k: v for k, v in row.extra.items() if k not in out and k != "error"})
    out["error"] = row.error
    return out


def finish(request: Request, answer, opts: BatchOptions) -> dict:
    """The record of one answered request; with --strict-domain, an answer outside the domain becomes an error."""
    if opts.strict_domain and answer is not None and (answer.image_in_domain is False or answer.question_in_domain is False):
        which = "image" if answer.image_in_domain is False else "question"
        request.error, answer = f"{which} outside the model's domain (--strict-domain)", None
    request.data.error = request.error
    return record(request.data, answer, opts.top_k, opts.frames)


def requests_of(opts: BatchOptions) -> Iterator[Request]:
    """The rows as requests for the answering stream, image paths resolved against the input's folder or --image-root."""
    root = opts.image_root or input_folder(opts.input)
    for row in rows_of(opts):
        yield Request(image_path(row.image, root) if row.image else "", row.question, row.error, row, row.choices)


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
        stream = answer_stream(engine_factory, requests_of(opts), top_k=opts.top_k or 1, batch_size=opts.batch_size,
                               window=opts.window, load=partial(load_media, video=opts.video))
        for answered in stream:
            if summary.emit([finish(request, answer, opts) for request, answer in answered], write, opts.fail_fast):
                break
            advance(len(answered))
    finally:
        summary.seconds = time.perf_counter() - started
    return summary


Runner = Callable[[BatchOptions, Callable[[dict], None], Callable[[int], None]], Summary]


def resumed_ids(output: Path | None, fmt: str, resume: bool) -> frozenset:
    """With --resume, the ids already in the output (a cut-off last line is removed); checked before any model loads."""
    if not resume:
        return frozenset()
    if output is None or fmt != "jsonl":
        raise UsageError("--resume needs -o FILE with --format jsonl")
    return frozenset(answered_ids(output))


def write_batch(answer_rows: Runner, opts: BatchOptions, output: Path | None, fmt: str, progress) -> Summary:
    """Run `answer_rows` (this process's stream, or a Ray pool) into stdout or `output`, in `fmt`.

    With skip ids (--resume) the output is appended to, else written afresh; the writer is
    closed (a JSON array gets its "]") however the run ends.
    """
    import sys

    stream = open_output(output, opts.input, append=bool(opts.skip_ids)) if output else sys.stdout
    later = {"later": ("video", "segments", *(("frames",) if opts.frames else ()))} if fmt == "csv" else {}
    writer = WRITERS[fmt](stream, **later)  # a CSV has a video's columns even when its first row is an image
    try:
        task = progress.add_task("answering", total=None, status="")
        return answer_rows(opts, writer.write, lambda n: progress.update(task, advance=n))
    except OSError as e:  # a full disk, a closed pipe, /dev/full
        raise InputError(f"cannot write {output or 'stdout'}: {e.strerror or e}") from None
    finally:
        try:
            writer.close()
            if output:
                stream.close()
        except OSError:
            pass


def open_output(output: Path, input: str, append: bool):
    """The output file, opened before any model loads; never the input itself, a folder, or a file in a missing folder."""
    import os

    if input != "-" and os.path.exists(input) and os.path.exists(output) and os.path.samefile(input, output):
        raise InputError(f"-o {output} is the input file: it would be overwritten; write the answers elsewhere")
    if output.is_dir():
        raise InputError(f"-o {output} is a folder; give a file name")
    try:
        file = open(output, "a" if append else "w", encoding="utf-8", newline="")
        try:
            os.write(file.fileno(), b"")  # a device that refuses every write (/dev/full) says so now, not after the model loads
        except OSError:
            file.close()
            raise
        return file
    except FileNotFoundError:
        raise InputError(f"cannot write {output}: its folder {output.parent} does not exist") from None
    except OSError as e:
        raise InputError(f"cannot write {output}: {e.strerror or e}") from None

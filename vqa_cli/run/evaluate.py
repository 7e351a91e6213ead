"""`vqa eval`: accuracy of a model on labelled rows, overall and per family, streamed.

Rows go through the same answering stream as `vqa batch`, so eval reads ahead, encodes
each image once and never holds the whole file; only running totals are kept.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterator

from ..errors import InputError
from ..io.media import image_path, input_folder
from ..io.records import read_rows
from .metrics import gold_answers, soft_accuracy
from .stream import Request, answer_stream


def labelled_requests(data: str) -> Iterator[Request]:
    """Each row as a request carrying (gold answers, family); a row without a gold answer is an error."""
    root = input_folder(data)
    for number, row in enumerate(read_rows(data), start=1):
        gold = gold_answers(row)
        if not gold:
            raise InputError(
                f"{data}: row {number} has no gold answer to score against (an `answer` column, or `answers` as 'a|b|c')"
            )
        name = str(row.get("image") or "")
        question = str(row.get("question") or "").strip()
        error = None if name and question else "missing image or question"
        yield Request(image_path(name, root) if name else "", question, error, (gold, str(row.get("family") or "")))


def evaluate(engine: Callable[[], object], data: str, batch_size: int = 256, progress=None) -> dict:
    """Answer every row of `data` and score it; rows that cannot be answered count as wrong (and as failed)."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])  # family -> [score sum, rows]
    overall, rows, failed = 0.0, 0, 0
    task = progress.add_task("evaluating", total=None, status="") if progress else None
    loaded = []

    def load_once():
        loaded.append(engine())
        return loaded[0]

    for answered in answer_stream(load_once, labelled_requests(data), batch_size=batch_size):
        for request, answer in answered:
            gold, family = request.data
            value = soft_accuracy(answer.answer, gold) if answer else 0.0
            failed += answer is None
            rows += 1
            overall += value
            if family:
                totals[family][0] += value
                totals[family][1] += 1
        if progress:
            progress.update(task, advance=len(answered))
    return {
        "model": (loaded[0] if loaded else load_once()).name,
        "rows": rows,
        "failed": failed,
        "accuracy": overall / max(rows, 1),
        "families": {f: {"accuracy": s / n, "rows": n} for f, (s, n) in sorted(totals.items())},
    }

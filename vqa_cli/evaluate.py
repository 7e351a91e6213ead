"""Accuracy of a model on labelled rows, overall and per family."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .engine import Engine
from .errors import InputError, VQAError
from .images import open_image
from .metrics import gold_answers, soft_accuracy
from .records import read_rows


def evaluate(engine: Engine, data: str, batch_size: int = 256, progress=None) -> dict:
    """Answer every row of `data` and score it; rows whose image fails count as wrong."""
    rows = list(read_rows(data))
    unlabelled = [n for n, row in enumerate(rows, start=1) if not gold_answers(row)]
    if unlabelled:
        raise InputError(
            f"{data}: {len(unlabelled)} of {len(rows)} rows have no gold answer to score against "
            f"(an `answer` column, or `answers` as 'a|b|c'); the first is row {unlabelled[0]}"
        )
    root = Path(data).parent if data != "-" else Path.cwd()
    by_image: dict[str, list[int]] = defaultdict(list)
    for n, row in enumerate(rows):
        by_image[str(row.get("image", ""))].append(n)
    scores = [0.0] * len(rows)
    failed = 0
    task = progress.add_task("evaluating", total=len(rows), status="") if progress else None
    pending: list[tuple[object, list[int]]] = []

    def flush():
        if not pending:
            return
        embeds = engine.encode_images([image for image, _ in pending])
        index = [i for i, (_, members) in enumerate(pending) for _ in members]
        members = [n for _, group in pending for n in group]
        answers = engine.answer(embeds, [str(rows[n]["question"]) for n in members], index)
        for n, answer in zip(members, answers):
            scores[n] = soft_accuracy(answer.answer, gold_answers(rows[n]))
        if progress:
            progress.update(task, advance=len(members))
        pending.clear()

    for name, members in by_image.items():
        path = name if Path(name).is_absolute() else str(root / name)
        try:
            image = open_image(path)
        except VQAError:
            failed += len(members)
            continue
        if sum(len(m) for _, m in pending) + len(members) > batch_size:
            flush()
        pending.append((image, members))
    flush()
    return _report(engine, rows, scores, failed)


def _report(engine: Engine, rows: list[dict], scores: list[float], failed: int) -> dict:
    totals: dict[str, list[float]] = defaultdict(list)
    for row, score in zip(rows, scores):
        if row.get("family"):
            totals[str(row["family"])].append(score)
    return {
        "model": engine.name,
        "rows": len(rows),
        "failed": failed,
        "accuracy": sum(scores) / max(len(rows), 1),
        "families": {f: {"accuracy": sum(s) / len(s), "rows": len(s)} for f, s in sorted(totals.items())},
    }

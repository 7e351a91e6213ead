"""`vqa eval`: accuracy of a model on labelled rows, overall and per family, streamed.

Rows go through the same answering stream as `vqa batch`, so eval reads ahead, encodes
each image once and never holds the whole file; only running totals are kept.

A video row (as `vqa synth --videos` writes them) carries its truth at every frame of the
clip (`truth`: {"fps", "answers"}, null where a frame allows no answer). It is scored at the
sampled frames: per-frame accuracy by family, the temporal IoU of the "yes" segments with
the truth for yes/no questions, and the whole-video answer against the same rule applied to
the truth at the sampled frames. A model that takes a video whole gives no frames: its answer
is scored against the row's `answer` (the same rule over every frame of the clip).
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Callable, Iterator

from ..backends.base import Answer
from ..errors import InputError
from ..io.media import image_path, input_folder, load_media
from ..io.records import read_rows
from ..io.video import Sampling
from .metrics import gold_answers, soft_accuracy
from .stream import Request, answer_stream
from .timeline import VideoAnswer, overall


def labelled_requests(data: str) -> Iterator[Request]:
    """Each row as a request carrying (gold answers, family, per-frame truth); a row without a gold answer is an error."""
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
        truth = row.get("truth") if isinstance(row.get("truth"), dict) else None
        yield Request(image_path(name, root) if name else "", question, error, (gold, str(row.get("family") or ""), truth))


class Totals:
    """Running sums: {family: [score, count]} and the overall [score, count]."""

    def __init__(self):
        self.families: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        self.all = [0.0, 0]

    def add(self, family: str, value: float, count: int = 1) -> None:
        for total in (self.all, self.families[family]) if family else (self.all,):
            total[0] += value
            total[1] += count

    def share(self, key: str | None = None) -> float:
        value, count = self.all if key is None else self.families[key]
        return value / count if count else 0.0


class VideoScores:
    """What video rows add to the report."""

    def __init__(self):
        self.rows = Totals()  # whole-video answers
        self.frames = Totals()  # per-frame answers
        self.iou = Totals()  # temporal IoU of "yes", per yes/no question
        self.flagged = [0, 0]  # frames outside the model's domain, frames

    def add(self, answer: VideoAnswer, family: str, truth: dict, gold: list[str]) -> float | None:
        """Score one video row; returns its whole-video score (None: no truth at any sampled frame).
        A model that took the video whole has no frames: its answer is scored against the row's answer."""
        if answer.frames is None:
            value = soft_accuracy(answer.answer, gold)
            self.rows.add(family, value)
            return value
        said = [truth_at(truth, frame["t"]) for frame in answer.frames]
        for frame, gold in zip(answer.frames, said):
            if gold is not None:
                self.frames.add(family, float(frame["answer"] == gold))
        self.flagged[0] += sum(d is False for d in answer.frames_in_domain)
        self.flagged[1] += len(answer.frames_in_domain)
        known = [Answer("", gold, 1.0) for gold in said if gold is not None]
        if {a for a in truth["answers"] if a is not None} <= {"yes", "no"}:
            iou = _yes_iou(answer.segments, truth)
            if iou is not None:
                self.iou.add(family, iou)
        if not known:
            return None
        value = float(answer.answer == overall(known)[0])
        self.rows.add(family, value)
        return value

    def report(self) -> dict:
        families = sorted(set(self.frames.families) | set(self.rows.families))
        return {
            "rows": self.rows.all[1], "accuracy": self.rows.share(),
            "frames": self.frames.all[1], "frame_accuracy": self.frames.share(),
            "temporal_iou": self.iou.share(), "iou_questions": self.iou.all[1],
            "frames_out_of_domain": self.flagged[0] / self.flagged[1] if self.flagged[1] else 0.0,
            "families": {f: {"rows": self.rows.families[f][1], "accuracy": self.rows.share(f),
                             "frames": self.frames.families[f][1], "frame_accuracy": self.frames.share(f),
                             **({"temporal_iou": self.iou.share(f)} if self.iou.families[f][1] else {})} for f in families},
        }


def truth_at(truth: dict, t: float) -> str | None:
    """The true answer for the frame on screen at time t."""
    answers = truth["answers"]
    return answers[min(int(t * truth["fps"] + 1e-6), len(answers) - 1)] if answers else None


def _yes_iou(segments: list[dict], truth: dict) -> float | None:
    """|predicted yes ∩ true yes| / |predicted yes ∪ true yes|, over the clip's frames that have a truth
    and lie in the sampled window; None when neither says yes anywhere."""
    both = either = 0
    for i, gold in enumerate(truth["answers"]):
        t = i / truth["fps"]
        said = next((s["answer"] for s in reversed(segments) if s["start"] <= t + 1e-6), None)
        if gold is None or said is None or t >= segments[-1]["end"]:
            continue
        both += gold == "yes" and said == "yes"
        either += gold == "yes" or said == "yes"
    return both / either if either else None


def evaluate(engine: Callable[[], object], data: str, batch_size: int = 256, progress=None, video: Sampling = Sampling()) -> dict:
    """Answer every row of `data` and score it; rows that cannot be answered count as wrong (and as failed)."""
    totals, videos = Totals(), VideoScores()
    failed = 0
    task = progress.add_task("evaluating", total=None, status="") if progress else None
    loaded = []

    def load_once():
        loaded.append(engine())
        return loaded[0]

    stream = answer_stream(load_once, labelled_requests(data), batch_size=batch_size, load=partial(load_media, video=video))
    for answered in stream:
        for request, answer in answered:
            gold, family, truth = request.data
            value = soft_accuracy(answer.answer, gold) if answer else 0.0
            if truth is not None and isinstance(answer, VideoAnswer):
                value = videos.add(answer, family, truth, gold)
                if value is None:
                    continue  # no sampled frame has a truth: nothing to score
            failed += answer is None
            totals.add(family, value)
        if progress:
            progress.update(task, advance=len(answered))
    report = {
        "model": (loaded[0] if loaded else load_once()).name,
        "rows": totals.all[1],
        "failed": failed,
        "accuracy": totals.share(),
        "families": {f: {"accuracy": totals.share(f), "rows": n} for f, (_, n) in sorted(totals.families.items())},
    }
    if videos.frames.all[1] or videos.rows.all[1]:
        report["video"] = videos.report()
    return report

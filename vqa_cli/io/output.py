"""Everything written to stdout: plain answers, JSON documents and tables."""

from __future__ import annotations

import json
import sys

SCHEMA_VERSION = 1


def print_json(document) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_answers(answers, top_k: int = 1) -> None:
    """One line per question; with --top-k N, the N answers with scores, tab-separated.
    A video's answer is followed by its segments, one `  start–end answer` line each."""
    for answer in answers:
        if top_k > 1:
            print("\t".join(f"{r['answer']} ({r['score']:.3f})" for r in answer.top_k))
        else:
            print(answer.answer)
        for segment in getattr(answer, "segments", ()):
            print(f"  {segment['start']:g}–{segment['end']:g} {segment['answer']}")


def ask_document(image: str, engine, answers) -> dict:
    video = getattr(answers[0], "video", None) if answers else None
    return {
        "schema": SCHEMA_VERSION,
        "image": image,
        **({"video": video} if video else {}),
        "image_in_domain": answers[0].image_in_domain if answers else None,
        "model": engine.model_info,
        "device": engine.device,
        "dtype": engine.dtype_name,
        "answers": [_answer_json(a) for a in answers],
    }


def _answer_json(answer) -> dict:
    doc = {
        "question": answer.question, "answer": answer.answer, "score": answer.score, "top_k": answer.top_k,
        "question_in_domain": answer.question_in_domain,
    }
    if answer.attention is not None:
        doc["attention"] = {"grid": [len(answer.attention), len(answer.attention[0])], "map": answer.attention}
    if hasattr(answer, "video_fields"):  # a video's (run/timeline.py): its frames and segments
        doc.update({k: v for k, v in answer.video_fields().items() if k != "video"})
    return doc


def domain_warnings(image: str, engine, answers) -> list[str]:
    """One line per input outside the model's domain: the image (once), then each such question."""
    known = engine.domain or "its training data"
    lines = []
    if answers and answers[0].image_in_domain is False:
        hint = " (for photos, try -m Salesforce/blip-vqa-base)"
        lines.append(f"the image {image} looks unlike the {known} that {engine.name} knows; its answers may mean nothing{hint}")
    for n, answer in enumerate(answers, start=1):
        if answer.question_in_domain is False:
            lines.append(f"question {n} ({answer.question!r}) is unlike the questions {engine.name} was trained on ({known})")
    return lines


def _table(title: str, columns: list[str], rows: list[list[str]], numeric: set[str] = frozenset()) -> None:
    """A rich table on stdout; piped output gets a wide console so nothing is cut, and no trailing blanks."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    if sys.stdout.isatty():
        Console(soft_wrap=False).print(table)
        return
    console = Console(soft_wrap=False, width=400, color_system=None)
    with console.capture() as captured:
        console.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_models(entries: list[dict]) -> None:
    rows = [
        [e["name"], e["kind"], e["image_encoder"], e["text_encoder"], str(e["answers"] or "open"), _size(e["size_bytes"]), e["path"]]
        for e in entries
    ]
    _table("models", ["name", "kind", "image encoder", "text encoder", "answers", "size", "path"], rows, {"answers", "size"})


def print_eval(report: dict) -> None:
    rows = [[family, str(v["rows"]), f"{v['accuracy']:.2%}"] for family, v in report["families"].items()]
    rows.append(["overall", str(report["rows"]), f"{report['accuracy']:.2%}"])
    _table(f"accuracy of {report['model']}", ["family", "rows", "accuracy"], rows, {"rows", "accuracy"})
    video = report.get("video")
    if video:
        def line(name: str, v: dict) -> list[str]:
            iou = v.get("temporal_iou") if v.get("iou_questions", 1) else None
            return [name, str(v["frames"]), f"{v['frame_accuracy']:.2%}", str(v["rows"]), f"{v['accuracy']:.2%}",
                    "-" if iou is None else f"{iou:.3f}"]

        rows = [line(family, v) for family, v in video["families"].items()] + [line("overall", video)]
        _table(f"videos ({video['frames_out_of_domain']:.2%} of frames flagged outside the domain)",
               ["family", "frames", "frame accuracy", "videos", "video accuracy", "yes IoU"], rows,
               {"frames", "frame accuracy", "videos", "video accuracy", "yes IoU"})


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)

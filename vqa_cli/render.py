"""Everything written to stdout: plain answers, JSON documents and tables."""

from __future__ import annotations

import json
import sys

SCHEMA_VERSION = 1


def print_json(document) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_answers(answers, top_k: int = 1) -> None:
    """One line per question; with --top-k N, the N answers with scores, tab-separated."""
    for answer in answers:
        if top_k > 1:
            print("\t".join(f"{r['answer']} ({r['score']:.3f})" for r in answer.top_k))
        else:
            print(answer.answer)


def model_info(engine) -> dict:
    bundle = engine.bundle
    return {"name": bundle.name, "kind": bundle.config.get("kind", "cross-attention"), "path": str(bundle.path)}


def ask_document(image: str, engine, answers) -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "image": image,
        "model": model_info(engine),
        "device": engine.device,
        "dtype": engine.dtype_name,
        "answers": [
            {"question": a.question, "answer": a.answer, "score": a.score, "top_k": a.top_k} for a in answers
        ],
    }


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for n, column in enumerate(columns):
        table.add_column(column, justify="left" if n == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=False).print(table)


def print_models(entries: list[dict]) -> None:
    rows = [
        [e["name"], e["kind"], e["image_encoder"], e["text_encoder"], str(e["answers"]), _size(e["size_bytes"]), e["path"]]
        for e in entries
    ]
    _table("models", ["name", "kind", "image encoder", "text encoder", "answers", "size", "path"], rows)


def print_eval(report: dict) -> None:
    rows = [[family, str(v["rows"]), f"{v['accuracy']:.2%}"] for family, v in report["families"].items()]
    rows.append(["overall", str(report["rows"]), f"{report['accuracy']:.2%}"])
    _table(f"accuracy of {report['model']}", ["family", "rows", "accuracy"], rows)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)

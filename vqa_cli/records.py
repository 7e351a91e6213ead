"""Read rows from CSV or JSONL; write answer records as JSONL, JSON or CSV.

Rows stream: nothing here reads a whole file into memory.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Iterator

from .errors import InputError

FORMATS = ("csv", "jsonl")


def input_format(path: str, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise InputError(f"cannot tell the format of {path!r}; pass --input-format csv or jsonl")


def _open_text(path: str) -> io.TextIOBase:
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    try:
        return open(path, encoding="utf-8-sig", newline="")  # utf-8-sig drops a BOM
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


def read_rows(path: str, fmt: str | None = None) -> Iterator[dict]:
    """Yield each row as a dict of stripped strings (JSON values are kept as they are)."""
    fmt = input_format(path, fmt)
    with _open_text(path) as f:
        if fmt == "csv":
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                return
            reader.fieldnames = [name.strip() for name in reader.fieldnames]
            for row in reader:
                yield {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k is not None}
        else:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    raise InputError(f"{path}:{number}: not valid JSON") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}:{number}: expected a JSON object")
                yield {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}

"""Read rows from CSV or JSONL; write answer records as JSONL, JSON or CSV.

Rows stream: nothing here reads a whole file into memory.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

from ..errors import InputError
from .media import is_uri

@dataclass
class BadRow:
    """A row that could not be parsed; batch turns it into an error record."""

    error: str


def input_format(path: str, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise InputError(f"cannot tell the format of {path!r}; pass --input-format csv or jsonl")


csv.field_size_limit(2**31 - 1)  # a long field is one row's business, not a reason to stop reading


def _open_text(path: str, newline: str = "") -> io.TextIOBase:
    """The input as text; bytes that are not UTF-8 become lone surrogates, so only their row fails (see _clean).

    newline "" lets csv see every line ending; JSONL lines end at "\n" alone (a JSON line may hold a raw "\r")."""
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", errors="surrogateescape", newline=newline)
    if is_uri(path):
        return _open_uri(path, newline)
    try:
        return open(path, encoding="utf-8-sig", errors="surrogateescape", newline=newline)  # utf-8-sig drops a BOM
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"cannot read {path}: it is a directory") from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


def _open_uri(uri: str, newline: str) -> io.TextIOBase:
    """An input file behind a URI (s3://, gs://, file://, ...), streamed through fsspec."""
    import fsspec

    try:
        binary = fsspec.open(uri, "rb").open()
    except FileNotFoundError:
        raise InputError(f"input file not found: {uri}") from None
    except Exception as e:  # an unknown protocol, a missing fsspec backend (s3fs, gcsfs), I/O
        raise InputError(f"cannot read {uri}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline=newline)


def _clean(row: dict, where: str) -> dict | BadRow:
    """A row whose text is valid Unicode, or a BadRow naming where it is: invalid UTF-8 in the file,
    or a lone surrogate in a JSON string, cannot be answered or written as UTF-8."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return BadRow(f"{where}: not valid UTF-8 text (invalid bytes or a lone surrogate)")
    return row


def read_rows(path: str, fmt: str | None = None, strict: bool = True) -> Iterator[dict | BadRow]:
    """Yield each row as a dict of stripped strings (JSON values are kept as they are).

    A malformed JSONL line raises InputError, or with strict=False is yielded as a BadRow.
    """
    fmt = input_format(path, fmt)
    with _open_text(path, "" if fmt == "csv" else "\n") as f:
        if fmt == "csv":
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                return
            reader.fieldnames = [name.strip() for name in reader.fieldnames]
            for row in reader:
                row = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k is not None}
                yield _clean(row, f"line {reader.line_num}")
        else:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError("expected a JSON object")
                except ValueError as e:
                    message = f"line {number}: not a JSON object ({str(e).splitlines()[0]})"
                    if strict:
                        raise InputError(f"{path}: {message}") from None
                    yield BadRow(message)
                    continue
                yield _clean({k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}, f"line {number}")


def dumps(record: dict) -> str:
    """One record as JSON; text that cannot be written as UTF-8 (a lone surrogate) is escaped instead."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record)
    return text


class JsonlWriter:
    """One JSON object per line, each written whole and flushed, so a pipeline sees it at once
    and a killed run leaves at most one partial last line."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, record: dict) -> None:
        self.stream.write(dumps(record) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class JsonWriter:
    """A JSON array, streamed: '[' first, records as they come, ']' on close."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.count = 0

    def write(self, record: dict) -> None:
        self.stream.write(("[\n" if self.count == 0 else ",\n") + dumps(record))
        self.count += 1

    def close(self) -> None:
        self.stream.write(("[" if self.count == 0 else "\n") + "]\n")
        self.stream.flush()


class CsvWriter:
    """CSV with the first record's columns, then any of `later` it lacks (columns only some records
    have, such as a video's); lists and objects (top_k, segments) are written as JSON."""

    def __init__(self, stream: TextIO, later: tuple[str, ...] = ()):
        self.stream = stream
        self.later = later
        self.writer: csv.DictWriter | None = None

    def write(self, record: dict) -> None:
        if self.writer is None:
            columns = list(record) + [c for c in self.later if c not in record]
            self.writer = csv.DictWriter(self.stream, fieldnames=columns, extrasaction="ignore")
            self.writer.writeheader()
        self.writer.writerow({k: _csv_cell(v) for k, v in record.items()})
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return dumps(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate becomes "?"
    return value


WRITERS = {"jsonl": JsonlWriter, "json": JsonWriter, "csv": CsvWriter}


def answered_ids(path: Path) -> set[str]:
    """Ids (JSON-encoded) of the records already in a JSONL output, for --resume.

    Every record is written as one line ending in a newline, so a run killed mid-write
    leaves at most a last line with no newline: it is cut off here and redone.
    """
    if not path.is_file():
        return set()
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1  # bytes up to the last newline
    ids: set[str] = set()
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            ids.add(json.dumps(record["id"]))
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}: line {number} is not a record; cannot resume safely") from None
    if complete < len(data):
        with open(path, "r+b") as f:
            f.truncate(complete)
    return ids

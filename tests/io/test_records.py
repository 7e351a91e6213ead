import json

import pytest

from vqa_cli.errors import InputError
from vqa_cli.io.records import BadRow, CsvWriter, JsonWriter, answered_ids, input_format, read_rows


def test_answered_ids_cuts_a_partial_last_line(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 1, "answer": "a"}\n{"id": "x", "answer": "b"}\n{"id": 3, "ans')
    assert answered_ids(out) == {"1", '"x"'}
    assert out.read_text() == '{"id": 1, "answer": "a"}\n{"id": "x", "answer": "b"}\n'


def test_answered_ids_refuses_a_corrupt_middle(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 1}\ngarbage\n{"id": 3}\n')
    with pytest.raises(InputError, match="line 2"):
        answered_ids(out)


def test_missing_output_means_nothing_done(tmp_path):
    assert answered_ids(tmp_path / "none.jsonl") == set()


def test_jsonl_bad_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"image": "a.png", "question": "q"}\n[1, 2]\n{oops\n\n')
    with pytest.raises(InputError, match="line 2"):
        list(read_rows(str(path)))
    rows = list(read_rows(str(path), strict=False))
    assert rows[0] == {"image": "a.png", "question": "q"}
    assert isinstance(rows[1], BadRow) and isinstance(rows[2], BadRow) and len(rows) == 3


def test_format_from_extension():
    assert input_format("a.csv") == "csv" and input_format("a.JSONL") == "jsonl"
    assert input_format("-", "jsonl") == "jsonl"
    with pytest.raises(InputError):
        input_format("rows.txt")


def test_json_and_csv_writers(tmp_path):
    import io

    stream = io.StringIO()
    writer = JsonWriter(stream)
    writer.close()
    assert json.loads(stream.getvalue()) == []
    stream = io.StringIO()
    writer = CsvWriter(stream)
    writer.write({"id": 1, "top_k": [{"answer": "a", "score": 1.0}], "error": None})
    assert stream.getvalue().splitlines() == ["id,top_k,error", '1,"[{""answer"": ""a"", ""score"": 1.0}]",']

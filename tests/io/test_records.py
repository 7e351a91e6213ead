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


def test_invalid_utf8_and_lone_surrogates_are_bad_rows_that_name_their_line(tmp_path):
    from vqa_cli.io.records import BadRow, read_rows

    csv_file = tmp_path / "rows.csv"
    csv_file.write_bytes(b"image,question\na.png,is there a \xff circle?\nb.png,how many?\n")
    rows = list(read_rows(str(csv_file)))
    assert isinstance(rows[0], BadRow) and rows[0].error.startswith("line 2: not valid UTF-8")
    assert rows[1] == {"image": "b.png", "question": "how many?"}
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_bytes(b'{"image": "a.png", "question": "lone \\ud800"}\n{"image": "b\xfe.png", "question": "q"}\n{"image": "c.png", "question": "ok"}\n')
    rows = list(read_rows(str(jsonl), strict=False))
    assert [r.error.split(":")[0] if isinstance(r, BadRow) else r["image"] for r in rows] == ["line 1", "line 2", "c.png"]


def test_a_field_of_several_megabytes_is_read(tmp_path):
    from vqa_cli.io.records import read_rows

    path = tmp_path / "rows.csv"
    path.write_text("image,question\na.png," + "x" * 3_000_000 + "\nb.png,ok\n")
    rows = list(read_rows(str(path)))
    assert len(rows[0]["question"]) == 3_000_000 and rows[1]["question"] == "ok"


def test_records_with_a_lone_surrogate_are_still_written(tmp_path):
    import io

    from vqa_cli.io.records import WRITERS

    for fmt in WRITERS:
        out = io.StringIO()
        writer = WRITERS[fmt](out)
        writer.write({"id": 1, "question": "lone \ud800", "answer": None, "error": "x"})
        writer.close()
        out.getvalue().encode("utf-8")  # writable as UTF-8

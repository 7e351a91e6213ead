"""What goes to stdout: plain answers, the ask document and tables without trailing blanks."""

import json

from vqa_cli.backends.base import Answer
from vqa_cli.io import output


class FakeEngine:
    model_info = {"name": "m", "kind": "cross-attention", "path": "/m"}
    device = "cpu"
    dtype_name = "float32"


ANSWERS = [Answer("what?", "red", 0.9, [{"answer": "red", "score": 0.9}, {"answer": "blue", "score": 0.1}])]


def test_plain_answers_one_line_each_and_top_k_tab_separated(capsys):
    output.print_answers(ANSWERS)
    output.print_answers(ANSWERS, top_k=2)
    assert capsys.readouterr().out == "red\nred (0.900)\tblue (0.100)\n"


def test_ask_document_schema(capsys):
    output.print_json(output.ask_document("img.png", FakeEngine(), ANSWERS))
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["schema", "image", "image_in_domain", "model", "device", "dtype", "answers"]
    assert doc["image_in_domain"] is None  # this engine has no domain statistics
    assert doc["answers"][0] == {"question": "what?", "answer": "red", "score": 0.9, "top_k": ANSWERS[0].top_k, "question_in_domain": None}


def test_eval_table_when_piped_has_no_trailing_blanks(capsys):
    output.print_eval({"model": "m", "rows": 2, "accuracy": 0.5, "families": {"count": {"accuracy": 0.5, "rows": 2}}})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "accuracy of m"
    assert any("50.00%" in line for line in lines) and not any(line.endswith(" ") for line in lines)
